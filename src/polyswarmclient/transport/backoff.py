"""Capped exponential backoff with jitter (pure; the caller does the sleeping).

``Backoff(base=1, cap=32)`` yields delays drawn from ``[d/2, d]`` where ``d = min(cap, base * 2**n)``
and ``n`` counts the delays handed out since the last :meth:`reset`. The jitter keeps many clients
that lost the same server from reconnecting in lock step; the lower bound keeps a delay from
collapsing to zero.
"""

from __future__ import annotations

import random

#: The jitter of every Backoff made without its own generator: seeding a new one per Backoff read the
#: system's entropy for each request.
_SHARED = random.Random()


class Backoff:
    def __init__(self, base: float = 1.0, cap: float = 32.0, *, rng: random.Random | None = None) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._rng = rng or _SHARED
        self._attempt = 0

    @property
    def attempts(self) -> int:
        """How many delays were handed out since the last reset."""
        return self._attempt

    def ceiling(self) -> float:
        """The un-jittered delay the next call to :meth:`delay` is drawn below."""
        # Cap the exponent first so a long outage cannot overflow the float.
        return float(min(self.cap, self.base * 2.0 ** min(self._attempt, 64)))

    def delay(self) -> float:
        """The next delay in seconds; each call doubles the ceiling until it reaches ``cap``."""
        ceiling = self.ceiling()
        self._attempt += 1
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        """Start again from ``base`` (after a success)."""
        self._attempt = 0
