"""``microengine --scan-queue`` with two ``worker`` processes on a real redis-server, one SIGKILLed mid-scan.

The engine holds the wallet and does commit / reveal / settle; the workers scan with a slow test backend
(``tests.fixtures.queue_backends:SlowScanner``). The first worker is given scans that never finish in time
and is killed while it holds a job; the second, started then, takes that job over after the claim timeout. Every bounty
must still be asserted with the right verdict, revealed and settled, and the engine's balance must change
by exactly what the settlements say.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import (
    ENGINE_READY,
    Cli,
    Devnet,
    DevnetOptions,
    Process,
    command,
    nct_text,
    posted_guids,
    wait_until,
)
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

#: Longer windows than the default: a job is scanned twice (once by the worker that dies) before the
#: engine asserts, and the devnet mines a block for every transaction besides one per block time.
DEVNET_OPTIONS = DevnetOptions(reveal_window=16, vote_window=8)
#: Blocks from posting to expiration (about 15 s at 0.25 s a block when idle).
DURATION = 60
BOUNTIES = 3
SLOW = "tests.fixtures.queue_backends:SlowScanner"
ENGINE = "spare2_keyfile"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


def _worker(cli: Cli, devnet: Devnet, redis: RedisServer, name: str, scan_seconds: str) -> Process:
    return cli.spawn(
        name,
        [
            *command("worker"),
            "--backend", SLOW,
            "--scan-queue", redis.url,
            "--claim-timeout", "1",
            "--polyswarmd-addr", devnet.addr,
            "--insecure-transport",
            "--log", "INFO",
        ],
        env={"SLOW_SCAN_SECONDS": scan_seconds},
    )  # fmt: skip


def _held_by(redis: RedisServer, consumer_prefix: str) -> bool:
    """A consumer of the job stream whose name starts with ``consumer_prefix`` holds an unacknowledged job."""
    import redis as redis_py
    from polyswarmclient.scanqueue.jobs import GROUP, default_queue, job_stream

    with redis_py.Redis.from_url(redis.url, decode_responses=True) as client:
        try:
            consumers = client.xinfo_consumers(job_stream(default_queue(SLOW)), GROUP)
        except redis_py.ResponseError:  # the stream or group does not exist yet
            return False
    return any(str(c["name"]).endswith(consumer_prefix) and int(c["pending"]) > 0 for c in consumers)


def test_bounties_are_scanned_by_workers_and_a_killed_worker_loses_nothing(
    devnet: Devnet, arbiter: Process, cli: Cli, redis_server: RedisServer, tmp_path: Path
) -> None:
    before = devnet.balances(ENGINE)
    doomed = _worker(cli, devnet, redis_server, "worker-doomed", scan_seconds="600")
    wait_until(lambda: "scanning jobs of" in doomed.output(), timeout=60, what="the first worker to start")
    engine = cli.engine(ENGINE, "--scan-queue", redis_server.url, backend=SLOW, testing=BOUNTIES)
    cli.ready(engine, ENGINE_READY)
    ambassador = cli.ambassador(bounties=BOUNTIES, duration=DURATION)

    # The first job goes to the only worker there is, which never finishes it: kill it mid-scan, then start
    # the worker that must take that job over (and scan the others).
    wait_until(
        lambda: _held_by(redis_server, f"-{doomed.pid}"),
        timeout=60,
        what="the first worker to hold a job",
        watch=[doomed, engine],
    )
    doomed.kill()
    survivor = _worker(cli, devnet, redis_server, "worker-survivor", scan_seconds="0.5")

    engine.expect_exit(0, timeout=180)
    ambassador.expect_exit(0, timeout=60)
    guids = posted_guids(ambassador)
    assert len(guids) == BOUNTIES
    assert "took over job" in survivor.output()
    log = engine.output()
    change = 0
    for guid in guids:
        for step in ("asserting verdicts=", "revealed verdicts=", "settled"):
            assert f"bounty {guid}: {step}" in log, f"the engine never logged {step!r} for {guid}"
        mine = devnet.assertion_of(guid, ENGINE)
        truth = [v["votes"] for v in devnet.votes(guid)]
        assert [mine["verdicts"]] == truth, f"bounty {guid}: we revealed {mine['verdicts']}, the arbiter {truth}"
        change += devnet.settlement(guid).net(ENGINE)
    gained = devnet.nct(ENGINE) - before.side
    assert gained == change > 0, f"the engine gained {nct_text(gained)}, the settlements say {nct_text(change)}"
    assert survivor.stop() == 0
