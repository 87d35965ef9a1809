"""The signer's rolling 24-hour spending window: it rolls, survives a restart, and stays small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyswarmclient.errors import ConfigError
from polyswarmclient.signer.policy import Spent
from polyswarmclient.signer.spending import BUCKET_SECONDS, WINDOW_SECONDS, SpendingWindow

T0 = 1_700_000_000.0


def test_spending_counts_for_24_hours_and_then_leaves_the_window(tmp_path: Path) -> None:
    """An amount counts for a whole day (never less) and is gone once a day has passed since its minute."""
    window = SpendingWindow(tmp_path / "spending.json")
    window.record(T0, 5, 7)
    window.record(T0 + 3600, 10, 0)
    assert window.spent(T0 + 3600) == Spent(nct=15, gas=7)
    assert window.spent(T0 + WINDOW_SECONDS - 1) == Spent(nct=15, gas=7)
    assert window.spent(T0 + WINDOW_SECONDS + BUCKET_SECONDS) == Spent(nct=10, gas=0)
    assert window.spent(T0 + 3600 + WINDOW_SECONDS + BUCKET_SECONDS) == Spent()


def test_the_window_survives_a_restart(tmp_path: Path) -> None:
    """A new SpendingWindow on the same file (a restarted signer) sees what the old one recorded."""
    path = tmp_path / "spending.json"
    SpendingWindow(path).record(T0, 40, 2)
    assert SpendingWindow(path).spent(T0 + 60) == Spent(nct=40, gas=2)


def test_the_file_does_not_grow_without_bound(tmp_path: Path) -> None:
    """A transaction every 7 minutes for two days keeps only the last day's buckets on disk."""
    path = tmp_path / "spending.json"
    window = SpendingWindow(path)
    for minute in range(0, 2 * 24 * 60, 7):
        window.record(T0 + minute * 60, 1, 0)
    stored = json.loads(path.read_text())["buckets"]
    assert len(stored) <= WINDOW_SECONDS // (7 * BUCKET_SECONDS) + 1
    assert window.spent(T0 + 2 * 24 * 60 * 60).nct == len(stored)  # one per bucket, all of them live


def test_a_damaged_window_stops_the_signer(tmp_path: Path) -> None:
    """A file that does not parse is a configuration error: the signer does not forget its spending silently."""
    path = tmp_path / "spending.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        SpendingWindow(path)
    path.write_text(json.dumps({"version": 1, "bucket_seconds": 60, "buckets": {"1": ["x", "0"]}}))
    with pytest.raises(ConfigError, match="damaged"):
        SpendingWindow(path)
