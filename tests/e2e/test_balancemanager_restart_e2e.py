"""``balancemanager maintain`` killed right after its deposit was posted, then restarted: one deposit, not two."""

from __future__ import annotations

from tests.e2e.harness import NCT, Cli, Devnet, DevnetOptions, nct_text, wait_until

#: The relay waits 3 home blocks, so the deposit is still in flight when the killed manager restarts.
DEVNET_OPTIONS = DevnetOptions(block_time=0.25, relay_confirmations=3)


def test_maintain_killed_after_its_deposit_does_not_deposit_again(devnet: Devnet, cli: Cli) -> None:
    """SIGKILL right after the deposit is mined, restart on the same state dir: home fell by one refill, exactly."""
    who = "spare1_keyfile"
    before = devnet.balances(who)
    fee = devnet.relay_fee("side")
    refill = 4 * NCT
    state = cli.workdir / "state" / "maintain-restart"
    args = ("balancemanager", "maintain", "10010", "4", "--confirmations", "4", "--testing", "1")

    first = cli.start(*args, keystore=who, state_dir=state, name="maintain-first")
    wait_until(
        lambda: devnet.nct(who, "home") < before.home,
        timeout=60,
        what="the first maintain's deposit to be mined on the home chain",
        watch=[first],
        interval=0.02,
    )
    first.kill()

    second = cli.start(*args, keystore=who, state_dir=state, name="maintain-second")
    second.expect_exit(0, timeout=90)

    after = devnet.balances(who)
    assert after.home == before.home - refill, f"home changed by {nct_text(after.home - before.home)}"
    assert after.side == before.side + refill - fee, nct_text(after.side)
    assert not second.lines_matching(r"is below MINIMUM .*: depositing"), second.output()
    assert second.lines_matching(r"from an earlier run is in flight"), second.output()
