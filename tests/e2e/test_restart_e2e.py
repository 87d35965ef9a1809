"""A ``microengine`` killed between sending its reveal and reading the receipt loses nothing (issue 8).

The engine reaches the devnet through a :class:`~tests.e2e.harness.TcpProxy`. Once its assertion is
mined, the proxy is armed to cut everything right after the next ``POST /transactions`` (the reveal): the
devnet mines the reveal, the engine never hears back, and is SIGKILLed at once. Restarted on the same state
directory inside the reveal window, it must read the reveal on chain and settle (``--testing 1`` exits 0)
instead of revealing again into "Assertion already revealed" and logging its bid as forfeited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.e2e.harness import (
    ENGINE_READY,
    RESTART_OPTIONS,
    Cli,
    Devnet,
    Process,
    TcpProxy,
    assert_paid_as_the_only_right_expert,
    posted_guids,
    state_records,
    wait_until,
)

DEVNET_OPTIONS = RESTART_OPTIONS
#: Blocks from posting to expiration: enough for the engine to fetch, scan and commit.
DURATION = 12
KEYSTORE = "microengine_keyfile"


def _record(state: Path, status: str) -> dict[str, Any] | None:
    for record in state_records(state):
        if record["status"] == status:
            return record
    return None


def _asserted(
    cli: Cli, keystore: str, state: Path, name: str, addr: str | None = None
) -> tuple[Process, Process, dict[str, Any]]:
    """Start an engine on ``state`` (through ``addr`` if given) and an ambassador posting one bounty; return
    both and the engine's state record once it shows the assertion mined."""
    engine = cli.engine(keystore, addr=addr, state_dir=state, name=name)
    cli.ready(engine, ENGINE_READY)
    ambassador = cli.ambassador(bounties=1, duration=DURATION)
    record = wait_until(
        lambda: _record(state, "asserted"),
        timeout=60,
        what="the engine's state file to show its assertion mined",
        watch=[engine],
    )
    return engine, ambassador, record


def test_engine_killed_after_sending_its_reveal_settles_on_restart_and_keeps_its_bid(
    devnet: Devnet, arbiter: Process, cli: Cli, tmp_path: Path
) -> None:
    """SIGKILL right after the reveal went out, before its receipt: the restart settles and is paid in full."""
    state = tmp_path / "engine-state"
    before = devnet.balances(KEYSTORE)
    with TcpProxy(devnet.port) as proxy:
        first, ambassador, record = _asserted(cli, KEYSTORE, state, "engine-killed-after-reveal", addr=proxy.addr)
        guid, expiration = record["guid"], record["expiration"]
        # the engine's next transaction is its reveal (after expiration): the cut comes right after it is sent
        proxy.cut_after("POST /transactions", occurrence=1)
        assert devnet.block() < expiration, "armed too late: the reveal may have gone out already"
        wait_until(lambda: proxy.triggered, timeout=30, what="the engine to send its reveal", watch=[first])
        first.kill()
        wait_until(
            lambda: devnet.assertion_of(guid, KEYSTORE)["nonce"] != "0",
            timeout=10,
            what=f"the engine's reveal on bounty {guid} to be on chain (it was sent before the cut)",
        )
        assert _record(state, "asserted") is not None, "the killed engine learned of its reveal after all"
        assert "revealed verdicts" not in first.output()

    second = cli.engine(KEYSTORE, state_dir=state, name="engine-restarted")
    wait_until(
        lambda: f"bounty {guid}: resuming from state (asserted)" in second.output(),
        timeout=30,
        what="the restarted engine to resume the bounty",
        watch=[second],
    )
    reveal_end = expiration + DEVNET_OPTIONS.reveal_window
    assert devnet.block() < reveal_end, "restarted after the reveal window: this test would prove nothing"

    second.expect_exit(0, timeout=90)
    ambassador.expect_exit(0, timeout=60)
    assert posted_guids(ambassador) == [guid]
    log = second.output()
    assert "forfeited" not in log and "already revealed" not in log.lower(), log
    assert f"bounty {guid}: the reveal is on chain" in log
    assert f"bounty {guid}: settled" in log
    assert state_records(state) == []  # settled: nothing left in the state directory
    assert_paid_as_the_only_right_expert(devnet, guid, KEYSTORE, before)


def test_engine_restarted_with_same_state_dir_reveals_and_is_paid(
    devnet: Devnet, arbiter: Process, cli: Cli, tmp_path: Path
) -> None:
    """Nothing lost: an engine killed after committing and restarted in the reveal window reveals and is paid.

    Here (not in test_microengine_e2e) for the 40-block reveal window: the restart must fit in it even on a
    loaded machine, where a cold start took longer than the 12-block window's 3 s."""
    state = tmp_path / "engine-state"
    before = devnet.balances("spare4_keyfile")
    first, ambassador, record = _asserted(cli, "spare4_keyfile", state, "engine-first-run")
    guid, expiration = record["guid"], record["expiration"]
    first.kill()
    assert devnet.block() < expiration, "the kill came too late to precede the reveal window"
    # down while the reveal falls due: the next process has only what the state directory remembers
    wait_until(
        lambda: devnet.block() >= expiration,
        timeout=30,
        what=f"block {expiration} (the reveal window opening)",
        watch=[devnet.process],
    )
    assert devnet.assertion_of(guid, "spare4_keyfile")["nonce"] == "0"

    second = cli.engine("spare4_keyfile", state_dir=state, testing=None, name="engine-restarted")
    wait_until(
        lambda: f"bounty {guid}: settled" in second.output() and state_records(state) == [],
        timeout=60,
        what=f"the restarted engine to settle bounty {guid}",
        watch=[second],
    )
    assert second.stop() == 0
    ambassador.expect_exit(0, timeout=60)

    log = second.output()
    assert f"bounty {guid}: resuming from state (asserted)" in log
    assert f"bounty {guid}: revealed verdicts=[malicious]" in log
    assert "revealed" not in first.output()
    assert_paid_as_the_only_right_expert(devnet, guid, "spare4_keyfile", before)
