"""``ambassador`` and ``arbiter`` as real processes against ``polyswarmd-devnet`` (slow; run with -m e2e)."""

from __future__ import annotations

from tests.e2e.harness import ARBITER_READY, Cli, DevnetOptions

#: No microengine reveals here, so short windows are safe; this module runs its own arbiter.
DEVNET_OPTIONS = DevnetOptions(block_time=0.2, reveal_window=3, vote_window=4)


def test_ambassador_and_arbiter_settle_two_bounties_and_exit_0(cli: Cli) -> None:
    """--testing 2 on both: two bounties posted, voted, settled; both processes exit 0."""
    arbiter = cli.start("arbiter", "--testing", "2", keystore="arbiter_keyfile")
    cli.ready(arbiter, ARBITER_READY)
    ambassador = cli.start(
        "ambassador",
        "--testing", "2",
        "--duration", "3",
        "--submission-rate", "0.2",
        "--artifacts-per-bounty", "2",
        keystore="ambassador_keyfile",
    )  # fmt: skip

    ambassador.expect_exit(0, timeout=120)
    arbiter.expect_exit(0, timeout=120)

    amb_log, arb_log = ambassador.output(), arbiter.output()
    assert amb_log.count("posted bounty") == 2
    assert arb_log.count("voting on bounty") == 2
    assert "2 settled" in arb_log and "2 settled" in amb_log
