"""The balance manager's async shells: one-shot transfers, balance view, and the ``maintain`` loop.

Everything here talks to a :class:`BalanceClient` (the ``PolyswarmClient`` facade satisfies it) and
leaves every choice to :func:`~polyswarmclient.services.balancemanager.policy.decide`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Literal, Protocol

from polyswarmclient.errors import (
    ConfigError,
    InsufficientFunds,
    InvalidRequest,
    PolyswarmError,
    TransactionError,
    TransactionFailed,
    TransportError,
    Unauthorized,
    VerificationError,
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

Direction = Literal["deposit", "withdraw"]


class BalanceClient(Protocol):
    """What the balance manager needs from ``PolyswarmClient``."""

    @property
    def address(self) -> str: ...

    async def nct_balance(self, chain: str, address: str | None = None) -> int: ...

    async def eth_balance(self, chain: str, address: str | None = None) -> int: ...

    async def relay_fees(self, chain: str) -> int: ...

    async def relay_deposit(self, amount: int) -> None: ...

    async def relay_withdraw(self, amount: int) -> None: ...

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


# --- deposit / withdraw ---------------------------------------------------------------------------

_SOURCE = {"deposit": "home", "withdraw": "side"}
#: The relay that pays a transfer out, and so charges the fee (spec §5.14).
_PAYER = {"deposit": "side", "withdraw": "home"}


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
) -> list[Transfer]:
    """Move ``amount`` NCT-wei (``None``: the whole balance) home→side or side→home, ``times`` times.

    Refuses before sending anything when the amount does not exceed the paying relay's fee
    (:class:`ConfigError`) or the source balance is short (:class:`InsufficientFunds`). Returns the
    transfers made; stops early between repetitions when ``shutdown`` is requested.
    """
    if amount is not None and amount <= 0:
        raise ValueError("amount must be positive")
    source = _SOURCE[direction]
    fee = await client.relay_fees(_PAYER[direction])
    if amount is not None:
        _check_fee(direction, amount, fee, show)
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
        if direction == "deposit":
            await client.relay_deposit(want)
        else:
            await client.relay_withdraw(want)
        done.append(Transfer(direction, want, fee))
    return done


# --- maintain -------------------------------------------------------------------------------------

_LEVEL = {
    WaitKind.IN_BOUNDS: logging.DEBUG,
    WaitKind.CONFIRMING: logging.INFO,
    WaitKind.STUCK: logging.ERROR,
    WaitKind.HOME_TOO_LOW: logging.ERROR,
    WaitKind.BELOW_FEE: logging.ERROR,
}


class BalanceManager:
    """``maintain``: keep the side-chain NCT balance between bounds, driven by home-chain blocks.

    Run it with ``await BalanceManager(client, policy, testing=N).run(shutdown)`` inside
    ``async with client``. ``run`` returns the number of completed transfers (deposits seen on the
    side chain, withdrawals mined) when ``testing`` of them are done or a shutdown is requested.

    A deposit that never arrives is never repeated: the manager keeps waiting and logs an ERROR
    (again every ``REMIND_EVERY`` blocks). The in-flight deposit lives only in memory, so restarting
    the process is how an operator forgets it once the relay is fixed or the NCT is recovered.
    """

    def __init__(self, client: BalanceClient, policy: Policy, *, testing: int = 0) -> None:
        self.client = client
        self.policy = policy
        self.testing = testing
        self.transfers = 0
        self.in_flight: InFlightDeposit | None = None
        self.last_block: int | None = None
        self._reported: tuple[object, ...] | None = None
        self._reported_at = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Read the relay fees and refuse bounds whose transfers would never be paid out."""
        withdraw_fee = await self.client.relay_fees("home") if self.policy.maximum is not None else 0
        deposit_fee = await self.client.relay_fees("side")
        self.policy = self.policy.with_fees(withdraw_fee=withdraw_fee, deposit_fee=deposit_fee)
        for warning in self.policy.warnings():
            log.warning("%s", warning)

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
        return self.testing > 0 and self.transfers >= self.testing

    # -- one home block ----------------------------------------------------------------------------

    async def step(self, block: int) -> None:
        """Read the balances, decide, act. Errors that retrying cannot fix propagate."""
        try:
            side = await self.client.nct_balance("side")
            home = await self.client.nct_balance("home")
        except Unauthorized:
            raise
        except TransportError as exc:
            log.warning("cannot read balances at home block %d (%s); trying again at the next block", block, exc)
            return
        if self.in_flight is not None:
            self.in_flight = self.in_flight.observe(side)
        decision = decide(BalanceView(block=block, side=side, home=home, in_flight=self.in_flight), self.policy)
        show = self.policy.show
        if decision.arrived is not None:
            sent = decision.arrived
            log.info(
                "deposit of %s sent at home block %d has arrived (side balance %s)",
                show(sent.amount),
                sent.sent_at_block,
                show(side),
            )
            self.in_flight = None
            self.transfers += 1
            if self.done:
                return
        match decision:
            case Deposit(amount=amount):
                await self._deposit(amount, block, side, home)
            case Withdraw(amount=amount):
                await self._withdraw(amount, side)
            case Wait():
                self._report(decision, block)

    async def _deposit(self, amount: int, block: int, side: int, home: int) -> None:
        show = self.policy.show
        log.info(
            "side balance %s is below MINIMUM %s: depositing %s (home balance %s)",
            show(side),
            show(self.policy.minimum),
            show(amount),
            show(home),
        )
        try:
            await self.client.relay_deposit(amount)
        except (VerificationError, Unauthorized, ConfigError):
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
            # The transaction may have been posted: count it as in flight so it is never sent twice.
            log.error(
                "deposit of %s may or may not have been sent (%s); treating it as in flight so it is never sent twice",
                show(amount),
                exc,
            )
            if self.testing:
                raise
        sent_at = await self._home_block(block)
        self.in_flight = InFlightDeposit(amount=amount, sent_at_block=sent_at, side_before=side)
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
            await self.client.relay_withdraw(amount)
        except (VerificationError, Unauthorized, ConfigError):
            raise
        except PolyswarmError as exc:
            # Safe to retry: the next block re-reads the side balance, which shows whether it went through.
            log.error("withdrawal of %s failed: %s; the next home block checks the balance again", show(amount), exc)
            if self.testing:
                raise
            return
        self.transfers += 1
        log.info("withdrew %s to the home chain (the homechain relay deducts its fee on payout)", show(amount))

    async def _home_block(self, fallback: int) -> int:
        """The home block after a deposit was mined (the event we acted on may be several blocks old)."""
        try:
            return max(fallback, await self.client.block_number("home"))
        except PolyswarmError:
            return fallback

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
