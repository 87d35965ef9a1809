"""The balance policy of ``balancemanager maintain``: pure decisions, exact integer amounts."""

from __future__ import annotations

import pytest

from polyswarmclient.amounts import nct
from polyswarmclient.errors import ConfigError
from polyswarmclient.services.balancemanager import Deposit, Wait, WaitKind, Withdraw  # decisions, as re-exported
from polyswarmclient.services.balancemanager.policy import RELAY_LEEWAY, BalanceView, InFlightDeposit, Policy, decide

MIN, REFILL, MAX, TARGET = nct(100), nct(12), nct(200), nct(150)
POLICY = Policy(minimum=MIN, refill=REFILL, confirmations=20)
BOUNDED = Policy(minimum=MIN, refill=REFILL, maximum=MAX, withdraw_target=TARGET, confirmations=20)
RICH = nct(1_000_000)


def view(side: int, home: int = RICH, block: int = 1000, in_flight: InFlightDeposit | None = None) -> BalanceView:
    return BalanceView(block=block, side=side, home=home, in_flight=in_flight)


# --- the plain table ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "home", "policy", "expected"),
    [
        (nct(99), RICH, POLICY, Deposit(amount=REFILL)),
        (0, RICH, POLICY, Deposit(amount=REFILL)),
        (MIN - 1, RICH, POLICY, Deposit(amount=REFILL)),
        (MIN, RICH, POLICY, WaitKind.IN_BOUNDS),
        (nct(10_000), RICH, POLICY, WaitKind.IN_BOUNDS),  # no --maximum: never withdraw
        (MAX, RICH, BOUNDED, WaitKind.IN_BOUNDS),  # at the maximum is not above it
        (MAX + 1, RICH, BOUNDED, Withdraw(amount=MAX + 1 - TARGET)),
        (nct(1000), RICH, BOUNDED, Withdraw(amount=nct(850))),
        (nct(99), REFILL, POLICY, Deposit(amount=REFILL)),  # home exactly covers the refill
        (nct(99), REFILL - 1, POLICY, WaitKind.HOME_TOO_LOW),
        (nct(99), 0, BOUNDED, WaitKind.HOME_TOO_LOW),
    ],
)
def test_decision_table(side: int, home: int, policy: Policy, expected: object) -> None:
    """Below MINIMUM refills, above --maximum withdraws to the target, in between waits."""
    decision = decide(view(side, home), policy)
    if isinstance(expected, WaitKind):
        assert isinstance(decision, Wait) and decision.kind is expected
    else:
        assert decision == expected


def test_amounts_are_exact_integers_in_wei() -> None:
    """A withdrawal is exactly balance minus target, to the last wei, with no float anywhere."""
    side = MAX + 123_456_789_012_345_679
    decision = decide(view(side), BOUNDED)
    assert isinstance(decision, Withdraw)
    assert decision.amount == side - TARGET
    assert type(decision.amount) is int


def test_float_amounts_are_refused() -> None:
    """A policy built with a float amount is a programming error, caught at once."""
    with pytest.raises(TypeError):
        Policy(minimum=100.0, refill=REFILL)  # type: ignore[arg-type]


def test_home_too_low_names_both_balances_and_the_refill() -> None:
    """The reason for not refilling names the side balance, the home balance and REFILL_AMOUNT."""
    decision = decide(view(nct("99.5"), home=nct("3.25")), POLICY)
    assert isinstance(decision, Wait) and decision.kind is WaitKind.HOME_TOO_LOW
    assert "99.5 NCT" in decision.reason and "3.25 NCT" in decision.reason and "12 NCT" in decision.reason


def test_home_too_low_is_the_same_news_until_the_home_balance_changes() -> None:
    """Two blocks with the same home balance give the same report key; a new home balance a new key."""
    a = decide(view(nct(1), home=nct(5), block=10), POLICY)
    b = decide(view(nct(2), home=nct(5), block=11), POLICY)
    c = decide(view(nct(2), home=nct(6), block=12), POLICY)
    assert isinstance(a, Wait) and isinstance(b, Wait) and isinstance(c, Wait)
    assert a.key == b.key != c.key


def test_reasons_use_the_chosen_denomination() -> None:
    """Amounts in messages are shown in --denomination, exactly."""
    policy = Policy(minimum=MIN, refill=REFILL, denomination="nct-gwei")
    decision = decide(view(nct(1), home=1), policy)
    assert isinstance(decision, Wait)
    assert "100000000000 NCT-gwei" in decision.reason and "0.000000001 NCT-gwei" in decision.reason


