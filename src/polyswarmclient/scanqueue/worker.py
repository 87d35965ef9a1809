"""The ``worker`` service: take scan jobs from a queue's consumer group, scan them, answer, acknowledge.

For each job, in order: drop it (acknowledged, never scanned, one log line) when its deadline has passed;
fetch the artifact from polyswarmd (no keyfile: a worker signs nothing); scan it with the backend, off this
loop (:class:`~polyswarmclient.backends.Backend`), for at most the time the deadline leaves; then write the
result to the producer's reply stream and acknowledge the job **in one MULTI/EXEC transaction**, the result
first. A worker that dies before that leaves its job pending in the group, and another worker claims it
(XAUTOCLAIM) once it has been idle for ``--claim-timeout`` seconds. A live worker keeps the jobs it is
scanning from looking idle (XCLAIM to itself, every third of the claim timeout), so a long scan is not
taken over while its worker is alive. A job scanned twice yields two results; the producer uses the first.

Nothing grows without bound: an acknowledged job is deleted from the job stream, both streams are trimmed
(MAXLEN), a reply stream nobody writes to expires, and consumers that left no pending job behind are
removed from the group after an hour.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from typing import TYPE_CHECKING

from polyswarmclient import metrics
from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import Backend, Job
from polyswarmclient.errors import ConfigError
from polyswarmclient.metrics import HEALTH
from polyswarmclient.scanqueue.connection import (
    BLOCK_MS,
    COMMAND_TIMEOUT,
    RedisClock,
    ensure_group,
    entries,
    raise_if_cancelled,
    redis_errors,
)
from polyswarmclient.scanqueue.jobs import (
    GROUP,
    REPLY_STREAM_MAX,
    REPLY_STREAM_TTL_MS,
    BadEntry,
    ScanJob,
    ScanReply,
    expired,
    job_stream,
    percentile,
    redis_url_for_logs,
    seconds_left,
)
from polyswarmclient.scanqueue.settings import WorkerConfig
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.transport import HttpTransport

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("worker")

#: Seconds between two reports (jobs scanned, expired, taken over; queue depth; scan times) at INFO.
REPORT_EVERY = 30.0
#: Seconds between two readings of the queue depth (the polyswarm_queue_depth metric).
DEPTH_EVERY = 5.0
#: Seconds between two attempts while Redis is down.
RETRY_EVERY = 1.0
#: A consumer of the group idle this long with nothing pending (a worker that stopped) is removed.
FORGET_CONSUMER_MS = 3_600_000


class ArtifactSource:
    """polyswarmd's artifact route, read without an account: ``GET /artifacts/<uri>/<index>``."""

    def __init__(self, http: HttpTransport) -> None:
        self.http = http

    async def fetch(self, uri: str, index: int) -> bytes | None:
        return await self.http.fetch_bytes(f"/artifacts/{uri}/{index}")


class WorkerStats:
    def __init__(self) -> None:
        self.scanned = 0
        self.failed = 0
        self.expired = 0
        self.taken_over = 0
        self.scan_ms: deque[float] = deque(maxlen=1000)


