"""What a restarted engine does first: new bounties before old chores.

A restart has work from its earlier run (settles and reveals falling due) and cannot know which bounties
were posted while it was down. When it may be killed again soon after (a crash loop, an impatient
orchestrator), the order decides what is lost, so on each chain :class:`StartupHold` holds settles and
reveals until

1. the first catch-up has listed the open bounties (:meth:`listed`), and
2. every assertion taken or resent meanwhile has gone out or failed (:meth:`started` / :meth:`finished`):
   a bounty's assertion is due at its expiration, sooner than any reveal with time to spare.

The engine never holds a reveal whose window is half gone (it asks :meth:`take`), and releases
everything after a grace period whatever happened. Pure bookkeeping: the engine runs what comes back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from polyswarmclient.services.microengine.schedule import Action


class StartupHold:
    """Per chain: steps held since start, until the chain is listed and its start-up assertions are done."""

    def __init__(self) -> None:
        self._listed: dict[str, asyncio.Event] = {}
        self._released: dict[str, asyncio.Event] = {}
        self._work: dict[str, set[str]] = {}  # per held chain: GUIDs of start-up assertions not yet done
        self._deferred: list[Action] = []

    def begin(self, chains: tuple[str, ...]) -> None:
        """Hold ``chains`` (called once, at start, when there is work from an earlier run)."""
        for chain in chains:
            self._listed[chain] = asyncio.Event()
            self._released[chain] = asyncio.Event()
            self._work[chain] = set()

    def holding(self, chain: str) -> bool:
        return chain in self._released and not self._released[chain].is_set()

    def defer(self, action: Action) -> None:
        self._deferred.append(action)

    def take(self, chain: str, which: Callable[[Action], bool]) -> list[Action]:
        """Hand back the held steps on ``chain`` that ``which`` selects (reveals that cannot wait)."""
        out = [action for action in self._deferred if action.chain == chain and which(action)]
        if out:
            self._deferred = [action for action in self._deferred if action not in out]
        return out

    def started(self, chain: str, guid: str) -> None:
        """An assertion taken (or resent) on a held chain: held steps wait for it too."""
        if self.holding(chain):
            self._work[chain].add(guid)

    def finished(self, chain: str, guid: str) -> list[Action]:
        """That assertion went out or failed; returns the steps released by it."""
        work = self._work.get(chain)
        if work is None or guid not in work:
            return []
        work.discard(guid)
        return self._release_if_done(chain)

    def listed(self, chain: str) -> list[Action]:
        """The first catch-up on ``chain`` listed the open bounties; returns the steps released by it."""
        if chain not in self._listed:
            return []
        self._listed[chain].set()
        return self._release_if_done(chain)

    async def wait_listed(self, chain: str) -> None:
        """Until ``chain`` was listed (at once on a chain never held)."""
        if (listed := self._listed.get(chain)) is not None:
            await listed.wait()

    async def released_within(self, chain: str, seconds: float) -> bool:
        """Wait until ``chain`` is released, at most ``seconds``; False on timeout."""
        released = self._released.get(chain)
        if released is None:
            return True
        try:
            await asyncio.wait_for(released.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def release(self, chain: str) -> list[Action]:
        """Stop holding ``chain`` now; returns its held steps."""
        if not self.holding(chain):
            return []
        self._listed[chain].set()
        self._released[chain].set()
        self._work[chain].clear()
        return self.take(chain, lambda _: True)

    def _release_if_done(self, chain: str) -> list[Action]:
        if self.holding(chain) and self._listed[chain].is_set() and not self._work[chain]:
            return self.release(chain)
        return []
