"""Our book of bounties: the assertions we made (durable records plus their schedule), and what we saw.

It also holds the newest block seen on each chain, which drives the schedule.

The records live in the state directory (:class:`~.state.StateStore`) and, while a bounty is in play, in
memory; the :class:`~.schedule.Schedule` hands out their reveals and settles. The book keeps the three in
step, so the steps (:mod:`.steps`) and the engine never update one without the others. A record's first
write is awaited before its assertion goes out; later updates go to the store's writer thread without
waiting, and a finished bounty's record is deleted (:meth:`Book.close`), so the directory stays as small
as the work in play. It also remembers the GUIDs (and expirations) of bounties we have handled, so a
bounty delivered twice (or caught up after a reconnect) is handled once, until the chain's head passes the
point where the bounty could still be taken (:func:`~.schedule.still_open`): then the GUID is forgotten, and
the engine refuses the bounty by its expiration instead (:meth:`Book.past_taking`). So the memory holds the
bounties still in play, not every bounty of the last hours; ``seen_cache_size`` stays a hard bound.
"""

from __future__ import annotations

import heapq
import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from polyswarmclient.services.microengine.schedule import Schedule, still_open
from polyswarmclient.services.microengine.state import (
    ASSERTED,
    COMMITTING,
    FORFEITED,
    REVEALED,
    AssertionRecord,
    StateStore,
)

log = logging.getLogger("microengine")


