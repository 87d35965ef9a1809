"""Opening Redis (redis-py's asyncio client, the ``redis`` extra) and reading its clock.

Every Redis call of the producer and the worker is bounded: a connection attempt by
:data:`CONNECT_TIMEOUT`, a command by :data:`COMMAND_TIMEOUT` (blocking reads ask for at most
:data:`BLOCK_MS`), so a Redis that hangs never holds the caller's event loop beyond that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from polyswarmclient.errors import ConfigError
from polyswarmclient.scanqueue.jobs import GROUP, check_redis_url, redis_url_for_logs

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("polyswarmclient.scanqueue")

#: Seconds to open a connection to Redis.
CONNECT_TIMEOUT = 3.0
#: Seconds any one command may take (a blocking read asks Redis to answer within BLOCK_MS).
COMMAND_TIMEOUT = 5.0
#: Milliseconds a blocking stream read waits for new entries.
BLOCK_MS = 1000
#: Seconds between two readings of Redis's clock (deadlines are on Redis's clock).
CLOCK_REFRESH = 60.0


def require_redis(option: str = "--scan-queue") -> None:
    """A one-line configuration error, not an ImportError, when the ``redis`` extra is missing."""
    try:
        import redis.asyncio  # noqa: F401
    except ModuleNotFoundError:
        raise ConfigError(
            f"{option} needs the redis extra (the redis package is not installed): pip install 'polyswarm-kit[redis]'"
        ) from None


def redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis call raises when Redis is unreachable, restarting or too slow."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, TimeoutError)


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that redis-py turned into a connection error while a read was cut short."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def make_redis(url: str) -> Redis:
    """A client for ``url`` (not connected yet); strings come back decoded."""
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    check_redis_url(url)
    client: Redis = Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        retry=Retry(NoBackoff(), 1),  # once, for a pooled connection a restarted Redis closed; then we log
    )
    return client


async def connect(url: str, option: str = "--scan-queue (SCAN_QUEUE)") -> Redis:
    """A client for ``url`` that answered PING; a Redis that cannot be reached now is a ConfigError (exit 2)."""
    client = make_redis(url)
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT + COMMAND_TIMEOUT):
            await client.ping()
    except redis_errors() as exc:
        await client.aclose()
        reason = str(exc) or exc.__class__.__name__
        raise ConfigError(
            f"cannot reach Redis at {redis_url_for_logs(url)} ({reason}); check {option} and that redis-server runs"
        ) from None
    return client


async def ensure_group(redis: Redis, stream: str) -> None:
    """The workers' consumer group on ``stream`` (both created when missing; an existing group is kept)."""
    from redis.exceptions import ResponseError

    try:
        await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class RedisClock:
    """Redis's clock, in ms, read with ``TIME`` and followed with the local clock in between."""

    def __init__(self) -> None:
        self._offset_ms = 0.0
        self._synced_at: float | None = None

    async def sync(self, redis: Redis) -> None:
        before = time.time()
        seconds, micros = await redis.time()
        after = time.time()
        self._offset_ms = (seconds * 1000 + micros / 1000) - (before + after) * 500
        self._synced_at = time.monotonic()

    async def maybe_sync(self, redis: Redis) -> None:
        if self._synced_at is None or time.monotonic() - self._synced_at > CLOCK_REFRESH:
            await self.sync(redis)

    def now_ms(self) -> int:
        return int(time.time() * 1000 + self._offset_ms)


def entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The ``(id, fields)`` pairs of an XREAD / XREADGROUP answer; an entry trimmed or deleted meanwhile has
    empty fields."""
    found: list[tuple[str, dict[str, str]]] = []
    for _stream, stream_entries in reply or []:
        for entry_id, fields in stream_entries:
            found.append((entry_id, dict(fields or {})))
    return found
