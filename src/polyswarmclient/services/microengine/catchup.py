"""Catching up on what the event stream may have hidden: on the first connect, after every reconnect.

One pass, per chain: refresh the bounty parameters, page ``GET /bounties`` for bounties still open that
we never saw and hand each to the engine as an :class:`~.planning.OpenBounty`, then look on chain for our
own assertions whose index we never learned, learn the head and check our bounties for quorum. A pass
that fails, or could not read some bounty, runs again after a jittered, doubling delay: a bounty it
misses has no other way back to us. Pages only grow at the end, so a pass starts from the last page the
previous one read in full, and a long-lived engine pages the history once, not on every reconnect.

That cursor is kept in the state directory too, so a restart does not read every bounty of the history
again: the stored page is the first one holding a bounty that a restarted engine might still have to take
(one that could not be read, or that was still open and has no record in the state directory). It moves
on as those bounties expire, so a restart re-reads only the pages of the bounties still open.

The GUIDs a pass found already expired are remembered, with their page, so the next pass does not read
them again; only the pages a later pass reads again need them (from the last page read in full on), so
those of earlier pages are forgotten once a pass has moved past them.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Protocol

from polyswarmclient.services.microengine.book import Book
from polyswarmclient.services.microengine.config import EngineClient
from polyswarmclient.services.microengine.planning import OpenBounty
from polyswarmclient.services.microengine.schedule import still_open
from polyswarmclient.services.microengine.steps import Steps
from polyswarmclient.services.supervision import Supervisor
from polyswarmclient.transport.backoff import Backoff

log = logging.getLogger("microengine")

#: Delays (seconds, jittered and doubling up to the cap) before a failed catch-up runs again.
CATCH_UP_RETRY_BASE = 1.0
CATCH_UP_RETRY_CAP = 30.0
#: Bounties a catch-up reads at once.
CONCURRENT_READS = 8


class Host(Protocol):
    """Where a catch-up reports what it finds (the engine)."""

    def on_block(self, chain: str, number: int) -> None: ...
    def on_quorum(self, guid: str) -> None: ...
    def take(self, bounty: OpenBounty) -> None: ...
    def listed(self, chain: str) -> None: ...


class CatchUp:
    """Catch-up passes per chain, one at a time; a reconnect during a pass asks for one more."""

    def __init__(self, client: EngineClient, book: Book, steps: Steps, host: Host, cache_size: int) -> None:
        self.client = client
        self.book = book
        self.steps = steps
        self.host = host
        self.running: set[str] = set()
        self._again: set[str] = set()
        self._page: dict[str, int] = {}  # per chain: the last GET /bounties page fully read
        self._stored: dict[str, int] = {}  # per chain: the page a restart starts from (in the state directory)
        #: Per chain, from the stored page on: page -> the block until which one of its bounties may still be
        #: open for us without a record (None: one could not be read).
        self._open_until: dict[str, dict[int, int | None]] = {}
        #: Per chain: GUID -> page, of the bounties found already expired on the pages a pass reads again.
        self._closed: dict[str, dict[str, int]] = {}
        self._closed_cache_size = max(1, cache_size * 5)  # per chain; a hard bound, whatever the pages hold

    def start(self, chain: str, supervisor: Supervisor) -> None:
        if chain in self.running:
            self._again.add(chain)  # reconnected again meanwhile: run once more when done
            return
        self.running.add(chain)
        supervisor.spawn(partial(self._until_done, chain, supervisor), f"catch-up on {chain}")

    async def _until_done(self, chain: str, supervisor: Supervisor) -> None:
        """Run passes until one succeeds (and none was asked for meanwhile), or the engine stops."""
        backoff = Backoff(CATCH_UP_RETRY_BASE, CATCH_UP_RETRY_CAP)
        try:
            while True:
                self._again.discard(chain)
                try:
                    unread = await self.once(chain)
                except Exception as exc:
                    if supervisor.is_fatal(exc):
                        raise
                    problem = f"failed ({exc})"
                else:
                    problem = f"could not read {unread} bounty(ies)" if unread else ""
                if not problem:
                    backoff.reset()
                else:
                    delay = backoff.delay()
                    log.warning("catch-up on %s %s; trying again in %.1f s", chain, problem, delay)
                    if await supervisor.wait_for_stop(delay):
                        return
                    self._again.add(chain)
                if chain not in self._again:
                    return
        finally:
            self.running.discard(chain)

    async def once(self, chain: str) -> int:
        """One pass; returns how many bounties could not be read (so the pass runs again).

        The open bounties are listed first: until then the engine holds its due steps (see
        :meth:`Host.listed`), so an engine that is restarted again and again still learns of every bounty
        posted while it was down before it spends its time on transactions.
        """
        try:
            await self.client.bounty_parameters(chain, refresh=True)
            head = await self.client.block_number(chain)
            found = unread = 0
            if chain not in self._page:
                self._page[chain] = self._stored[chain] = self.book.store.load_cursor(chain)
            start = self._page[chain]  # read again: it may have grown
            pages = self._open_until.setdefault(chain, {})
            async for page, guids in self.client.iter_bounty_pages(chain, start_page=start):
                found_here, unread_here, pages[page] = await self._open_among(chain, page, guids, head)
                found, unread = found + found_here, unread + unread_here
                if not unread:
                    self._page[chain] = page
            self._store_cursor(chain, max(head, self.book.heads.get(chain, 0)))
            self._forget_closed(chain)
        finally:
            self.host.listed(chain)
        await self.steps.recover_indexes(chain)
        await self.refresh(chain)
        log.info("catch-up on %s done: %d open bounty(ies) had been missed", chain, found)
        return unread

    def _store_cursor(self, chain: str, head: int) -> None:
        """Move the stored page past the pages none of whose bounties a restart would still take."""
        pages = self._open_until[chain]
        page = self._stored[chain]
        last = self._page[chain]  # the last page read in full may still grow: it is always read again
        while page < last and page in pages and (until := pages[page]) is not None and not still_open(until, head):
            del pages[page]
            page += 1
        if page != self._stored[chain]:
            self._stored[chain] = page
            self.book.store.save_cursor_later(chain, page)

    def _forget_closed(self, chain: str) -> None:
        """Forget the expired GUIDs of the pages no later pass reads (those before the last page read in full)."""
        closed = self._closed.get(chain)
        first = self._page[chain]
        if closed and any(page < first for page in closed.values()):
            self._closed[chain] = {guid: page for guid, page in closed.items() if page >= first}

    @property
    def remembered_closed(self) -> int:
        """How many GUIDs found already expired are remembered, all chains together."""
        return sum(len(closed) for closed in self._closed.values())

    async def after_restart(self, chains: tuple[str, ...]) -> None:
        """Learn each head and which stored bounties reached quorum; what is due then runs."""
        for chain in chains:
            await self.refresh(chain)

    async def refresh(self, chain: str) -> None:
        """Learn ``chain``'s head and which of our bounties reached quorum (also run on start)."""
        self.host.on_block(chain, await self.client.block_number(chain))
        for record in self.book.on_chain(chain):
            try:
                bounty = await self.client.get_bounty(record.guid, chain)
            except Exception as exc:
                log.debug("bounty %s: could not refresh its status: %s", record.guid, exc)
                continue
            if bounty.quorum_reached:
                self.host.on_quorum(record.guid)

    async def _open_among(self, chain: str, page: int, guids: list[str], head: int) -> tuple[int, int, int | None]:
        """Hand the still-open bounties among ``guids`` (on ``page``) to the engine; returns (found, could not be
        read, and until which block a restart might still have to take one of them: None when one could not be
        read).

        Bounties are read :data:`CONCURRENT_READS` at a time, newest first: the newest are the likeliest
        still open.
        """
        found = unread = until = 0
        todo = []
        closed = self._closed.setdefault(chain, {})
        for guid in reversed(guids):
            if guid in closed:
                continue
            if self.book.known(chain, guid):
                until = max(until, self.book.open_until(guid))
            else:
                todo.append(guid)
        for start in range(0, len(todo), CONCURRENT_READS):
            batch = todo[start : start + CONCURRENT_READS]
            answers = await asyncio.gather(
                *(self.client.get_bounty(guid, chain) for guid in batch), return_exceptions=True
            )
            for guid, bounty in zip(batch, answers, strict=True):
                if isinstance(bounty, BaseException):
                    if not isinstance(bounty, Exception):
                        raise bounty  # cancellation and the like
                    log.debug("catch-up: bounty %s could not be read: %s", guid, bounty)
                    unread += 1
                    continue
                head = max(head, self.book.heads.get(chain, 0))
                if not still_open(bounty.expiration, head):
                    closed[guid] = page
                    while len(closed) > self._closed_cache_size:
                        del closed[next(iter(closed))]
                    continue
                found += 1
                until = max(until, bounty.expiration)
                self.host.take(OpenBounty.listed(bounty, chain, head))
        return found, unread, None if unread else until
