"""Scale-out scanning through the scan queue: scans per second with 1, 2 and 4 ``worker`` processes, and what
the queue adds to each job against an in-process scan (p50 and p99).

Starts its own redis-server (tests/redis_server.py, Debian's redis-server) and a loopback server answering
polyswarmd's artifact routes. Throughput uses ``tests.fixtures.queue_backends:BusyScanner`` (about 200 ms
of CPU per scan, BUSY_SCAN_MS) in real ``worker`` processes; its floor is the same backend scanning in this
process, one artifact at a time. The overhead uses the ``eicar`` backend (a scan of microseconds), one job at
a time, as one-artifact bounties scanned by the engine's in-process scan step and by the queue's producer with
one worker process, and with the worker service on the benchmark's own event loop (the queue's round trips
without another process to schedule). Prints a table; asserts nothing.

    python benchmarks/scaleout.py [--jobs 24] [--samples 300] [--part all|throughput|overhead]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from aiohttp import web  # noqa: E402
from tests.redis.conftest import ArtifactServer, EngineSide, bounty  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402

from polyswarmclient.artifacts import ArtifactType  # noqa: E402
from polyswarmclient.backends import create_backend, load_backend_class  # noqa: E402
from polyswarmclient.scanqueue.connection import connect  # noqa: E402
from polyswarmclient.scanqueue.jobs import percentile  # noqa: E402
from polyswarmclient.scanqueue.producer import QueueScanner  # noqa: E402
from polyswarmclient.scanqueue.worker import ArtifactSource, Worker  # noqa: E402
from polyswarmclient.services.lifecycle import Shutdown  # noqa: E402
from polyswarmclient.services.microengine.filters import BountyFilter  # noqa: E402
from polyswarmclient.services.microengine.scanning import Scanner  # noqa: E402
from polyswarmclient.transport import HttpTransport, parse_address  # noqa: E402

BUSY = "tests.fixtures.queue_backends:BusyScanner"
GUIDS = "0000{:04x}-0000-4000-8000-000000000000"


class InProcessClient(EngineSide):
    async def fetch_artifact(self, uri: str, index: int) -> bytes | None:
        return await self.http.fetch_bytes(f"/artifacts/{uri}/{index}")


def start_workers(
    count: int, backend: str, redis: str, queue: str, artifacts: str, logs: Path
) -> list[subprocess.Popen[bytes]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]), PYTHONUNBUFFERED="1")
    started = []
    for n in range(count):
        log = open(logs / f"worker-{backend.rsplit(':', 1)[-1]}-{count}-{n}.log", "wb")  # noqa: SIM115
        started.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from polyswarmclient.cli.worker import main; main()",
                    "--backend",
                    backend,
                    "--scan-queue",
                    redis,
                    "--queue",
                    queue,
                    "--polyswarmd-addr",
                    artifacts,
                    "--insecure-transport",
                    "--log",
                    "INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        )
    return started


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for process in workers:
        process.terminate()
    for process in workers:
        process.wait(30)


async def wait_for_workers(producer: QueueScanner, uri: str, count: int) -> None:
    """Until ``count`` workers have joined (each answered a warm-up job)."""
    deadline = time.monotonic() + 60
    live: list[object] = []
    while time.monotonic() < deadline:
        consumers = await producer.redis.xinfo_consumers(producer.jobs, "workers")
        live = [c for c in consumers if int(c.get("inactive", c.get("idle", 0)) or 0) < 3000]
        if len(live) >= count:
            return
        await producer.scan(bounty(uri, GUIDS.format(0)), budget=10)
    raise RuntimeError(f"only {len(live)} of {count} workers joined")


async def same_process_queue(client: InProcessClient, url: str, uri: str, samples: int) -> list[float]:
    """One-artifact bounties through the queue to a Worker service running on this event loop (eicar)."""
    backend = create_backend(load_backend_class("eicar"), name="eicar")
    await backend.setup()
    shutdown = Shutdown(grace=5)
    worker = Worker(
        await connect(url),
        url=url,
        queue="bench:same",
        backend=backend,
        artifacts=ArtifactSource(client.http),
        shutdown=shutdown,
        name="same-process",
    )
    task = asyncio.create_task(worker.run())
    times: list[float] = []
    try:
        async with QueueScanner(client, await connect(url), url=url, queue="bench:same") as producer:  # type: ignore[arg-type]
            await producer.scan(bounty(uri, GUIDS.format(0)), budget=10)
            for n in range(samples):
                start = time.perf_counter()
                await producer.scan(bounty(uri, GUIDS.format(n)), budget=10)
                times.append((time.perf_counter() - start) * 1000)
    finally:
        shutdown.request("benchmark done")
        await task
        await worker.redis.aclose()
        await backend.teardown()
    return times


async def floor_rate(jobs: int, content: bytes) -> float:
    """BusyScanner in this process, one scan at a time: scans per second."""
    async with create_backend(load_backend_class(BUSY), name="busy") as backend:
        start = time.perf_counter()
        for _ in range(jobs):
            await backend.scan("bench", ArtifactType.FILE, content, None, "side")
        return jobs / (time.perf_counter() - start)


async def throughput(producer: QueueScanner, uri: str, jobs: int) -> float:
    start = time.perf_counter()
    scanned = await producer.scan(bounty(uri, GUIDS.format(1)), budget=600)
    elapsed = time.perf_counter() - start
    assert all(r.bit for r in scanned.results), "a job went unanswered"
    return jobs / elapsed


async def main_async(args: argparse.Namespace) -> None:
    logs = Path(tempfile.mkdtemp(prefix="scaleout-"))
    artifacts = ArtifactServer()
    runner = web.AppRunner(artifacts.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", artifacts.port).start()
    content = b"benign bytes for a CPU-bound scan " * 32
    many = artifacts.add(*([content] * args.jobs))
    one = artifacts.add(content)
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"machine: {os.cpu_count()} cores; BusyScanner {os.environ.get('BUSY_SCAN_MS', '200')} ms of CPU per scan")
    with RedisServer(logs) as redis:
        async with HttpTransport(parse_address(artifacts.addr, insecure_transport=True)) as http:
            client = InProcessClient(http)
            floor = await floor_rate(max(5, args.jobs // 4), content) if args.part != "overhead" else 0.0
            if floor:
                print(f"floor (in process, one at a time): {floor:.2f} scans/s")
                print("| worker processes | scans/s | x floor |")
                print("| --- | --- | --- |")
            for count in (1, 2, 4) if floor else ():
                queue = f"bench:busy:{count}"
                workers = start_workers(count, BUSY, redis.url, queue, artifacts.addr, logs)
                try:
                    async with QueueScanner(client, await connect(redis.url), url=redis.url, queue=queue) as producer:  # type: ignore[arg-type]
                        await wait_for_workers(producer, one, count)
                        rate = await throughput(producer, many, args.jobs)
                finally:
                    stop_workers(workers)
                print(f"| {count} | {rate:.2f} | {rate / floor:.2f} |")

            if args.part == "throughput":
                await runner.cleanup()
                return
            # overhead: eicar, one-artifact bounties, one at a time
            eicar = create_backend(load_backend_class("eicar"), name="eicar")
            await eicar.setup()
            inproc = Scanner(client, eicar, BountyFilter(), 1)  # type: ignore[arg-type]
            local: list[float] = []
            for n in range(args.samples):
                start = time.perf_counter()
                await inproc.scan(bounty(one, GUIDS.format(n)), budget=10)
                local.append((time.perf_counter() - start) * 1000)
            await eicar.teardown()
            workers = start_workers(1, "eicar", redis.url, "bench:eicar", artifacts.addr, logs)
            try:
                async with QueueScanner(
                    client, await connect(redis.url), url=redis.url, queue="bench:eicar"
                ) as producer:  # type: ignore[arg-type]
                    await wait_for_workers(producer, one, 1)
                    producer.stats.overhead_ms.clear()
                    queued: list[float] = []
                    for n in range(args.samples):
                        start = time.perf_counter()
                        await producer.scan(bounty(one, GUIDS.format(n)), budget=10)
                        queued.append((time.perf_counter() - start) * 1000)
                    own = list(producer.stats.overhead_ms)
            finally:
                stop_workers(workers)
            # the same with the worker service on this process's event loop: the queue's own round trips,
            # without the scheduling of another process
            same = await same_process_queue(client, redis.url, one, args.samples)
    await runner.cleanup()
    print()
    print(f"one-artifact bounty, {args.samples} samples (list + fetch + scan), eicar backend:")
    print("| | p50 ms | p99 ms |")
    print("| --- | --- | --- |")
    print(f"| in process | {percentile(local, 0.5):.2f} | {percentile(local, 0.99):.2f} |")
    print(f"| through the queue (1 worker) | {percentile(queued, 0.5):.2f} | {percentile(queued, 0.99):.2f} |")
    added50 = percentile(queued, 0.5) - percentile(local, 0.5)
    added99 = percentile(queued, 0.99) - percentile(local, 0.99)
    print(f"| added by the queue | {added50:.2f} | {added99:.2f} |")
    same50, same99 = percentile(same, 0.5), percentile(same, 0.99)
    print(f"| through the queue, worker in the same process | {same50:.2f} | {same99:.2f} |")
    own50, own99 = percentile(own, 0.5), percentile(own, 0.99)
    print(f"| job latency minus scan time, as the engine logs it | {own50:.2f} | {own99:.2f} |")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"(worker logs in {logs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24, help="artifacts in the throughput bounty")
    parser.add_argument("--samples", type=int, default=300, help="one-artifact bounties for the overhead")
    parser.add_argument("--part", choices=["all", "throughput", "overhead"], default="all", help="what to measure")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
