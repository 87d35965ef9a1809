"""The steps after an assertion: reveal, settle, forfeit, and abandon an assertion that was never mined.

The schedule (:mod:`.schedule`) decides when each step is due; a step here sends its transaction, tells
the schedule how it went (done, retry on the next block, or given up), and records the outcome in the
book and the state directory. A reverted transaction is final. In ``--testing`` mode a failed
transaction is fatal (reference §2.13), and a refused API key always is.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from polyswarmclient.errors import TransactionFailed
from polyswarmclient.services.microengine.book import Book
from polyswarmclient.services.microengine.config import EngineClient, EngineStats
from polyswarmclient.services.microengine.planning import verdict_text
from polyswarmclient.services.microengine.quota import TestingQuota
from polyswarmclient.services.microengine.schedule import Kind
from polyswarmclient.services.microengine.state import ABANDONED, FORFEITED, REVEALED, SETTLED, AssertionRecord
from polyswarmclient.services.supervision import FatalErrors

log = logging.getLogger("microengine")

#: Longest reveal metadata polyswarmd accepts (spec §2.5).
MAX_REVEAL_METADATA = 1024
#: Seconds we wait for ``POST /bounties/metadata`` before revealing with the raw string instead.
METADATA_UPLOAD_TIMEOUT = 10.0


class Failure(NamedTuple):
    """How a step's transaction failed: ``reverted`` (final), or ``retry`` on a later block."""

    error: Exception
    reverted: bool
    retry: bool