# --- the deposit in flight ------------------------------------------------------------------------


def sent(block: int = 1000, side_before: int = nct(50)) -> InFlightDeposit:
    return InFlightDeposit(amount=REFILL, sent_at_block=block, side_before=side_before)


def test_no_second_deposit_while_one_is_in_flight() -> None:
    """For every block of the relay window the balance is still low, and still nothing is deposited."""
    pending = sent()
    for block in range(1000, 1000 + RELAY_LEEWAY + 20):
        decision = decide(view(nct(50), block=block, in_flight=pending), POLICY)
        assert isinstance(decision, Wait) and decision.kind is WaitKind.CONFIRMING, block
        assert decision.arrived is None


def test_window_is_leeway_plus_confirmations() -> None:
    """The deposit is checked for after exactly RELAY_LEEWAY + --confirmations home blocks."""
    policy = Policy(minimum=MIN, refill=REFILL, confirmations=3)
    pending = sent(block=500)
    before = decide(view(nct(50), block=500 + RELAY_LEEWAY + 2, in_flight=pending), policy)
    at = decide(view(nct(50), block=500 + RELAY_LEEWAY + 3, in_flight=pending), policy)
    assert isinstance(before, Wait) and before.kind is WaitKind.CONFIRMING
    assert "1 more home block" in before.reason
    assert isinstance(at, Wait) and at.kind is WaitKind.STUCK


def test_arrival_inside_the_window_still_waits() -> None:
    """Even if the balance already rose, the window is honoured before anything else happens."""
    decision = decide(view(nct(62), block=1001, in_flight=sent()), POLICY)
    assert isinstance(decision, Wait) and decision.kind is WaitKind.CONFIRMING


def test_arrival_is_detected_after_the_window() -> None:
    """A side balance grown by more than half the refill means the deposit has landed."""
    block = 1000 + RELAY_LEEWAY + 20
    low = Policy(minimum=nct(60), refill=REFILL)
    decision = decide(view(nct(62), block=block, in_flight=sent()), low)
    assert decision.arrived == sent()
    assert isinstance(decision, Wait) and decision.kind is WaitKind.IN_BOUNDS
    # exactly half is not "more than half"
    half = decide(view(nct(56), block=block, in_flight=sent()), POLICY)
    assert isinstance(half, Wait) and half.kind is WaitKind.STUCK and half.arrived is None
    just_over = decide(view(nct(56) + 1, block=block, in_flight=sent()), POLICY)
    assert just_over.arrived is not None


def test_arrival_then_refill_again_if_still_below_minimum() -> None:
    """Once a deposit has arrived, a still-low balance is refilled again in the same block."""
    block = 1000 + RELAY_LEEWAY + 20
    decision = decide(view(nct(62), block=block, in_flight=sent()), Policy(minimum=nct(70), refill=REFILL))
    assert decision == Deposit(amount=REFILL, arrived=sent())


def test_arrival_measured_from_the_lowest_balance_seen() -> None:
    """Spending on the side chain while the deposit travels does not hide its arrival."""
    pending = sent(side_before=nct(50)).observe(nct(40)).observe(nct(45))
    assert pending.side_low == nct(40)
    decision = decide(view(nct(47), block=2000, in_flight=pending), POLICY)
    assert decision.arrived is not None


def test_stuck_deposit_never_deposits_again() -> None:
    """A deposit that never arrives is reported as stuck on every later block, and never repeated."""
    pending = sent()
    for block in range(1000 + RELAY_LEEWAY + 20, 1000 + 500):
        decision = decide(view(nct(50), home=RICH, block=block, in_flight=pending), POLICY)
        assert isinstance(decision, Wait) and decision.kind is WaitKind.STUCK
        assert decision.overdue_by == block - 1000 - RELAY_LEEWAY - 20
    assert "deposit of 12 NCT sent at block 1000 has not arrived after" in decision.reason
    assert "relay may be down" in decision.reason and "move the balancemanager journal" in decision.reason


def test_stuck_deposit_blocks_withdrawals_too() -> None:
    """While a deposit is unaccounted for nothing moves in either direction."""
    decision = decide(view(nct(500), block=5000, in_flight=sent(side_before=nct(500))), BOUNDED)
    assert isinstance(decision, Wait) and decision.kind is WaitKind.STUCK


