"""One rate-limit gate for every request of a client.

When polyswarmd (or the gateway before it) answers HTTP 429, every request of the client waits, not
only the one refused. The rules, chosen so that a burst of 429s costs about its own length:

* **Retry-After is honoured** (capped at ``cap``); without it the pause is the next jittered backoff step.
* **One escalation per burst.** A 429 that arrives while the gate is already closed belongs to the same
  burst: it may lengthen the pause to what its Retry-After asks, but never doubles it. Requests that
  were in flight when the burst began therefore cannot push the pause up one after another.
* **Gradual release.** When the pause ends, waiting requests are let through one every ``spacing``
  seconds instead of all at once, so the queue does not cause the next burst itself.
* **Deadline-bound requests first.** A waiting request with a lower ``priority`` number goes first
  (:data:`URGENT` for reveals and settles, whose block windows close).
* The backoff starts from ``base`` again once a request succeeds.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random

from polyswarmclient.transport.backoff import Backoff

log = logging.getLogger(__name__)

#: Priority of requests whose transactions have a closing block window (reveal, settle).
URGENT = 0
#: Priority of everything else.
NORMAL = 1


class RateGate:
    """``await gate.wait(priority)`` before each request; report each answer with :meth:`limited` or
    :meth:`passed`."""

    def __init__(self, base: float, cap: float, spacing: float = 0.05, *, rng: random.Random | None = None) -> None:
        self._backoff = Backoff(base, cap, rng=rng)
        self._cap = cap
        self._spacing = spacing
        self._resume_at = 0.0
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._releaser: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return asyncio.get_running_loop().time() < self._resume_at or bool(self._queue)

    async def wait(self, priority: int = NORMAL) -> None:
        """Return at once while the gate is open and nobody queues; else queue and wait for a turn."""
        if not self._queue and (not self._resume_at or not self.closed):  # never limited, or no longer
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (priority, next(self._order), turn))
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.get_running_loop().create_task(self._release())
        try:
            await turn
        except asyncio.CancelledError:
            turn.cancel()  # the releaser skips it
            raise

    def limited(self, retry_after: str | None, what: str, where: object) -> float:
        """A 429 arrived: close the gate (or keep it closed). Returns the pause now in force, in seconds."""
        now = asyncio.get_running_loop().time()
        asked = _seconds(retry_after, self._cap)
        if now < self._resume_at:  # the same burst: never escalate, only follow a longer Retry-After
            if asked is not None and now + asked > self._resume_at:
                self._resume_at = now + asked
            return self._resume_at - now
        delay = asked if asked is not None else self._backoff.delay()
        self._resume_at = now + delay
        log.warning("rate limited (HTTP 429 on %s); pausing all requests to %s for %.1f s", what, where, delay)
        return delay

    def passed(self) -> None:
        """A request got a real answer: the next burst starts from the base delay again."""
        self._backoff.reset()

    async def _release(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            pause = self._resume_at - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            _, _, turn = heapq.heappop(self._queue)
            if turn.done():  # its waiter was cancelled
                continue
            turn.set_result(None)
            if self._queue:
                await asyncio.sleep(self._spacing)


def _seconds(retry_after: str | None, cap: float) -> float | None:
    """Retry-After as seconds (the delay-seconds form), capped; ``None`` when absent or unreadable."""
    if retry_after is None:
        return None
    try:
        value = float(retry_after)
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    if value != value or value < 0:  # NaN or negative
        return None
    return min(value, cap)
