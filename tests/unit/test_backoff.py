"""Reconnect and retry delays: exponential, capped, jittered, and reset after success."""

from __future__ import annotations

import random

import pytest

from polyswarmclient.transport.backoff import Backoff


def test_delays_double_until_the_cap() -> None:
    """Ceilings go base, 2*base, 4*base... and stop at the cap (32 s for the event stream)."""
    backoff = Backoff(1.0, 32.0, rng=random.Random(1))
    ceilings = []
    for _ in range(8):
        ceilings.append(backoff.ceiling())
        backoff.delay()
    assert ceilings == [1, 2, 4, 8, 16, 32, 32, 32]


def test_delays_are_jittered_within_half_to_full_ceiling() -> None:
    """Each delay lies in [ceiling/2, ceiling] and they are not all identical (clients do not sync up)."""
    backoff = Backoff(1.0, 32.0, rng=random.Random(7))
    delays = []
    for _ in range(200):
        backoff.reset()
        for _ in range(5):
            ceiling = backoff.ceiling()
            delay = backoff.delay()
            assert ceiling / 2 <= delay <= ceiling
        delays.append(delay)
    assert len(set(delays)) > 100


def test_reset_starts_again_from_base() -> None:
    """After a successful connection the next delay is short again."""
    backoff = Backoff(0.5, 8.0, rng=random.Random(2))
    for _ in range(10):
        backoff.delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.delay() <= 0.5


def test_a_long_outage_never_overflows() -> None:
    """Thousands of failures keep returning the cap instead of raising OverflowError."""
    backoff = Backoff(1.0, 32.0)
    for _ in range(5000):
        assert backoff.delay() <= 32.0


def test_nonsense_parameters_are_refused() -> None:
    """A zero base or a cap below the base is a programming error."""
    with pytest.raises(ValueError):
        Backoff(0, 1)
    with pytest.raises(ValueError):
        Backoff(2, 1)
