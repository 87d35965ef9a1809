"""The balance policy of ``balancemanager maintain``: a pure function from what we see to what we do.

``decide(view, policy)`` looks at one home-chain block's worth of facts (side and home NCT balances, the
deposit still in flight, if any) and answers :class:`Deposit`, :class:`Withdraw` or :class:`Wait`.
Nothing here does I/O, reads a clock or uses float: every amount is an ``int`` of NCT-wei.

The rules (reference §3.2 with defects #10 and #29 fixed):

* While a deposit is in flight there is never a second one. It is given ``RELAY_LEEWAY + confirmations``
  home blocks; after that it has arrived once the side balance rose above the lowest balance seen since
  it was sent by more than half of what the side relay pays out. Until then it is *stuck*: we keep
  waiting and say so, across restarts too (the service journals it in the state directory); moving
  that journal away is how an operator forgets a stuck deposit.
* A side balance above ``maximum`` is withdrawn down to ``withdraw_target``.
* A side balance below ``minimum`` is refilled with ``refill`` NCT-wei, if the home balance covers it.
* Bounds that cannot work are refused up front (:class:`~polyswarmclient.errors.ConfigError`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from polyswarmclient.amounts import format_amount
from polyswarmclient.errors import ConfigError

#: Home blocks added to ``confirmations`` before a deposit is expected on the side chain.
RELAY_LEEWAY = 5
#: Default ``--confirmations``.
DEFAULT_CONFIRMATIONS = 20

#: How each ``--denomination`` is named next to an amount.
UNITS = {"nct": "NCT", "nct-gwei": "NCT-gwei", "nct-wei": "NCT-wei"}


def show_nct(wei: int, denomination: str = "nct") -> str:
    """``wei`` NCT-wei in ``denomination``, exactly, with its unit: ``show_nct(10**17) == "0.1 NCT"``."""
    return f"{format_amount(wei, denomination)} {UNITS[denomination]}"


@dataclass(frozen=True)
class Policy:
    """What the operator asked for, in NCT-wei, plus the relay fees observed at start.

    ``withdraw_fee`` is charged by the homechain relay when it pays out a withdrawal; ``deposit_fee`` by
    the sidechain relay when it pays out a deposit (spec §5.14). A transfer that does not exceed the
    paying relay's fee is never paid out. ``denomination`` only changes how messages show amounts.
    """

    minimum: int
    refill: int
    maximum: int | None = None
    withdraw_target: int | None = None
    confirmations: int = DEFAULT_CONFIRMATIONS
    withdraw_fee: int = 0
    deposit_fee: int = 0
    denomination: str = "nct"

    def __post_init__(self) -> None:
        for name in ("minimum", "refill", "confirmations", "withdraw_fee", "deposit_fee"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int (NCT-wei), not {type(value).__name__}")
        for name in ("maximum", "withdraw_target"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{name} must be an int (NCT-wei) or None, not {type(value).__name__}")
        self._check_bounds()

    # -- validation --------------------------------------------------------------------------------

    def _check_bounds(self) -> None:
        show = self.show
        if self.minimum <= 0:
            raise ConfigError("MINIMUM must be greater than 0")
        if self.refill <= 0:
            raise ConfigError("REFILL_AMOUNT must be greater than 0")
        if self.confirmations < 0:
            raise ConfigError(f"--confirmations must be 0 or more, not {self.confirmations}")
        if self.maximum is not None and self.withdraw_target is None:
            raise ConfigError("--maximum needs --withdraw-target (the side balance to leave after a withdrawal)")
        if self.withdraw_target is not None and self.maximum is None:
            raise ConfigError("--withdraw-target needs --maximum (the side balance that triggers a withdrawal)")
        if self.maximum is None or self.withdraw_target is None:
            return
        if self.maximum <= 0 or self.withdraw_target <= 0:
            raise ConfigError("--maximum and --withdraw-target must be greater than 0")
        if self.withdraw_target < self.minimum:
            raise ConfigError(
                f"--withdraw-target {show(self.withdraw_target)} is below MINIMUM {show(self.minimum)}: "
                "every withdrawal would be followed by a deposit; raise --withdraw-target"
            )
        if self.maximum < self.minimum:
            raise ConfigError(f"--maximum {show(self.maximum)} is below MINIMUM {show(self.minimum)}; raise --maximum")
        if self.maximum <= self.withdraw_target:
            raise ConfigError(
                f"--maximum {show(self.maximum)} must be greater than --withdraw-target "
                f"{show(self.withdraw_target)}: a withdrawal takes the balance from above the maximum "
                "down to the target"
            )

    def check_fees(self) -> None:
        """Refuse bounds whose transfers the relays would never pay out (spec §5.14)."""
        show = self.show
        if self.refill <= self.deposit_fee:
            raise ConfigError(
                f"REFILL_AMOUNT {show(self.refill)} does not exceed the sidechain relay fee "
                f"{show(self.deposit_fee)}: such a deposit is never paid out; raise REFILL_AMOUNT"
            )
        if self.maximum is not None and self.withdraw_target is not None:
            smallest = self.maximum + 1 - self.withdraw_target  # the balance must EXCEED the maximum
            if smallest <= self.withdraw_fee:
                raise ConfigError(
                    f"the smallest withdrawal (just over --maximum {show(self.maximum)} down to "
                    f"--withdraw-target {show(self.withdraw_target)}) does not exceed the homechain relay "
                    f"fee "
                    f"{show(self.withdraw_fee)}: it would never be paid out and the NCT would stay in the "
                    "relay; widen the gap between --maximum and --withdraw-target"
                )

    def with_fees(self, *, withdraw_fee: int, deposit_fee: int) -> Policy:
        """This policy with the relay fees filled in and checked."""
        policy = replace(self, withdraw_fee=withdraw_fee, deposit_fee=deposit_fee)
        policy.check_fees()
        return policy

    def warnings(self) -> list[str]:
        """Legal but wasteful settings, worth a WARNING line at start."""
        show = self.show
        found: list[str] = []
        if self.maximum is not None and self.minimum - 1 + self.refill > self.maximum:
            found.append(
                f"MINIMUM {show(self.minimum)} + REFILL_AMOUNT {show(self.refill)} can exceed --maximum "
                f"{show(self.maximum)}: a refill may be withdrawn again right away, paying the relay fee "
                "each time; lower REFILL_AMOUNT or raise --maximum"
            )
        return found

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def window(self) -> int:
        """Home blocks a deposit is given before we look for it on the side chain."""
        return RELAY_LEEWAY + self.confirmations

    @property
    def expected_arrival(self) -> int:
        """What the side relay pays out for one refill."""
        return self.refill - self.deposit_fee

    def show(self, wei: int) -> str:
        """``wei`` in this policy's denomination, exactly, with its unit."""
        return show_nct(wei, self.denomination)