def test_stuck_report_is_one_piece_of_news() -> None:
    """A stuck deposit has one report key across blocks, so it is not logged as new every block."""
    a = decide(view(nct(50), block=1100, in_flight=sent()), POLICY)
    b = decide(view(nct(51), block=1101, in_flight=sent()), POLICY)
    assert isinstance(a, Wait) and isinstance(b, Wait) and a.key == b.key


def test_arrival_accounts_for_the_side_relay_fee() -> None:
    """With a sidechain relay fee, arrival is judged on what the relay actually pays out."""
    policy = Policy(minimum=MIN, refill=nct(12), deposit_fee=nct(8))  # pays out 4
    block = 1000 + RELAY_LEEWAY + 20
    assert decide(view(nct(50) + nct("2.5"), block=block, in_flight=sent()), policy).arrived is not None
    assert decide(view(nct(52), block=block, in_flight=sent()), policy).arrived is None


# --- bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"maximum": MAX}, "--maximum needs --withdraw-target"),
        ({"withdraw_target": TARGET}, "--withdraw-target needs --maximum"),
        ({"maximum": MAX, "withdraw_target": MIN - 1}, "below MINIMUM"),
        ({"maximum": MIN - 1, "withdraw_target": MIN}, "below MINIMUM"),
        ({"maximum": MAX, "withdraw_target": MAX}, "must be greater than --withdraw-target"),
        ({"maximum": TARGET, "withdraw_target": MAX}, "must be greater than --withdraw-target"),
        ({"minimum": 0}, "MINIMUM must be greater than 0"),
        ({"refill": 0}, "REFILL_AMOUNT must be greater than 0"),
        ({"confirmations": -1}, "--confirmations"),
    ],
)
def test_invalid_bounds_are_refused(kwargs: dict[str, int], message: str) -> None:
    """Bounds that cannot work are a configuration error (exit 2), with a message naming the flags."""
    args = {"minimum": MIN, "refill": REFILL, **kwargs}
    with pytest.raises(ConfigError, match=message):
        Policy(**args)


def test_maximum_below_minimum_is_refused() -> None:
    """A --maximum under MINIMUM is refused even when the target ordering looks fine."""
    with pytest.raises(ConfigError):
        Policy(minimum=MIN, refill=REFILL, maximum=MIN - 1, withdraw_target=MIN - 2)


def test_withdraw_target_equal_to_minimum_is_allowed() -> None:
    """Withdrawing down to exactly MINIMUM is a valid setting."""
    Policy(minimum=MIN, refill=REFILL, maximum=MAX, withdraw_target=MIN)


def test_withdrawal_that_cannot_exceed_the_home_fee_is_refused() -> None:
    """If even the smallest withdrawal would not exceed the homechain relay fee, maintain refuses to start."""
    gap = MAX - TARGET  # smallest withdrawal is gap + 1 wei
    with pytest.raises(ConfigError, match="never be paid out"):
        BOUNDED.with_fees(withdraw_fee=gap + 1, deposit_fee=0)
    assert BOUNDED.with_fees(withdraw_fee=gap, deposit_fee=0).withdraw_fee == gap


def test_refill_that_cannot_exceed_the_side_fee_is_refused() -> None:
    """A refill the sidechain relay would swallow in fees is refused."""
    with pytest.raises(ConfigError, match="REFILL_AMOUNT"):
        POLICY.with_fees(withdraw_fee=0, deposit_fee=REFILL)


def test_withdrawal_below_fee_waits_instead() -> None:
    """If a fee rose above the withdrawal the policy waits with the reason rather than losing the NCT."""
    policy = Policy(minimum=MIN, refill=REFILL, maximum=MAX, withdraw_target=TARGET, withdraw_fee=nct(1000))
    decision = decide(view(MAX + 1), policy)
    assert isinstance(decision, Wait) and decision.kind is WaitKind.BELOW_FEE
    assert "1000 NCT" in decision.reason


def test_refill_that_overshoots_maximum_is_a_warning() -> None:
    """MINIMUM + REFILL above --maximum is allowed (the orchestration test setup uses it) but warned about."""
    policy = Policy(minimum=nct(100), refill=nct(12), maximum=nct(105), withdraw_target=nct(101))
    assert any("can exceed --maximum" in w for w in policy.warnings())
    assert BOUNDED.warnings() == []
