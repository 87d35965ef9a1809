"""The rate-limit gate: Retry-After honoured, one escalation per burst, gradual release, urgent first."""

from __future__ import annotations

import asyncio
import random

from polyswarmclient.transport.ratelimit import NORMAL, URGENT, RateGate


def gate(**kw: float) -> RateGate:
    return RateGate(kw.get("base", 2.0), kw.get("cap", 30.0), kw.get("spacing", 0.01), rng=random.Random(1))


async def test_retry_after_is_the_pause_and_later_429s_of_the_burst_do_not_escalate() -> None:
    """Many in-flight requests refused at once with Retry-After: 1 pause the client about 1 s, not 2, 3, 6..."""
    g = gate()
    pauses = [g.limited("0.2", "GET /x", "srv") for _ in range(20)]
    assert all(p <= 0.2 + 1e-9 for p in pauses)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await g.wait()
    assert 0.15 <= loop.time() - start < 0.5


async def test_a_longer_retry_after_in_the_same_burst_is_followed() -> None:
    """A later 429 asking for longer extends the pause to what it asks, capped."""
    g = gate(base=0.01, cap=0.3)
    g.limited("0.05", "GET /x", "srv")
    assert 0.25 < g.limited("10", "GET /x", "srv") <= 0.3 + 1e-9


async def test_without_retry_after_each_burst_escalates_once_and_a_success_resets() -> None:
    """Backoff steps once per burst (not per refused request), and starts over after a success."""
    g = gate(base=0.01, cap=10)
    first = g.limited(None, "GET /x", "srv")
    g.limited(None, "GET /x", "srv")  # same burst
    await asyncio.sleep(first + 0.01)
    second = g.limited(None, "GET /x", "srv")  # the next burst: one step up
    assert first <= 0.01 and 0.01 <= second <= 0.02
    await asyncio.sleep(second + 0.01)
    g.passed()
    assert g.limited(None, "GET /x", "srv") <= 0.01


async def test_waiting_requests_are_released_gradually_and_urgent_ones_first() -> None:
    """After the pause, one request goes per spacing step, reveals and settles before the rest."""
    g = gate(spacing=0.03)
    g.limited("0.05", "GET /x", "srv")
    loop = asyncio.get_running_loop()
    order: list[tuple[str, float]] = []

    async def request(name: str, priority: int) -> None:
        await g.wait(priority)
        order.append((name, loop.time()))

    await asyncio.gather(request("a", NORMAL), request("b", NORMAL), request("reveal", URGENT), request("c", NORMAL))
    assert order[0][0] == "reveal"
    gaps = [later - earlier for (_, earlier), (_, later) in zip(order, order[1:], strict=False)]
    assert all(gap >= 0.025 for gap in gaps)


async def test_a_cancelled_waiter_does_not_block_the_queue() -> None:
    """A request cancelled while it waits is skipped; the ones behind it still get their turn."""
    g = gate()
    g.limited("0.05", "GET /x", "srv")
    gone = asyncio.create_task(g.wait())
    kept = asyncio.create_task(g.wait())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.wait_for(kept, 1)
    assert not g.closed
