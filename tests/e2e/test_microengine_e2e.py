"""``microengine`` as a real process on bounties posted by a real ``ambassador``, judged by a real ``arbiter``.

One devnet and one arbiter serve the whole module. Tests run one after another and each waits until its
bounties are settled, so a later engine never finds an earlier test's bounty still open; balances are
compared within a test, per keystore. Payout expectations come from the reference's rules (§5.9) applied
to what the API reports about the bounty (``harness.expected_settlement``).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from tests.e2e.harness import (
    ENGINE_READY,
    KEYFILES,
    PASSWORD,
    Cli,
    Devnet,
    Process,
    assert_asserted_revealed_settled,
    assert_paid_as_the_only_right_expert,
    command,
    free_port,
    http_get,
    nct_text,
    posted_guids,
    scrape,
    state_records,
    wait_until,
)

# The devnet runs with the default DevnetOptions: its reveal window (12 blocks, 3 s when idle) is long
# enough for a killed engine to restart inside it.

#: Blocks from posting to expiration: enough for the engines to fetch, scan and commit.
DURATION = 12
WRONG = "tests.fixtures.wrong_engine:WrongScanner"


def _only_guid(ambassador: Process) -> str:
    guids = posted_guids(ambassador)
    assert len(guids) == 1, f"expected one posted bounty, the ambassador logged {guids}"
    return guids[0]


def _committed(state_dir: Path) -> dict[str, Any] | None:
    """The engine's durable record once its assertion is mined (status asserted, index known)."""
    for record in state_records(state_dir):
        if record["status"] == "asserted" and record["index"] is not None:
            return record
    return None


def _wait_committed(engine: Process, state_dir: Path) -> dict[str, Any]:
    """Wait until ``engine``'s state file shows its assertion committed, and return that record."""
    return wait_until(
        lambda: _committed(state_dir),
        timeout=60,
        what=f"{engine.name}'s state file to show its assertion committed",
        watch=[engine],
    )


def test_done_criterion_eicar_engine_asserts_reveals_settles_and_is_paid(
    devnet: Devnet, arbiter: Process, cli: Cli, tmp_path: Path
) -> None:
    """The issue-3 command finishes a bounty (assert, reveal, settle), exits 0, and the right answer pays."""
    (tmp_path / "keyfiles-testing").symlink_to(KEYFILES, target_is_directory=True)
    before = devnet.balances("microengine_keyfile")
    engine = cli.spawn(
        "microengine",
        [
            *command("microengine"),
            "--backend", "eicar",
            "--polyswarmd-addr", f"localhost:{devnet.port}",
            "--insecure-transport",
            "--keyfile", "keyfiles-testing/microengine_keyfile",
            "--password", PASSWORD,
            "--testing", "1",
        ],
        cwd=tmp_path,
        env={"LOG_LEVEL": "INFO"},  # the command as documented; the env var only makes its steps visible
    )  # fmt: skip
    cli.ready(engine, ENGINE_READY)
    ambassador = cli.ambassador(bounties=1, duration=DURATION)

    engine.expect_exit(0, timeout=90)
    ambassador.expect_exit(0, timeout=60)

    guid = _only_guid(ambassador)
    assert_asserted_revealed_settled(engine, guid)
    assert state_records(tmp_path / ".polyswarm-state") == []  # settled: its record was deleted
    assert_paid_as_the_only_right_expert(devnet, guid, "microengine_keyfile", before)
    assert devnet.balances("microengine_keyfile").home == before.home


def test_engine_that_always_answers_wrong_loses_its_bids_and_fee(devnet: Devnet, arbiter: Process, cli: Cli) -> None:
    """An engine that is wrong on every artifact reveals, settles with payout 0 and is down bids + fee."""
    before = devnet.balances("spare1_keyfile")
    engine = cli.engine("spare1_keyfile", backend=WRONG, name="engine-wrong")
    cli.ready(engine, ENGINE_READY)
    ambassador = cli.ambassador(bounties=1, duration=DURATION, artifacts=2)

    engine.expect_exit(0, timeout=90)
    ambassador.expect_exit(0, timeout=60)

    guid = _only_guid(ambassador)
    assert f"bounty {guid}: settled" in engine.output()
    mine = devnet.assertion_of(guid, "spare1_keyfile")
    # the demo corpus alternates EICAR and benign samples: the first bounty holds one of each
    assert mine["nonce"] != "0" and mine["verdicts"] == [False, True], mine
    assert [v["votes"] for v in devnet.votes(guid)] == [[True, False]]

    settlement = devnet.settlement(guid)
    paid = sum(int(b) for b in mine["bid"]) + devnet.parameters()["assertion_fee"]
    assert settlement.payout("spare1_keyfile") == 0
    lost = before.side - devnet.nct("spare1_keyfile")
    assert lost == paid, f"lost {nct_text(lost)}, paid {nct_text(paid)} in bids and fee"


