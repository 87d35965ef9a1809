"""The balance manager's async shells: one-shot transfers, balance view, and the ``maintain`` loop.

Everything here talks to a :class:`BalanceClient` (the ``PolyswarmClient`` facade satisfies it) and
leaves every choice to :func:`~polyswarmclient.services.balancemanager.policy.decide`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from polyswarmclient import metrics
from polyswarmclient.errors import (
    ConfigError,
    InsufficientFunds,
    InvalidRequest,
    PolyswarmError,
    StateError,
    TransactionError,
    TransactionFailed,
    TransportError,
    Unauthorized,
    VerificationError,
)
from polyswarmclient.services.balancemanager.journal import (
    Direction,
    Origin,
    TransferJournal,
    TransferRecord,
    TxStatus,
    reconcile,
)
from polyswarmclient.services.balancemanager.policy import (
    BalanceView,
    Deposit,
    InFlightDeposit,
    Policy,
    Wait,
    WaitKind,
    Withdraw,
    decide,
    show_nct,
)
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.supervision import FatalErrors, Supervisor
from polyswarmclient.wire.events import Block, Event

log = logging.getLogger("balancemanager")

#: A stuck deposit is reported again after this many home blocks (and whenever its news changes).
REMIND_EVERY = 100
#: With --metrics-addr, the ETH balance gauges are read at most this often (seconds).
ETH_GAUGE_SECONDS = 60.0


class BalanceClient(Protocol):
    """What the balance manager needs from ``PolyswarmClient``."""

    @property
    def address(self) -> str: ...

    async def nct_balance(self, chain: str, address: str | None = None) -> int: ...

    async def eth_balance(self, chain: str, address: str | None = None) -> int: ...

    async def relay_fees(self, chain: str) -> int: ...

    async def relay_deposit(
        self, amount: int, *, on_signed: Callable[[str], None] | None = None
    ) -> tuple[str, ...]: ...

    async def relay_withdraw(
        self, amount: int, *, on_signed: Callable[[str], None] | None = None
    ) -> tuple[str, ...]: ...

    async def transaction_status(self, chain: str, tx_hash: str) -> TxStatus: ...

    async def block_number(self, chain: str) -> int: ...

    def events(self, chain: str) -> AsyncIterator[Event]: ...


# --- view-balance ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Balances:
    """An account's balances in wei (NCT-wei for NCT)."""

    address: str
    home_nct: int
    home_eth: int
    side_nct: int
    side_eth: int


async def read_balances(client: BalanceClient) -> Balances:
    return Balances(
        address=client.address,
        home_nct=await client.nct_balance("home"),
        home_eth=await client.eth_balance("home"),
        side_nct=await client.nct_balance("side"),
        side_eth=await client.eth_balance("side"),
    )


# --- the journal: record, then post; reconcile on start ----------------------------------------------

_SOURCE = {"deposit": "home", "withdraw": "side"}
#: The relay that pays a transfer out, and so charges the fee (spec §5.14).
_PAYER = {"deposit": "side", "withdraw": "home"}


async def send(
    client: BalanceClient,
    journal: TransferJournal,
    direction: Direction,
    amount: int,
    *,
    origin: Origin,
    side_before: int,
    home_block: int | None = None,
) -> TransferRecord:
    """Record the transfer in ``journal``, then post it; the hash is written once signed, before posting.

    Returns the record ``mined`` (a deposit by ``maintain``, which waits for it to arrive) or ``done``.
    On an error the record is ``failed`` when nothing can have gone out (nothing signed, or mined but
    reverted), else left ``posting`` for the next start to reconcile with the chain; the error propagates.
    """
    if home_block is None:
        home_block = await client.block_number("home")
    record = journal.begin(
        direction,
        amount,
        origin=origin,
        home_block=home_block,
        side_block=await client.block_number("side"),
        side_before=side_before,
    )

    def signed(tx_hash: str) -> None:
        journal.add_hash(record.seq, tx_hash)

    post = client.relay_deposit if direction == "deposit" else client.relay_withdraw
    try:
        await post(amount, on_signed=signed)
    except TransactionFailed:
        journal.finish(record.seq, "failed", "mined but reverted: nothing moved")
        raise
    except BaseException:
        if not journal.records[record.seq].tx_hashes:
            journal.finish(record.seq, "failed", "never signed, so never posted")
        raise
    waits = direction == "deposit" and origin == "maintain"
    mined_at = await _home_block(client, home_block)
    return journal.finish(record.seq, "mined" if waits else "done", mined_at=mined_at)