class Book:
    """The engine's memory of its bounties, in memory and in the state directory."""

    def __init__(self, store: StateStore, seen_cache_size: int) -> None:
        self.store = store
        self.schedule = Schedule()
        #: The newest block seen per chain.
        self.heads: dict[str, int] = {}
        self._records: dict[str, AssertionRecord] = {}
        #: Records in the state directory for chains we do not run (left alone, never taken again).
        self._elsewhere: set[tuple[str, str]] = set()
        self._seen: OrderedDict[str, tuple[str, int]] = OrderedDict()  # GUID -> (its chain, its expiration)
        self._seen_cache_size = max(1, seen_cache_size)
        #: Per chain, a heap of (expiration, GUID) over ``_seen``: what the head forgets next is on top. An
        #: entry whose GUID left ``_seen`` otherwise (the size bound) stays until its expiration or a rebuild.
        self._expiring: dict[str, list[tuple[int, str]]] = {}

    # --- bounties seen ---------------------------------------------------------------------------

    def remember(self, chain: str, guid: str, expiration: int) -> None:
        """``guid`` on ``chain`` is handled; until the head passes its ``expiration``, it is not taken again."""
        self._seen[guid] = (chain, expiration)
        self._seen.move_to_end(guid)
        while len(self._seen) > self._seen_cache_size:  # a hard bound, whatever the expirations
            self._seen.popitem(last=False)
        heap = self._expiring.setdefault(chain, [])
        heapq.heappush(heap, (expiration, guid))
        if len(heap) > 2 * self._seen_cache_size:  # mostly GUIDs the size bound dropped: start again
            heap[:] = [(exp, g) for g, (c, exp) in self._seen.items() if c == chain]
            heapq.heapify(heap)

    def forget_expired(self, chain: str, head: int) -> int:
        """``chain`` is at block ``head``: forget the bounties seen there that can no longer be taken (the
        engine refuses them by their expiration, :meth:`past_taking`); how many were forgotten."""
        heap = self._expiring.get(chain)
        forgotten = 0
        while heap and not still_open(heap[0][0], head):
            expiration, guid = heapq.heappop(heap)
            if self._seen.get(guid) == (chain, expiration):
                del self._seen[guid]
                forgotten += 1
        return forgotten

    def past_taking(self, chain: str, expiration: int) -> bool:
        """A bounty expiring at ``expiration`` can no longer be taken at the newest block we know of on
        ``chain``: :meth:`forget_expired` may have forgotten it. Heads never go back, so once this is true
        it stays true, and a bounty forgotten is never taken again."""
        return not still_open(expiration, self.heads.get(chain, 0))

    def known(self, chain: str, guid: str) -> bool:
        """Handled already: seen and still open, in play, or in the state directory (every record there is
        either in play or was listed at start)."""
        return guid in self._seen or guid in self._records or (chain, guid) in self._elsewhere

    @property
    def remembered(self) -> int:
        """How many bounties seen are remembered (in play or still open; at most ``seen_cache_size``)."""
        return len(self._seen)

    def open_until(self, guid: str) -> int:
        """For a known bounty, until which block a catch-up after a restart might still have to take it: its
        expiration when only memory knows it, 0 when a record in the state directory stands for it (or when
        it is no longer remembered: forgotten once it could no longer be taken)."""
        if guid in self._records:
            return 0
        seen = self._seen.get(guid)
        return 0 if seen is None else seen[1]

    # --- our assertions ----------------------------------------------------------------------------

    def __contains__(self, guid: object) -> bool:
        return guid in self._records

    def active(self) -> bool:
        """Some assertion of ours still has a reveal or a settle to do."""
        return bool(self._records)

    def get(self, guid: str) -> AssertionRecord | None:
        return self._records.get(guid)

    def on_chain(self, chain: str) -> list[AssertionRecord]:
        return [r for r in self._records.values() if r.chain == chain]

    def unconfirmed(self, chain: str) -> list[AssertionRecord]:
        """Assertions on ``chain`` that may have been posted but whose index we never learned."""
        return [r for r in self.on_chain(chain) if r.index is None]

    def unrevealed(self, chain: str) -> list[AssertionRecord]:
        """Assertions on ``chain`` whose reveal we do not know to be on chain (the chain may know better)."""
        return [r for r in self.on_chain(chain) if r.status in (COMMITTING, ASSERTED, FORFEITED)]

    def resume(self, chains: tuple[str, ...]) -> list[AssertionRecord]:
        """Load the pending records of ``chains`` and put their reveals and settles back on the schedule."""
        pruned = self.store.prune()
        if pruned:
            log.debug("removed %d finished bounty record(s) from the state directory", pruned)
        resumed = []
        for record in self.store.pending():
            if record.chain not in chains:
                log.warning(
                    "bounty %s on chain %s has a pending %s in the state directory, but that chain is not in "
                    "--chains; add it to finish the bounty",
                    record.guid,
                    record.chain,
                    "reveal" if record.status in (COMMITTING, ASSERTED) else "settle",
                )
                self._elsewhere.add((record.chain, record.guid))
                continue
            self._records[record.guid] = record
            self.remember(record.chain, record.guid, record.expiration)
            self.schedule.track(
                record.guid,
                record.chain,
                record.deadlines,
                asserted=record.index is not None,
                revealed=record.status == REVEALED,
                reveal_closed=record.status == FORFEITED,
            )
            resumed.append(record)
        return resumed

    async def commit(self, record: AssertionRecord) -> AssertionRecord:
        """Write ``record`` durably; call it before the assertion transaction goes out (spec pitfall 13)."""
        record = await self.store.write_now(record)
        self._records[record.guid] = record
        return record

    def save(self, record: AssertionRecord, **changes: Any) -> AssertionRecord:
        """Update ``record`` in memory now and on disk soon (a crash before then is recovered from the chain)."""
        updated = replace(record, **changes)
        self._records[record.guid] = updated
        self.store.write_later(updated)
        return updated

    async def flush(self) -> None:
        """Wait until every update is on disk."""
        await self.store.flush()

    def confirm(self, guid: str, index: int, commitment: int, seen: str) -> bool:
        """Our assertion on ``guid`` is at ``index`` (``seen``: "by its event", "on chain", ...).

        Learns the index of a record that lacks it, when the commitment is ours; True when it did.
        """
        record = self._records.get(guid)
        if record is None or record.index is not None or commitment != record.commitment:
            return False
        self.asserted(self.save(record, index=index, status=ASSERTED))
        log.info("bounty %s: assertion %d confirmed %s", guid, index, seen)
        return True

    def asserted(self, record: AssertionRecord) -> None:
        """Its index is known: the reveal and the settle are scheduled."""
        self.schedule.track(record.guid, record.chain, record.deadlines, asserted=True)
        self.schedule.mark_asserted(record.guid)

    def revealed(self, record: AssertionRecord, seen: str) -> AssertionRecord:
        """Our reveal of ``record`` is on chain (``seen``: how we know): recorded, and the settle is next."""
        current = self._records.get(record.guid)
        if current is None:  # closed meanwhile: nothing left to record
            return record
        if current.status != REVEALED:
            current = self.save(current, status=REVEALED)
            log.info("bounty %s: the reveal is on chain (%s)", record.guid, seen)
        self.schedule.mark_revealed(record.guid)
        return current

    def set_windows(self, chain: str, reveal_window: int, vote_window: int) -> None:
        """The contract reads the windows when a step is checked, so pending deadlines move with them."""
        self.schedule.set_windows(chain, reveal_window, vote_window)
        for record in self.on_chain(chain):
            self.save(record, reveal_window=reveal_window, vote_window=vote_window)

    def close(self, record: AssertionRecord, status: str) -> None:
        """Nothing more to do for this bounty (``status``: settled or abandoned): out of memory, and its
        record deleted from the state directory (the bounty is closed on chain: no catch-up takes it again)."""
        self._records.pop(record.guid, None)
        log.debug("bounty %s: %s; its record is removed from the state directory", record.guid, status)
        self.store.remove_later(record.chain, record.guid)

    def drop(self, guid: str) -> AssertionRecord | None:
        """Out of memory only: the state directory keeps its status, so the next start tries again."""
        return self._records.pop(guid, None)
