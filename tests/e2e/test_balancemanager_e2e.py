"""``balancemanager`` as a real process: NCT really moves between the chains through the devnet's relay."""

from __future__ import annotations

from tests.e2e.harness import NCT, Balances, Cli, Devnet, DevnetOptions, nct_text, wait_until

#: The relay waits 3 home blocks, so a deposit is in flight over several of maintain's balance checks.
DEVNET_OPTIONS = DevnetOptions(block_time=0.25, relay_confirmations=3)


def test_deposit_moves_nct_from_home_to_side(devnet: Devnet, cli: Cli) -> None:
    """`balancemanager deposit 10` exits 0; home is 10 NCT lighter, and side 10 NCT (less the relay fee) richer."""
    who = "balancemanager_keyfile"
    before = devnet.balances(who)
    fee = devnet.relay_fee("side")

    deposit = cli.start("balancemanager", "deposit", "10", keystore=who)
    deposit.expect_exit(0, timeout=60)

    assert deposit.lines_matching(r"^deposited 10 NCT from home to side"), deposit.output()
    assert devnet.nct(who, "home") == before.home - 10 * NCT
    expected = before.side + 10 * NCT - fee
    wait_until(
        lambda: devnet.nct(who, "side") >= expected,
        timeout=30,
        what=f"the relay to pay {nct_text(10 * NCT - fee)} out on the side chain",
        watch=[devnet.process],
    )
    assert devnet.balances(who) == Balances(home=before.home - 10 * NCT, side=expected)


def test_maintain_refills_below_minimum_once_per_shortfall(devnet: Devnet, cli: Cli) -> None:
    """`maintain 10010 4 --testing 3` deposits exactly three times (never twice in flight) and ends >= 10010."""
    who = "spare1_keyfile"
    before = devnet.balances(who)
    fee = devnet.relay_fee("side")
    minimum, refill = 10_010 * NCT, 4 * NCT
    assert before.side == 10_000 * NCT, "the devnet funds every keystore with 10 000 NCT on the side chain"

    maintain = cli.start(
        "balancemanager", "maintain", "10010", "4", "--confirmations", "4", "--testing", "3", keystore=who
    )
    maintain.expect_exit(0, timeout=60)

    # Home is debited when the deposit is mined, so a second deposit sent for the same shortfall (while
    # the first was still in the relay) would show here even though the process has already exited.
    after_home = devnet.nct(who, "home")
    assert after_home == before.home - 3 * refill, f"home changed by {nct_text(after_home - before.home)}"
    assert len(maintain.lines_matching(r"is below MINIMUM .*: depositing")) == 3
    assert len(maintain.lines_matching(r"deposit of 4 NCT sent at home block \d+ has arrived")) == 3
    side = devnet.nct(who, "side")
    assert side == before.side + 3 * (refill - fee), nct_text(side)
    assert side >= minimum
