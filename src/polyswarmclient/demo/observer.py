"""Reads the devnet's public event stream and turns it into :class:`BountyView` values and reports.

Nothing inside the engine is hooked: the reports show the values anyone on the network sees.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from polyswarmclient.client import PolyswarmClient
from polyswarmclient.demo.reports import BountySettled, Report, VerdictsRevealed
from polyswarmclient.demo.scoring import BountyView
from polyswarmclient.services.supervision import opened
from polyswarmclient.wire.events import Connected, Event, NewAssertion, NewBounty, NewVote, Revealed, SettledBounty

log = logging.getLogger("microengine.demo")


class Observer:
    """Keeps one :class:`BountyView` per bounty from the engine's and the arbiter's public events.

    :meth:`dispatch` is pure bookkeeping (it returns the reports an event completes); :meth:`run` is the
    shell that reads the streams and fetches each bounty's artifacts for the ground truth.
    """

    def __init__(
        self, engine: str, arbiter: str, truth_by_sha256: dict[str, bool], chains: Sequence[str] = ("side",)
    ) -> None:
        self.engine = engine.lower()
        self.arbiter = arbiter.lower()
        self.truth_by_sha256 = truth_by_sha256
        self.views: dict[str, BountyView] = {}
        self.connected: dict[str, asyncio.Event] = {chain: asyncio.Event() for chain in chains}
        self._settled = 0
        self._progress = asyncio.Event()

    def _update(self, guid: str, chain: str, **changes: Any) -> BountyView:
        view = replace(self.views.get(guid) or BountyView(guid, chain), **changes)
        self.views[guid] = view
        return view

    def dispatch(self, event: Event) -> list[Report]:
        match event:
            case Connected(chain=chain):
                self.connected.setdefault(chain, asyncio.Event()).set()
            case NewBounty(guid=guid):
                self.views.setdefault(guid, BountyView(guid, event.chain))
            case NewAssertion(bounty_guid=guid, author=author) if author.lower() == self.engine:
                self._update(guid, event.chain, mask=tuple(event.mask), bids=tuple(event.bid))
            case Revealed(bounty_guid=guid, author=author) if author.lower() == self.engine:
                view = self._update(guid, event.chain, verdicts=tuple(event.verdicts))
                if view.mask is not None:
                    return [VerdictsRevealed(view)]
            case NewVote(bounty_guid=guid, voter=voter) if voter.lower() == self.arbiter:
                self._update(guid, event.chain, votes=tuple(event.votes))
            case SettledBounty(bounty_guid=guid, settler=settler) if settler.lower() == self.engine:
                known = self.views.get(guid)
                if known is None or known.payout is None:
                    view = self._update(guid, event.chain, payout=event.payout)
                    self._settled += 1
                    self._progress.set()
                    return [BountySettled(view)]
            case _:
                pass
        return []

    async def run(self, client: PolyswarmClient, chains: Sequence[str], report: Callable[[Report], None]) -> None:
        async with asyncio.TaskGroup() as tg:
            for chain in chains:
                tg.create_task(self._read(client, chain, report, tg), name=f"demo-observer-{chain}")

    async def _read(
        self, client: PolyswarmClient, chain: str, report: Callable[[Report], None], tg: asyncio.TaskGroup
    ) -> None:
        async with opened(client.events(chain)) as stream:
            async for event in stream:
                try:
                    for item in self.dispatch(event):
                        report(item)
                    if isinstance(event, NewBounty):
                        tg.create_task(self._fetch_truth(client, event))
                except Exception:  # one odd event never stops the report
                    log.exception("demo: could not report %s event", type(event).__name__)

    async def _fetch_truth(self, client: PolyswarmClient, bounty: NewBounty) -> None:
        try:
            listing = await client.list_artifacts(bounty.uri)
            truth: list[bool | None] = []
            for index in range(len(listing)):
                content = await client.fetch_artifact(bounty.uri, index)
                digest = hashlib.sha256(content).hexdigest() if content is not None else ""
                truth.append(self.truth_by_sha256.get(digest))
        except Exception as exc:
            log.debug("demo: no ground truth for bounty %s: %s", bounty.guid, exc)
            return
        self._update(bounty.guid, bounty.chain, truth=tuple(truth))

    async def wait_connected(self, within: float) -> None:
        async with asyncio.timeout(within):
            for event in list(self.connected.values()):
                await event.wait()

    async def wait_settled(self, count: int, within: float) -> bool:
        """Wait until the engine's settlement of ``count`` bounties has been seen; False after ``within`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._settled < count:
            self._progress.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                return False
        return True
