"""The microengine service: scan bounties, commit, reveal and settle, driven by one event stream per chain.

Shape (STYLE.md): events come out of the client as frozen dataclasses and are dispatched by one
``match`` in :meth:`Microengine._dispatch`; the decisions (bids, deadlines, filters) are pure functions in
sibling modules; every task is created in the service's ``asyncio.TaskGroup`` inside a per-bounty (or
per-step) error boundary, so one bad bounty never stops the engine. What must survive a restart (the
nonce and verdicts behind each commitment, and which steps are done) is written to the state directory
before the transaction that depends on it.

``client`` is anything with the methods of :class:`EngineClient` (the real
:class:`~polyswarmclient.client.facade.PolyswarmClient`, or a recording fake in tests).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.amounts import format_amount
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import Backend
from polyswarmclient.errors import (
    InsufficientFunds,
    PolyswarmError,
    TransactionError,
    TransactionFailed,
    Unauthorized,
)
from polyswarmclient.eth.commitment import commitment, new_nonce
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import bidding
from polyswarmclient.services.microengine.filters import BountyFilter, ConfidenceModifier, artifact_metadata
from polyswarmclient.services.microengine.schedule import Action, Schedule, scan_timeout, still_open
from polyswarmclient.services.microengine.state import (
    ABANDONED,
    ASSERTED,
    COMMITTING,
    FORFEITED,
    REVEALED,
    SETTLED,
    AssertionRecord,
    StateStore,
)
from polyswarmclient.transport.backoff import Backoff
from polyswarmclient.wire.bits import bools_to_int
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
from polyswarmclient.wire.models import ArtifactEntry, Assertion, Bounty, BountyParameters

log = logging.getLogger("microengine")

#: Longest reveal metadata polyswarmd accepts (spec §2.5).
MAX_REVEAL_METADATA = 1024
#: Seconds we wait for ``POST /bounties/metadata`` before revealing with the raw string instead.
METADATA_UPLOAD_TIMEOUT = 10.0
#: Delays (seconds, jittered and doubling up to the cap) before a failed catch-up runs again.
CATCH_UP_RETRY_BASE = 1.0
CATCH_UP_RETRY_CAP = 30.0


class EngineClient(Protocol):
    """The slice of the client facade the engine uses."""

    address: str

    async def bounty_parameters(self, chain: str = "side", *, refresh: bool = False) -> BountyParameters: ...
    async def block_number(self, chain: str) -> int: ...
    async def get_bounty(self, guid: str, chain: str = "side") -> Bounty: ...
    async def list_assertions(self, guid: str, chain: str = "side") -> list[Assertion]: ...
    def iter_bounty_pages(
        self, chain: str = "side", *, start_page: int = 0
    ) -> AsyncIterator[tuple[int, list[str]]]: ...
    async def list_artifacts(self, uri: str) -> list[ArtifactEntry]: ...
    async def fetch_artifact(self, uri: str, index: int) -> bytes | None: ...
    async def post_metadata(self, metadata: Any) -> str: ...
    async def nct_balance(self, chain: str, address: str | None = None) -> int: ...
    async def post_assertion(
        self, guid: str, bids: list[int], mask: list[bool], commitment: int, chain: str = "side"
    ) -> int: ...
    async def reveal_assertion(
        self, guid: str, index: int, nonce: int, verdicts: list[bool], metadata: str, chain: str = "side"
    ) -> None: ...
    async def settle(self, guid: str, chain: str = "side") -> None: ...
    def events(self, chain: str) -> AsyncIterator[Event]: ...


@dataclass(frozen=True)
class EngineConfig:
    """Service settings (the CLI builds this from its options)."""

    chains: tuple[str, ...] = ("side",)
    artifact_types: tuple[ArtifactType, ...] = (ArtifactType.FILE,)
    #: >0: handle this many bounties, then exit 0 once each is settled or skipped. Tx errors become fatal.
    testing: int = 0
    bid_strategy: str = "default"
    bounty_filter: BountyFilter = field(default_factory=BountyFilter)
    confidence: ConfidenceModifier = field(default_factory=ConfidenceModifier)
    max_concurrent_scans: int = 8
    #: Upper bound on one bounty's fetch+scan time, seconds (the block deadline usually binds first).
    scan_timeout: float | None = 60.0
    #: Assumed seconds per block, to turn "blocks until expiration" into a scan timeout.
    block_time: float = 1.0
    #: How many handled bounty GUIDs to remember for de-duplication.
    seen_cache_size: int = 10_000


@dataclass
class EngineStats:
    """Counters a user (or a test) can read after a run."""

    bounties_seen: int = 0
    bounties_handled: int = 0
    assertions: int = 0
    skipped: int = 0
    failed: int = 0
    reveals: int = 0
    forfeits: int = 0
    settles: int = 0
    payouts: int = 0


def combine_metadata(results: Sequence[ScanResult]) -> str:
    """Reveal metadata from the asserted artifacts' results, in artifact order.

    A JSON array when every piece is valid JSON (the assertion-metadata shape of spec §6), else the
    pieces joined with ``;`` as polyswarm-client does.
    """
    pieces = [r.metadata for r in results if r.bit]
    parsed: list[Any] = []
    for piece in pieces:
        try:
            parsed.append(json.loads(piece))
        except (TypeError, ValueError):
            return ";".join(pieces)
    return json.dumps(parsed, separators=(",", ":")) if pieces else ""


def _verdict_text(mask: Sequence[bool], verdicts: Sequence[bool]) -> str:
    return (
        "["
        + ", ".join(
            "-" if not m else ("malicious" if v else "benign") for m, v in zip(mask, verdicts, strict=True)
        )
        + "]"
    )


def _nct(values: Sequence[int]) -> str:
    return "[" + ", ".join(format_amount(v) for v in values) + "] NCT"


class _Fatal(Exception):
    """Wraps an error that must stop the service (testing-mode money/tx errors, a refused API key)."""

    def __init__(self, error: PolyswarmError) -> None:
        super().__init__(str(error))
        self.error = error


class Microengine:
    """One microengine service. ``await Microengine(...).run()`` until shutdown or ``--testing`` is done."""

    def __init__(
        self,
        client: EngineClient,
        backend: Backend,
        store: StateStore,
        config: EngineConfig | None = None,
        shutdown: Shutdown | None = None,
    ) -> None:
        self.client = client
        self.backend = backend
        self.store = store
        self.config = config or EngineConfig()
        self.shutdown = shutdown or Shutdown()
        self.address: str = client.address
        self.stats = EngineStats()
        self.schedule = Schedule()
        self._strategy = bidding.strategy(self.config.bid_strategy)
        self._records: dict[str, AssertionRecord] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._closed: OrderedDict[str, None] = OrderedDict()  # guids catch-up found already expired
        self._heads: dict[str, int] = {}
        self._testing_open: set[str] = set()
        self._done = asyncio.Event()
        self._accepting = True
        self._tasks: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._scan_slots = asyncio.Semaphore(max(1, self.config.max_concurrent_scans))
        self._catch_up_running: set[str] = set()
        self._catch_up_again: set[str] = set()
        self._connected: set[str] = set()
        self._catch_up_page: dict[str, int] = {}  # per chain: the last GET /bounties page fully read
        self._metadata_upload = True
        self._draining = False

    # --- running ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until a shutdown request has drained, ``--testing`` is complete, or a fatal error."""
        await self.backend.setup()
        try:
            await self._run()
        finally:
            try:
                await self.backend.teardown()
            except Exception:
                log.warning("backend %s: teardown failed", self.backend.name, exc_info=True)

    async def _run(self) -> None:
        for chain in self.config.chains:
            await self.client.bounty_parameters(chain)
        self._resume()
        for chain in self.config.chains:
            # Before any block can declare an unconfirmed assertion abandoned.
            await self._recover_indexes(chain)
        readers: list[asyncio.Task[None]] = []
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for chain in self.config.chains:
                    readers.append(
                        tg.create_task(self._read_events(chain), name=f"microengine-events-{chain}")
                    )
                if self._records:
                    self._spawn(self._startup_catch_up(), "start-up catch-up")
                await self._wait_for_stop(readers)
                self._accepting = False
                await self._drain()
                self._draining = True
                for reader in readers:
                    reader.cancel()
                for task in list(self._tasks):
                    task.cancel()
        except BaseExceptionGroup as group:
            raise _unwrap(group) from None
        finally:
            self._tg = None
        if self.config.testing and self._done.is_set():
            log.info("testing mode: all %d bounties finished", self.config.testing)

    async def _wait_for_stop(self, readers: list[asyncio.Task[None]]) -> None:
        waiters = [
            asyncio.ensure_future(self.shutdown.wait()),
            asyncio.ensure_future(self._done.wait()),
            asyncio.ensure_future(asyncio.wait(readers, return_when=asyncio.ALL_COMPLETED)),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self.shutdown.requested:
            log.warning("stopping: %s; no new bounties, finishing in-flight work", self.shutdown.reason)
        elif all(r.done() for r in readers) and not self._done.is_set():
            log.warning("every event stream ended; stopping")

    async def _drain(self) -> None:
        """Wait for in-flight work (including steps that fall due meanwhile) up to the grace period."""
        if not self._tasks:
            return
        log.info("waiting up to %.0fs for %d in-flight task(s)", self.shutdown.grace, len(self._tasks))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown.grace
        while self._tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning(
                    "%d task(s) still running after the grace period were stopped; due reveals and settles "
                    "stay in the state directory for the next start",
                    len(self._tasks),
                )
                return
            await asyncio.wait(list(self._tasks), timeout=remaining)

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        """Start ``coro`` in the service's task group behind an error boundary."""
        if self._tg is None:
            coro.close()
            return
        task = self._tg.create_task(self._boundary(coro, what))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _boundary(self, coro: Awaitable[None], what: str) -> None:
        try:
            await coro
        except _Fatal as fatal:
            raise fatal.error from None
        except Unauthorized:
            raise
        except Exception as exc:
            if self.config.testing and isinstance(exc, InsufficientFunds | TransactionError):
                raise
            log.error("%s failed: %s", what, exc, exc_info=log.isEnabledFor(logging.DEBUG))

    # --- start-up ----------------------------------------------------------------------------------

    def _resume(self) -> None:
        """Load durable state and put every pending reveal and settle back on the schedule."""
        pruned = self.store.prune()
        if pruned:
            log.debug("removed %d finished bounty record(s) from the state directory", pruned)
        for record in self.store.pending():
            if record.chain not in self.config.chains:
                log.warning(
                    "bounty %s on chain %s has a pending %s in the state directory, but that chain is not in "
                    "--chains; add it to finish the bounty",
                    record.guid,
                    record.chain,
                    "reveal" if record.status in (COMMITTING, ASSERTED) else "settle",
                )
                continue
            self._records[record.guid] = record
            self._remember(record.guid)
            if self.config.testing:
                # A bounty taken before a restart is still one of the N a --testing run handles.
                self.stats.bounties_handled += 1
                self._testing_open.add(record.guid)
            self.schedule.track(
                record.guid,
                record.chain,
                record.deadlines,
                asserted=record.index is not None,
                revealed=record.status == REVEALED,
                reveal_closed=record.status == FORFEITED,
            )
            log.info("bounty %s: resuming from state (%s)", record.guid, record.status)

    async def _startup_catch_up(self) -> None:
        """After a restart: learn the head and each stored bounty's quorum, then run what is due."""
        for chain in self.config.chains:
            await self._refresh_head(chain)
            await self._check_quorums(chain)

    async def _recover_indexes(self, chain: str) -> None:
        """Find on chain any assertion whose index we never learned (we died while it was being mined,
        or its receipt and its event were both lost while the connection was down)."""
        for record in [r for r in self._records.values() if r.chain == chain and r.index is None]:
            try:
                await self._find_own_assertion(record)
            except Exception as exc:
                log.warning("bounty %s: could not look for our assertion: %s", record.guid, exc)

    async def _find_own_assertion(self, record: AssertionRecord) -> bool:
        """Look on chain for the assertion behind ``record``; learn its index if it is there."""
        for assertion in await self.client.list_assertions(record.guid, record.chain):
            index, author = assertion.index, assertion.author
            if author.lower() == self.address.lower() and assertion.commitment == record.commitment:
                self._on_assertion(
                    NewAssertion(
                        chain=record.chain,
                        bounty_guid=record.guid,
                        author=author,
                        index=index,
                        bid=tuple(record.bids),
                        mask=tuple(record.mask),
                        commitment=assertion.commitment,
                    ),
                    seen="on chain",
                )
                return True
        return False

    async def _refresh_head(self, chain: str) -> None:
        head = await self.client.block_number(chain)
        self._on_block(chain, head)

    async def _check_quorums(self, chain: str) -> None:
        for guid in [g for g, r in self._records.items() if r.chain == chain]:
            try:
                bounty = await self.client.get_bounty(guid, chain)
            except Exception as exc:
                log.debug("bounty %s: could not refresh its status: %s", guid, exc)
                continue
            if bounty.quorum_reached:
                self._run_actions(self.schedule.on_quorum(guid))

    # --- events ------------------------------------------------------------------------------------

    async def _read_events(self, chain: str) -> None:
        stream = self.client.events(chain)
        try:
            async for event in stream:
                try:
                    self._dispatch(event)
                except Exception:
                    log.exception("event %s could not be handled", type(event).__name__)
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # pragma: no cover - closing is best effort
                    pass

    def _dispatch(self, event: Event) -> None:
        match event:
            case Block(number=number):
                self._on_block(event.chain, number)
            case NewBounty():
                self._on_new_bounty(event)
            case QuorumReached(bounty_guid=guid):
                self._run_actions(self.schedule.on_quorum(guid))
            case NewAssertion():
                self._on_assertion(event)
            case SettledBounty(bounty_guid=guid, settler=settler, payout=payout):
                if settler.lower() == self.address.lower():
                    self.stats.payouts += payout
                    log.info("bounty %s: payout %s NCT", guid, format_amount(payout))
            case WindowUpdate():
                self._on_window_update(event)
            case Deprecated():
                log.warning("the bounty registry was deprecated; settling every bounty we can settle now")
                self._run_actions(self.schedule.on_deprecated(dict(self._heads)))
            case Connected(chain=chain) if chain not in self._connected:
                # Bounties posted between start-up and the first subscription have no event for us.
                self._connected.add(chain)
                self._start_catch_up(chain)
            case Reconnected(chain=chain):
                log.info("event stream for %s reconnected; catching up on what was missed", chain)
                self._start_catch_up(chain)
            case _:
                pass

    def _on_window_update(self, event: WindowUpdate) -> None:
        """The contract reads the windows when a step is checked, so pending deadlines move with them."""
        reveal, vote = event.assertion_reveal_window, event.arbiter_vote_window
        self.schedule.set_windows(event.chain, reveal, vote)
        for record in [r for r in self._records.values() if r.chain == event.chain]:
            self._save(record, reveal_window=reveal, vote_window=vote)
        log.info("windows on %s are now: reveal %d blocks, vote %d blocks", event.chain, reveal, vote)

    def _on_block(self, chain: str, number: int) -> None:
        if number <= self._heads.get(chain, -1):
            return
        self._heads[chain] = number
        self._run_actions(self.schedule.on_block(chain, number))

    def _run_actions(self, actions: list[Action]) -> None:
        if self._draining:
            return  # stopping: what is due stays in the state directory for the next start
        for action in actions:
            match action.kind:
                case "reveal":
                    self._spawn(self._reveal(action.guid), f"reveal of bounty {action.guid}")
                case "settle":
                    self._spawn(self._settle(action.guid), f"settle of bounty {action.guid}")
                case "forfeit":
                    self._forfeit(action.guid)
                case "abandon":
                    self._spawn(self._abandon_unless_mined(action.guid), f"check of bounty {action.guid}")

    def _remember(self, guid: str) -> None:
        self._seen[guid] = None
        self._seen.move_to_end(guid)
        while len(self._seen) > self.config.seen_cache_size:
            self._seen.popitem(last=False)

    def _known(self, chain: str, guid: str) -> bool:
        return guid in self._seen or guid in self._records or self.store.has(chain, guid)

    def _on_new_bounty(self, bounty: NewBounty) -> None:
        if bounty.chain not in self.config.chains or self._known(bounty.chain, bounty.guid):
            return
        self._remember(bounty.guid)
        self.stats.bounties_seen += 1
        try:
            kind = ArtifactType.coerce(bounty.artifact_type)
        except ValueError:
            log.info("bounty %s: unknown artifact type %r, ignored", bounty.guid, bounty.artifact_type)
            return
        if kind not in self.config.artifact_types:
            log.debug(
                "bounty %s: artifact type %s not in --artifact-type, ignored", bounty.guid, kind.name.lower()
            )
            return
        if not self._accepting or self.shutdown.requested:
            log.info("bounty %s: shutting down, not taking it", bounty.guid)
            return
        if self.config.testing and self.stats.bounties_handled >= self.config.testing:
            log.warning(
                "bounty %s: testing mode already took %d bounties, ignored", bounty.guid, self.config.testing
            )
            return
        self.stats.bounties_handled += 1
        if self.config.testing:
            self._testing_open.add(bounty.guid)
        self._spawn(self._bounty(bounty), f"bounty {bounty.guid}")

    def _on_assertion(self, event: NewAssertion, seen: str = "by its event") -> None:
        """Our own assertion seen on the stream (or on chain): learn its index if posting did not tell us."""
        record = self._records.get(event.bounty_guid)
        if record is None or record.index is not None or event.author.lower() != self.address.lower():
            return
        if event.commitment != record.commitment:
            return
        self._save(record, index=event.index, status=ASSERTED)
        self.schedule.track(record.guid, record.chain, record.deadlines, asserted=True)
        self.schedule.mark_asserted(record.guid)
        log.info("bounty %s: assertion %d confirmed %s", record.guid, event.index, seen)

    # --- one bounty: scan, bid, commit -------------------------------------------------------------

    async def _bounty(self, bounty: NewBounty) -> None:
        asserted = False
        try:
            asserted = await self._scan_and_assert(bounty)
        except Exception:
            self.stats.failed += 1
            raise
        finally:
            # A commitment that may have gone out (its record exists) is finished by the schedule: it is
            # revealed and settled, or abandoned once the chain shows it was never mined.
            if not asserted and bounty.guid not in self._records:
                self._finish_for_testing(bounty.guid)

    async def _scan_and_assert(self, bounty: NewBounty) -> bool:
        guid, chain = bounty.guid, bounty.chain
        head = max(self._heads.get(chain, 0), bounty.block_number or 0)
        timeout = scan_timeout(bounty.expiration, head, self.config.block_time, self.config.scan_timeout)
        if timeout is None:
            self.stats.skipped += 1
            log.info(
                "bounty %s: expires at block %d, too late to assert at block %d",
                guid,
                bounty.expiration,
                head,
            )
            return False
        params = await self.client.bounty_parameters(chain)
        artifacts = await self.client.list_artifacts(bounty.uri)
        if not artifacts:
            self.stats.skipped += 1
            log.info("bounty %s: no artifacts at %s", guid, bounty.uri)
            return False
        metadatas = artifact_metadata(bounty.metadata, len(artifacts))
        results = await self._scan_all(bounty, len(artifacts), metadatas, timeout)
        mask = [r.bit for r in results]
        verdicts = [r.bit and r.verdict for r in results]
        if not any(mask):
            self.stats.skipped += 1
            log.info("bounty %s: no artifact to assert on (%d scanned), no assertion", guid, len(results))
            return False
        confidences = [
            self.config.confidence.apply(r.confidence, metadatas[i]) for i, r in enumerate(results)
        ]
        bids = await self._bids(
            guid, chain, mask, verdicts, confidences, [r.metadata for r in results], params
        )
        total = sum(bids) + params.assertion_fee
        balance = await self.client.nct_balance(chain)
        if balance < total:
            message = (
                f"bounty {guid}: NCT balance {format_amount(balance)} on {chain} is below the "
                f"{format_amount(total)} NCT this assertion needs (bids + assertion fee); deposit NCT with "
                "`balancemanager deposit`"
            )
            if self.config.testing:
                raise _Fatal(InsufficientFunds(message))
            self.stats.skipped += 1
            log.warning("%s; skipped", message)
            return False
        now = max(self._heads.get(chain, 0), head)
        if not still_open(bounty.expiration, now):
            self.stats.skipped += 1
            log.warning(
                "bounty %s: scanning took until block %d, too late to assert before %d",
                guid,
                now,
                bounty.expiration,
            )
            return False

        nonce = new_nonce()
        record = AssertionRecord(
            guid=guid,
            chain=chain,
            address=self.address,
            nonce=nonce,
            commitment=commitment(nonce, bools_to_int(verdicts), self.address),
            verdicts=tuple(verdicts),
            mask=tuple(mask),
            bids=tuple(bids),
            metadata=combine_metadata(results),
            expiration=bounty.expiration,
            reveal_window=params.assertion_reveal_window,
            vote_window=params.arbiter_vote_window,
            status=COMMITTING,
        )
        record = await asyncio.to_thread(self.store.save, record)  # durable before the commitment goes out
        self._records[guid] = record
        log.info("bounty %s: asserting verdicts=%s bids=%s", guid, _verdict_text(mask, verdicts), _nct(bids))
        try:
            index = await self.client.post_assertion(guid, bids, mask, record.commitment, chain=chain)
        except Exception:
            # The transaction may still be mined: keep the record, and let its NewAssertion event tell us.
            self.schedule.track(guid, chain, record.deadlines, asserted=False)
            raise
        current = self._records.get(guid, record)
        if current.index is None:
            self._save(current, index=index, status=ASSERTED)
        self.schedule.track(guid, chain, record.deadlines, asserted=True)
        self.schedule.mark_asserted(guid)
        self.stats.assertions += 1
        d = record.deadlines
        log.info(
            "bounty %s: assertion %d mined; reveal after block %d (before %d), settle from block %d",
            guid,
            index,
            d.expiration,
            d.reveal_end,
            d.settle_from,
        )
        if self._heads.get(chain) is not None:  # a block may already have passed expiration
            self._run_actions(self.schedule.on_block(chain, self._heads[chain]))
        return True

    async def _scan_all(
        self, bounty: NewBounty, count: int, metadatas: list[dict[str, Any]], budget: float
    ) -> list[ScanResult]:
        """Fetch and scan every artifact concurrently; unfinished or failed ones get an empty result."""
        kind = ArtifactType.coerce(bounty.artifact_type)
        results = [ScanResult() for _ in range(count)]

        async def one(index: int) -> None:
            metadata = metadatas[index]
            if not self.config.bounty_filter.allows(metadata):
                log.debug("bounty %s: artifact %d rejected by --filter", bounty.guid, index)
                return
            try:
                async with self._scan_slots:
                    content = await self.client.fetch_artifact(bounty.uri, index)
                    if content is None:
                        log.info(
                            "bounty %s: artifact %d could not be fetched; not asserting on it",
                            bounty.guid,
                            index,
                        )
                        return
                    try:
                        decoded = kind.decode_content(content)
                    except ValueError as exc:
                        log.info("bounty %s: artifact %d: %s; not asserting on it", bounty.guid, index, exc)
                        return
                    assert decoded is not None
                    results[index] = await self.backend.scan(
                        bounty.guid, kind, decoded, metadata, bounty.chain
                    )
            except Exception as exc:
                log.warning(
                    "bounty %s: scanning artifact %d failed (%s: %s); not asserting on it",
                    bounty.guid,
                    index,
                    exc.__class__.__name__,
                    exc,
                )

        try:
            async with asyncio.timeout(budget):
                async with asyncio.TaskGroup() as tg:
                    for index in range(count):
                        tg.create_task(one(index))
        except TimeoutError:
            log.warning(
                "bounty %s: scan timed out after %.1fs; asserting on the %d artifact(s) finished in time",
                bounty.guid,
                budget,
                sum(1 for r in results if r.bit),
            )
        return results

    async def _bids(
        self,
        guid: str,
        chain: str,
        mask: list[bool],
        verdicts: list[bool],
        confidences: list[float],
        metadatas: list[str],
        params: BountyParameters,
    ) -> list[int]:
        low, high = params.assertion_bid_minimum, params.assertion_bid_maximum
        custom = await self.backend.custom_bid(guid, mask, verdicts, confidences, metadatas, chain)
        if custom is not None:
            bids = bidding.normalize_custom(custom, mask, low, high)
            return bids
        return bidding.bids(self._strategy, mask, confidences, low, high)

    # --- reveal / settle -----------------------------------------------------------------------------

    def _save(self, record: AssertionRecord, **changes: Any) -> AssertionRecord:
        updated = self.store.update(record, **changes)
        self._records[record.guid] = updated
        return updated

    async def _reveal(self, guid: str) -> None:
        record = self._records.get(guid)
        if record is None or record.index is None:
            self.schedule.failed(guid, "reveal", final=True)
            return
        metadata = await self._reveal_metadata(record)
        try:
            await self.client.reveal_assertion(
                guid, record.index, record.nonce, list(record.verdicts), metadata, chain=record.chain
            )
        except TransactionFailed as exc:
            self.schedule.failed(guid, "reveal", final=True)
            self._record_forfeit(record, f"the reveal transaction reverted ({exc})")
            self._raise_in_testing(exc)
            return
        except Exception as exc:
            if self.schedule.failed(guid, "reveal"):
                log.warning("bounty %s: reveal failed (%s); retrying on the next block", guid, exc)
            else:
                self._record_forfeit(record, f"the reveal kept failing ({exc})")
            self._raise_in_testing(exc)
            return
        self.schedule.done(guid, "reveal")
        self._save(record, status=REVEALED)
        self.stats.reveals += 1
        log.info("bounty %s: revealed verdicts=%s", guid, _verdict_text(record.mask, record.verdicts))

    async def _reveal_metadata(self, record: AssertionRecord) -> str:
        text = record.metadata
        if self._metadata_upload and text.startswith("["):
            try:
                async with asyncio.timeout(METADATA_UPLOAD_TIMEOUT):
                    return await self.client.post_metadata(json.loads(text))
            except Exception as exc:  # spec pitfall 26: reveal with the raw string rather than nothing
                log.info(
                    "bounty %s: metadata upload failed (%s); revealing the metadata inline", record.guid, exc
                )
                if getattr(exc, "status", None) in (404, 405):
                    self._metadata_upload = False
        if len(text) > MAX_REVEAL_METADATA:
            log.warning("bounty %s: reveal metadata cut to %d characters", record.guid, MAX_REVEAL_METADATA)
            text = text[:MAX_REVEAL_METADATA]
        return text

    def _record_forfeit(self, record: AssertionRecord, why: str) -> None:
        self.stats.forfeits += 1
        self._save(record, status=FORFEITED)
        log.error("bounty %s: reveal forfeited: %s; the bid is lost, settling anyway", record.guid, why)

    def _forfeit(self, guid: str) -> None:
        record = self._records.get(guid)
        if record is None:
            return
        d = record.deadlines
        self._record_forfeit(record, f"the reveal window [{d.expiration}, {d.reveal_end}) closed first")

    async def _abandon_unless_mined(self, guid: str) -> None:
        """Expiration passed and we never learned our assertion's index: ask the chain before giving up.

        Posting may have failed only on our side: when the connection drops after the transaction went
        out, its receipt and (while the stream is down) its event are both lost, yet it was mined.
        """
        record = self._records.get(guid)
        if record is None:
            self._finish_for_testing(guid)
            return
        if record.index is None:
            try:
                mined = await self._find_own_assertion(record)
            except Exception as exc:
                if self._heads.get(record.chain, 0) + 1 < record.deadlines.reveal_end:
                    log.warning(
                        "bounty %s: could not check whether our assertion was mined (%s); trying again next block",
                        guid,
                        exc,
                    )
                    self.schedule.track(guid, record.chain, record.deadlines, asserted=False)
                    return
                mined = False
            if not mined:
                self._abandon(guid)
                return
        if (current := self._heads.get(record.chain)) is not None:  # the reveal is due now
            self._run_actions(self.schedule.on_block(record.chain, current))

    def _abandon(self, guid: str) -> None:
        record = self._records.pop(guid, None)
        if record is not None:
            self.store.update(record, status=ABANDONED)
            log.error(
                "bounty %s: the assertion was never confirmed before expiration %d; nothing to reveal",
                guid,
                record.expiration,
            )
        self._finish_for_testing(guid)

    async def _settle(self, guid: str) -> None:
        record = self._records.get(guid)
        if record is None:
            self.schedule.failed(guid, "settle", final=True)
            return
        try:
            await self.client.settle(guid, chain=record.chain)
        except TransactionFailed as exc:
            self.schedule.failed(guid, "settle", final=True)
            self._settled(
                record, f"the settle transaction reverted ({exc}); it may have been settled already"
            )
            self._raise_in_testing(exc)
            return
        except Exception as exc:
            if self.schedule.failed(guid, "settle"):
                log.warning("bounty %s: settle failed (%s); retrying on the next block", guid, exc)
            else:
                # Keep the durable status, so the next start tries again.
                log.error("bounty %s: settle kept failing (%s); giving up until the next start", guid, exc)
                self._records.pop(guid, None)
                self._finish_for_testing(guid)
            self._raise_in_testing(exc)
            return
        self.schedule.done(guid, "settle")
        self.stats.settles += 1
        self._settled(record, None)

    def _raise_in_testing(self, exc: Exception) -> None:
        """Testing mode makes transaction errors fatal (reference §2.13); a refused key always is."""
        if isinstance(exc, Unauthorized) or (self.config.testing and isinstance(exc, TransactionError)):
            raise _Fatal(exc)

    def _settled(self, record: AssertionRecord, problem: str | None) -> None:
        self._records.pop(record.guid, None)
        self.store.update(record, status=SETTLED)
        if problem:
            log.warning("bounty %s: %s", record.guid, problem)
        else:
            log.info("bounty %s: settled", record.guid)
        self._finish_for_testing(record.guid)

    def _finish_for_testing(self, guid: str) -> None:
        if not self.config.testing:
            return
        self._testing_open.discard(guid)
        if self.stats.bounties_handled >= self.config.testing and not self._testing_open:
            self._done.set()

    # --- catch-up after a reconnect ------------------------------------------------------------------

    def _start_catch_up(self, chain: str) -> None:
        if chain in self._catch_up_running:
            self._catch_up_again.add(chain)  # reconnected again meanwhile: run once more when done
            return
        self._catch_up_running.add(chain)
        self._spawn(self._catch_up_loop(chain), f"catch-up on {chain}")

    async def _catch_up_loop(self, chain: str) -> None:
        """Run the catch-up until one pass succeeds: a bounty it misses has no other way back to us."""
        backoff = Backoff(CATCH_UP_RETRY_BASE, CATCH_UP_RETRY_CAP)
        try:
            while True:
                self._catch_up_again.discard(chain)
                try:
                    unread = await self._catch_up(chain)
                except (_Fatal, Unauthorized):
                    raise
                except Exception as exc:
                    problem = f"failed ({exc})"
                else:
                    problem = f"could not read {unread} bounty(ies)" if unread else ""
                    if not problem:
                        backoff.reset()
                if problem:
                    delay = backoff.delay()
                    log.warning("catch-up on %s %s; trying again in %.1f s", chain, problem, delay)
                    if not await self._pause(delay):
                        return
                    self._catch_up_again.add(chain)
                if chain not in self._catch_up_again:
                    break
        finally:
            self._catch_up_running.discard(chain)

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; False at once when the engine starts stopping meanwhile."""
        if not self._accepting:
            return False
        stopping = [asyncio.ensure_future(self.shutdown.wait()), asyncio.ensure_future(self._done.wait())]
        try:
            finished, _ = await asyncio.wait(stopping, timeout=seconds)
        finally:
            for waiter in stopping:
                waiter.cancel()
        return not finished and self._accepting

    async def _catch_up(self, chain: str) -> int:
        """Re-read what a reconnect may have hidden: parameters, our own unconfirmed assertions, head,
        quorums, and bounties still open. Returns how many bounties could not be read (to try again)."""
        await self.client.bounty_parameters(chain, refresh=True)
        await self._recover_indexes(chain)
        await self._refresh_head(chain)
        await self._check_quorums(chain)
        found = unread = 0
        # Pages only grow at the end: start from the last page read (read again: it may have grown), so
        # a long-lived engine pages the whole history once, not on every reconnect.
        start = self._catch_up_page.get(chain, 0)
        async for page, guids in self.client.iter_bounty_pages(chain, start_page=start):
            found_here, unread_here = await self._catch_up_page_of(chain, guids)
            found, unread = found + found_here, unread + unread_here
            if not unread:
                self._catch_up_page[chain] = page
        log.info("catch-up on %s done: %d open bounty(ies) had been missed", chain, found)
        return unread

    async def _catch_up_page_of(self, chain: str, guids: list[str]) -> tuple[int, int]:
        """Handle the still-open bounties among ``guids``; returns (found, could not be read)."""
        found = unread = 0
        for guid in guids:
            if self._known(chain, guid) or guid in self._closed:
                continue
            try:
                bounty = await self.client.get_bounty(guid, chain)
            except Exception as exc:
                log.debug("catch-up: bounty %s could not be read: %s", guid, exc)
                unread += 1
                continue
            head = self._heads.get(chain, 0)
            if not still_open(bounty.expiration, head):
                self._closed[guid] = None
                while len(self._closed) > self.config.seen_cache_size * 5:
                    self._closed.popitem(last=False)
                continue
            found += 1
            self._on_new_bounty(
                NewBounty(
                    chain=chain,
                    block_number=head,
                    guid=bounty.guid,
                    artifact_type=bounty.artifact_type,
                    author=bounty.author,
                    amount=bounty.amount,
                    uri=bounty.uri,
                    expiration=bounty.expiration,
                    metadata=bounty.metadata,
                )
            )
        return found, unread


def _unwrap(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error inside a task group's exception group (errors over cancellations)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _unwrap(exc)
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return group.exceptions[0]


__all__ = [
    "EngineClient",
    "EngineConfig",
    "EngineStats",
    "Microengine",
    "combine_metadata",
]
