"""The devnet ambassador: posts bounties on samples of the demo corpus and settles them.

Pure core (tested without I/O): :func:`resolve_bounty_amount`, :func:`check_duration`,
:func:`bounty_cost`, :func:`settle_due` and :func:`bounty_metadata`. The shell is :class:`Ambassador`:
its :class:`~polyswarmclient.services.supervision.Supervisor` owns a posting loop and an event reader
per chain plus every settle, each settle behind its own error boundary.

Posting, per chain: wait for a free slot (at most ``max_in_flight`` bounties posted and not yet
settled), check the NCT balance covers ``amount + bounty_fee``, upload the bounty's artifacts in one
multipart POST, optionally post bounty metadata (file name, size, mimetype, hashes), post the bounty,
then wait ``submission_rate`` seconds before the next one.

Settling: on ``QuorumReached`` for one of our bounties, when somebody else settled it, or on the first
block at or past ``E+R+V`` (expiration + reveal window + arbiter vote window), whichever comes first.

``testing=N``: post N bounties per chain, then return once every one of them is settled. In that mode a
low balance, an upload failure or a failed transaction is fatal (polyswarm-client defect #30).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from polyswarmclient import metrics
from polyswarmclient.amounts import format_amount
from polyswarmclient.errors import (
    ConfigError,
    InsufficientFunds,
    InvalidRequest,
    PolyswarmError,
    TransactionError,
    TransportError,
    Unauthorized,
)
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.roles import Report, Role
from polyswarmclient.services.supervision import Supervisor
from polyswarmclient.wire.bits import MAX_ARTIFACTS
from polyswarmclient.wire.events import Block, Event, QuorumReached, Reconnected, SettledBounty
from polyswarmclient.wire.models import Bounty, BountyParameters

log = logging.getLogger("ambassador")

MAX_RETRY_DELAY = 60.0


# --- pure core ------------------------------------------------------------------------------------


def resolve_bounty_amount(requested: int | None, minimum_per_artifact: int, artifacts: int) -> int:
    """The amount to offer: ``requested``, or the contract minimum (per artifact × artifacts).

    Raises :class:`ConfigError` when ``requested`` is below that minimum: the contract would refuse it.
    """
    minimum = minimum_per_artifact * artifacts
    if requested is None:
        return minimum
    if requested < minimum:
        raise ConfigError(
            f"--bounty-amount {format_amount(requested)} NCT is below the minimum of "
            f"{format_amount(minimum)} NCT ({format_amount(minimum_per_artifact)} NCT per artifact x "
            f"{artifacts}); raise it or leave it unset"
        )
    return requested


def check_duration(duration: int, max_duration: int) -> None:
    """Raise :class:`ConfigError` unless ``1 <= duration <= max_duration`` (blocks)."""
    if duration < 1 or duration > max_duration:
        raise ConfigError(f"--duration {duration} is out of range: polyswarmd accepts 1 to {max_duration} blocks")


def check_artifacts_per_bounty(count: int) -> None:
    if count < 1 or count > MAX_ARTIFACTS:
        raise ConfigError(f"--artifacts-per-bounty {count} is out of range: use 1 to {MAX_ARTIFACTS}")


def bounty_cost(amount: int, params: BountyParameters) -> int:
    """NCT-wei a bounty takes from the wallet: the amount plus the bounty fee."""
    return amount + params.bounty_fee


def settle_due(block: int, expiration: int, reveal_window: int, vote_window: int, quorum: bool) -> bool:
    """The poster may settle once quorum is reached or a block at or past ``E+R+V`` exists."""
    return quorum or block >= expiration + reveal_window + vote_window


class Sample(Protocol):
    """One file to post (the devnet corpus's ``Sample`` fits)."""

    @property
    def name(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    @property
    def mimetype(self) -> str: ...
    @property
    def sha256(self) -> str: ...


class SampleSource(Protocol):
    """Where bounties' artifacts come from (``polyswarmclient.devnet.corpus.Corpus`` fits)."""

    def pick(self, start: int, count: int) -> Sequence[Sample]: ...


def bounty_metadata(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """Bounty metadata in the polyswarm-artifact ``Bounty`` schema: one file descriptor per artifact.

    ``filesize`` is a decimal string: polyswarmd 2.2.0 validates with polyswarm-artifact 1.3.3, whose
    schema wants a string there (and answers 400 to an integer), as polyswarm-client sends it.
    """
    return [
        {
            "filename": s.name,
            "filesize": str(len(s.content)),
            "mimetype": s.mimetype,
            "sha256": s.sha256,
            "sha1": hashlib.sha1(s.content).hexdigest(),
            "md5": hashlib.md5(s.content).hexdigest(),
        }
        for s in samples
    ]


# --- the service ------------------------------------------------------------------------------------


class AmbassadorClient(Protocol):
    """What the ambassador needs from :class:`polyswarmclient.client.facade.PolyswarmClient`."""

    @property
    def address(self) -> str: ...
    async def bounty_parameters(self, chain: str = ..., *, refresh: bool = ...) -> BountyParameters: ...
    async def block_number(self, chain: str) -> int: ...
    async def get_bounty(self, guid: str, chain: str) -> Bounty: ...
    async def nct_balance(self, chain: str, address: str | None = ...) -> int: ...
    async def upload_artifacts(self, files: list[tuple[str, bytes]]) -> str: ...
    async def post_metadata(self, obj: Any) -> str: ...
    async def post_bounty(
        self,
        amount: int,
        uri: str,
        duration: int,
        *,
        artifact_type: str = ...,
        metadata: str = ...,
        chain: str = ...,
    ) -> str: ...
    async def settle(self, guid: str, chain: str = ...) -> Any: ...
    def events(self, chain: str) -> Any: ...


@dataclass(frozen=True)
class AmbassadorSettings:
    chains: tuple[str, ...] = ("side",)
    #: NCT-wei per bounty; None = the contract minimum per artifact x artifacts.
    bounty_amount: int | None = None
    #: Blocks until the bounty expires (1 .. max_duration).
    duration: int = 10
    artifacts_per_bounty: int = 1
    #: Seconds to wait after posting a bounty before posting the next one (0 = as fast as slots free up).
    submission_rate: float = 5.0
    #: N > 0: post N bounties per chain, return once all are settled; errors become fatal.
    testing: int = 0
    #: Bounties posted but not yet settled, at most.
    max_in_flight: int = 10
    #: Post bounty metadata (names, sizes, hashes) with every bounty.
    metadata: bool = True
    #: Seconds to wait before the first bounty (lets engines started alongside subscribe first).
    start_delay: float = 0.0
    #: First delay before retrying after a low balance or a failed upload (doubles, capped at a minute).
    retry_delay: float = 5.0


class Phase(enum.Enum):
    WAITING = "waiting"  # posted, not settleable yet
    SETTLING = "settling"
    SETTLED = "settled"
    FAILED = "failed"


FINAL = (Phase.SETTLED, Phase.FAILED)


@dataclass
class PostedBounty:
    guid: str
    chain: str
    expiration: int
    uri: str
    amount: int
    samples: tuple[str, ...]
    phase: Phase = Phase.WAITING
    quorum: bool = False


@dataclass
class AmbassadorReport(Report):
    """What a run did; returned by :meth:`Ambassador.run`."""

    posted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class Ambassador(Role[PostedBounty, AmbassadorClient, AmbassadorSettings, AmbassadorReport]):
    """``await Ambassador(client, corpus, settings).run(shutdown)``; embeddable next to other services.

    ``corpus`` supplies the artifacts (the devnet's ``Corpus.for_bounties(artifacts_per_bounty)``); it is
    a parameter because services do not import the devnet package.
    """

    def __init__(
        self, client: AmbassadorClient, corpus: SampleSource, settings: AmbassadorSettings | None = None
    ) -> None:
        report, settings = AmbassadorReport(), settings or AmbassadorSettings()
        super().__init__(client, settings, report, log=log, final=FINAL, settled=Phase.SETTLED)
        self.corpus = corpus
        self._amount: dict[str, int] = {}
        self._posted_count: dict[str, int] = dict.fromkeys(self.settings.chains, 0)
        self._posting_done: set[str] = set()
        self._cursor = 0
        self._slot_freed = asyncio.Event()

    # --- lifecycle ------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Validate the settings against the live bounty parameters (raises :class:`ConfigError`)."""
        check_artifacts_per_bounty(self.settings.artifacts_per_bounty)
        if self.settings.max_in_flight < 1:
            raise ConfigError("max_in_flight must be at least 1")
        for chain in self.settings.chains:
            params = await self.client.bounty_parameters(chain)
            check_duration(self.settings.duration, params.max_duration)
            self._amount[chain] = resolve_bounty_amount(
                self.settings.bounty_amount, params.bounty_amount_minimum, self.settings.artifacts_per_bounty
            )
            log.info(
                "posting on %s: %s NCT per bounty (+%s NCT fee), %d artifact(s), %d blocks",
                chain,
                format_amount(self._amount[chain]),
                format_amount(params.bounty_fee),
                self.settings.artifacts_per_bounty,
                self.settings.duration,
            )

    async def run(self, shutdown: Shutdown) -> AmbassadorReport:
        """Post and settle until ``shutdown`` (or, with ``testing=N``, N bounties per chain are settled)."""
        await self.prepare()

        def start(supervisor: Supervisor) -> None:
            for chain in self.settings.chains:
                supervisor.spawn(partial(self._post_loop, chain), f"posting on {chain}", essential=True)

        await self.supervise(shutdown, stop_note="no new bounties are posted", start=start)
        for posted in self.bounties.values():
            if posted.phase not in FINAL:
                log.warning("bounty %s was not settled; its refund stays in escrow until it is", posted.guid)
        return self.report

    # --- posting --------------------------------------------------------------------------------

    async def _post_loop(self, chain: str) -> None:
        if await self.supervisor.wait_for_stop(self.settings.start_delay):
            return
        while not self.supervisor.stopping:
            if self.settings.testing and self._posted_count[chain] >= self.settings.testing:
                break
            if not await self._free_slot():
                return
            samples = self.corpus.pick(self._cursor, self.settings.artifacts_per_bounty)
            self._cursor += len(samples)
            posted = await self._post_one(chain, samples)
            if posted is None:
                return
            if await self.supervisor.wait_for_stop(self.settings.submission_rate):
                break
        self._posting_done.add(chain)
        log.info("%s: posted %d bounty(ies); settling them", chain, self._posted_count[chain])
        self._check_finished()

    async def _free_slot(self) -> bool:
        """Wait until fewer than ``max_in_flight`` bounties are unsettled; False when stopping first."""
        while self.unfinished() >= self.settings.max_in_flight:
            self._slot_freed.clear()
            log.debug("%d bounties in flight; waiting for a settle", self.unfinished())
            if await self.supervisor.wait_for_stop(wake=self._slot_freed):
                return False
        return True

    async def _post_one(self, chain: str, samples: Sequence[Sample]) -> PostedBounty | None:
        """Post one bounty, retrying low balances and upload failures (fatal in testing mode).

        Returns None when asked to stop meanwhile.
        """
        delay = self.settings.retry_delay
        while not self.supervisor.stopping:
            try:
                return await self._try_post(chain, samples)
            except (Unauthorized, InvalidRequest):
                raise  # retrying cannot help
            except InsufficientFunds as exc:
                if self.settings.testing:
                    raise
                log.error("%s; retrying in %.0f s", exc, delay)
            except TransportError as exc:
                if self.settings.testing:
                    raise
                log.error("posting a bounty on %s failed: %s; retrying in %.0f s", chain, exc, delay)
            except TransactionError as exc:
                if self.settings.testing:
                    raise
                log.error("the bounty transaction on %s failed: %s; trying again in %.0f s", chain, exc, delay)
            if await self.supervisor.wait_for_stop(delay):
                return None
            delay = min(delay * 2, MAX_RETRY_DELAY)
        return None

    async def _try_post(self, chain: str, samples: Sequence[Sample]) -> PostedBounty:
        params = await self.client.bounty_parameters(chain)
        amount = self._amount[chain]
        cost = bounty_cost(amount, params)
        balance = await self.client.nct_balance(chain)
        if balance < cost:
            raise InsufficientFunds(
                f"ambassador {self.client.address} holds {format_amount(balance)} NCT on {chain}, "
                f"but a bounty needs {format_amount(cost)} NCT ({format_amount(amount)} amount + "
                f"{format_amount(params.bounty_fee)} fee); "
                "fund it (e.g. `balancemanager deposit`) or lower --bounty-amount"
            )
        try:
            uri = await self.client.upload_artifacts([(s.name, s.content) for s in samples])
        except Unauthorized:
            raise
        except TransportError as exc:
            raise TransportError(f"uploading {len(samples)} artifact(s) failed: {exc}") from exc
        metadata = ""
        if self.settings.metadata:
            try:
                metadata = await self.client.post_metadata(bounty_metadata(samples))
            except PolyswarmError as exc:
                log.warning("posting bounty metadata failed (%s); posting the bounty without it", exc)
        guid = await self.client.post_bounty(
            amount, uri, self.settings.duration, artifact_type="file", metadata=metadata, chain=chain
        )
        expiration = await self._expiration_of(guid, chain)
        posted = PostedBounty(
            guid=guid,
            chain=chain,
            expiration=expiration,
            uri=uri,
            amount=amount,
            samples=tuple(s.name for s in samples),
        )
        self.bounties[guid] = posted
        self._posted_count[chain] += 1
        self.report.posted.append(guid)
        metrics.BOUNTIES_POSTED.inc(chain=chain)
        log.info(
            "posted bounty %s on %s: %s, %s NCT, expires at block %d",
            guid,
            chain,
            ", ".join(posted.samples),
            format_amount(amount),
            expiration,
        )
        return posted

    async def _expiration_of(self, guid: str, chain: str) -> int:
        try:
            return (await self.client.get_bounty(guid, chain)).expiration
        except PolyswarmError as exc:
            estimate = await self.client.block_number(chain) + self.settings.duration
            log.warning("cannot read bounty %s (%s); assuming it expires at block %d", guid, exc, estimate)
            return estimate

    # --- events and settling ----------------------------------------------------------------------

    def dispatch(self, event: Event) -> None:
        """Route one event. Every branch is idempotent (events repeat after re-connects)."""
        match event:
            case Block(number=number):
                self.on_block(event.chain, number)
            case QuorumReached(bounty_guid=guid) if guid in self.bounties:
                log.info("bounty %s reached quorum", guid)
                self._settle_now(self.bounties[guid], quorum=True)
            case SettledBounty(bounty_guid=guid, settler=settler) if guid in self.bounties:
                if settler.lower() == self.client.address.lower():
                    log.info("bounty %s settled; payout %s NCT", guid, format_amount(event.payout))
                else:
                    self._settle_now(self.bounties[guid], quorum=True)
            case Reconnected():
                log.warning("%s event stream re-connected; checking our bounties for missed quorums", event.chain)
                self.supervisor.spawn(partial(self._recheck, event.chain), f"quorum check on {event.chain}")
            case _:
                pass

    def on_block(self, chain: str, number: int) -> None:
        if not self.newer_block(chain, number):
            return
        if any(b.chain == chain and b.phase is Phase.WAITING for b in self.bounties.values()):
            self.supervisor.spawn(partial(self._advance, chain, number), f"block {number} on {chain}")

    async def _advance(self, chain: str, number: int) -> None:
        params = await self.client.bounty_parameters(chain)
        for posted in list(self.bounties.values()):
            if posted.chain == chain and posted.phase is Phase.WAITING:
                r, v = params.assertion_reveal_window, params.arbiter_vote_window
                if settle_due(number, posted.expiration, r, v, posted.quorum):
                    self._settle_now(posted)

    async def _recheck(self, chain: str) -> None:
        for posted in list(self.bounties.values()):
            if posted.chain == chain and posted.phase is Phase.WAITING:
                bounty = await self.client.get_bounty(posted.guid, chain)
                if bounty.quorum_reached:
                    self._settle_now(posted, quorum=True)

    def _settle_now(self, posted: PostedBounty, *, quorum: bool = False) -> None:
        posted.quorum = posted.quorum or quorum
        if posted.phase is not Phase.WAITING:
            return
        posted.phase = Phase.SETTLING
        self.supervisor.spawn(
            partial(self._settle, posted), f"settle of bounty {posted.guid}", on_error=partial(self._failed, posted)
        )

    async def _settle(self, posted: PostedBounty) -> None:
        await self.settle(posted)
        self._release()

    def _failed(self, posted: PostedBounty, exc: Exception) -> None:
        """The bounty's settle failed: give it up (its refund stays in escrow) and free its slot."""
        if posted.phase not in FINAL:
            posted.phase = Phase.FAILED
            self.report.failed[posted.guid] = f"{type(exc).__name__}: {exc}"
            self._release()

    def _release(self) -> None:
        self._slot_freed.set()
        self._check_finished()

    def _check_finished(self) -> None:
        if not self.settings.testing:
            return
        if len(self._posting_done) < len(self.settings.chains):
            return
        if all(b.phase in FINAL for b in self.bounties.values()):
            log.info("testing: %d bounty(ies) posted and settled; stopping", len(self.bounties))
            self.supervisor.finish()
