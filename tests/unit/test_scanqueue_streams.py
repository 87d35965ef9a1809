"""The scan queue's stream plumbing on fakeredis (in memory; the redis tier runs a real redis-server)."""

from __future__ import annotations

import fakeredis

from polyswarmclient.scanqueue.connection import ensure_group, entries
from polyswarmclient.scanqueue.jobs import GROUP, ScanJob, job_stream

GUID = "3b0ab5c6-40f4-4a3b-a9ae-7bb4c5f1a2d0"


async def test_the_group_is_made_once_and_a_job_reads_back_through_it() -> None:
    """Creating the workers' group twice is harmless (engine and workers both do it at start), and a job
    written with XADD comes back whole through XREADGROUP, then is pending until acknowledged."""
    redis = fakeredis.FakeAsyncRedis(decode_responses=True)
    stream = job_stream("q")
    await ensure_group(redis, stream)
    await ensure_group(redis, stream)
    job = ScanJob("a" * 32, GUID, 0, "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "url", None, "home", 5, "r")
    await redis.xadd(stream, job.to_fields())  # type: ignore[arg-type]
    got = entries(await redis.xreadgroup(GROUP, "w1", {stream: ">"}, count=10))
    assert [ScanJob.from_fields(fields) for _, fields in got] == [job]
    assert (await redis.xpending(stream, GROUP))["pending"] == 1
    await redis.xack(stream, GROUP, got[0][0])
    assert (await redis.xpending(stream, GROUP))["pending"] == 0
    await redis.aclose()


async def test_deadlines_follow_redis_s_clock_not_this_machine_s() -> None:
    """A worker whose clock is 10 s behind Redis's still sees a job expire when Redis's clock says so: the
    clock reads TIME and keeps the offset."""
    import time

    from polyswarmclient.scanqueue.connection import RedisClock

    class Ahead:
        async def time(self) -> tuple[int, int]:
            now = time.time() + 10
            return int(now), int((now % 1) * 1_000_000)

    clock = RedisClock()
    await clock.sync(Ahead())  # type: ignore[arg-type]
    assert abs(clock.now_ms() - (time.time() + 10) * 1000) < 200