async def _home_block(client: BalanceClient, fallback: int) -> int:
    """The home block now (the event we acted on may be several blocks old); ``fallback`` if unknown."""
    try:
        return max(fallback, await client.block_number("home"))
    except PolyswarmError:
        return fallback


async def recover(client: BalanceClient, journal: TransferJournal, show: ShowFn) -> list[TransferRecord]:
    """Reconcile every ``posting`` record with the chain (``GET /transactions``); the unfinished ones after.

    Runs before anything new is decided. A transport error propagates: the journal is left as it was,
    and the next start asks again.
    """
    for record in journal.unfinished():
        if record.state != "posting":
            continue
        statuses: dict[str, TxStatus] = {}
        for tx_hash in record.tx_hashes:
            statuses[tx_hash] = await client.transaction_status(record.chain, tx_hash)
        settled = journal.put(reconcile(record, statuses))
        if settled.state == "failed":
            log.warning("%s from an earlier run never went out (%s)", settled.describe(show), settled.note)
        else:
            log.info("%s from an earlier run was mined", settled.describe(show))
    return journal.unfinished()


# --- deposit / withdraw ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    direction: Direction
    amount: int
    fee: int

    @property
    def source(self) -> str:
        return _SOURCE[self.direction]

    @property
    def destination(self) -> str:
        return _PAYER[self.direction]


@dataclass(frozen=True)
class Transfers:
    """What a one-shot command did: transfers sent now, and ones an interrupted earlier run had sent."""

    sent: list[Transfer] = field(default_factory=list)
    #: Mined transfers of an earlier, interrupted ``deposit``/``withdraw`` (not sent again).
    earlier: list[TransferRecord] = field(default_factory=list)


class ShowFn(Protocol):
    def __call__(self, wei: int, /) -> str: ...


def _check_fee(direction: Direction, amount: int, fee: int, show: ShowFn) -> None:
    """An explicit amount that does not exceed the paying relay's fee is a bad request (exit 2)."""
    if amount <= fee:
        payer = _PAYER[direction]
        raise ConfigError(
            f"refusing to {direction} {show(amount)}: it does not exceed the {payer}chain relay fee "
            f"{show(fee)}, "
            f"so the {payer}chain relay would never pay it out and the NCT would stay locked in the relay; "
            f"{direction} more than {show(fee)}"
        )


async def transfer(
    client: BalanceClient,
    direction: Direction,
    amount: int | None,
    *,
    times: int = 1,
    show: ShowFn = show_nct,
    shutdown: Shutdown | None = None,
    journal: TransferJournal | None = None,
    again: bool = False,
) -> Transfers:
    """Move ``amount`` NCT-wei (``None``: the whole balance) home→side or side→home, ``times`` times.

    Refuses before sending anything when the amount does not exceed the paying relay's fee
    (:class:`ConfigError`) or the source balance is short (:class:`InsufficientFunds`). Each transfer is
    recorded in ``journal`` before it is posted. A transfer in this direction that an interrupted earlier
    run sent (and the chain mined) is reported in ``earlier`` and not repeated, unless ``again``.
    Stops early between repetitions when ``shutdown`` is requested.
    """
    if amount is not None and amount <= 0:
        raise ValueError("amount must be positive")
    journal = journal if journal is not None else TransferJournal.in_memory()
    source = _SOURCE[direction]
    fee = await client.relay_fees(_PAYER[direction])
    if amount is not None:
        _check_fee(direction, amount, fee, show)
    unfinished = await recover(client, journal, show)
    earlier = [r for r in unfinished if r.direction == direction and r.origin == "once"]
    for record in earlier:  # reported once, by this run: a later run sends again
        journal.finish(record.seq, "done", "mined; reported by the next run")
    if earlier and not again:
        return Transfers(earlier=earlier)
    done: list[Transfer] = []
    for _ in range(max(1, times)):
        if shutdown is not None and shutdown.requested:
            break
        balance = await client.nct_balance(source)
        want = balance if amount is None else amount
        if amount is None and balance <= fee:
            raise InsufficientFunds(
                f"nothing to {direction}: the whole {source} balance {show(balance)} does not exceed the "
                f"{_PAYER[direction]}chain relay fee {show(fee)}, so it would never be paid out"
            )
        if balance < want:
            raise InsufficientFunds(f"insufficient NCT on {source}: have {show(balance)}, need {show(want)}")
        log.info("%s of %s from %s: sending", direction, show(want), source)
        side = balance if source == "side" else await client.nct_balance("side")
        await send(client, journal, direction, want, origin="once", side_before=side)
        done.append(Transfer(direction, want, fee))
    return Transfers(sent=done, earlier=earlier if again else [])


