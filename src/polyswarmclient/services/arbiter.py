"""The devnet arbiter: keeps its stake, votes ground truth on every bounty, and settles.

Pure core (tested without I/O): :func:`vote_status`, :func:`settle_due`, :func:`decide_votes`,
:func:`bloom_is_valid` and :func:`stake_shortfall`. The shell is :class:`Arbiter`: its
:class:`~polyswarmclient.services.supervision.Supervisor` owns an event reader per chain and every
per-bounty action; each action has its own error boundary, so one bad bounty never stops the arbiter.

Timeline of one bounty (``E`` expiration, ``R`` reveal window, ``V`` vote window; spec §5.2):

* on ``NewBounty``: list the artifacts, fetch and scan each one, recompute the bloom;
* on the first block ``> E+R`` (while a vote mined in the next block still lands before ``E+R+V``):
  vote, unless an artifact could not be fetched or scanned (then it declines, and says why);
* on the first block ``>= E+R+V``: settle (arbiters may not settle earlier, even after quorum).

State is in memory only: an arbiter restarted mid-bounty does not vote or settle that bounty again.
On start and after every websocket re-connect it catches up on recent bounties whose vote is still
possible, so bounties posted while it was away are not lost.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from polyswarmclient import metrics
from polyswarmclient.abstractscanner import maybe_await
from polyswarmclient.amounts import format_amount
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import Backend
from polyswarmclient.errors import InsufficientFunds, PolyswarmError, ScanError
from polyswarmclient.eth.bloom import bloom_value, from_words
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.roles import Report, Role
from polyswarmclient.services.supervision import Supervisor
from polyswarmclient.wire.events import Block, Event, NewBounty, QuorumReached, Reconnected, SettledBounty
from polyswarmclient.wire.models import ArtifactEntry, Bloom, Bounty, BountyParameters, StakingParameters

log = logging.getLogger("arbiter")
#: Seconds one artifact's scan may take; past it the arbiter declines to vote on the bounty.
SCAN_TIMEOUT = 60.0

#: How many of the newest bounties a catch-up looks at.
CATCH_UP_WINDOW = 256


# --- pure core ------------------------------------------------------------------------------------


class VoteStatus(enum.Enum):
    EARLY = "early"  # reveal window still open
    OPEN = "open"  # vote now
    MISSED = "missed"  # a vote sent now would land after the window


def vote_status(block: int, expiration: int, reveal_window: int, vote_window: int) -> VoteStatus:
    """Where ``block`` (the newest block seen) stands for a vote on a bounty expiring at ``expiration``.

    A transaction sent now is mined in ``block + 1`` at the earliest, and the contract takes votes
    mined in ``[E+R, E+R+V)``. Like polyswarm-client we wait for the first block past ``E+R``.
    """
    opens = expiration + reveal_window
    closes = opens + vote_window
    if block + 1 >= closes:
        return VoteStatus.MISSED
    if block <= opens:
        return VoteStatus.EARLY
    return VoteStatus.OPEN


def settle_due(block: int, expiration: int, reveal_window: int, vote_window: int) -> bool:
    """An arbiter may settle once a block at or past ``E+R+V`` exists (quorum does not help arbiters)."""
    return block >= expiration + reveal_window + vote_window


def decide_votes(verdicts: Sequence[bool | None]) -> list[bool] | None:
    """One malicious/benign vote per artifact, or None when any artifact has no verdict."""
    if not verdicts or any(v is None for v in verdicts):
        return None
    return [bool(v) for v in verdicts]


def bloom_is_valid(onchain_words: Sequence[int], artifact_hashes: Sequence[str]) -> bool:
    """Does the bounty's on-chain bloom equal the one rebuilt from its artifact listing (spec §5.7)?"""
    if len(onchain_words) != 8:
        return False
    return from_words(onchain_words) == bloom_value(artifact_hashes)


def stake_shortfall(current: int, params: StakingParameters) -> int:
    """NCT-wei to deposit so the stake reaches ``minimum_stake`` (0 when it already does)."""
    return max(0, params.minimum_stake - current)