def test_engine_killed_after_commit_forfeits_its_bid_to_the_engine_that_reveals(
    devnet: Devnet, arbiter: Process, cli: Cli, tmp_path: Path
) -> None:
    """An engine SIGKILLed after committing never reveals: it loses its bid, which the honest engine wins."""
    killed_state = tmp_path / "killed-state"
    before_killed = devnet.balances("spare2_keyfile")
    before_honest = devnet.balances("spare3_keyfile")
    killed = cli.engine("spare2_keyfile", state_dir=killed_state, name="engine-killed")
    honest = cli.engine("spare3_keyfile", name="engine-honest")
    cli.ready(killed, ENGINE_READY)
    cli.ready(honest, ENGINE_READY)
    ambassador = cli.ambassador(bounties=1, duration=DURATION)

    record = _wait_committed(killed, killed_state)
    guid = record["guid"]
    killed.kill()
    assert devnet.block() < record["expiration"], "the kill came too late to precede the reveal window"
    assert devnet.assertion_of(guid, "spare2_keyfile")["nonce"] == "0"

    honest.expect_exit(0, timeout=90)
    ambassador.expect_exit(0, timeout=60)
    assert _only_guid(ambassador) == guid

    never = devnet.assertion_of(guid, "spare2_keyfile")
    assert never["nonce"] == "0", f"the killed engine's assertion was revealed: {never}"
    assert "revealed" not in killed.output()
    honest_assertion = devnet.assertion_of(guid, "spare3_keyfile")
    assert honest_assertion["nonce"] != "0"

    killed_bid = int(never["bid"][0])
    honest_bid = int(honest_assertion["bid"][0])
    amount = int(devnet.bounty(guid)["amount"])
    settlement = devnet.settlement(guid)
    assert settlement.payout("spare2_keyfile") == 0
    # sole winner: its own bid back, the unrevealed (so wrong) bid, and the whole bounty amount
    assert settlement.payout("spare3_keyfile") == honest_bid + killed_bid + amount
    fee = devnet.parameters()["assertion_fee"]
    assert devnet.nct("spare2_keyfile") - before_killed.side == -(killed_bid + fee)
    assert devnet.nct("spare3_keyfile") - before_honest.side == settlement.net("spare3_keyfile")
    assert settlement.net("spare3_keyfile") == killed_bid + amount - fee


def test_three_engines_on_one_bounty_are_paid_by_bid_and_correctness(
    devnet: Devnet, arbiter: Process, cli: Cli
) -> None:
    """Two right engines split the amount and the wrong one's bids in proportion to their bids; wrong gets 0."""
    low, high, wrong = "microengine_keyfile", "spare1_keyfile", "spare2_keyfile"
    before = {k: devnet.nct(k) for k in (low, high, wrong)}
    engines = [
        cli.engine(low, "--bid-strategy", "conservative", name="engine-conservative"),
        cli.engine(high, "--bid-strategy", "default", name="engine-default"),
        cli.engine(wrong, backend=WRONG, name="engine-wrong"),
    ]
    for engine in engines:
        cli.ready(engine, ENGINE_READY)
    ambassador = cli.ambassador(bounties=1, duration=DURATION, artifacts=2)

    for engine in engines:
        engine.expect_exit(0, timeout=90)
    ambassador.expect_exit(0, timeout=60)
    guid = _only_guid(ambassador)

    params = devnet.parameters()
    minimum, maximum = params["assertion_bid_minimum"], params["assertion_bid_maximum"]
    bids = {k: [int(b) for b in devnet.assertion_of(guid, k)["bid"]] for k in (low, high, wrong)}
    assert bids == {low: [minimum, minimum], high: [maximum, maximum], wrong: [maximum, maximum]}
    assert all(devnet.assertion_of(guid, k)["nonce"] != "0" for k in (low, high, wrong))

    settlement = devnet.settlement(guid)
    amount_per_artifact = int(devnet.bounty(guid)["amount"]) // 2
    winners = minimum + maximum
    for keystore in (low, high):
        b = bids[keystore][0]
        per_artifact = b + b * maximum // winners + b * amount_per_artifact // winners
        assert settlement.payout(keystore) == 2 * per_artifact, keystore
    assert settlement.payout(wrong) == 0
    assert settlement.payout(high) > settlement.payout(low) > 2 * minimum

    for keystore in (low, high, wrong):
        change = devnet.nct(keystore) - before[keystore]
        assert change == settlement.net(keystore), f"{keystore}: {nct_text(change)}"
    assert devnet.nct(wrong) - before[wrong] == -(2 * maximum + params["assertion_fee"])
    assert settlement.net(low) > 0 and settlement.net(high) > 0
    # together the winners take the wrong engine's bids and the whole amount, less rounding dust
    won = settlement.payout(low) + settlement.payout(high) - sum(bids[low]) - sum(bids[high])
    assert 0 <= (2 * maximum + 2 * amount_per_artifact) - won <= 8


def test_shutdown_grace_bounds_the_drain_of_a_scan_that_hangs(devnet: Devnet, cli: Cli) -> None:
    """SHUTDOWN_GRACE=1: SIGTERM during a 60 s scan drains for 1 s, names what it cut short, and exits; the
    engine is unready (draining) in between, as an orchestrator needs to see."""
    port = free_port()
    engine = cli.start(
        "microengine",
        "--backend", "tests.fixtures.queue_backends:SlowScanner",
        "--block-time", str(devnet.options.block_time),
        "--metrics-addr", f"127.0.0.1:{port}",
        keystore="spare4_keyfile",
        name="engine-hanging-scan",
        env={"SLOW_SCAN_SECONDS": "60", "SHUTDOWN_GRACE": "1"},
    )  # fmt: skip
    cli.ready(engine, ENGINE_READY)
    ambassador = cli.ambassador(bounties=1, duration=40)
    wait_until(
        lambda: scrape(port).get("polyswarm_bounties_in_flight") == 1,
        timeout=30,
        what="the engine to be scanning the bounty (one bounty in flight)",
        watch=[engine, ambassador],
    )
    engine.popen.send_signal(signal.SIGTERM)
    wait_until(
        lambda: http_get(f"http://127.0.0.1:{port}/readyz")[1].startswith("not ready: draining") or not engine.running,
        timeout=5,
        what="/readyz to say draining",
        watch=[engine],
    )
    engine.wait(timeout=15)  # the scan would take 60 s: the grace period ended the drain
    guid = _only_guid(ambassador)
    assert "waiting up to 1 s" in engine.output()
    assert engine.lines_matching(rf"still running after the grace period were stopped: .*bounty {guid}")
