"""Nonces: never handed out twice, resynced from the chain, gaps filled first."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from polyswarmclient.client.nonces import NonceBook, NonceManager, allocate, resync_state


def test_allocate_takes_the_smallest_free_nonces() -> None:
    """Free nonces are handed out in order, skipping taken ones (gaps are filled first)."""
    assert allocate(3, frozenset(), 2) == [3, 4]
    assert allocate(3, frozenset({4}), 2) == [3, 5]
    assert allocate(3, frozenset({3, 4, 5}), 1) == [6]


def test_allocate_needs_a_positive_count() -> None:
    """Reserving zero nonces is a programming error."""
    with pytest.raises(ValueError):
        allocate(0, frozenset(), 0)


def test_resync_restarts_at_confirmed_count_and_counts_pool_and_in_flight_as_taken() -> None:
    """After a resync the sequence restarts at the mined count; pool and in-flight nonces are skipped."""
    start, taken = resync_state(5, [3, 5, 6, 9], [7])
    assert start == 5
    assert taken == {5, 6, 7, 9}
    assert allocate(start, taken, 3) == [8, 10, 11]


def test_resync_after_an_overshoot_fills_the_gap() -> None:
    """If our counter ran ahead (a lost tx at 4), the next reservation re-uses 4 so 5.. can be mined."""
    start, taken = resync_state(4, [5, 6], [])
    assert allocate(start, taken, 1) == [4]


class Source:
    def __init__(self, low: int = 0, pending: list[int] | None = None) -> None:
        self.low = low
        self.pending = pending or []
        self.reads = 0

    async def confirmed_nonce(self) -> int:
        self.reads += 1
        await asyncio.sleep(0)
        return self.low

    async def pending_nonces(self) -> list[int]:
        await asyncio.sleep(0)
        return list(self.pending)


async def test_concurrent_reservations_never_share_a_nonce() -> None:
    """Fifty actions reserving at once get fifty disjoint nonce sets, with one chain read."""
    source = Source(low=10)
    manager = NonceManager(source)
    results = await asyncio.gather(*(manager.reserve(1 + i % 3) for i in range(50)))
    flat = [n for r in results for n in r]
    assert len(flat) == len(set(flat))
    assert min(flat) == 10 and max(flat) == 10 + len(flat) - 1
    assert source.reads == 1


async def test_mark_resync_rereads_and_skips_in_flight() -> None:
    """After mark_resync the chain is read again, and nonces reserved but not yet posted stay taken."""
    source = Source(low=0)
    manager = NonceManager(source)
    first = await manager.reserve(2)  # 0, 1 in flight
    assert first == [0, 1]
    manager.mark_resync()
    source.low, source.pending = 0, []
    assert await manager.reserve(1) == [2]  # 0 and 1 are still in flight
    manager.release(first)
    manager.mark_resync()
    assert await manager.reserve(1) == [0]  # released without reaching the pool: gap is refilled
    assert source.reads == 3


async def test_failed_resync_is_retried_next_time() -> None:
    """If reading the chain fails, the next reservation tries again instead of guessing."""

    class Flaky(Source):
        async def confirmed_nonce(self) -> int:
            self.reads += 1
            if self.reads == 1:
                raise ConnectionError("down")
            return 4

    manager = NonceManager(Flaky())
    with pytest.raises(ConnectionError):
        await manager.reserve(1)
    assert manager.needs_resync
    assert await manager.reserve(1) == [4]


class Racy(Source):
    """A chain whose pool read lets another action (``meanwhile``) run between reading and answering."""

    def __init__(self, meanwhile: Callable[[NonceManager, Source], None]) -> None:
        super().__init__()
        self.meanwhile = meanwhile
        self.manager: NonceManager | None = None

    async def pending_nonces(self) -> list[int]:
        seen = list(self.pending)  # the pool as read, before the other action's step lands
        await asyncio.sleep(0)
        if self.manager is not None:
            manager, self.manager = self.manager, None
            self.meanwhile(manager, self)
        return seen


async def resync_racing(meanwhile: Callable[[NonceManager, Source], None]) -> NonceManager:
    """A manager that handed out nonce 0 and must resync, with ``meanwhile`` racing its first pool read."""
    source = Racy(meanwhile)
    manager = NonceManager(source)
    assert await manager.reserve(1) == [0]
    source.manager = manager
    manager.mark_resync()
    return manager


async def test_nonce_posted_while_a_resync_reads_the_pool_is_not_handed_out_again() -> None:
    """A nonce posted (and released) during a resync's chain reads is never reused by the next action."""

    def post_nonce_0(manager: NonceManager, chain: Source) -> None:
        chain.pending = [0]  # meanwhile the other action posts nonce 0 ...
        manager.release([0])  # ... and releases it

    manager = await resync_racing(post_nonce_0)
    assert await manager.reserve(1) == [1]


async def test_nonce_abandoned_while_a_resync_reads_the_pool_is_refilled() -> None:
    """A nonce given up during a resync's chain reads is handed out again, so no gap blocks later txs."""

    def abandon_nonce_0(manager: NonceManager, chain: Source) -> None:
        manager.mark_resync()  # the other action failed to post nonce 0 ...
        manager.release([0])  # ... and gave it up

    manager = await resync_racing(abandon_nonce_0)
    assert await manager.reserve(1) == [0]
    assert not manager.needs_resync


async def test_a_shared_book_gives_one_sequence_per_chain_id_across_clients() -> None:
    """Two communities' clients on one homechain (same chain id) draw from one sequence: no nonce twice."""
    first, second = Source(low=4), Source(low=4)
    book = NonceBook()
    a = book.sequence(1337, "0xAbC", first)
    b = book.sequence(1337, "0xabc", second)  # the same account, however it is spelled
    assert a is b
    results = await asyncio.gather(
        *(a.reserve(1, source=first) for _ in range(5)), *(b.reserve(2, source=second) for _ in range(5))
    )
    flat = [n for r in results for n in r]
    assert len(flat) == len(set(flat)) == 15
    assert sorted(flat) == list(range(4, 19))


async def test_a_shared_book_keeps_other_chain_ids_and_accounts_apart() -> None:
    """Sidechains with their own chain ids, and other accounts, keep sequences of their own."""
    book = NonceBook()
    home = book.sequence(1337, "0xabc", Source(low=7))
    side_a = book.sequence(1338, "0xabc", Source(low=0))
    side_b = book.sequence(2338, "0xabc", Source(low=3))
    other = book.sequence(1337, "0xdef", Source(low=0))
    assert len({id(m) for m in (home, side_a, side_b, other)}) == 4
    assert (await home.reserve(1), await side_a.reserve(1), await side_b.reserve(1), await other.reserve(1)) == (
        [7],
        [0],
        [3],
        [0],
    )


async def test_a_resync_reads_through_the_asking_clients_polyswarmd() -> None:
    """The community that reserves reads the chain through its own polyswarmd (another may be down)."""

    class Down(Source):
        async def confirmed_nonce(self) -> int:
            raise ConnectionError("community a is down")

    down, up = Down(), Source(low=9)
    manager = NonceBook().sequence(1337, "0xabc", down)
    with pytest.raises(ConnectionError):
        await manager.reserve(1)
    assert await manager.reserve(1, source=up) == [9]
    assert up.reads == 1