# --- the service ------------------------------------------------------------------------------------


class ArbiterClient(Protocol):
    """What the arbiter needs from :class:`polyswarmclient.client.facade.PolyswarmClient`."""

    @property
    def address(self) -> str: ...
    async def bounty_parameters(self, chain: str = ..., *, refresh: bool = ...) -> BountyParameters: ...
    async def staking_parameters(self, chain: str) -> StakingParameters: ...
    async def block_number(self, chain: str) -> int: ...
    async def get_bounty(self, guid: str, chain: str) -> Bounty: ...
    async def get_bloom(self, guid: str, chain: str = ...) -> Bloom: ...
    def iter_bounty_guids(self, chain: str) -> Any: ...
    async def list_artifacts(self, uri: str) -> list[ArtifactEntry]: ...
    async def fetch_artifact(self, uri: str, index: int) -> bytes | None: ...
    async def nct_balance(self, chain: str, address: str | None = ...) -> int: ...
    async def staking_balance(
        self, chain: str = ..., *, withdrawable: bool = ..., address: str | None = ...
    ) -> int: ...
    async def stake_deposit(self, amount: int, chain: str = ...) -> Any: ...
    async def vote(self, guid: str, votes: list[bool], valid_bloom: bool, chain: str = ...) -> Any: ...
    async def settle(self, guid: str, chain: str = ...) -> Any: ...
    def events(self, chain: str) -> Any: ...


class Scanner(Protocol):
    """Any scan backend: an :class:`~polyswarmclient.abstractscanner.AbstractScanner` or a 1.x-style object.

    ``setup()``/``teardown()`` are optional and called by :meth:`Arbiter.run`.
    """

    def scan(self, *args: Any) -> Any: ...


@dataclass(frozen=True)
class ArbiterSettings:
    chains: tuple[str, ...] = ("side",)
    #: N > 0: take part in N bounties, exit once each is settled (or declined); errors become fatal.
    testing: int = 0
    #: Look for recent bounties still open for a vote on start and after every re-connect.
    catch_up: bool = True
    #: Outside testing mode, how often to re-check the NCT balance before giving up on staking.
    stake_retries: int = 10
    #: First delay between those checks (doubles, capped at a minute).
    retry_delay: float = 5.0


class Phase(enum.Enum):
    SCANNING = "scanning"
    READY = "ready"  # verdicts known, waiting for the vote window
    VOTING = "voting"
    VOTED = "voted"
    SETTLING = "settling"
    SETTLED = "settled"
    DECLINED = "declined"  # will not vote (artifact missing, window missed, vote failed)


FINAL = (Phase.SETTLED, Phase.DECLINED)


@dataclass
class BountyState:
    guid: str
    chain: str
    expiration: int
    uri: str
    phase: Phase = Phase.SCANNING
    votes: list[bool] | None = None
    valid_bloom: bool = False
    reason: str = ""


@dataclass
class ArbiterReport(Report):
    """What a run did; returned by :meth:`Arbiter.run`."""

    voted: list[str] = field(default_factory=list)
    declined: dict[str, str] = field(default_factory=dict)


