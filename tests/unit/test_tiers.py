"""Every test file sits in a tier folder, so ``pytest -m <tier>`` can select it."""

from __future__ import annotations

from tests.conftest import TESTS, tier_of


def test_every_test_file_belongs_to_a_tier() -> None:
    """A test file outside tests/unit, integration, cli, devnet and e2e would carry no marker at all."""
    untiered = [str(path.relative_to(TESTS)) for path in TESTS.rglob("test_*.py") if tier_of(path) is None]
    assert untiered == []
