"""Every test file sits in a tier folder, so ``pytest -m <tier>`` can select it."""

from __future__ import annotations

from tests.conftest import TESTS, tier_of


def test_every_test_file_belongs_to_a_tier() -> None:
    """A test file outside tests/unit, integration, cli, devnet, e2e and faults would carry no marker at all."""
    untiered = [str(path.relative_to(TESTS)) for path in TESTS.rglob("test_*.py") if tier_of(path) is None]
    assert untiered == []


def test_every_tier_folder_has_its_registered_marker() -> None:
    """Each tier folder exists and its marker is registered in pyproject.toml (--strict-markers needs it)."""
    import tomllib

    from tests.conftest import TIERS

    config = tomllib.loads((TESTS.parent / "pyproject.toml").read_text(encoding="utf-8"))
    markers = {line.split(":", 1)[0] for line in config["tool"]["pytest"]["ini_options"]["markers"]}
    assert set(TIERS) <= markers
    assert [t for t in TIERS if not (TESTS / t).is_dir()] == []
    assert tier_of(TESTS / "faults" / "test_engine_restarts.py") == "faults"
