"""The microengine service: scan bounties, commit, reveal and settle, driven by one event stream per chain.

This module is the dispatcher. Events come out of the client as frozen dataclasses and are routed by one
``match`` in :meth:`Microengine.dispatch`; the work lives in small modules beside it:

* :mod:`.asserting` asserts on one open bounty (:mod:`.scanning` fetches and scans, :mod:`.planning`
  decides bids, mask and verdicts without I/O);
* :mod:`.steps` reveals, settles, forfeits and abandons, when the :mod:`.schedule` says they are due;
* :mod:`.book` keeps our assertions (records in the state directory plus the schedule) and the bounties
  we saw; :mod:`.catchup` finds what a reconnect hid; :mod:`.quota` counts a ``--testing N`` run.

Every task runs in the engine's :class:`~polyswarmclient.services.supervision.Supervisor`, behind its own
error boundary, so one bad bounty never stops the engine. What must survive a restart (the nonce and
verdicts behind each commitment, and which steps are done) is written to the state directory before the
transaction that depends on it.
"""

from __future__ import annotations

import logging
import time
from functools import partial

from polyswarmclient import metrics
from polyswarmclient.amounts import format_amount
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import Backend
from polyswarmclient.heap import HeapTrimmer
from polyswarmclient.log import set_fields as set_log_fields
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine.asserting import Asserting
from polyswarmclient.services.microengine.book import Book
from polyswarmclient.services.microengine.catchup import CatchUp
from polyswarmclient.services.microengine.config import EngineClient, EngineConfig, EngineStats
from polyswarmclient.services.microengine.planning import OpenBounty, combine_metadata
from polyswarmclient.services.microengine.quota import TestingQuota
from polyswarmclient.services.microengine.scanning import ScanStep
from polyswarmclient.services.microengine.schedule import Action, Schedule
from polyswarmclient.services.microengine.startup import StartupHold
from polyswarmclient.services.microengine.state import AssertionRecord, StateStore
from polyswarmclient.services.microengine.steps import Steps
from polyswarmclient.services.supervision import FatalErrors, Supervisor
from polyswarmclient.wire.events import (
    Block,
    Connected,
    Deprecated,
    Event,
    NewAssertion,
    NewBounty,
    QuorumReached,
    Reconnected,
    SettledBounty,
    WindowUpdate,
)

log = logging.getLogger("microengine")

#: At most how long a restart holds settles and reveals for new bounties first (see :mod:`.startup`). A
#: reveal is held only while more than half of its reveal window is left: a late reveal forfeits the bid.
START_LISTING_GRACE = 15.0
#: The steps held until then (an abandon check only reads the chain, and may find a reveal due at once).
HELD_AT_START = frozenset({"settle", "reveal"})


