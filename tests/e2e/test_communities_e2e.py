"""One ``microengine`` process serving two communities: two devnets on separate chains, one wallet.

``alpha`` is the module's devnet (chain ids 1337/1338), ``beta`` a second devnet with chain ids of its own
(2337/2338), each with its own arbiter. The engine takes both with ``--community`` and one keystore;
``--testing N`` counts the bounties of both. Payouts are judged on each chain by the reference's rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    ARBITER_READY,
    NCT,
    PASSWORD,
    Cli,
    Devnet,
    DevnetOptions,
    Process,
    TcpProxy,
    address_of,
    assert_asserted_revealed_settled,
    assert_paid_as_the_only_right_expert,
    command,
    keyfile,
    posted_guids,
    state_records,
    wait_until,
)

DURATION = 12
BETA = DevnetOptions(chain_ids=(2337, 2338))


@pytest.fixture(scope="module")
def beta(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet.start(tmp_path_factory.mktemp("beta"), BETA)
    try:
        yield net
    finally:
        code = net.process.stop(timeout=20) if net.process.running else net.process.returncode
        net.process.cleanup()
    assert code == 0, f"the beta devnet exited with code {code} on SIGTERM"


@pytest.fixture(scope="module")
def beta_arbiter(beta: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    shared = Cli(beta, tmp_path_factory.mktemp("beta-arbiter"))
    process = shared.arbiter(testing=0)
    try:
        shared.ready(process, ARBITER_READY)
        yield process
    finally:
        shared.cleanup()


@pytest.fixture
def beta_cli(beta: Devnet, tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(beta, tmp_path / "beta")
    try:
        yield runner
    finally:
        runner.cleanup()


def _engine(
    cli: Cli,
    keystore: str,
    state: Path,
    communities: dict[str, str],
    testing: int,
    *extra: str,
    ready: tuple[str, ...] = (),
) -> Process:
    argv = [
        *command("microengine"),
        "--backend", "eicar",
        "--block-time", "0.25",
        "--testing", str(testing),
        *(arg for name, addr in communities.items() for arg in ("--community", f"{name}={addr}")),
        "--insecure-transport",
        "--keyfile", str(keyfile(keystore)),
        "--password", PASSWORD,
        "--state-dir", str(state),
        "--log", "info",
        *extra,
    ]  # fmt: skip
    engine = cli.spawn("engine-communities", argv)
    for name in ready or tuple(communities):
        cli.ready(engine, f"[{name}] catch-up on side done")
    return engine


def _one_guid(ambassador: Process) -> str:
    guids = posted_guids(ambassador)
    assert len(guids) == 1, guids
    return guids[0]


def test_one_engine_asserts_reveals_and_settles_in_two_communities(
    devnet: Devnet, arbiter: Process, beta: Devnet, beta_arbiter: Process, cli: Cli, beta_cli: Cli, tmp_path: Path
) -> None:
    """One bounty in each community, one engine and one wallet: both settled and paid, --testing 2 counts both."""
    keystore = "spare1_keyfile"
    before = {"alpha": devnet.balances(keystore), "beta": beta.balances(keystore)}
    state = tmp_path / "state"
    engine = _engine(cli, keystore, state, {"alpha": devnet.addr, "beta": beta.addr}, testing=2)
    posters = {
        "alpha": cli.ambassador(bounties=1, duration=DURATION),
        "beta": beta_cli.ambassador(bounties=1, duration=DURATION),
    }
    engine.expect_exit(0, timeout=120)
    for ambassador in posters.values():
        ambassador.expect_exit(0, timeout=60)

    log = engine.output()
    for name, net in (("alpha", devnet), ("beta", beta)):
        guid = _one_guid(posters[name])
        assert_asserted_revealed_settled(engine, guid)
        assert f"[{name}] bounty {guid}: settled" in log, f"the settle of {guid} is not logged for {name}"
        assert_paid_as_the_only_right_expert(net, guid, keystore, before[name])
        assert (state / name / "known_contracts.json").is_file(), f"{name}'s contracts were not pinned apart"
        assert state_records(state / name) == []  # settled: the record was deleted
    # each bounty was scanned once, in its own community
    assert log.count("asserting verdicts=[malicious]") == 2, log


def test_a_community_taken_down_mid_run_leaves_the_other_serving(
    devnet: Devnet, arbiter: Process, beta: Devnet, cli: Cli, tmp_path: Path
) -> None:
    """beta's polyswarmd goes away after start; alpha's bounty is still asserted, revealed and settled."""
    keystore = "spare2_keyfile"
    before = devnet.balances(keystore)
    with TcpProxy(beta.port) as proxy:
        engine = _engine(
            cli, keystore, tmp_path / "state", {"alpha": devnet.addr, "beta": f"localhost:{proxy.port}"}, testing=1
        )
        proxy.cut()
        wait_until(
            lambda: "[beta] event stream" in engine.output() and "reconnecting" in engine.output(),
            timeout=30,
            what="the engine to notice that beta is gone",
            watch=[engine],
        )
        ambassador = cli.ambassador(bounties=1, duration=DURATION)
        engine.expect_exit(0, timeout=120)
        ambassador.expect_exit(0, timeout=60)
    guid = _one_guid(ambassador)
    assert_asserted_revealed_settled(engine, guid)
    assert_paid_as_the_only_right_expert(devnet, guid, keystore, before)


def test_one_balancemanager_refills_the_sidechains_of_both_communities(
    devnet: Devnet, beta: Devnet, cli: Cli, tmp_path: Path
) -> None:
    """maintain 10005 10 over two communities: one deposit on each chain, each home debited exactly once."""
    who = "balancemanager_keyfile"
    before = {"alpha": devnet.balances(who), "beta": beta.balances(who)}
    assert before["alpha"].side == before["beta"].side == 10_000 * NCT
    argv = [
        *command("balancemanager"), "maintain", "10005", "10", "--testing", "2",
        "--community", f"alpha={devnet.addr}", "--community", f"beta={beta.addr}",
        "--insecure-transport",
        "--keyfile", str(keyfile(who)),
        "--password", PASSWORD,
        "--state-dir", str(tmp_path / "state"),
        "--log", "info",
    ]  # fmt: skip
    maintain = cli.spawn("maintain-communities", argv)
    maintain.expect_exit(0, timeout=90)

    log = maintain.output()
    for name, net in (("alpha", devnet), ("beta", beta)):
        assert len(re.findall(rf"\[{name}\] side balance .* is below MINIMUM .*: depositing 10 NCT", log)) == 1, log
        assert re.search(rf"\[{name}\] deposit of 10 NCT sent at home block \d+ has arrived", log), log
        assert net.nct(who, "home") == before[name].home - 10 * NCT, f"{name}'s home was not debited exactly once"
        assert net.nct(who, "side") == before[name].side + 10 * NCT - net.relay_fee("side")
        assert (tmp_path / "state" / name / f"balancemanager-{address_of(who)}.json").is_file()


def test_a_community_that_refuses_the_api_key_is_stopped_alone(
    devnet: Devnet, arbiter: Process, cli: Cli, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """gamma's polyswarmd answers 401 to the key given for it: gamma stops with one line, alpha settles."""
    gamma = Devnet.start(
        tmp_path_factory.mktemp("gamma"), DevnetOptions(chain_ids=(3337, 3338), api_keys=("right-key",))
    )
    try:
        keystore = "spare3_keyfile"
        before = devnet.balances(keystore)
        engine = _engine(
            cli,
            keystore,
            tmp_path / "state",
            {"alpha": devnet.addr, "gamma": gamma.addr},
            1,
            "--api-key", "gamma=not-the-key", "--allow-key-over-http",
            ready=("alpha",),
        )  # fmt: skip
        ambassador = cli.ambassador(bounties=1, duration=DURATION)
        engine.expect_exit(0, timeout=120)
        ambassador.expect_exit(0, timeout=60)
    finally:
        gamma.process.stop(timeout=20)
        gamma.process.cleanup()
    guid = _one_guid(ambassador)
    assert_asserted_revealed_settled(engine, guid)
    assert_paid_as_the_only_right_expert(devnet, guid, keystore, before)
    log = engine.output()
    refused = [line for line in log.splitlines() if "community gamma" in line and "API key" in line]
    assert refused and "ERROR" in refused[0], log
    assert "not-the-key" not in log
