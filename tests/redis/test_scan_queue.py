"""The scan queue against a real redis-server: results, acknowledgement, take-over, expiry, Redis restarts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from polyswarmclient import metrics
from polyswarmclient.scanqueue.jobs import GROUP, job_stream, reply_stream
from polyswarmclient.scanqueue.producer import QueueScanner
from tests.fixtures.queue_backends import SlowScanner
from tests.helpers import wait_until
from tests.redis.conftest import BENIGN, EICAR, ENGINE, QUEUE, ArtifactServer, bounty
from tests.redis_server import RedisServer

JOBS = job_stream(QUEUE)
REPLIES = reply_stream(QUEUE, ENGINE)
SLOW = "tests.fixtures.queue_backends:SlowScanner"


async def pending(producer: QueueScanner) -> int:
    summary = await producer.redis.xpending(JOBS, GROUP)
    return int(summary["pending"])


async def test_workers_scan_every_artifact_and_the_engine_gets_each_verdict(
    producer: QueueScanner, artifacts: ArtifactServer, start_worker: Any
) -> None:
    """Three artifacts, two workers: the engine gets the eicar verdict of each, in order, and every job is
    acknowledged and deleted from the job stream."""
    await start_worker(name="w1")
    await start_worker(name="w2")
    uri = artifacts.add(BENIGN, EICAR, b"more text")
    scanned = await producer.scan(bounty(uri), budget=10)
    assert [(r.bit, r.verdict) for r in scanned.results] == [(True, False), (True, True), (True, False)]
    assert scanned.skipped == ""
    assert await pending(producer) == 0
    assert await producer.redis.xlen(JOBS) == 0


async def test_a_job_is_acknowledged_only_once_its_result_is_written(
    producer: QueueScanner, artifacts: ArtifactServer, start_worker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the worker scans, the job is pending in the group and no result exists; once the result is on the
    reply stream, the job is acknowledged."""
    monkeypatch.setenv("SLOW_SCAN_SECONDS", "1.5")
    await start_worker(SlowScanner)
    uri = artifacts.add(EICAR)
    scan = asyncio.create_task(producer.scan(bounty(uri), budget=10))
    await wait_until(lambda: producer.stats.published == 1, 5, "the job to be published")
    for _ in range(10):  # sampled during the scan
        assert await pending(producer) == 1
        assert await producer.redis.xlen(REPLIES) == 0
        await asyncio.sleep(0.1)
    scanned = await scan
    assert scanned.results[0].verdict is True
    assert await producer.redis.xlen(REPLIES) == 1
    assert await pending(producer) == 0


async def test_the_job_of_a_killed_worker_is_taken_over_by_another(
    producer: QueueScanner, artifacts: ArtifactServer, redis_server: RedisServer, worker_process: Any
) -> None:
    """A worker SIGKILLed in the middle of a scan leaves its job pending; a second worker claims it after the
    claim timeout and the engine still gets the verdict within the bounty's deadline."""
    common = [
        "--backend", SLOW, "--scan-queue", redis_server.url, "--queue", QUEUE, "--claim-timeout", "1",
        "--polyswarmd-addr", artifacts.addr, "--insecure-transport", "--log", "INFO",
    ]  # fmt: skip
    first = worker_process("first", *common, env={"SLOW_SCAN_SECONDS": "30"})
    uri = artifacts.add(EICAR)
    scan = asyncio.create_task(producer.scan(bounty(uri), budget=40))

    async def held_by_first() -> bool:
        consumers = await producer.redis.xinfo_consumers(JOBS, GROUP)
        return any(c["pending"] == 1 for c in consumers)

    for _ in range(300):
        if await held_by_first():
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the first worker never took the job:\n{first.output()}")
    first.kill()
    second = worker_process("second", *common, env={"SLOW_SCAN_SECONDS": "0.2"})
    scanned = await asyncio.wait_for(scan, 30)
    assert scanned.results[0].verdict is True, second.output()
    assert "took over job" in second.output()
    assert await pending(producer) == 0
    assert second.terminate() == 0


