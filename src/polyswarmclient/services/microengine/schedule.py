"""Block deadlines of one bounty, and the schedule of reveals and settles (pure; no I/O, no clock).

With ``E`` the expiration block, ``R`` the reveal window and ``V`` the arbiter vote window (spec §5.2):

* an assertion must be **mined before E**; we leave :data:`TX_BLOCKS` blocks for approve + postAssertion;
* a reveal is sent on the first block **after** E and must be mined in ``[E, E+R)``;
* a settle is allowed at ``block >= E+R+V``, or earlier once quorum is reached.

Block numbers repeat and skip (spec pitfall 22), so every test here is ``<``/``>=``, never ``==``, and
every step is handed out once until the engine reports how it went.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

#: Blocks we leave for the approve and postAssertion transactions to be mined before expiration.
TX_BLOCKS = 2
#: Attempts per reveal or settle before giving up (transient errors only; a revert is final).
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class Deadlines:
    expiration: int
    reveal_window: int
    vote_window: int

    @property
    def reveal_end(self) -> int:
        """First block at which a reveal can no longer be mined (``E+R``)."""
        return self.expiration + self.reveal_window

    @property
    def settle_from(self) -> int:
        """First block at which anyone may settle without quorum (``E+R+V``)."""
        return self.expiration + self.reveal_window + self.vote_window

    def reveal_due(self, block: int) -> bool:
        return self.expiration < block < self.reveal_end

    def reveal_closed(self, block: int) -> bool:
        return block >= self.reveal_end

    def settle_due(self, block: int, quorum: bool = False) -> bool:
        return quorum or block >= self.settle_from


def assertion_blocks_left(expiration: int, block: int) -> int:
    """Whole blocks left for scanning once :data:`TX_BLOCKS` are kept for the transactions."""
    return expiration - block - TX_BLOCKS


def still_open(expiration: int, block: int) -> bool:
    """Can an assertion sent after a scan at ``block`` still be mined before ``expiration``?"""
    return assertion_blocks_left(expiration, block) > 0


def scan_timeout(expiration: int, block: int, block_time: float, cap: float | None) -> float | None:
    """Seconds the scan may take, or ``None`` when it is too late to assert at all.

    ``block_time`` is the assumed seconds per block; ``cap`` is ``--scan-timeout``.
    """
    left = assertion_blocks_left(expiration, block)
    if left <= 0:
        return None
    budget = left * block_time
    if cap is not None and cap > 0:
        budget = min(budget, cap)
    return budget


Kind = Literal["reveal", "settle", "forfeit", "abandon"]


@dataclass(frozen=True)
class Action:
    """What the engine should do now. ``forfeit`` and ``abandon`` are only reported (logged, recorded)."""

    kind: Kind
    guid: str
    chain: str


@dataclass
class _Entry:
    guid: str
    chain: str
    deadlines: Deadlines
    asserted: bool  # the assertion index is known
    revealed: bool = False
    reveal_closed: bool = False
    settled: bool = False
    quorum: bool = False
    busy: set[str] = field(default_factory=set)
    attempts: dict[str, int] = field(default_factory=dict)

    def reveal_resolved(self) -> bool:
        return self.revealed or self.reveal_closed


class Schedule:
    """Pending reveals and settles of the bounties we asserted on, driven by block numbers.

    The engine feeds it ``on_block``/``on_quorum``/``on_deprecated`` and gets back :class:`Action` values;
    it reports each step with :meth:`done` or :meth:`failed`. A step is never handed out twice at once.
    Cost per block is linear in the bounties still pending, which stays small (they leave once settled).
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __contains__(self, guid: object) -> bool:
        return guid in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def deadlines(self, guid: str) -> Deadlines | None:
        entry = self._entries.get(guid)
        return entry.deadlines if entry else None

    def track(
        self,
        guid: str,
        chain: str,
        deadlines: Deadlines,
        *,
        asserted: bool = True,
        revealed: bool = False,
        reveal_closed: bool = False,
    ) -> None:
        """Start (or resume) following a bounty we asserted on. Idempotent: re-tracking keeps progress."""
        if guid in self._entries:
            entry = self._entries[guid]
            entry.asserted = entry.asserted or asserted
            entry.revealed = entry.revealed or revealed
            entry.reveal_closed = entry.reveal_closed or reveal_closed
            return
        self._entries[guid] = _Entry(guid, chain, deadlines, asserted, revealed=revealed, reveal_closed=reveal_closed)

    def set_windows(self, chain: str, reveal_window: int, vote_window: int) -> None:
        """``WindowsUpdated``: the contract reads the current windows, so every pending deadline moves."""
        for entry in self._entries.values():
            if entry.chain == chain:
                entry.deadlines = Deadlines(entry.deadlines.expiration, reveal_window, vote_window)

    def mark_asserted(self, guid: str) -> None:
        entry = self._entries.get(guid)
        if entry:
            entry.asserted = True

    def mark_revealed(self, guid: str) -> None:
        """The chain shows our reveal (we never heard back from it, or a restart lost the news)."""
        entry = self._entries.get(guid)
        if entry:
            entry.revealed = True

    def forget(self, guid: str) -> None:
        self._entries.pop(guid, None)

    def _take(self, entry: _Entry, kind: Kind) -> Action:
        entry.busy.add(kind)
        return Action(kind, entry.guid, entry.chain)

    def _settle_if_allowed(self, entry: _Entry, block: int | None) -> list[Action]:
        if entry.settled or "settle" in entry.busy or not entry.asserted or not entry.reveal_resolved():
            return []
        if entry.quorum or (block is not None and entry.deadlines.settle_due(block)):
            return [self._take(entry, "settle")]
        return []

    def on_block(self, chain: str, block: int) -> list[Action]:
        """Steps that became due at ``block`` on ``chain``, in guid-insertion order."""
        actions: list[Action] = []
        for entry in list(self._entries.values()):
            if entry.chain != chain:
                continue
            d = entry.deadlines
            if not entry.asserted:
                # We never learnt the assertion index; once expiration passes there is nothing to reveal.
                if block > d.expiration:
                    actions.append(Action("abandon", entry.guid, entry.chain))
                    del self._entries[entry.guid]
                continue
            if not entry.reveal_resolved() and "reveal" not in entry.busy:
                if d.reveal_closed(block):
                    entry.reveal_closed = True
                    actions.append(Action("forfeit", entry.guid, entry.chain))
                elif d.reveal_due(block):
                    actions.append(self._take(entry, "reveal"))
            actions.extend(self._settle_if_allowed(entry, block))
        return actions

    def on_quorum(self, guid: str) -> list[Action]:
        """Quorum lets non-arbiters settle early (spec §5.2 round 3)."""
        entry = self._entries.get(guid)
        if entry is None:
            return []
        entry.quorum = True
        return self._settle_if_allowed(entry, None)

    def on_deprecated(self, blocks: dict[str, int]) -> list[Action]:
        """Settle every tracked bounty the contract would already let us settle (``blocks``: head per chain).

        The rest stay scheduled (and durable): settling them now would only revert.
        """
        actions: list[Action] = []
        for entry in list(self._entries.values()):
            head = blocks.get(entry.chain)
            if head is not None and entry.deadlines.reveal_closed(head):
                entry.reveal_closed = entry.reveal_closed or not entry.revealed
            actions.extend(self._settle_if_allowed(entry, head))
        return actions

    def done(self, guid: str, kind: Kind) -> None:
        """``kind`` succeeded. A settled bounty leaves the schedule."""
        entry = self._entries.get(guid)
        if entry is None:
            return
        entry.busy.discard(kind)
        if kind == "reveal":
            entry.revealed = True
        elif kind == "settle":
            entry.settled = True
            del self._entries[guid]

    def failed(self, guid: str, kind: Kind, *, final: bool = False) -> bool:
        """``kind`` failed. Returns True when it will be retried on a later block, False when given up.

        A given-up reveal counts as forfeited; a given-up settle removes the bounty.
        """
        entry = self._entries.get(guid)
        if entry is None:
            return False
        entry.busy.discard(kind)
        entry.attempts[kind] = entry.attempts.get(kind, 0) + 1
        if final or entry.attempts[kind] >= MAX_ATTEMPTS:
            if kind == "reveal":
                entry.reveal_closed = True
            elif kind == "settle":
                del self._entries[guid]
            return False
        return True
