"""One nonce sequence per (chain, account) (spec §4.3).

Reservations are serialised by a lock, so concurrent actions never receive the same nonce. The
sequence is (re)synchronised from the node when first used and after :meth:`NonceManager.mark_resync`
(``nonce too low``, ``invalid transaction error``, a receipt timeout, or any reserved nonce that was
not posted):

* ``GET /pending`` first, then ``GET /nonce?ignore_pending`` (in that order, so a transaction mined
  between the two reads is counted by the second and never mistaken for a gap);
* the sequence restarts at the confirmed count ``low``;
* nonces that are *taken* are skipped: those in the node's pool, and those reserved by actions still
  in flight in this process when the resync began (one posted during the reads may have missed the
  pool read);
* a reservation gets the ``n`` smallest free nonces from there, so gaps left by failed or lost
  transactions are filled first and the transactions queued behind them can be mined.

Unlike polyswarm-client 2.13.3 this never waits for a gap to fill by itself: the free nonces need not
be consecutive, only increasing, and transactions are posted in that order.

The decision logic lives in the pure functions :func:`allocate` and :func:`resync_state`.

Several clients of one wallet (one per community, see docs/communities.md) share a :class:`NonceBook`: it
keeps one sequence per (chain id, account), so two communities whose chains have the same chain id (one
homechain) draw from the same sequence and never hand out the same nonce. Each reservation resyncs, when
it must, through the polyswarmd of the client that asks (:meth:`NonceManager.reserve` ``source=``), so a
community that is down does not stop the others from reading the chain.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from typing import Protocol

log = logging.getLogger(__name__)


def allocate(start: int, taken: AbstractSet[int], n: int) -> list[int]:
    """The ``n`` smallest nonces ``>= start`` that are not ``taken``."""
    if n < 1:
        raise ValueError("reserve at least one nonce")
    out: list[int] = []
    nonce = start
    while len(out) < n:
        if nonce not in taken:
            out.append(nonce)
        nonce += 1
    return out


def resync_state(low: int, pending: Iterable[int], in_flight: Iterable[int]) -> tuple[int, frozenset[int]]:
    """``(next nonce, taken nonces)`` after a resync with confirmed count ``low``."""
    if low < 0:
        raise ValueError("a confirmed nonce cannot be negative")
    taken = frozenset(p for p in pending if p >= low) | frozenset(p for p in in_flight if p >= low)
    return low, taken


class NonceSource(Protocol):
    """Where a resync reads the chain state (polyswarmd, or a fake in tests)."""

    async def confirmed_nonce(self) -> int:
        """``GET /nonce?ignore_pending``: the count of mined transactions."""
        ...

    async def pending_nonces(self) -> list[int]:
        """``GET /pending``: nonces of this account's transactions in the node's pool."""
        ...


class NonceManager:
    """Hands out nonces for one (chain, account)."""

    def __init__(self, source: NonceSource, *, label: str = "") -> None:
        self._source = source
        self._label = label
        self._lock = asyncio.Lock()
        self._needs_sync = True
        self._next = 0
        self._taken: frozenset[int] = frozenset()
        self._in_flight: set[int] = set()

    def __repr__(self) -> str:
        state = "needs resync" if self._needs_sync else f"next={self._next}"
        return f"NonceManager({self._label}, {state})"

    @property
    def needs_resync(self) -> bool:
        return self._needs_sync

    async def reserve(self, n: int, *, source: NonceSource | None = None) -> list[int]:
        """Reserve ``n`` increasing nonces. Call :meth:`release` once they are posted (or abandoned).

        A resync reads ``source`` when given (the asking client's polyswarmd), else the manager's own."""
        read = source or self._source
        async with self._lock:
            while self._needs_sync:
                # Snapshot before the reads: a nonce released (posted) while we await may have missed
                # the pool read, so it still counts as taken. A resync requested during the reads (a
                # nonce given up meanwhile) makes the loop read again, so that nonce is refilled.
                in_flight = set(self._in_flight)
                self._needs_sync = False
                try:
                    pending = await read.pending_nonces()
                    low = await read.confirmed_nonce()
                except BaseException:
                    self._needs_sync = True
                    raise
                self._next, self._taken = resync_state(low, pending, in_flight | self._in_flight)
                log.debug("%s: nonces resynced: next %d, taken %s", self._label, self._next, sorted(self._taken))
            nonces = allocate(self._next, self._taken, n)
            self._next = nonces[-1] + 1
            self._in_flight.update(nonces)
            return nonces

    def release(self, nonces: Iterable[int]) -> None:
        """The reserved nonces are now in the node's pool (or will never be used)."""
        self._in_flight.difference_update(nonces)

    def mark_resync(self) -> None:
        """Re-read the chain before the next reservation."""
        if not self._needs_sync:
            log.info("%s: nonce resync scheduled", self._label)
        self._needs_sync = True


class NonceBook:
    """One :class:`NonceManager` per (chain id, account), for every client that shares it.

    A client alone gets a book of its own; the clients of one wallet across communities share one, so a
    chain id reached through several polyswarmds still has a single sequence. Entries are few (chains times
    accounts) and live as long as the process.
    """

    def __init__(self) -> None:
        self._sequences: dict[tuple[int, str], NonceManager] = {}

    def __repr__(self) -> str:
        return f"NonceBook({len(self._sequences)} sequences)"

    def __len__(self) -> int:
        return len(self._sequences)

    def sequence(self, chain_id: int, account: str, source: NonceSource) -> NonceManager:
        """The sequence of ``account`` on chain ``chain_id``; made on first use, resyncing from ``source``."""
        key = (chain_id, account.lower())
        manager = self._sequences.get(key)
        if manager is None:
            manager = self._sequences[key] = NonceManager(source, label=f"chain {chain_id}/{account}")
        return manager
