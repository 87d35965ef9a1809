"""The steps after an assertion: reveal, settle, forfeit, and abandon an assertion that was never mined.

The schedule (:mod:`.schedule`) decides when each step is due; a step here sends its transaction, tells
the schedule how it went (done, retry on the next block, or given up), and records the outcome in the
book and the state directory. In ``--testing`` mode a failed transaction is fatal (reference §2.13),
and a refused API key always is.

A reverted reveal is judged by its reason and, when that is not conclusive, by the chain itself: already
revealed (an earlier reveal was mined and its receipt lost, say across a restart) is done; a closed reveal
window is a forfeit; anything else is tried again on the next block while the window is open. A reverted
settle is final.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from polyswarmclient import metrics
from polyswarmclient.errors import TransactionFailed
from polyswarmclient.log import set_fields as set_log_fields
from polyswarmclient.services.microengine.book import Book
from polyswarmclient.services.microengine.config import EngineClient, EngineStats
from polyswarmclient.services.microengine.planning import verdict_text
from polyswarmclient.services.microengine.quota import TestingQuota
from polyswarmclient.services.microengine.schedule import Kind
from polyswarmclient.services.microengine.state import (
    ABANDONED,
    COMMITTING,
    FORFEITED,
    REVEALED,
    SETTLED,
    AssertionRecord,
)
from polyswarmclient.services.supervision import FatalErrors
from polyswarmclient.wire.models import Assertion

log = logging.getLogger("microengine")

#: Longest reveal metadata polyswarmd accepts (spec §2.5).
MAX_REVEAL_METADATA = 1024
#: Seconds we wait for ``POST /bounties/metadata`` before revealing with the raw string instead.
METADATA_UPLOAD_TIMEOUT = 10.0
#: Revert reasons (lower case) meaning our reveal is already on chain: the devnet's contract says
#: "Assertion already revealed"; polyswarmd passes the reason on after "transaction failed ... error:".
ALREADY_REVEALED = ("already revealed",)
#: Revert reasons meaning the reveal window has passed ("Reveal window closed" on the devnet).
WINDOW_CLOSED = ("reveal window closed", "window closed", "reveal window has closed", "reveal window passed")


def revert_says(error: Exception, reasons: tuple[str, ...]) -> bool:
    """Does the text of a reverted transaction name one of ``reasons`` (case-insensitive)?"""
    text = str(error).lower()
    return any(reason in text for reason in reasons)


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

    def _raise_if_fatal(self, error: Exception) -> None:
        if self.is_fatal(error):
            raise error

    # --- reveal ----------------------------------------------------------------------------------

    async def reveal(self, guid: str) -> None:
        set_log_fields(guid=guid)  # this step's own task: its JSON lines name the bounty
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
        try:
            await reveal()
        except TransactionFailed as exc:
            await self._reveal_reverted(record, exc)
            return
        except Exception as exc:
            if self.book.schedule.failed(guid, "reveal"):
                log.warning("bounty %s: reveal failed (%s); retrying on the next block", guid, exc)
            else:
                self._forfeited(record, f"the reveal kept failing ({exc})")
            self._raise_if_fatal(exc)
            return
        self.book.schedule.done(guid, "reveal")
        self.book.save(record, status=REVEALED)
        self.stats.reveals += 1
        metrics.REVEALS.inc(chain=record.chain)
        log.info("bounty %s: revealed verdicts=%s", guid, verdict_text(record.mask, record.verdicts))

    async def _reveal_reverted(self, record: AssertionRecord, error: TransactionFailed) -> None:
        """The reveal was mined and reverted: revealed already, too late, or worth another try."""
        guid = record.guid
        if revert_says(error, ALREADY_REVEALED) or await self._revealed_on_chain(record):
            self.book.schedule.done(guid, "reveal")
            self.book.revealed(record, "an earlier reveal was mined; its answer was lost")
            return
        head = await self._head(record.chain)
        if revert_says(error, WINDOW_CLOSED) or record.deadlines.reveal_closed(head + 1):
            self.book.schedule.failed(guid, "reveal", final=True)
            self._forfeited(record, f"the reveal transaction reverted after the window closed ({error})")
        elif self.book.schedule.failed(guid, "reveal"):
            log.warning("bounty %s: the reveal reverted (%s); retrying on the next block", guid, error)
            return
        else:
            self._forfeited(record, f"the reveal kept reverting ({error})")
        self._raise_if_fatal(error)

    async def _revealed_on_chain(self, record: AssertionRecord) -> bool:
        """Ask the chain whether our reveal of ``record`` is there; False when it cannot tell."""
        try:
            mine = await self.own_assertion(record)
        except Exception as exc:
            log.warning("bounty %s: could not read our assertion back from the chain: %s", record.guid, exc)
            return False
        return mine is not None and mine.revealed

    async def _head(self, chain: str) -> int:
        """The newest block we know of on ``chain`` (asking the server, when it answers)."""
        head = self.book.heads.get(chain, 0)
        try:
            return max(head, await self.client.block_number(chain))
        except Exception:
            return head

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
        metrics.FORFEITS.inc(chain=record.chain)
        self.book.save(record, status=FORFEITED)
        log.error("bounty %s: reveal forfeited: %s; the bid is lost, settling anyway", record.guid, why)

    # --- settle ----------------------------------------------------------------------------------

    async def settle(self, guid: str) -> None:
        set_log_fields(guid=guid)  # this step's own task: its JSON lines name the bounty
        record = self.book.get(guid)
        if record is None:
            self.book.schedule.failed(guid, "settle", final=True)
            return
        failure = await self._attempt(guid, "settle", partial(self.client.settle, guid, chain=record.chain))
        if failure is None:
            self.stats.settles += 1
            metrics.SETTLES.inc(chain=record.chain)
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
        self._raise_if_fatal(failure.error)

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

    async def own_assertion(self, record: AssertionRecord) -> Assertion | None:
        """Our assertion behind ``record`` as the chain has it (our address and commitment), or None."""
        for assertion in await self.client.list_assertions(record.guid, record.chain):
            if assertion.author.lower() == record.address.lower() and assertion.commitment == record.commitment:
                return assertion
        return None

    async def find_own_assertion(self, record: AssertionRecord) -> bool:
        """Look on chain for the assertion behind ``record``: learn its index, and whether it is revealed."""
        assertion = await self.own_assertion(record)
        if assertion is None:
            return False
        self.book.confirm(record.guid, assertion.index, assertion.commitment, "on chain")
        if assertion.revealed:
            self.book.revealed(record, "read back from the chain")
        return True

    async def recover_indexes(self, chain: str) -> list[AssertionRecord]:
        """Bring what we know of our unrevealed assertions on ``chain`` in line with the chain (on start and
        in every catch-up): learn an index we never heard (we died while it was being mined, or its receipt
        and event were lost in an outage), and take a reveal that is on chain as done (we died before its
        receipt was read). Returns the records still committing whose assertion is not on chain."""
        missing = []
        for record in self.book.unrevealed(chain):
            try:
                if not await self.find_own_assertion(record) and record.status == COMMITTING:
                    missing.append(record)
            except Exception as exc:
                log.warning("bounty %s: could not look for our assertion: %s", record.guid, exc)
        return missing