class Microengine:
    """One microengine service. ``await Microengine(...).run()`` until shutdown or ``--testing`` is done."""

    def __init__(
        self,
        client: EngineClient,
        backend: Backend,
        store: StateStore,
        config: EngineConfig | None = None,
        shutdown: Shutdown | None = None,
        scan_step: ScanStep | None = None,
        *,
        quota: TestingQuota | None = None,
    ) -> None:
        """``quota``: a ``--testing N`` count shared with the engines of other communities (else its own)."""
        self.client = client
        self.backend = backend
        self.store = store
        self.config = config or EngineConfig()
        self.shutdown = shutdown or Shutdown()
        self.address: str = client.address
        self.stats = EngineStats()
        self._in_flight = 0
        self.book = Book(store, self.config.seen_cache_size)
        if quota is None:
            self.quota = TestingQuota(self.config.testing, on_complete=self._testing_done)
        else:
            self.quota = quota
            quota.subscribe(self._testing_done)
        self.is_fatal = FatalErrors(testing=bool(self.config.testing))
        self.asserting = Asserting(client, backend, self.book, self.config, self.stats, scan_step)
        self.steps = Steps(client, self.book, self.stats, self.quota, self.is_fatal)
        self.catch_up = CatchUp(client, self.book, self.steps, self, self.config.seen_cache_size)
        self._connected: set[str] = set()
        self._heap = HeapTrimmer()
        self._supervisor: Supervisor | None = None
        self.hold = StartupHold()

    @property
    def schedule(self) -> Schedule:
        return self.book.schedule

    @property
    def heads(self) -> dict[str, int]:
        """The newest block seen per chain."""
        return self.book.heads

    @property
    def supervisor(self) -> Supervisor:
        assert self._supervisor is not None, "Microengine.run() owns the tasks"
        return self._supervisor

    # --- running ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until a shutdown request has drained, ``--testing`` is complete, or a fatal error.

        The backend is set up here, and torn down at the end, unless the caller already set it up (the CLI
        does, before the client's first contact): whoever sets it up tears it down. With a scan step of its
        own (a scan queue) the engine scans nothing here: the backend is not set up, only asked for bids."""
        if self.backend.is_set_up or self.asserting.scan_step is not None:
            await self._run()
            return
        await self.backend.setup()
        try:
            await self._run()
        finally:
            try:
                await self.backend.teardown()
            except Exception:
                log.warning("backend %s: teardown failed", self.backend.name, exc_info=True)

    async def _run(self) -> None:
        chains = self.config.chains
        for chain in chains:
            await self.client.bounty_parameters(chain)
        self._resume()
        unsent: list[AssertionRecord] = []
        for chain in chains:  # before any block can forfeit a reveal or abandon an assertion: ask the chain
            unsent += await self.steps.recover_indexes(chain)
        supervisor = Supervisor(
            log, self.shutdown, self.is_fatal, stop_note="no new bounties, finishing in-flight work"
        )
        if unsent or self.book.active():  # work from an earlier run: new bounties first (see .startup)
            self.hold.begin(chains)
        async with supervisor:
            self._supervisor = supervisor
            if self.quota.complete:
                supervisor.finish()
            supervisor.consume(self.client, chains, self.dispatch)
            for chain in chains:
                supervisor.spawn(partial(self._release_after_grace, chain), f"start-up hold on {chain}")
            for record in unsent:
                self.hold.started(record.chain, record.guid)
                supervisor.spawn(partial(self._resend, record), f"assertion on bounty {record.guid}")
            if self.book.active():
                supervisor.spawn(partial(self.catch_up.after_restart, chains), "start-up catch-up")
            left = await supervisor.serve()
        await self.book.flush()
        if left:
            log.warning("due reveals and settles stay in the state directory for the next start")
        if supervisor.finished:
            log.info("testing mode: all %d bounties finished", self.config.testing)

    def listed(self, chain: str) -> None:
        """The first catch-up on ``chain`` has listed the open bounties (held steps may run now)."""
        self._run_actions(self.hold.listed(chain))

    def _urgent(self, action: Action) -> bool:
        """A reveal with half of its reveal window or less left (or whose record is gone) cannot wait."""
        if action.kind != "reveal":
            return False
        record = self.book.get(action.guid)
        if record is None:
            return True
        left = record.deadlines.reveal_end - self.heads.get(action.chain, 0)
        return left <= record.reveal_window // 2

    async def _release_after_grace(self, chain: str) -> None:
        if not await self.hold.released_within(chain, START_LISTING_GRACE):
            log.warning(
                "start-up on %s takes over %.0f s (listing open bounties, posting their assertions); "
                "running due reveals and settles now",
                chain,
                START_LISTING_GRACE,
            )
            self._run_actions(self.hold.release(chain))

    def _resume(self) -> None:
        """Put every pending reveal and settle from the state directory back on the schedule."""
        for record in self.book.resume(self.config.chains):
            if self.quota.resume(record.guid):  # a bounty taken before a restart is one of the N
                self.stats.bounties_handled += 1
            log.info("bounty %s: resuming from state (%s)", record.guid, record.status)

    def _testing_done(self) -> None:
        if self._supervisor is not None:
            self._supervisor.finish()

    # --- events ----------------------------------------------------------------------------------

    def dispatch(self, event: Event) -> None:
        """Route one event. Every branch is idempotent (events repeat after reconnects)."""
        match event:
            case Block(number=number):
                self.on_block(event.chain, number)
            case NewBounty():
                self.take(OpenBounty.announced(event))
            case QuorumReached(bounty_guid=guid):
                self.on_quorum(guid)
            case NewAssertion(author=author) if author.lower() == self.address.lower():
                self.book.confirm(event.bounty_guid, event.index, event.commitment, "by its event")
            case SettledBounty(bounty_guid=guid, settler=settler, payout=payout):
                if settler.lower() == self.address.lower():
                    self.stats.payouts += payout
                    metrics.NCT_PAID_OUT.inc(metrics.nct(payout), chain=event.chain)
                    log.info("bounty %s: payout %s NCT", guid, format_amount(payout))
            case WindowUpdate(assertion_reveal_window=reveal, arbiter_vote_window=vote):
                self.book.set_windows(event.chain, reveal, vote)
                log.info("windows on %s are now: reveal %d blocks, vote %d blocks", event.chain, reveal, vote)
            case Deprecated():
                log.warning("the bounty registry was deprecated; settling every bounty we can settle now")
                self._run_actions(self.schedule.on_deprecated(dict(self.heads)))
            case Connected(chain=chain) if chain not in self._connected:
                # Bounties posted between start-up and the first subscription have no event for us.
                self._connected.add(chain)
                self.catch_up.start(chain, self.supervisor)
            case Reconnected(chain=chain):
                log.info("event stream for %s reconnected; catching up on what was missed", chain)
                self.catch_up.start(chain, self.supervisor)
            case _:
                pass

    def on_block(self, chain: str, number: int) -> None:
        """A new head: run the steps that fell due (blocks repeat and skip; only newer ones count)."""
        if number <= self.heads.get(chain, -1):
            return
        self.heads[chain] = number
        self.book.forget_expired(chain, number)
        self._heap.maybe()  # at most once a minute (heap.py says why)
        if self.hold.holding(chain):
            self._run_actions(self.hold.take(chain, self._urgent))
        self._run_actions(self.schedule.on_block(chain, number))

    def on_quorum(self, guid: str) -> None:
        """Quorum lets us settle before the vote window ends."""
        self._run_actions(self.schedule.on_quorum(guid))

    def _due_now(self, chain: str) -> None:
        if (head := self.heads.get(chain)) is not None:
            self._run_actions(self.schedule.on_block(chain, head))

    def _run_actions(self, actions: list[Action]) -> None:
        spawn = self.supervisor.spawn
        for action in actions:
            if action.kind in HELD_AT_START and self.hold.holding(action.chain) and not self._urgent(action):
                self.hold.defer(action)
                continue
            match action.kind:
                case "reveal":
                    spawn(partial(self.steps.reveal, action.guid), f"reveal of bounty {action.guid}")
                case "settle":
                    spawn(partial(self.steps.settle, action.guid), f"settle of bounty {action.guid}")
                case "forfeit":
                    self.steps.forfeit(action.guid)
                case "abandon":
                    spawn(partial(self._check_mined, action.guid, action.chain), f"check of bounty {action.guid}")

    async def _resend(self, record: AssertionRecord) -> None:
        """A record written before a restart whose assertion never reached the chain: post it while the
        bounty is open (else the schedule abandons it after expiration)."""
        try:
            await self._resend_once_listed(record)
        finally:
            self._run_actions(self.hold.finished(record.chain, record.guid))

    async def _resend_once_listed(self, record: AssertionRecord) -> None:
        await self.hold.wait_listed(record.chain)  # learn of the bounties posted while we were down first
        head = await self.client.block_number(record.chain)
        if head + 1 >= record.expiration:
            log.warning(
                "bounty %s: our assertion never reached the chain and the bounty expires at block %d (now %d); "
                "too late to post it",
                record.guid,
                record.expiration,
                head,
            )
            return
        try:
            await self.asserting.resend(record)
        except Exception:
            try:  # an earlier transaction may have been mined meanwhile: the chain decides
                found = await self.steps.find_own_assertion(record)
            except Exception:
                found = False
            if not found:
                raise
        self._due_now(record.chain)

    async def _check_mined(self, guid: str, chain: str) -> None:
        if await self.steps.abandon_unless_mined(guid):
            self._due_now(chain)  # the reveal is due now

    # --- one bounty ------------------------------------------------------------------------------

    def take(self, bounty: OpenBounty) -> None:
        """A bounty open for assertions (announced, or found by a catch-up): assert on it if it is for us."""
        if bounty.chain not in self.config.chains or self.book.known(bounty.chain, bounty.guid):
            return
        if self.book.past_taking(bounty.chain, bounty.expiration):
            # Delivered again (or late) once it can no longer be taken: the book forgets such bounties, so
            # it may have been handled already; either way there is nothing to do nor to count.
            log.debug("bounty %s: expired at block %d, past taking", bounty.guid, bounty.expiration)
            return
        self.book.remember(bounty.chain, bounty.guid, bounty.expiration)
        self.stats.bounties_seen += 1
        metrics.BOUNTIES_SEEN.inc(chain=bounty.chain)
        try:
            kind = ArtifactType.coerce(bounty.artifact_type)
        except ValueError:
            log.info("bounty %s: unknown artifact type %r, ignored", bounty.guid, bounty.artifact_type)
            metrics.BOUNTIES_SKIPPED.inc(chain=bounty.chain, reason="artifact_type")
            return
        if kind not in self.config.artifact_types:
            log.debug("bounty %s: artifact type %s not in --artifact-type, ignored", bounty.guid, kind.name.lower())
            metrics.BOUNTIES_SKIPPED.inc(chain=bounty.chain, reason="artifact_type")
            return
        if self.supervisor.stopping:
            log.info("bounty %s: shutting down, not taking it", bounty.guid)
            metrics.BOUNTIES_SKIPPED.inc(chain=bounty.chain, reason="stopping")
            return
        if not self.quota.take(bounty.guid):
            log.warning("bounty %s: testing mode already took %d bounties, ignored", bounty.guid, self.config.testing)
            metrics.BOUNTIES_SKIPPED.inc(chain=bounty.chain, reason="testing_quota")
            return
        self.stats.bounties_handled += 1
        self.hold.started(bounty.chain, bounty.guid)
        self.supervisor.spawn(partial(self._assert, bounty), f"bounty {bounty.guid}")

    async def _assert(self, bounty: OpenBounty) -> None:
        asserted = False
        taken = time.monotonic()
        set_log_fields(guid=bounty.guid, chain=bounty.chain)
        self._in_flight += 1
        metrics.IN_FLIGHT.add(1)  # the engines of every community add up
        try:
            asserted = await self.asserting.run(bounty)
            if asserted:
                metrics.ASSERTION_LATENCY.observe(time.monotonic() - taken, chain=bounty.chain)
        except Exception:
            self.stats.failed += 1
            raise
        finally:
            self._in_flight -= 1
            metrics.IN_FLIGHT.add(-1)
            # A commitment that may have gone out (its record exists) is finished by the schedule: it is
            # revealed and settled, or abandoned once the chain shows it was never mined.
            if not asserted and bounty.guid not in self.book:
                self.quota.finished(bounty.guid)
            self._run_actions(self.hold.finished(bounty.chain, bounty.guid))
        if asserted:
            self._due_now(bounty.chain)  # a block may already have passed expiration


__all__ = [
    "EngineClient",
    "EngineConfig",
    "EngineStats",
    "Microengine",
    "combine_metadata",
]