@dataclass(eq=False)
class Steps:
    """Reveal, settle, forfeit and abandon, for the assertions in ``book``."""

    client: EngineClient
    book: Book
    stats: EngineStats
    quota: TestingQuota
    is_fatal: FatalErrors
    #: Off once polyswarmd showed it has no metadata route: reveal inline without asking again.
    _metadata_upload: bool = field(default=True, init=False)

    async def _attempt(self, guid: str, kind: Kind, send: Callable[[], Awaitable[None]]) -> Failure | None:
        """Send one step's transaction and tell the schedule how it went; None when it went through."""
        try:
            await send()
        except TransactionFailed as exc:
            self.book.schedule.failed(guid, kind, final=True)
            return Failure(exc, reverted=True, retry=False)
        except Exception as exc:
            return Failure(exc, reverted=False, retry=self.book.schedule.failed(guid, kind))
        self.book.schedule.done(guid, kind)
        return None

    def _raise_if_fatal(self, failure: Failure) -> None:
        if self.is_fatal(failure.error):
            raise failure.error

    # --- reveal ----------------------------------------------------------------------------------

    async def reveal(self, guid: str) -> None:
        record = self.book.get(guid)
        if record is None or record.index is None:
            self.book.schedule.failed(guid, "reveal", final=True)
            return
        metadata = await self._reveal_metadata(record)
        reveal = partial(
            self.client.reveal_assertion,
            guid,
            record.index,
            record.nonce,
            list(record.verdicts),
            metadata,
            chain=record.chain,
        )
        failure = await self._attempt(guid, "reveal", reveal)
        if failure is None:
            self.book.save(record, status=REVEALED)
            self.stats.reveals += 1
            log.info("bounty %s: revealed verdicts=%s", guid, verdict_text(record.mask, record.verdicts))
            return
        if failure.reverted:
            self._forfeited(record, f"the reveal transaction reverted ({failure.error})")
        elif failure.retry:
            log.warning("bounty %s: reveal failed (%s); retrying on the next block", guid, failure.error)
        else:
            self._forfeited(record, f"the reveal kept failing ({failure.error})")
        self._raise_if_fatal(failure)

    async def _reveal_metadata(self, record: AssertionRecord) -> str:
        text = record.metadata
        if self._metadata_upload and text.startswith("["):
            try:
                async with asyncio.timeout(METADATA_UPLOAD_TIMEOUT):
                    return await self.client.post_metadata(json.loads(text))
            except Exception as exc:  # spec pitfall 26: reveal with the raw string rather than nothing
                log.info("bounty %s: metadata upload failed (%s); revealing the metadata inline", record.guid, exc)
                if getattr(exc, "status", None) in (404, 405):
                    self._metadata_upload = False
        if len(text) > MAX_REVEAL_METADATA:
            log.warning("bounty %s: reveal metadata cut to %d characters", record.guid, MAX_REVEAL_METADATA)
            text = text[:MAX_REVEAL_METADATA]
        return text

    def forfeit(self, guid: str) -> None:
        """The reveal window closed before we revealed."""
        record = self.book.get(guid)
        if record is not None:
            d = record.deadlines
            self._forfeited(record, f"the reveal window [{d.expiration}, {d.reveal_end}) closed first")

    def _forfeited(self, record: AssertionRecord, why: str) -> None:
        self.stats.forfeits += 1
        self.book.save(record, status=FORFEITED)
        log.error("bounty %s: reveal forfeited: %s; the bid is lost, settling anyway", record.guid, why)

    # --- settle ----------------------------------------------------------------------------------

    async def settle(self, guid: str) -> None:
        record = self.book.get(guid)
        if record is None:
            self.book.schedule.failed(guid, "settle", final=True)
            return
        failure = await self._attempt(guid, "settle", partial(self.client.settle, guid, chain=record.chain))
        if failure is None:
            self.stats.settles += 1
            self._settled(record, None)
            return
        if failure.reverted:
            self._settled(
                record, f"the settle transaction reverted ({failure.error}); it may have been settled already"
            )
        elif failure.retry:
            log.warning("bounty %s: settle failed (%s); retrying on the next block", guid, failure.error)
        else:  # the state directory keeps its status, so the next start tries again
            log.error("bounty %s: settle kept failing (%s); giving up until the next start", guid, failure.error)
            self.book.drop(guid)
            self.quota.finished(guid)
        self._raise_if_fatal(failure)

    def _settled(self, record: AssertionRecord, problem: str | None) -> None:
        self.book.close(record, SETTLED)
        if problem:
            log.warning("bounty %s: %s", record.guid, problem)
        else:
            log.info("bounty %s: settled", record.guid)
        self.quota.finished(record.guid)

    # --- an assertion we never heard back about ----------------------------------------------------

    async def abandon_unless_mined(self, guid: str) -> bool:
        """Expiration passed and we never learned our assertion's index: ask the chain before giving up.

        Posting may have failed only on our side: when the connection drops after the transaction went
        out, its receipt and (while the stream is down) its event are both lost, yet it was mined. True
        when it was: its reveal may be due at once.
        """
        record = self.book.get(guid)
        if record is None:
            self.quota.finished(guid)
            return False
        if record.index is not None:
            return True
        try:
            mined = await self.find_own_assertion(record)
        except Exception as exc:
            if self.book.heads.get(record.chain, 0) + 1 < record.deadlines.reveal_end:
                log.warning(
                    "bounty %s: could not check whether our assertion was mined (%s); trying again next block",
                    guid,
                    exc,
                )
                self.book.schedule.track(guid, record.chain, record.deadlines, asserted=False)
                return False
            mined = False
        if not mined:
            self.book.close(record, ABANDONED)
            log.error(
                "bounty %s: the assertion was never confirmed before expiration %d; nothing to reveal",
                guid,
                record.expiration,
            )
            self.quota.finished(guid)
        return mined

    async def find_own_assertion(self, record: AssertionRecord) -> bool:
        """Look on chain for the assertion behind ``record``; learn its index if it is there."""
        for assertion in await self.client.list_assertions(record.guid, record.chain):
            if assertion.author.lower() == record.address.lower() and assertion.commitment == record.commitment:
                self.book.confirm(record.guid, assertion.index, assertion.commitment, "on chain")
                return True
        return False

    async def recover_indexes(self, chain: str) -> None:
        """Find on chain any assertion whose index we never learned (we died while it was being mined,
        or its receipt and its event were both lost while the connection was down)."""
        for record in self.book.unconfirmed(chain):
            try:
                await self.find_own_assertion(record)
            except Exception as exc:
                log.warning("bounty %s: could not look for our assertion: %s", record.guid, exc)
