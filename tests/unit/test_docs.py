"""The documentation says what the code does."""

from __future__ import annotations

from pathlib import Path

import pytest

from polyswarmclient.cli.reference import BEGIN, END, render

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("document", ["README.md", "docs/configuration.md"])
def test_option_reference_matches_the_code(document: str) -> None:
    """Every option and env var in the docs is exactly what the commands accept (regenerate if not)."""
    text = (ROOT / document).read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == render(), (
        f"{document} is out of date: run `python -m polyswarmclient.cli.reference --write {document}`"
    )


@pytest.mark.parametrize("document", ["README.md", "docs/configuration.md", "docs/devnet.md"])
def test_docs_hold_no_machine_paths(document: str) -> None:
    """Docs never point at a developer's own machine."""
    text = (ROOT / document).read_text(encoding="utf-8")
    for marker in ("/home/", "/tmp/", "/work/", "/Users/"):
        assert marker not in text, f"{document} mentions {marker}"