class Worker:
    """One worker process's service. ``await Worker(...).run()`` until shutdown."""

    def __init__(
        self,
        redis: Redis,
        *,
        url: str,
        queue: str,
        backend: Backend,
        artifacts: ArtifactSource,
        config: WorkerConfig | None = None,
        shutdown: Shutdown | None = None,
        name: str | None = None,
    ) -> None:
        self.redis = redis
        self.url = redis_url_for_logs(url)
        self.queue = queue
        self.jobs = job_stream(queue)
        self.backend = backend
        self.artifacts = artifacts
        self.config = config or WorkerConfig()
        self.shutdown = shutdown or Shutdown()
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.clock = RedisClock()
        self.stats = WorkerStats()
        self.available = True
        self._inflight: dict[asyncio.Task[None], str] = {}
        self._claim_cursor = "0-0"

    # --- running ---------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await ensure_group(self.redis, self.jobs)
                await self.clock.sync(self.redis)
        except redis_errors() as exc:
            raise ConfigError(f"cannot use Redis at {self.url} ({str(exc) or exc.__class__.__name__})") from None
        log.info(
            "worker %s: scanning jobs of %s (Redis at %s) with backend %s, %d at a time",
            self.name,
            self.jobs,
            self.url,
            self.backend.name,
            self.config.concurrency,
        )
        loops = [
            asyncio.create_task(self._take_jobs(), name="take jobs"),
            asyncio.create_task(self._keep_and_claim(), name="claim jobs"),
            asyncio.create_task(self._report(), name="reports"),
        ]
        try:
            stop = asyncio.create_task(self.shutdown.wait())
            await asyncio.wait([stop, *loops], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            for task in loops:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            log.warning(
                "worker %s: stopping (%s): no new jobs; finishing %d in flight (up to %.0f s)",
                self.name,
                self.shutdown.reason,
                len(self._inflight),
                self.shutdown.grace,
            )
        finally:
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            await self._drain()

    async def _drain(self) -> None:
        if not self._inflight:
            return
        _, left = await asyncio.wait(list(self._inflight), timeout=self.shutdown.grace)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        if left:
            log.warning(
                "worker %s: %d job(s) unfinished at shutdown stay pending; another worker takes them after %.0f s",
                self.name,
                len(left),
                self.config.claim_timeout,
            )

    def _down(self, exc: BaseException) -> None:
        HEALTH.link("redis", False)
        metrics.SCAN_QUEUE_UP.set(0)
        if self.available:
            self.available = False
            log.warning(
                "worker %s: Redis at %s is unreachable (%s); retrying every %.0f s",
                self.name,
                self.url,
                str(exc) or exc.__class__.__name__,
                RETRY_EVERY,
            )

    def _up(self) -> None:
        HEALTH.link("redis", True)
        metrics.SCAN_QUEUE_UP.set(1)
        if not self.available:
            self.available = True
            log.warning("worker %s: Redis at %s is back; taking jobs again", self.name, self.url)

    def _start(self, entry_id: str, fields: dict[str, str]) -> None:
        task = asyncio.create_task(self._handle(entry_id, fields), name=f"job {entry_id}")
        self._inflight[task] = entry_id
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("worker %s: a job failed unexpectedly: %s: %s", self.name, exc.__class__.__name__, exc)

    async def _room(self) -> int:
        """Wait until a slot is free; the number of free slots."""
        while len(self._inflight) >= self.config.concurrency:
            await asyncio.wait(list(self._inflight), return_when=asyncio.FIRST_COMPLETED)
        return self.config.concurrency - len(self._inflight)

    async def _take_jobs(self) -> None:
        """New jobs, as many as there are free slots."""
        while True:
            raise_if_cancelled()
            free = await self._room()
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT + BLOCK_MS / 1000):
                    got = await self.redis.xreadgroup(GROUP, self.name, {self.jobs: ">"}, count=free, block=BLOCK_MS)
                    await self.clock.maybe_sync(self.redis)
            except redis_errors() as exc:
                raise_if_cancelled()
                self._down(exc)
                await asyncio.sleep(RETRY_EVERY)
                continue
            self._up()
            for entry_id, fields in entries(got):
                self._start(entry_id, fields)

    async def _keep_and_claim(self) -> None:
        """Keep our own jobs from looking idle, and take over jobs idle longer than the claim timeout."""
        timeout_ms = int(self.config.claim_timeout * 1000)
        while True:
            await asyncio.sleep(self.config.claim_timeout / 3)
            raise_if_cancelled()
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    ours: list[str | bytes | int | memoryview[int]] = list(self._inflight.values())
                    if ours:
                        await self.redis.xclaim(self.jobs, GROUP, self.name, 0, ours, justid=True)
                    free = self.config.concurrency - len(self._inflight)
                    if free <= 0:
                        continue
                    answer = await self.redis.xautoclaim(
                        self.jobs, GROUP, self.name, timeout_ms, start_id=self._claim_cursor, count=free
                    )
                    self._claim_cursor, claimed = answer[0], answer[1]
                    gone = answer[2] if len(answer) > 2 else []
                    if gone:  # pending entries trimmed from the stream meanwhile: nothing left to scan
                        await self.redis.xack(self.jobs, GROUP, *gone)
            except redis_errors() as exc:
                raise_if_cancelled()
                self._down(exc)
                continue
            for entry_id, fields in claimed:
                if entry_id in self._inflight.values():  # ours already (a late keep-alive): scanned once
                    continue
                self.stats.taken_over += 1
                metrics.SCAN_JOBS.inc(outcome="taken_over")
                log.info(
                    "worker %s: took over job %s, unacknowledged for over %.0f s at a worker that stopped answering",
                    self.name,
                    entry_id,
                    self.config.claim_timeout,
                )
                self._start(entry_id, dict(fields or {}))

    # --- one job ---------------------------------------------------------------------------------

    async def _handle(self, entry_id: str, fields: dict[str, str]) -> None:
        try:
            job = ScanJob.from_fields(fields)
        except BadEntry as exc:
            log.warning("worker %s: job %s on %s is not a scan job (%s); dropped", self.name, entry_id, self.jobs, exc)
            await self._finish(entry_id, None, None)
            return
        now = self.clock.now_ms()
        if expired(job.deadline, now):
            self.stats.expired += 1
            metrics.SCAN_JOBS.inc(outcome="expired")
            log.info(
                "worker %s: job for bounty %s artifact %d expired %.1f s ago; dropped, not scanned",
                self.name,
                job.guid,
                job.index,
                -seconds_left(job.deadline, now),
            )
            await self._finish(entry_id, None, job)
            return
        reply, scan = await self._scan(job, seconds_left(job.deadline, now))
        if reply is None:
            self.stats.expired += 1
            metrics.SCAN_JOBS.inc(outcome="expired")
            log.info(
                "worker %s: bounty %s artifact %d: its deadline came before the scan finished; dropped",
                self.name,
                job.guid,
                job.index,
            )
        await self._finish(entry_id, reply, job)
        if scan is not None and not scan.finished:  # the slot stays taken until the backend really returns
            returned = asyncio.Event()
            scan.when_finished(returned.set)
            await returned.wait()

    async def _scan(self, job: ScanJob, budget: float) -> tuple[ScanReply | None, Job[ScanResult] | None]:
        """The reply to ``job`` (None when its deadline came first) and the backend job, if one started."""
        scan: Job[ScanResult] | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                content = await self.artifacts.fetch(job.uri, job.index)
                if content is None:
                    return self._failed(job, "the artifact could not be fetched from polyswarmd"), None
                kind = ArtifactType.coerce(job.artifact_type)
                try:
                    decoded = kind.decode_content(content)
                except ValueError as exc:
                    return self._failed(job, str(exc)), None
                assert decoded is not None
                started = time.perf_counter()
                scan = self.backend.start_scan(job.guid, kind, decoded, job.metadata, job.chain)
                result = await scan.result()
        except TimeoutError:
            metrics.SCAN_TIMEOUTS.inc(chain=job.chain)
            return None, scan
        except Exception as exc:
            return self._failed(job, f"scan failed ({exc.__class__.__name__}: {exc})"), scan
        scan_ms = (time.perf_counter() - started) * 1000
        metrics.SCAN_SECONDS.observe(scan_ms / 1000)
        self.stats.scanned += 1
        self.stats.scan_ms.append(scan_ms)
        metrics.SCAN_JOBS.inc(outcome="scanned")
        return ScanReply(job.id, job.guid, job.index, result, self.name, scan_ms), scan

    def _failed(self, job: ScanJob, why: str) -> ScanReply:
        metrics.SCAN_ERRORS.inc(chain=job.chain)
        self.stats.failed += 1
        metrics.SCAN_JOBS.inc(outcome="failed")
        log.info("worker %s: bounty %s artifact %d: %s", self.name, job.guid, job.index, why)
        return ScanReply(job.id, job.guid, job.index, ScanResult(), self.name, 0.0, why)

    async def _finish(self, entry_id: str, reply: ScanReply | None, job: ScanJob | None) -> None:
        """Write ``reply`` (if any) and acknowledge the job, atomically; retried while Redis is down, until the
        job's deadline (after it, the job stays pending and whoever claims it finds it expired)."""
        while True:
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    async with self.redis.pipeline(transaction=True) as pipe:
                        if reply is not None and job is not None:
                            pipe.xadd(job.reply, reply.to_fields(), maxlen=REPLY_STREAM_MAX, approximate=True)  # type: ignore[arg-type]
                            pipe.pexpire(job.reply, REPLY_STREAM_TTL_MS)
                        pipe.xack(self.jobs, GROUP, entry_id)
                        pipe.xdel(self.jobs, entry_id)
                        await pipe.execute()
                self._up()
                return
            except redis_errors() as exc:
                raise_if_cancelled()
                self._down(exc)
            if job is None or reply is None or expired(job.deadline, self.clock.now_ms()):
                return
            await asyncio.sleep(RETRY_EVERY)

    # --- reports ---------------------------------------------------------------------------------

    async def _report(self) -> None:
        """Queue depth every DEPTH_EVERY seconds (metrics); every REPORT_EVERY seconds with traffic, what this
        worker did and the queue depth at INFO; stopped consumers forgotten."""
        reported = (0, 0, 0, 0)
        last_line = time.monotonic()
        while True:
            await asyncio.sleep(DEPTH_EVERY)
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    waiting, held = 0, 0
                    for group in await self.redis.xinfo_groups(self.jobs):
                        if group.get("name") == GROUP:
                            waiting, held = int(group.get("lag") or 0), int(group.get("pending") or 0)
                    if time.monotonic() - last_line >= REPORT_EVERY:
                        await self._forget_stopped_consumers()
            except redis_errors():
                raise_if_cancelled()
                continue
            metrics.QUEUE_DEPTH.set(waiting)
            metrics.SCAN_JOBS_AT_WORKERS.set(held)
            s = self.stats
            now = (s.scanned, s.failed, s.expired, s.taken_over)
            if time.monotonic() - last_line < REPORT_EVERY or (now == reported and not waiting):
                continue
            scans = list(s.scan_ms)
            log.info(
                "worker %s: %d scanned, %d failed, %d expired (dropped unscanned), %d taken over; queue: %d "
                "waiting, %d at workers; scan p50 %.0f ms p99 %.0f ms",
                self.name,
                s.scanned,
                s.failed,
                s.expired,
                s.taken_over,
                waiting,
                held,
                percentile(scans, 0.5),
                percentile(scans, 0.99),
            )
            reported = now
            last_line = time.monotonic()

    async def _forget_stopped_consumers(self) -> None:
        for consumer in await self.redis.xinfo_consumers(self.jobs, GROUP):
            name = str(consumer.get("name"))
            idle = int(consumer.get("idle") or 0)
            if name != self.name and not consumer.get("pending") and idle > FORGET_CONSUMER_MS:
                await self.redis.xgroup_delconsumer(self.jobs, GROUP, name)