class Arbiter(Role[BountyState, ArbiterClient, ArbiterSettings, ArbiterReport]):
    """``await Arbiter(client, backend, settings).run(shutdown)``; embeddable next to other services."""

    def __init__(self, client: ArbiterClient, backend: Scanner, settings: ArbiterSettings | None = None) -> None:
        settings = settings or ArbiterSettings()
        super().__init__(client, settings, ArbiterReport(), log=log, final=FINAL, settled=Phase.SETTLED)
        self.backend = backend
        self._isolated: Backend | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def _scanner(self) -> Backend:
        """The isolated backend (made on first use when :meth:`run` did not start it, as in unit tests)."""
        if self._isolated is None:
            self._isolated = Backend(type(self.backend).__name__, self.backend)
        return self._isolated

    async def run(self, shutdown: Shutdown) -> ArbiterReport:
        """Stake, then vote and settle until ``shutdown`` (or, with ``testing=N``, N bounties are done)."""
        # The backend runs on its own loop in a worker thread, never on this one (see backends/isolation.py).
        self._isolated = Backend(type(self.backend).__name__, self.backend)
        try:
            await self._isolated.setup()
        except ScanError:
            await self._isolated.teardown()
            raise ScanError(
                f"the arbiter backend {type(self.backend).__name__} refused to start (setup() failed)"
            ) from None
        try:
            return await self._run(shutdown)
        finally:
            await self._isolated.teardown()

    async def _run(self, shutdown: Shutdown) -> ArbiterReport:
        for chain in self.settings.chains:
            await self.ensure_stake(chain, shutdown)

        def start(supervisor: Supervisor) -> None:
            for chain in self.settings.chains if self.settings.catch_up else ():
                supervisor.spawn(partial(self.catch_up, chain), f"catch-up on {chain}")

        supervisor = await self.supervise(shutdown, stop_note="no new bounties are taken", start=start)
        self._log_unfinished()
        if self.settings.testing and self.report.declined and supervisor.finished:
            reasons = "; ".join(f"{guid}: {why}" for guid, why in self.report.declined.items())
            raise PolyswarmError(f"the arbiter declined {len(self.report.declined)} bounty(ies): {reasons}")
        return self.report

    def _done(self) -> int:
        return len(self.bounties) - self.unfinished()

    def _log_unfinished(self) -> None:
        for state in self.bounties.values():
            if state.phase not in FINAL:
                log.warning(
                    "bounty %s left %s: this arbiter will not vote on or settle it",
                    state.guid,
                    state.phase.value,
                )

    # --- staking --------------------------------------------------------------------------------

    async def ensure_stake(self, chain: str, shutdown: Shutdown | None = None) -> None:
        """Deposit the shortfall up to ``minimum_stake``; a clear error when the wallet cannot pay it."""
        params = await self.client.staking_parameters(chain)
        current = await self.client.staking_balance(chain)
        shortfall = stake_shortfall(current, params)
        if shortfall == 0:
            log.info(
                "stake on %s is %s NCT (minimum %s)",
                chain,
                format_amount(current),
                format_amount(params.minimum_stake),
            )
            return
        delay = self.settings.retry_delay
        attempts = 0 if self.settings.testing else self.settings.stake_retries
        while True:
            balance = await self.client.nct_balance(chain)
            if balance >= shortfall:
                break
            message = (
                f"arbiter {self.client.address} needs {format_amount(shortfall)} NCT on {chain} to reach "
                f"the minimum stake of {format_amount(params.minimum_stake)} NCT "
                f"(staked: {format_amount(current)}), but holds "
                f"only {format_amount(balance)} NCT; fund it (e.g. `balancemanager deposit`) and start again"
            )
            if attempts <= 0:
                raise InsufficientFunds(message)
            attempts -= 1
            log.error("%s; checking again in %.0f s", message, delay)
            if await self._pause(delay, shutdown):
                raise InsufficientFunds(message)
            delay = min(delay * 2, 60.0)
        log.info("staking %s NCT on %s to reach the minimum stake", format_amount(shortfall), chain)
        await self.client.stake_deposit(shortfall, chain)

    async def _pause(self, seconds: float, shutdown: Shutdown | None) -> bool:
        """Sleep; True when a stop was requested meanwhile."""
        if shutdown is None:
            await asyncio.sleep(seconds)
            return False
        return await shutdown.wait(seconds)

    # --- events ---------------------------------------------------------------------------------

    def dispatch(self, event: Event) -> None:
        """Route one event. Every branch is idempotent (events repeat after re-connects)."""
        match event:
            case NewBounty():
                self.on_bounty(
                    event.guid, event.chain, event.expiration, event.uri, event.artifact_type, event.metadata
                )
            case Block(number=number):
                self.on_block(event.chain, number)
            case QuorumReached(bounty_guid=guid) if guid in self.bounties:
                log.info("bounty %s reached quorum", guid)
            case SettledBounty(bounty_guid=guid, settler=settler) if guid in self.bounties:
                log.debug("bounty %s settled by %s", guid, settler)
            case Reconnected():
                log.warning("%s event stream re-connected; catching up on bounties posted meanwhile", event.chain)
                if self.settings.catch_up:
                    self.supervisor.spawn(partial(self.catch_up, event.chain), f"catch-up on {event.chain}")
            case _:
                pass

    def _accepting(self) -> bool:
        if self.supervisor.stopping:
            return False
        return not (self.settings.testing and len(self.bounties) >= self.settings.testing)

    def on_bounty(self, guid: str, chain: str, expiration: int, uri: str, artifact_type: Any, metadata: Any) -> None:
        if guid in self.bounties:
            return
        if chain not in self.settings.chains:
            return
        if not self._accepting():
            log.debug("ignoring bounty %s (not taking new bounties)", guid)
            return
        state = BountyState(guid=guid, chain=chain, expiration=expiration, uri=uri)
        self.bounties[guid] = state
        log.info("new bounty %s on %s, expires at block %d", guid, chain, expiration)
        self._spawn_for(state, partial(self._assess, state, artifact_type, metadata), "assessment")

    def on_block(self, chain: str, number: int) -> None:
        if not self.newer_block(chain, number):
            return
        if any(s.chain == chain and s.phase in (Phase.READY, Phase.VOTED) for s in self.bounties.values()):
            self.supervisor.spawn(partial(self._advance, chain, number), f"block {number} on {chain}")

    async def _advance(self, chain: str, number: int) -> None:
        params = await self.client.bounty_parameters(chain)
        r, v = params.assertion_reveal_window, params.arbiter_vote_window
        for state in list(self.bounties.values()):
            if state.chain != chain:
                continue
            if state.phase is Phase.READY:
                status = vote_status(number, state.expiration, r, v)
                if status is VoteStatus.OPEN:
                    state.phase = Phase.VOTING
                    self._spawn_for(state, partial(self._vote, state), "vote")
                elif status is VoteStatus.MISSED:
                    self._decline(
                        state,
                        f"vote window missed (block {number}, window closes at {state.expiration + r + v})",
                    )
            elif state.phase is Phase.VOTED and settle_due(number, state.expiration, r, v):
                state.phase = Phase.SETTLING
                self._spawn_for(state, partial(self._settle, state), "settle")

    # --- per-bounty actions -------------------------------------------------------------------------

    async def _assess(self, state: BountyState, artifact_type: Any, metadata: Any) -> None:
        listing = await self.client.list_artifacts(state.uri)
        if not listing:
            self._decline(state, f"artifact URI {state.uri} lists no artifacts")
            return
        per_artifact = metadata if isinstance(metadata, list) and len(metadata) == len(listing) else None
        verdicts = await asyncio.gather(
            *(
                self._scan_one(state, i, artifact_type, per_artifact[i] if per_artifact else None)
                for i in range(len(listing))
            )
        )
        votes = decide_votes(verdicts)
        if votes is None:
            missing = [str(i) for i, v in enumerate(verdicts) if v is None]
            self._decline(state, f"artifact(s) {', '.join(missing)} could not be fetched or scanned")
            return
        state.votes = votes
        state.valid_bloom = await self._check_bloom(state, [entry.hash for entry in listing])
        if state.phase is Phase.SCANNING:
            state.phase = Phase.READY
            log.info("bounty %s: votes %s, valid bloom %s", state.guid, votes, state.valid_bloom)
            latest = self._latest_block.get(state.chain)
            if latest is not None:
                await self._advance(state.chain, latest)

    async def _scan_one(self, state: BountyState, index: int, artifact_type: Any, metadata: Any) -> bool | None:
        try:
            content = await self.client.fetch_artifact(state.uri, index)
        except PolyswarmError as exc:
            log.error("bounty %s: cannot fetch artifact %d: %s", state.guid, index, exc)
            return None
        if content is None:
            log.error("bounty %s: artifact %d of %s could not be fetched", state.guid, index, state.uri)
            return None
        try:
            kind = ArtifactType.coerce(artifact_type or "file")
            async with asyncio.timeout(SCAN_TIMEOUT):
                result = await self._scanner().scan(state.guid, kind, content, metadata, state.chain)
        except TimeoutError:
            log.error(
                "bounty %s: the backend %s did not finish artifact %d within %.0f s",
                state.guid,
                type(self.backend).__name__,
                index,
                SCAN_TIMEOUT,
            )
            return None
        except Exception as exc:
            log.error(
                "bounty %s: the backend failed on artifact %d: %s: %s",
                state.guid,
                index,
                type(exc).__name__,
                exc,
            )
            return None
        if not result.bit:
            log.error("bounty %s: the backend gave no verdict for artifact %d", state.guid, index)
            return None
        return bool(result.verdict)

    async def _check_bloom(self, state: BountyState, hashes: list[str]) -> bool:
        """True only when the on-chain bloom could be read and matches the listing."""
        try:
            bloom = await self.client.get_bloom(state.guid, state.chain)
        except PolyswarmError as exc:
            log.warning("bounty %s: cannot read its bloom (%s); voting valid_bloom=False", state.guid, exc)
            return False
        valid = bloom_is_valid(list(bloom.words), hashes)
        if not valid:
            log.warning("bounty %s: the on-chain bloom does not match its artifacts", state.guid)
        return valid

    async def _vote(self, state: BountyState) -> None:
        assert state.votes is not None
        log.info("voting on bounty %s: %s (valid bloom %s)", state.guid, state.votes, state.valid_bloom)
        await self.client.vote(state.guid, state.votes, state.valid_bloom, state.chain)
        state.phase = Phase.VOTED
        self.report.voted.append(state.guid)
        metrics.VOTES.inc(chain=state.chain)

    async def _settle(self, state: BountyState) -> None:
        await self.settle(state)
        self._finish()

    def _decline(self, state: BountyState, reason: str) -> None:
        log.error("giving up bounty %s: %s", state.guid, reason)
        state.phase = Phase.DECLINED
        state.reason = reason
        self.report.declined[state.guid] = reason
        self._finish()

    def _finish(self) -> None:
        if self.settings.testing and (done := self._done()) >= self.settings.testing:
            log.info("testing: %d bounty(ies) done; stopping", done)
            self.supervisor.finish()

    # --- catch-up -------------------------------------------------------------------------------

    async def catch_up(self, chain: str) -> None:
        """Take up recent bounties this arbiter never saw whose vote is still possible."""
        recent: deque[str] = deque(maxlen=CATCH_UP_WINDOW)
        guids = self.client.iter_bounty_guids(chain)
        if hasattr(guids, "__aiter__"):
            async for guid in guids:
                recent.append(guid)
        else:
            recent.extend(await maybe_await(guids))
        unseen = [g for g in recent if g not in self.bounties]
        if not unseen:
            return
        block = await self.client.block_number(chain)
        params = await self.client.bounty_parameters(chain)
        self._latest_block[chain] = max(self._latest_block.get(chain, -1), block)
        for guid in unseen:
            if guid in self.bounties or not self._accepting():
                continue
            bounty = await self.client.get_bounty(guid, chain)
            status = vote_status(block, bounty.expiration, params.assertion_reveal_window, params.arbiter_vote_window)
            if status is VoteStatus.MISSED:
                continue
            log.info("catching up on bounty %s", guid)
            self.on_bounty(guid, chain, bounty.expiration, bounty.uri, bounty.artifact_type, bounty.metadata)

    # --- task ownership -------------------------------------------------------------------------

    def _spawn_for(self, state: BountyState, work: Callable[[], Awaitable[None]], step: str) -> None:
        """Run one step of a bounty; an error gives the bounty up (the arbiter goes on, unless testing)."""

        def give_up(exc: Exception) -> None:
            if state.phase not in FINAL:
                self._decline(state, f"{type(exc).__name__}: {exc}")

        self.supervisor.spawn(work, f"{step} of bounty {state.guid}", on_error=give_up)
