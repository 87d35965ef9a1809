"""The ``redis`` tier: the scan queue's producer and workers against a real redis-server started per test.

Artifacts are served by a small aiohttp app on a loopback port answering polyswarmd's artifact routes, so the
workers (in this process, or the real ``worker`` CLI as a subprocess) fetch over real HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from polyswarmclient.backends import create_backend
from polyswarmclient.backends.eicar import EICAR, EicarScanner
from polyswarmclient.scanqueue.connection import connect
from polyswarmclient.scanqueue.producer import QueueScanner
from polyswarmclient.scanqueue.worker import ArtifactSource, Worker, WorkerConfig
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine.planning import OpenBounty
from polyswarmclient.transport import HttpTransport, parse_address
from polyswarmclient.wire.models import ArtifactEntry
from tests.helpers import unused_port
from tests.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
ENGINE = "0x" + "ab" * 20
QUEUE = "test:scan"
BENIGN = b"just some text"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path) as server:
        yield server


@dataclass
class ArtifactServer:
    """polyswarmd's ``GET /artifacts/<uri>`` and ``GET /artifacts/<uri>/<index>`` for a dict of bounties."""

    port: int = field(default_factory=unused_port)
    bounties: dict[str, list[bytes]] = field(default_factory=dict)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, *contents: bytes) -> str:
        uri = "Qm" + hashlib.sha256(b"".join(contents) + str(len(self.bounties)).encode()).hexdigest()[:44]
        self.bounties[uri] = list(contents)
        return uri

    def app(self) -> web.Application:
        async def listing(request: web.Request) -> web.Response:
            contents = self.bounties.get(request.match_info["uri"])
            if contents is None:
                return web.json_response({"status": "FAIL", "errors": "no such artifact"}, status=404)
            entries = [{"name": f"a{i}", "hash": hashlib.sha256(c).hexdigest()} for i, c in enumerate(contents)]
            return web.json_response({"status": "OK", "result": entries})

        async def one(request: web.Request) -> web.Response:
            contents = self.bounties.get(request.match_info["uri"], [])
            index = int(request.match_info["index"])
            if index >= len(contents):
                return web.Response(status=404)
            return web.Response(body=contents[index])

        app = web.Application()
        app.router.add_get("/artifacts/{uri}", listing)
        app.router.add_get("/artifacts/{uri}/{index}", one)
        return app


@pytest_asyncio.fixture
async def artifacts() -> AsyncIterator[ArtifactServer]:
    server = ArtifactServer()
    runner = web.AppRunner(server.app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", server.port).start()
    try:
        yield server
    finally:
        await runner.cleanup()


class EngineSide:
    """The slice of the engine's client the producer uses: its address and the artifact listing."""

    def __init__(self, http: HttpTransport) -> None:
        self.address = ENGINE
        self.http = http

    async def list_artifacts(self, uri: str) -> list[ArtifactEntry]:
        return ArtifactEntry.list_from_json(await self.http.request("GET", f"/artifacts/{uri}"), uri)


def bounty(uri: str, guid: str = "3b0ab5c6-40f4-4a3b-a9ae-7bb4c5f1a2d0") -> OpenBounty:
    return OpenBounty(guid, "side", "file", uri, expiration=1000, metadata=None, seen_at=1)


@pytest_asyncio.fixture
async def producer(redis_server: RedisServer, artifacts: ArtifactServer) -> AsyncIterator[QueueScanner]:
    async with HttpTransport(parse_address(artifacts.addr, insecure_transport=True)) as http:
        redis = await connect(redis_server.url)
        async with QueueScanner(EngineSide(http), redis, url=redis_server.url, queue=QUEUE) as scanner:  # type: ignore[arg-type]
            yield scanner


class RunningWorker:
    def __init__(self, worker: Worker, task: asyncio.Task[None]) -> None:
        self.worker = worker
        self.task = task

    async def stop(self) -> None:
        self.worker.shutdown.request("test over")
        await asyncio.wait_for(self.task, 30)


@pytest_asyncio.fixture
async def start_worker(redis_server: RedisServer, artifacts: ArtifactServer) -> AsyncIterator[Any]:
    """``await start_worker(backend_class=EicarScanner, **config)``: a Worker service in this process."""
    running: list[RunningWorker] = []
    closers: list[Any] = []

    async def start(backend_class: type = EicarScanner, name: str = "w1", **config: Any) -> RunningWorker:
        http = HttpTransport(parse_address(artifacts.addr, insecure_transport=True))
        await http.open()
        redis = await connect(redis_server.url)
        backend = create_backend(backend_class, name=backend_class.__name__)
        await backend.setup()
        worker = Worker(
            redis,
            url=redis_server.url,
            queue=QUEUE,
            backend=backend,
            artifacts=ArtifactSource(http),
            config=WorkerConfig(**config),
            shutdown=Shutdown(grace=5),
            name=name,
        )
        closers.append((http, redis, backend))
        handle = RunningWorker(worker, asyncio.create_task(worker.run()))
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if not handle.task.done():
            await handle.stop()
    for http, redis, backend in closers:
        await http.close()
        await redis.aclose()
        await backend.teardown()


class WorkerProcess:
    """The real ``worker`` CLI as a subprocess, its output in a log file; killed by its own pid."""

    def __init__(self, log_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        environ = {k: v for k, v in os.environ.items() if k not in ("SCAN_QUEUE", "REDIS_ADDR", "QUEUE", "BACKEND")}
        environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
        environ["PYTHONUNBUFFERED"] = "1"
        environ.update(env or {})
        self.popen = subprocess.Popen(
            [sys.executable, "-c", "from polyswarmclient.cli.worker import main; main()", *args],
            cwd=ROOT,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(30)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)
        self._log.close()


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Any]:
    started: list[WorkerProcess] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> WorkerProcess:
        process = WorkerProcess(tmp_path / f"{name}.log", *args, env=env)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


__all__ = ["BENIGN", "EICAR", "ENGINE", "QUEUE", "bounty"]
