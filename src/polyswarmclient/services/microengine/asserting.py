"""Asserting on one open bounty: scan it, plan the assertion, commit to it, post it.

In order: give up when too few blocks are left to scan and post; scan within the time the deadline
leaves (:mod:`.scanning`); plan bids, mask and verdicts (:mod:`.planning`, pure); check the NCT balance
covers bids and fee (:class:`Funds`: a balance read stands for the next assertions, less what they
take, for :data:`BALANCE_REUSE` seconds; in ``--testing`` mode a shortfall is fatal); check the scan
did not run past the last useful block; write the nonce and verdicts behind the commitment to the state
directory; then post the assertion and schedule its reveal and settle.

A record written by an engine that died before its assertion went out (status committing, not on chain)
is posted again after a restart, with the stored commitment, while the bounty is still open
(:meth:`Asserting.resend`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from polyswarmclient import metrics
from polyswarmclient.amounts import format_amount
from polyswarmclient.backends import Backend
from polyswarmclient.errors import InsufficientFunds
from polyswarmclient.eth.commitment import commitment, new_nonce
from polyswarmclient.services.microengine import bidding
from polyswarmclient.services.microengine.book import Book
from polyswarmclient.services.microengine.config import EngineClient, EngineConfig, EngineStats
from polyswarmclient.services.microengine.planning import (
    Assert,
    Judgement,
    OpenBounty,
    Skip,
    judge,
    nct_text,
    plan,
    verdict_text,
)
from polyswarmclient.services.microengine.scanning import Scanner, ScanStep
from polyswarmclient.services.microengine.schedule import scan_timeout, still_open
from polyswarmclient.services.microengine.state import ASSERTED, COMMITTING, AssertionRecord
from polyswarmclient.wire.bits import bools_to_int
from polyswarmclient.wire.models import BountyParameters

log = logging.getLogger("microengine")

#: Seconds one NCT balance read answers for the assertions after it (less what each of them takes). A
#: deposit or a payout meanwhile only makes the estimate low (then it is read again); a withdrawal from the
#: same account by another program can make it high for at most this long (the assertion then reverts).
BALANCE_REUSE = 30.0


class Funds:
    """Our NCT per chain as last read, less the cost of each assertion let through since."""

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self._known: dict[str, tuple[int, float]] = {}  # chain -> (estimate, when it was read)
        self._lock = asyncio.Lock()

    async def take(self, chain: str, cost: int) -> tuple[bool, int]:
        """Whether the balance covers ``cost`` (then it is counted as spent), and the balance it judged by.

        The balance is read when the estimate is older than :data:`BALANCE_REUSE` or does not cover
        ``cost``; concurrent assertions wait for one read instead of each making its own.
        """
        async with self._lock:
            known = self._known.get(chain)
            if known is None or known[0] < cost or time.monotonic() - known[1] > BALANCE_REUSE:
                known = (await self.client.nct_balance(chain), time.monotonic())
                metrics.NCT_BALANCE.set(metrics.nct(known[0]), chain=chain)
            balance, read_at = known
            covered = balance >= cost
            self._known[chain] = (balance - cost, read_at) if covered else known
            return covered, balance


@dataclass(eq=False)
class Asserting:
    """The assertion step for the bounties the engine takes."""

    client: EngineClient
    backend: Backend
    book: Book
    config: EngineConfig
    stats: EngineStats
    #: Scans in this process when None; else, say, a scan queue's producer.
    scan_step: ScanStep | None = field(default=None)

    def __post_init__(self) -> None:
        self.scanner: ScanStep = self.scan_step or Scanner(
            self.client, self.backend, self.config.bounty_filter, self.config.max_concurrent_scans
        )
        self._strategy = bidding.strategy(self.config.bid_strategy)
        self.funds = Funds(self.client)

    async def run(self, bounty: OpenBounty) -> bool:
        """Assert on ``bounty`` if we can; True once the assertion is mined."""
        head = max(self.book.heads.get(bounty.chain, 0), bounty.seen_at)
        budget = scan_timeout(bounty.expiration, head, self.config.block_time, self.config.scan_timeout)
        if budget is None:
            why = f"expires at block {bounty.expiration}, too late to assert at block {head}"
            return self._skip(bounty, why, reason="too_late")
        params = await self.client.bounty_parameters(bounty.chain)
        scanned = await self.scanner.scan(bounty, budget)
        if scanned.skipped:
            return self._skip(bounty, scanned.skipped, logging.WARNING, reason="queue_down")
        if not scanned.results:
            return self._skip(bounty, f"no artifacts at {bounty.uri}", reason="no_artifacts")
        decision = await self._plan(bounty, judge(scanned.results, scanned.metadata, self.config.confidence), params)
        if isinstance(decision, Skip):
            return self._skip(bounty, decision.reason, reason="no_verdict")
        if not await self._affordable(bounty, decision):
            return False
        now = max(self.book.heads.get(bounty.chain, 0), head)
        if not still_open(bounty.expiration, now):
            why = f"scanning took until block {now}, too late to assert before {bounty.expiration}"
            return self._skip(bounty, why, logging.WARNING, reason="too_late")
        await self._post(bounty, decision, params)
        return True

    def _skip(self, bounty: OpenBounty, why: str, level: int = logging.INFO, *, reason: str) -> bool:
        """Log ``why`` and count the bounty skipped under ``reason`` (a short fixed word, a metric label)."""
        self.stats.skipped += 1
        metrics.BOUNTIES_SKIPPED.inc(chain=bounty.chain, reason=reason)
        log.log(level, "bounty %s: %s", bounty.guid, why)
        return False

    async def _plan(self, bounty: OpenBounty, judged: Judgement, params: BountyParameters) -> Assert | Skip:
        custom = None
        if judged.asserts_anything:  # an engine's own bid() sees what we would assert
            custom = await self.backend.custom_bid(
                bounty.guid,
                list(judged.mask),
                list(judged.verdicts),
                list(judged.confidences),
                list(judged.notes),
                bounty.chain,
                # this community's bid range (a backend serving several communities must not mix them up)
                limits=(params.assertion_bid_minimum, params.assertion_bid_maximum),
            )
        return plan(judged, params, self._strategy, custom)

    async def _affordable(self, bounty: OpenBounty, decision: Assert) -> bool:
        covered, balance = await self.funds.take(bounty.chain, decision.cost)
        if covered:
            return True
        shortfall = (
            f"NCT balance {format_amount(balance)} on {bounty.chain} is below the {format_amount(decision.cost)} "
            "NCT this assertion needs (bids + assertion fee); deposit NCT with `balancemanager deposit`"
        )
        if self.config.testing:
            raise InsufficientFunds(f"bounty {bounty.guid}: {shortfall}")
        return self._skip(bounty, f"{shortfall}; skipped", logging.WARNING, reason="funds")

    async def _post(self, bounty: OpenBounty, decision: Assert, params: BountyParameters) -> None:
        guid, chain, address = bounty.guid, bounty.chain, self.client.address
        nonce = new_nonce()
        record = AssertionRecord(
            guid=guid,
            chain=chain,
            address=address,
            nonce=nonce,
            commitment=commitment(nonce, bools_to_int(decision.verdicts), address),
            verdicts=decision.verdicts,
            mask=decision.mask,
            bids=decision.bids,
            metadata=decision.metadata,
            expiration=bounty.expiration,
            reveal_window=params.assertion_reveal_window,
            vote_window=params.arbiter_vote_window,
            status=COMMITTING,
        )
        record = await self.book.commit(record)  # durable before the commitment goes out
        bids = list(decision.bids)
        log.info(
            "bounty %s: asserting verdicts=%s bids=%s", guid, verdict_text(record.mask, record.verdicts), nct_text(bids)
        )
        try:
            index = await self.client.post_assertion(guid, bids, list(decision.mask), record.commitment, chain=chain)
        except Exception:
            # The transaction may still be mined: keep the record, and let its NewAssertion event tell us.
            self.book.schedule.track(guid, chain, record.deadlines, asserted=False)
            raise
        self._mined(record, index)

    async def resend(self, record: AssertionRecord) -> None:
        """Post the stored commitment of ``record`` (an earlier process died before it went out).

        On failure the record stays committing: the caller asks the chain, and the schedule abandons it
        only once expiration passes without it on chain.
        """
        log.info(
            "bounty %s: our assertion was written but never reached the chain; posting it again before "
            "expiration %d, verdicts=%s bids=%s",
            record.guid,
            record.expiration,
            verdict_text(record.mask, record.verdicts),
            nct_text(list(record.bids)),
        )
        index = await self.client.post_assertion(
            record.guid, list(record.bids), list(record.mask), record.commitment, chain=record.chain
        )
        self._mined(record, index)

    def _mined(self, record: AssertionRecord, index: int) -> None:
        """Our assertion on ``record``'s bounty is mined at ``index``: recorded, reveal and settle scheduled."""
        guid = record.guid
        current = self.book.get(guid) or record
        if current.index is None:
            current = self.book.save(current, index=index, status=ASSERTED)
        self.book.asserted(current)
        self.stats.assertions += 1
        metrics.ASSERTIONS.inc(chain=record.chain)
        metrics.NCT_BID.inc(metrics.nct(sum(record.bids)), chain=record.chain)
        d = record.deadlines
        log.info(
            "bounty %s: assertion %d mined; reveal after block %d (before %d), settle from block %d",
            guid,
            index,
            d.expiration,
            d.reveal_end,
            d.settle_from,
        )
