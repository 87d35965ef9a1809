"""The microengine's scan step over a scan queue: publish one job per artifact, await the workers' results.

:class:`QueueScanner` stands where the in-process :class:`~polyswarmclient.services.microengine.scanning.Scanner`
stands: it lists the bounty's artifacts, applies ``--filter``, publishes one :class:`~.jobs.ScanJob` per
artifact on ``<queue>:jobs`` with the bounty's deadline, and waits, at most until that deadline, for the
results a reader task takes from this engine's reply stream. An artifact with no result by then gets an
empty one (no assertion on it), as an in-process scan that ran out of time does. A result that comes after
that, or a second result for the same job (a worker that died after writing it, its job then scanned again),
finds nobody waiting and is dropped.

Redis is never awaited without a bound (:mod:`.connection`). When it cannot be reached the producer logs one
line, answers every new bounty with "skipped" at once (the engine keeps revealing and settling what it has,
those need no scanning), and the reader keeps trying; its first successful read logs that Redis is back and
new bounties are taken again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING

from polyswarmclient import metrics
from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.errors import ConfigError
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
    JOB_STREAM_MAX,
    BadEntry,
    ScanJob,
    ScanReply,
    deadline_ms,
    job_stream,
    percentile,
    redis_url_for_logs,
    reply_stream,
)
from polyswarmclient.services.microengine.config import EngineClient
from polyswarmclient.services.microengine.filters import BountyFilter, artifact_metadata
from polyswarmclient.services.microengine.planning import OpenBounty
from polyswarmclient.services.microengine.scanning import Scanned

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("microengine.queue")

#: Seconds between two queue reports (depth, latency, expired jobs) at INFO, when there was traffic.
REPORT_EVERY = 30.0
#: Seconds between two readings of the queue depth (the polyswarm_queue_depth metric).
DEPTH_EVERY = 5.0
#: Seconds between two attempts to reach Redis while it is down.
RETRY_EVERY = 1.0
#: Latencies kept for the report's percentiles (the most recent ones).
LATENCY_SAMPLES = 1000


class QueueStats:
    """What the producer counts between two reports (and in total)."""

    def __init__(self) -> None:
        self.published = 0
        self.answered = 0
        self.unanswered = 0  # the deadline came first: no assertion on those artifacts
        self.late = 0  # results that came after the deadline, or twice
        self.latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self.overhead_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES)


class QueueScanner:
    """The scan step of a microengine whose ``worker`` processes scan. ``async with`` it around the engine."""

    def __init__(
        self,
        client: EngineClient,
        redis: Redis,
        *,
        url: str,
        queue: str,
        bounty_filter: BountyFilter | None = None,
    ) -> None:
        self.client = client
        self.redis = redis
        self.url = redis_url_for_logs(url)
        self.queue = queue
        self.jobs = job_stream(queue)
        self.reply = reply_stream(queue, client.address)
        self.bounty_filter = bounty_filter or BountyFilter()
        self.clock = RedisClock()
        self.stats = QueueStats()
        self.available = True
        self._waiting: dict[str, asyncio.Future[tuple[ScanReply, float]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._last_reply = "$"

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> QueueScanner:
        """Create the stream and group, read Redis's clock, and start the reader and the reports."""
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                await ensure_group(self.redis, self.jobs)
                await self.clock.sync(self.redis)
                newest = await self.redis.xrevrange(self.reply, count=1)
        except redis_errors() as exc:
            raise ConfigError(f"cannot use Redis at {self.url} ({str(exc) or exc.__class__.__name__})") from None
        self._last_reply = str(newest[0][0]) if newest else "0-0"
        self._tasks = [
            asyncio.create_task(self._read_replies(), name="scan queue replies"),
            asyncio.create_task(self._report(), name="scan queue reports"),
        ]
        log.info("scanning through Redis at %s: jobs on %s, results on %s", self.url, self.jobs, self.reply)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for future in self._waiting.values():
            future.cancel()
        await self.redis.aclose()

    def _down(self, exc: BaseException) -> None:
        metrics.SCAN_QUEUE_UP.set(0)
        if self.available:
            self.available = False
            log.warning(
                "scan queue: Redis at %s is unreachable (%s); new bounties are skipped until it is back, "
                "reveals and settles go on",
                self.url,
                str(exc) or exc.__class__.__name__,
            )

    def _up(self) -> None:
        metrics.SCAN_QUEUE_UP.set(1)
        if not self.available:
            self.available = True
            log.warning("scan queue: Redis at %s is back; taking new bounties again", self.url)

    # --- the scan step ---------------------------------------------------------------------------

    async def scan(self, bounty: OpenBounty, budget: float) -> Scanned:
        """Have the workers scan every artifact of ``bounty`` within ``budget`` seconds."""
        if not self.available:
            return Scanned([], [], skipped=f"not scanned: the scan queue (Redis at {self.url}) is unreachable")
        loop = asyncio.get_running_loop()
        give_up = loop.time() + budget
        listing = await self.client.list_artifacts(bounty.uri)
        metadata = artifact_metadata(bounty.metadata, len(listing))
        results = [ScanResult() for _ in listing]
        if not listing:
            return Scanned(results, metadata)
        deadline = deadline_ms(self.clock.now_ms(), give_up - loop.time())
        jobs = [
            ScanJob(
                id=uuid.uuid4().hex,
                guid=bounty.guid,
                index=index,
                uri=bounty.uri,
                artifact_type=ArtifactType.to_string(ArtifactType.coerce(bounty.artifact_type)),
                metadata=metadata[index],
                chain=bounty.chain,
                deadline=deadline,
                reply=self.reply,
            )
            for index in range(len(listing))
            if self.bounty_filter.allows(metadata[index])
        ]
        if not jobs:
            return Scanned(results, metadata)
        futures = {job.id: loop.create_future() for job in jobs}
        self._waiting.update(futures)
        try:
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for job in jobs:
                            pipe.xadd(self.jobs, job.to_fields(), maxlen=JOB_STREAM_MAX, approximate=True)  # type: ignore[arg-type]
                        await pipe.execute()
            except redis_errors() as exc:
                raise_if_cancelled()
                self._down(exc)
                return Scanned([], [], skipped=f"not scanned: the scan queue (Redis at {self.url}) is unreachable")
            published = time.monotonic()
            self.stats.published += len(jobs)
            metrics.SCAN_JOBS.inc(len(jobs), outcome="published")
            await asyncio.wait(futures.values(), timeout=max(0.0, give_up - loop.time()))
        finally:
            for job in jobs:
                self._waiting.pop(job.id, None)
        missing = []
        for job in jobs:
            future = futures[job.id]
            if not future.done() or future.cancelled():
                future.cancel()
                missing.append(job.index)
                continue
            reply, received = future.result()
            latency = (received - published) * 1000
            overhead = max(0.0, latency - reply.scan_ms)
            self.stats.answered += 1
            self.stats.latency_ms.append(latency)
            self.stats.overhead_ms.append(overhead)
            metrics.SCAN_JOBS.inc(outcome="answered")
            metrics.SCAN_JOB_LATENCY.observe(latency / 1000)
            metrics.SCAN_QUEUE_OVERHEAD.observe(overhead / 1000)
            if reply.error:
                log.info(
                    "bounty %s: artifact %d: worker %s: %s; not asserting on it",
                    bounty.guid,
                    job.index,
                    reply.worker,
                    reply.error,
                )
            else:
                results[job.index] = reply.result
        if missing:
            self.stats.unanswered += len(missing)
            metrics.SCAN_JOBS.inc(len(missing), outcome="unanswered")
            log.warning(
                "bounty %s: no result from the workers on %s for artifact(s) %s within %.1fs (no assertion on "
                "them); are enough workers running?",
                bounty.guid,
                self.jobs,
                ", ".join(str(i) for i in missing),
                budget,
            )
        return Scanned(results, metadata)

    # --- results ---------------------------------------------------------------------------------

    def deliver(self, fields: dict[str, str]) -> None:
        """One entry of the reply stream: wake the scan waiting for it, or drop it (late, twice, malformed)."""
        try:
            reply = ScanReply.from_fields(fields)
        except BadEntry as exc:
            log.warning("scan queue: a malformed result on %s was ignored (%s)", self.reply, exc)
            return
        future = self._waiting.get(reply.id)
        if future is None or future.done():
            self.stats.late += 1
            metrics.SCAN_JOBS.inc(outcome="late")
            log.info(
                "bounty %s: a result for artifact %d came after the engine stopped waiting, or twice; ignored",
                reply.guid,
                reply.index,
            )
            return
        future.set_result((reply, time.monotonic()))

    async def _read_replies(self) -> None:
        """Read the reply stream for as long as the engine runs; follow Redis going away and coming back."""
        while True:
            raise_if_cancelled()
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT + BLOCK_MS / 1000):
                    got = await self.redis.xread({self.reply: self._last_reply}, count=100, block=BLOCK_MS)
                    await self.clock.maybe_sync(self.redis)
            except redis_errors() as exc:
                raise_if_cancelled()
                self._down(exc)
                await asyncio.sleep(RETRY_EVERY)
                continue
            self._up()
            for entry_id, fields in entries(got):
                self._last_reply = entry_id
                self.deliver(fields)

    async def depth(self) -> tuple[int, int]:
        """(jobs waiting for a worker, jobs a worker holds unacknowledged) on the job stream."""
        groups = await self.redis.xinfo_groups(self.jobs)
        for group in groups:
            if group.get("name") == GROUP:
                return int(group.get("lag") or 0), int(group.get("pending") or 0)
        return 0, 0

    async def _report(self) -> None:
        """Queue depth every DEPTH_EVERY seconds (a metric); every REPORT_EVERY seconds with traffic, depth,
        latency and what expired at INFO."""
        reported = (0, 0, 0)
        last_line = time.monotonic()
        while True:
            await asyncio.sleep(DEPTH_EVERY)
            if not self.available:
                continue
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    waiting, held = await self.depth()
            except redis_errors():
                raise_if_cancelled()
                continue
            metrics.QUEUE_DEPTH.set(waiting)
            metrics.SCAN_JOBS_AT_WORKERS.set(held)
            s = self.stats
            now = (s.published, s.unanswered, s.late)
            if now == reported or time.monotonic() - last_line < REPORT_EVERY:
                continue
            latency = list(s.latency_ms)
            overhead = list(s.overhead_ms)
            log.info(
                "scan queue %s: %d job(s) waiting, %d at workers; %d published, %d answered, %d unanswered by "
                "their deadline, %d late results; latency p50 %.0f ms p99 %.0f ms, of which queue p50 %.1f ms "
                "p99 %.1f ms",
                self.queue,
                waiting,
                held,
                s.published,
                s.answered,
                s.unanswered,
                s.late,
                percentile(latency, 0.5),
                percentile(latency, 0.99),
                percentile(overhead, 0.5),
                percentile(overhead, 0.99),
            )
            reported = now
            last_line = time.monotonic()