@dataclass(frozen=True)
class InFlightDeposit:
    """A deposit sent to the homechain relay and not yet seen on the side chain.

    ``side_low`` is the lowest side balance seen since it was sent (starting with the balance just
    before it); arrival is measured from there, so spending on the side chain meanwhile cannot hide it.
    """

    amount: int
    sent_at_block: int
    side_before: int
    side_low: int = -1

    def __post_init__(self) -> None:
        if self.side_low < 0:
            object.__setattr__(self, "side_low", self.side_before)

    def observe(self, side: int) -> InFlightDeposit:
        """The same deposit after seeing side balance ``side``."""
        return self if side >= self.side_low else replace(self, side_low=side)


@dataclass(frozen=True)
class BalanceView:
    """The facts at one home block: NCT-wei balances and the deposit in flight, if any."""

    block: int
    side: int
    home: int
    in_flight: InFlightDeposit | None = None


class WaitKind(enum.Enum):
    IN_BOUNDS = "in-bounds"  # nothing to do
    CONFIRMING = "confirming"  # a deposit is in flight, inside its window
    STUCK = "stuck"  # a deposit is in flight past its window and not seen on the side chain
    HOME_TOO_LOW = "home-too-low"  # a refill is due but the home balance cannot cover it
    BELOW_FEE = "below-fee"  # a withdrawal is due but would not exceed the relay fee


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Common part: ``arrived`` names an in-flight deposit this view shows has landed (forget it)."""

    arrived: InFlightDeposit | None = None


@dataclass(frozen=True, kw_only=True)
class Move(Decision):
    """Move ``amount`` NCT-wei between the chains through a relay."""

    amount: int


class Deposit(Move):
    """Home to side: the side balance is below the minimum."""


class Withdraw(Move):
    """Side to home: the side balance is above the maximum."""


@dataclass(frozen=True, kw_only=True)
class Wait(Decision):
    kind: WaitKind
    reason: str
    #: STUCK only: home blocks past the deposit's window.
    overdue_by: int = 0
    #: What makes two waits "the same news" for logging (so a steady state is reported once).
    key: tuple[object, ...] = field(default=())


def decide(view: BalanceView, policy: Policy) -> Deposit | Withdraw | Wait:
    """What to do at this home block. Pure; never a second deposit while one is in flight."""
    show = policy.show
    arrived: InFlightDeposit | None = None
    pending = view.in_flight
    if pending is not None:
        pending = pending.observe(view.side)
        waited = view.block - pending.sent_at_block
        if waited < policy.window:
            left = policy.window - waited
            return Wait(
                kind=WaitKind.CONFIRMING,
                reason=(
                    f"deposit of {show(pending.amount)} sent at home block {pending.sent_at_block} is in "
                    "flight; "
                    f"checking the side balance in {left} more home block{'s' if left != 1 else ''}"
                ),
                key=(WaitKind.CONFIRMING, pending.sent_at_block),
            )
        grown = view.side - pending.side_low
        if 2 * grown <= policy.expected_arrival:  # not "more than half": not arrived
            return Wait(
                kind=WaitKind.STUCK,
                reason=(
                    f"deposit of {show(pending.amount)} sent at block {pending.sent_at_block} has not "
                    f"arrived after {waited} blocks; the relay may be down (side balance "
                    f"{show(view.side)}, was {show(pending.side_before)}). No further deposit until it "
                    "arrives; to forget it, move the balancemanager journal in --state-dir away and restart"
                ),
                overdue_by=waited - policy.window,
                key=(WaitKind.STUCK, pending.sent_at_block),
            )
        arrived = pending

    if policy.maximum is not None and policy.withdraw_target is not None and view.side > policy.maximum:
        amount = view.side - policy.withdraw_target
        if amount <= policy.withdraw_fee:
            return Wait(
                kind=WaitKind.BELOW_FEE,
                reason=(
                    f"side balance {show(view.side)} is above --maximum {show(policy.maximum)}, but "
                    f"withdrawing {show(amount)} would not exceed the homechain relay fee "
                    f"{show(policy.withdraw_fee)} and would never be paid out"
                ),
                key=(WaitKind.BELOW_FEE, view.side),
                arrived=arrived,
            )
        return Withdraw(amount=amount, arrived=arrived)

    if view.side < policy.minimum:
        if view.home < policy.refill:
            return Wait(
                kind=WaitKind.HOME_TOO_LOW,
                reason=(
                    f"side balance {show(view.side)} is below MINIMUM {show(policy.minimum)} but the home "
                    f"balance {show(view.home)} cannot cover REFILL_AMOUNT {show(policy.refill)}; send NCT "
                    "to this account on the home chain"
                ),
                key=(WaitKind.HOME_TOO_LOW, view.home),
                arrived=arrived,
            )
        return Deposit(amount=policy.refill, arrived=arrived)

    bounds = f"MINIMUM {show(policy.minimum)}"
    if policy.maximum is not None:
        bounds += f" and --maximum {show(policy.maximum)}"
    return Wait(
        kind=WaitKind.IN_BOUNDS,
        reason=f"side balance {show(view.side)} is within bounds ({bounds})",
        key=(WaitKind.IN_BOUNDS,),
        arrived=arrived,
    )