async def test_a_job_past_its_deadline_is_dropped_unscanned(
    producer: QueueScanner, artifacts: ArtifactServer, start_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With no worker running, the engine gives up at the deadline; the worker started later drops the job
    with a log line, never scans it, and acknowledges it."""
    uri = artifacts.add(EICAR)
    scanned = await producer.scan(bounty(uri), budget=0.3)
    assert scanned.results[0].bit is False  # no result: no assertion on it
    assert producer.stats.unanswered == 1
    caplog.set_level(logging.INFO, logger="worker")
    handle = await start_worker()
    await wait_until(lambda: handle.worker.stats.expired == 1, 10, "the expired job to be dropped")
    assert handle.worker.stats.scanned == 0
    assert any("dropped, not scanned" in r.getMessage() for r in caplog.records)
    assert await pending(producer) == 0
    assert await producer.redis.xlen(JOBS) == 0


async def test_a_late_or_duplicate_result_is_ignored(producer: QueueScanner, artifacts: ArtifactServer) -> None:
    """A result for a job nobody waits for (late, or written twice) changes nothing and is counted."""
    from polyswarmclient.abstractscanner import ScanResult
    from polyswarmclient.scanqueue.jobs import ScanReply

    reply = ScanReply("f" * 32, "3b0ab5c6-40f4-4a3b-a9ae-7bb4c5f1a2d0", 0, ScanResult(True, True), "w9", 1.0)
    await producer.redis.xadd(REPLIES, reply.to_fields())  # type: ignore[arg-type]
    await producer.redis.xadd(REPLIES, reply.to_fields())  # type: ignore[arg-type]
    await wait_until(lambda: producer.stats.late == 2, 5, "both stray results to be read")
    assert producer.stats.answered == 0


async def test_redis_restarted_mid_run(
    producer: QueueScanner,
    artifacts: ArtifactServer,
    start_worker: Any,
    redis_server: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis goes away: the engine says so once, skips new bounties at once instead of waiting on Redis, and
    when Redis is back both engine and worker carry on by themselves."""
    caplog.set_level(logging.INFO)
    handle = await start_worker()
    first = await producer.scan(bounty(artifacts.add(EICAR)), budget=10)
    assert first.results[0].verdict is True
    redis_server.stop()
    await wait_until(lambda: not producer.available, 10, "the engine to notice Redis is gone")
    loop = asyncio.get_running_loop()
    started = loop.time()
    skipped = await producer.scan(bounty(artifacts.add(EICAR), "6a0f4c39-1d2e-4f6b-8e0a-93b2d0c4e5f1"), budget=10)
    assert skipped.skipped and "unreachable" in skipped.skipped
    assert loop.time() - started < 1.0  # answered at once: the engine's loop never waits on a dead Redis
    await asyncio.sleep(2)  # several failed reads: still one line
    await asyncio.to_thread(redis_server.start)
    await wait_until(lambda: producer.available, 15, "the engine to see Redis back")
    again = await producer.scan(bounty(artifacts.add(BENIGN), "9c1d2e3f-4a5b-4c6d-8e7f-a0b1c2d3e4f5"), budget=15)
    assert [(r.bit, r.verdict) for r in again.results] == [(True, False)]
    down = [r for r in caplog.records if r.name == "microengine.queue" and "unreachable" in r.getMessage()]
    assert len(down) == 1, [r.getMessage() for r in down]
    assert handle.worker.available


async def test_the_queue_is_measured_when_metrics_are_exported(
    producer: QueueScanner, artifacts: ArtifactServer, start_worker: Any
) -> None:
    """With an exporter installed, jobs published and answered (engine), scanned (worker), each job's latency
    and the queue's share of it are recorded."""
    from tests.unit.test_metrics import Recorded

    recorded = Recorded()
    metrics.install(recorded)
    try:
        await start_worker()
        await producer.scan(bounty(artifacts.add(BENIGN, EICAR)), budget=10)
    finally:
        metrics.install(None)
    counted = [(name, amount, values) for kind, name, amount, values in recorded.calls if kind == "inc"]
    assert ("polyswarm_scan_jobs_total", 2, ("published",)) in counted
    assert counted.count(("polyswarm_scan_jobs_total", 1, ("answered",))) == 2
    assert counted.count(("polyswarm_scan_jobs_total", 1, ("scanned",))) == 2
    observed = {name for kind, name, _, _ in recorded.calls if kind == "observe"}
    assert {"polyswarm_scan_job_latency_seconds", "polyswarm_scan_queue_overhead_seconds"} <= observed


async def test_sigterm_lets_a_worker_finish_the_scan_it_holds(
    producer: QueueScanner, artifacts: ArtifactServer, redis_server: RedisServer, worker_process: Any
) -> None:
    """The first SIGTERM stops a worker taking jobs, but the scan it holds finishes, its result reaches the
    engine and the job is acknowledged; the worker exits 0."""
    worker = worker_process(
        "draining",
        "--backend", SLOW, "--scan-queue", redis_server.url, "--queue", QUEUE,
        "--polyswarmd-addr", artifacts.addr, "--insecure-transport", "--log", "INFO",
        env={"SLOW_SCAN_SECONDS": "1.5"},
    )  # fmt: skip
    scan = asyncio.create_task(producer.scan(bounty(artifacts.add(EICAR)), budget=30))
    for _ in range(300):
        if await pending(producer) == 1:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"the worker never took the job:\n{worker.output()}")
    code = await asyncio.to_thread(worker.terminate)
    assert code == 0, worker.output()
    scanned = await asyncio.wait_for(scan, 10)
    assert scanned.results[0].verdict is True
    assert await pending(producer) == 0
