"""The documentation says what the code does."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyswarmclient.cli.reference import BEGIN, END, render

ROOT = Path(__file__).resolve().parents[2]


def test_option_reference_matches_the_code() -> None:
    """Every option and env var in docs/configuration.md is exactly what the commands accept (regenerate if not)."""
    document = "docs/configuration.md"
    text = (ROOT / document).read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == render(), (
        f"{document} is out of date: run `python -m polyswarmclient.cli.reference --write {document}`"
    )


def test_the_readme_is_a_first_page_not_a_second_reference() -> None:
    """The generated tables live in docs/configuration.md alone; the README links there."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert BEGIN not in text and "| option | environment variable |" not in text
    assert "(docs/configuration.md)" in text


def test_every_command_and_subcommand_is_in_the_reference() -> None:
    """Each console script, and each subcommand of the groups, has its table (microengine new/evaluate too)."""
    import tomllib

    rendering = render()
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    for script in scripts:
        assert f"### `{script}" in rendering, f"no option table for {script}"
    for name in ("microengine new", "microengine evaluate", "balancemanager maintain", "polyswarm-probe"):
        assert f"### `{name}`" in rendering, f"no option table for {name}"


@pytest.mark.parametrize("document", ["README.md", "docs/configuration.md", "docs/devnet.md", "docs/operations.md"])
def test_docs_hold_no_machine_paths(document: str) -> None:
    """Docs never point at a developer's own machine."""
    text = (ROOT / document).read_text(encoding="utf-8")
    for marker in ("/home/", "/tmp/", "/work/", "/Users/"):
        assert marker not in text, f"{document} mentions {marker}"


def test_operations_lists_every_metric() -> None:
    """docs/operations.md has a row for each metric the code declares, with its type."""
    from polyswarmclient import metrics

    text = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    for instrument in metrics.INSTRUMENTS:
        assert f"| `{instrument.spec.name}` | {instrument.spec.kind} |" in text, instrument.spec.name