# --- maintain -------------------------------------------------------------------------------------

_LEVEL = {
    WaitKind.IN_BOUNDS: logging.DEBUG,
    WaitKind.CONFIRMING: logging.INFO,
    WaitKind.STUCK: logging.ERROR,
    WaitKind.HOME_TOO_LOW: logging.ERROR,
    WaitKind.BELOW_FEE: logging.ERROR,
}


class HomeBudget:
    """The home NCT that several managers (one per community) spend on refills.

    Communities that share a homechain share its NCT balance: two managers that read it at the same block
    would both decide on a refill the balance covers once. Each manager decides a deposit while holding
    the lock of its homechain (by chain id) and reads the balances again under it; ``send`` returns once
    the deposit is mined, so the next manager's read already shows the NCT spent. Decisions on separate
    homechains do not wait for each other.
    """

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}

    def lock(self, home: Hashable) -> asyncio.Lock:
        """The lock of homechain ``home`` (its chain id)."""
        return self._locks.setdefault(home, asyncio.Lock())


class TransferTally:
    """``--testing N`` across communities: the transfers every manager completed, and who to tell at N."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._listeners: list[Callable[[], None]] = []

    @property
    def done(self) -> bool:
        return self.limit > 0 and self.count >= self.limit

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def add(self) -> None:
        self.count += 1
        if self.done:
            for listener in list(self._listeners):
                listener()


class BalanceManager:
    """``maintain``: keep the side-chain NCT balance between bounds, driven by home-chain blocks.

    Run it with ``await BalanceManager(client, policy, testing=N).run(shutdown)`` inside
    ``async with client``. ``run`` returns the number of completed transfers (deposits seen on the
    side chain, withdrawals mined) when ``testing`` of them are done or a shutdown is requested.

    A deposit that never arrives is never repeated: the manager keeps waiting and logs an ERROR
    (again every ``REMIND_EVERY`` blocks). Every transfer is recorded in ``journal`` (the state
    directory) before it is posted, and on start each unfinished record is reconciled with the chain
    first: a deposit mined by an earlier run is in flight again, so a restart never repeats it. To
    forget a stuck deposit once the relay is fixed or the NCT recovered, move the journal file away.
    """

    def __init__(
        self,
        client: BalanceClient,
        policy: Policy,
        *,
        testing: int = 0,
        journal: TransferJournal | None = None,
        budget: tuple[HomeBudget, Hashable] | None = None,
        tally: TransferTally | None = None,
    ) -> None:
        """``budget``: the home budget shared with other communities' managers and this one's homechain key;
        ``tally``: a ``--testing`` count shared with them (``testing`` is then the tally's limit)."""
        self.client = client
        self.policy = policy
        self.testing = testing if tally is None else tally.limit
        self._budget = budget
        self._tally = tally
        self.journal = journal if journal is not None else TransferJournal.in_memory()
        self.transfers = 0
        self.in_flight: InFlightDeposit | None = None
        #: The journal records behind ``in_flight``.
        self._in_flight_records: list[int] = []
        self.last_block: int | None = None
        self._reported: tuple[object, ...] | None = None
        self._reported_at = 0
        self._eth_read_at = -ETH_GAUGE_SECONDS

    # -- lifecycle ---------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Read the relay fees and refuse bounds whose transfers would never be paid out."""
        withdraw_fee = await self.client.relay_fees("home") if self.policy.maximum is not None else 0
        deposit_fee = await self.client.relay_fees("side")
        self.policy = self.policy.with_fees(withdraw_fee=withdraw_fee, deposit_fee=deposit_fee)
        for warning in self.policy.warnings():
            log.warning("%s", warning)
        await self.resume()

    async def resume(self) -> None:
        """Reconcile the journal with the chain; a deposit an earlier run got mined is in flight again."""
        show = self.policy.show
        deposits: list[TransferRecord] = []
        for record in await recover(self.client, self.journal, show):
            if record.state == "mined" and record.direction == "deposit":
                deposits.append(record)
            elif record.state == "mined":  # withdrawals are not waited on
                self.journal.finish(record.seq, "done")
        if not deposits:
            return
        self._in_flight_records = [r.seq for r in deposits]
        self.in_flight = InFlightDeposit(
            amount=sum(r.amount for r in deposits),
            sent_at_block=max(r.sent_at for r in deposits),
            side_before=min(r.side_before for r in deposits),
        )
        log.info(
            "%s from an earlier run is in flight: no new deposit until the side balance shows it",
            "; ".join(r.describe(show) for r in deposits),
        )

    async def run(self, shutdown: Shutdown) -> int:
        await self.prepare()
        show = self.policy.show
        bounds = f"MINIMUM {show(self.policy.minimum)}, REFILL_AMOUNT {show(self.policy.refill)}"
        if self.policy.maximum is not None and self.policy.withdraw_target is not None:
            bounds += f", --maximum {show(self.policy.maximum)}"
            bounds += f", --withdraw-target {show(self.policy.withdraw_target)}"
        log.info("maintaining the side balance of %s: %s", self.client.address, bounds)
        # step() retries what can be retried, and says so; whatever it lets through stops maintain.
        supervisor = Supervisor(log, shutdown, FatalErrors(always=(Exception,)), stop_note="no further steps")
        if self._tally is not None:  # N transfers across communities also stop this one
            self._tally.subscribe(supervisor.finish)
            if self._tally.done:
                supervisor.finish()
        async with supervisor:
            supervisor.consume(self.client, ["home"], partial(self._on_event, supervisor))
            await supervisor.serve()
        return self.transfers

    async def _on_event(self, supervisor: Supervisor, event: Event) -> None:
        """One step per new home block; none once a stop was requested (never half a step)."""
        if supervisor.stopping or not isinstance(event, Block):
            return
        if self.last_block is None or event.number > self.last_block:
            self.last_block = event.number
            await self.step(event.number)
            if self.done:
                supervisor.finish()

    @property
    def done(self) -> bool:
        if self._tally is not None:
            return self._tally.done
        return self.testing > 0 and self.transfers >= self.testing

    def _completed(self) -> None:
        self.transfers += 1
        if self._tally is not None:
            self._tally.add()

    # -- one home block ----------------------------------------------------------------------------

    async def step(self, block: int) -> None:
        """Read the balances, decide, act. Errors that retrying cannot fix propagate."""
        planned = await self._plan(block)
        if planned is None:
            return
        if isinstance(planned[0], Deposit) and self._budget is not None:
            budget, home = self._budget
            async with budget.lock(home):
                # Another community's manager may have spent the home NCT while we waited: read again.
                planned = await self._plan(block)
                if planned is not None:
                    await self._act(*planned)
            return
        await self._act(*planned)

    async def _plan(self, block: int) -> tuple[Deposit | Withdraw | Wait, BalanceView] | None:
        """The balances read at ``block`` and the decision on them; None when there is nothing to do."""
        view = await self._read(block)
        if view is None:
            return None
        decision = self._decide(view)
        if self.done:
            return None
        return decision, view

    async def _read(self, block: int) -> BalanceView | None:
        try:
            side = await self.client.nct_balance("side")
            home = await self.client.nct_balance("home")
        except Unauthorized:
            raise
        except TransportError as exc:
            log.warning("cannot read balances at home block %d (%s); trying again at the next block", block, exc)
            return None
        metrics.NCT_BALANCE.set(metrics.nct(side), chain="side")
        metrics.NCT_BALANCE.set(metrics.nct(home), chain="home")
        await self._gauge_eth()
        if self.in_flight is not None:
            self.in_flight = self.in_flight.observe(side)
        return BalanceView(block=block, side=side, home=home, in_flight=self.in_flight)

    def _decide(self, view: BalanceView) -> Deposit | Withdraw | Wait:
        decision = decide(view, self.policy)
        show = self.policy.show
        if decision.arrived is not None:
            sent = decision.arrived
            log.info(
                "deposit of %s sent at home block %d has arrived (side balance %s)",
                show(sent.amount),
                sent.sent_at_block,
                show(view.side),
            )
            for seq in self._in_flight_records:
                self.journal.finish(seq, "arrived")
            self.in_flight, self._in_flight_records = None, []
            self._completed()
        return decision

    async def _act(self, decision: Deposit | Withdraw | Wait, view: BalanceView) -> None:
        match decision:
            case Deposit(amount=amount):
                await self._deposit(amount, view.block, view.side, view.home)
            case Withdraw(amount=amount):
                await self._withdraw(amount, view.side)
            case Wait():
                self._report(decision, view.block)

    async def _gauge_eth(self) -> None:
        """With --metrics-addr, read the ETH balances for their gauges, at most once a minute (gas money)."""
        now = time.monotonic()
        if not metrics.enabled() or now - self._eth_read_at < ETH_GAUGE_SECONDS:
            return
        self._eth_read_at = now
        try:
            for chain in ("home", "side"):
                metrics.ETH_BALANCE.set(metrics.nct(await self.client.eth_balance(chain)), chain=chain)
        except TransportError as exc:
            log.debug("cannot read the ETH balances for their gauges: %s", exc)

    async def _deposit(self, amount: int, block: int, side: int, home: int) -> None:
        show = self.policy.show
        log.info(
            "side balance %s is below MINIMUM %s: depositing %s (home balance %s)",
            show(side),
            show(self.policy.minimum),
            show(amount),
            show(home),
        )
        record: TransferRecord | None = None
        try:
            record = await send(
                self.client, self.journal, "deposit", amount, origin="maintain", side_before=side, home_block=block
            )
        except (VerificationError, Unauthorized, ConfigError, StateError):
            raise
        except (TransactionFailed, InsufficientFunds, InvalidRequest) as exc:
            log.error(
                "deposit of %s failed and was not sent: %s; trying again at the next home block",
                show(amount),
                exc,
            )
            if self.testing:
                raise
            return
        except PolyswarmError as exc:
            if not self._unsettled():
                log.error(
                    "deposit of %s failed before anything was signed: %s; trying again at the next home block",
                    show(amount),
                    exc,
                )
                if self.testing:
                    raise
                return
            # The transaction may have been posted: count it as in flight so it is never sent twice.
            log.error(
                "deposit of %s may or may not have been sent (%s); treating it as in flight so it is never sent twice",
                show(amount),
                exc,
            )
            if self.testing:
                raise
        if record is None:
            record = self._unsettled()[-1]
        metrics.TRANSFERS.inc(direction="deposit")
        sent_at = record.mined_at or await _home_block(self.client, block)
        self.in_flight = InFlightDeposit(amount=amount, sent_at_block=sent_at, side_before=side)
        self._in_flight_records = [record.seq]
        log.info(
            "deposit of %s sent at home block %d; expecting it on the side chain within %d home blocks",
            show(amount),
            sent_at,
            self.policy.window,
        )

    async def _withdraw(self, amount: int, side: int) -> None:
        show = self.policy.show
        log.info(
            "side balance %s is above --maximum %s: withdrawing %s",
            show(side),
            show(self.policy.maximum or 0),
            show(amount),
        )
        try:
            await send(self.client, self.journal, "withdraw", amount, origin="maintain", side_before=side)
        except (VerificationError, Unauthorized, ConfigError, StateError):
            raise
        except PolyswarmError as exc:
            # Safe to retry: the next block re-reads the side balance, which shows whether it went through.
            log.error("withdrawal of %s failed: %s; the next home block checks the balance again", show(amount), exc)
            if self.testing:
                raise
            return
        metrics.TRANSFERS.inc(direction="withdraw")
        self._completed()
        log.info("withdrew %s to the home chain (the homechain relay deducts its fee on payout)", show(amount))

    def _unsettled(self) -> list[TransferRecord]:
        """Deposits of this run still ``posting`` (sent, maybe posted, outcome unknown)."""
        return [
            r
            for r in self.journal.unfinished("deposit")
            if r.state == "posting" and r.origin == "maintain" and r.seq not in self._in_flight_records
        ]

    def _report(self, wait: Wait, block: int) -> None:
        news = wait.key != self._reported
        remind = wait.kind is WaitKind.STUCK and block - self._reported_at >= REMIND_EVERY
        level = _LEVEL[wait.kind] if (news or remind) else logging.DEBUG
        log.log(level, "%s", wait.reason)
        if news or remind:
            self._reported, self._reported_at = wait.key, block
        if not self.testing:
            return
        if wait.kind is WaitKind.HOME_TOO_LOW:
            raise InsufficientFunds(f"{wait.reason} (testing mode: giving up)")
        if wait.kind is WaitKind.STUCK and wait.overdue_by >= self.policy.window:
            raise TransactionError(f"{wait.reason} (testing mode: giving up)")
