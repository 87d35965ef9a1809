"""Scan jobs and their results as Redis stream entries, the stream names, and the deadline maths (pure).

A stream entry is a flat map of strings. A job names one artifact of one bounty and where to answer::

    v=1  id=<job id>  guid=<bounty>  index=<artifact index>  uri=<artifact URI>  type=file|url
    metadata=<the artifact's bounty metadata, JSON>  chain=side|home  deadline=<ms, Redis's clock>
    reply=<the producer's reply stream>

and a result carries the :class:`~polyswarmclient.abstractscanner.ScanResult` fields back::

    v=1  id=<job id>  guid  index  bit=0|1  verdict=0|1  confidence=<float>  metadata=<text>
    worker=<consumer name>  scan_ms=<float>  error=<text, empty when the scan ran>

The deadline is derived from blocks by the producer (the same budget an in-process scan gets: blocks left
before the bounty's assertion deadline times ``--block-time``, capped by ``--scan-timeout``) and written as
an absolute time on **Redis's clock** (``TIME``), which producer and workers both read: machines whose own
clocks disagree still agree on when a job expires. A worker never starts a job past its deadline.
"""

from __future__ import annotations

import json
import math
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.errors import ConfigError

VERSION = "1"
#: The consumer group every worker of a queue joins.
GROUP = "workers"
#: Most jobs kept in a job stream; beyond it the oldest are trimmed (their bounties have long expired).
JOB_STREAM_MAX = 10_000
#: Most results kept in a reply stream (the producer reads them as they come).
REPLY_STREAM_MAX = 1_000
#: A reply stream nobody writes to for this long (a producer that went away) is deleted by Redis.
REPLY_STREAM_TTL_MS = 3_600_000

_URI = re.compile(r"^[A-Za-z0-9]{1,99}$")
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class BadEntry(ValueError):
    """A stream entry that is not a job (or result) of this version."""


# --- names ---------------------------------------------------------------------------------------------


def default_queue(backend: str) -> str:
    """The queue a microengine and its workers share when ``--queue`` is not given: named by the backend, so
    ``microengine --backend eicar`` and ``worker --backend eicar`` meet without further configuration."""
    return f"polyswarm:scan:{backend}"


def job_stream(queue: str) -> str:
    return f"{queue}:jobs"


def reply_stream(queue: str, producer: str) -> str:
    """The stream one producer (named by its engine address) reads its results from."""
    return f"{queue}:results:{producer.lower()}"


def redis_url(text: str, option: str = "--scan-queue (SCAN_QUEUE)") -> str:
    """The Redis address the user gave, checked; a bare ``HOST:PORT`` (polyswarm-client's ``REDIS_ADDR``)
    means ``redis://HOST:PORT/0``."""
    text = text.strip()
    if text and "://" not in text:
        text = f"redis://{text}/0"
    return check_redis_url(text, option)


def check_redis_url(url: str, option: str = "--scan-queue (SCAN_QUEUE)") -> str:
    """``url`` when it is a ``redis://`` (or ``rediss://``, ``unix://``) address, else a ConfigError that
    says what a good one looks like. The password in it (``redis://:secret@host``) is never repeated."""
    try:
        parsed = urllib.parse.urlsplit(url)
        _ = parsed.port  # a bad port raises here
    except ValueError:
        raise ConfigError(
            f"{option}: not a Redis address; use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0"
        ) from None
    if parsed.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"{option}: {parsed.scheme or 'no'} scheme; use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0"
        )
    if parsed.scheme != "unix" and not parsed.hostname:
        raise ConfigError(f"{option}: no host; use redis://HOST:PORT/DB, e.g. redis://127.0.0.1:6379/0")
    database = parsed.path.strip("/")
    if parsed.scheme != "unix" and database and not database.isdigit():
        raise ConfigError(f"{option}: database {database!r} is not a number; use redis://HOST:PORT/DB")
    return url


def redis_password(url: str) -> str | None:
    """The password in ``url`` (``redis://:PASSWORD@host``), to register as a secret that logs never show."""
    return urllib.parse.urlsplit(url).password or None


def redis_url_for_logs(url: str) -> str:
    """``url`` without its password, for log lines and messages."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.password is None:
        return url
    host = parsed.hostname or ""
    netloc = (f"{parsed.username}:***@" if parsed.username else ":***@") + host
    if parsed.port:
        netloc += f":{parsed.port}"
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


# --- deadlines -----------------------------------------------------------------------------------------


def deadline_ms(now_ms: int, budget: float) -> int:
    """The absolute deadline (ms on Redis's clock) of a job published at ``now_ms`` with ``budget`` seconds."""
    return now_ms + max(0, math.floor(budget * 1000))


def seconds_left(deadline: int, now_ms: int) -> float:
    """Seconds from ``now_ms`` to ``deadline`` (negative once it has passed)."""
    return (deadline - now_ms) / 1000


def expired(deadline: int, now_ms: int) -> bool:
    """A job whose deadline has come is not worth starting: its producer stops waiting at that moment."""
    return now_ms >= deadline


# --- records -------------------------------------------------------------------------------------------


def _text(fields: dict[str, str], key: str) -> str:
    value = fields.get(key)
    if value is None:
        raise BadEntry(f"no {key!r} field")
    return value


def _int(fields: dict[str, str], key: str, low: int = 0) -> int:
    text = _text(fields, key)
    if not text.isascii() or not text.lstrip("-").isdigit() or int(text) < low:
        raise BadEntry(f"{key}={text[:40]!r} is not an integer >= {low}")
    return int(text)


def _flag(fields: dict[str, str], key: str) -> bool:
    text = _text(fields, key)
    if text not in ("0", "1"):
        raise BadEntry(f"{key}={text[:40]!r} is not 0 or 1")
    return text == "1"


def _version(fields: dict[str, str]) -> None:
    if fields.get("v") != VERSION:
        raise BadEntry(f"version {fields.get('v')!r}, this program speaks version {VERSION}")


@dataclass(frozen=True)
class ScanJob:
    """One artifact to scan, where to fetch it, until when, and where to answer."""

    id: str
    guid: str
    index: int
    uri: str
    artifact_type: str  # "file" or "url"
    metadata: Any
    chain: str
    deadline: int  # ms, Redis's clock
    reply: str

    def to_fields(self) -> dict[str, str]:
        return {
            "v": VERSION,
            "id": self.id,
            "guid": self.guid,
            "index": str(self.index),
            "uri": self.uri,
            "type": self.artifact_type,
            "metadata": json.dumps(self.metadata, separators=(",", ":"), sort_keys=True),
            "chain": self.chain,
            "deadline": str(self.deadline),
            "reply": self.reply,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> ScanJob:
        """The job in a stream entry; :class:`BadEntry` when it is not one (checked as polyswarmd input would be:
        the URI and GUID go into a URL and log lines)."""
        _version(fields)
        guid, uri = _text(fields, "guid"), _text(fields, "uri")
        kind, chain = _text(fields, "type"), _text(fields, "chain")
        if not _GUID.match(guid):
            raise BadEntry(f"guid {guid[:60]!r} is not a bounty GUID")
        if not _URI.match(uri):
            raise BadEntry(f"uri {uri[:60]!r} is not an artifact URI")
        if kind not in ("file", "url"):
            raise BadEntry(f"type {kind[:20]!r} is not file or url")
        if chain not in ("home", "side"):
            raise BadEntry(f"chain {chain[:20]!r} is not home or side")
        try:
            metadata = json.loads(_text(fields, "metadata"))
        except ValueError:
            raise BadEntry("metadata is not JSON") from None
        return cls(
            id=_text(fields, "id"),
            guid=guid,
            index=_int(fields, "index"),
            uri=uri,
            artifact_type=kind,
            metadata=metadata,
            chain=chain,
            deadline=_int(fields, "deadline"),
            reply=_text(fields, "reply"),
        )


@dataclass(frozen=True)
class ScanReply:
    """A worker's answer to one job: the scan result, or an empty one with ``error`` saying why."""

    id: str
    guid: str
    index: int
    result: ScanResult = field(default_factory=ScanResult)
    worker: str = ""
    scan_ms: float = 0.0
    error: str = ""

    def to_fields(self) -> dict[str, str]:
        r = self.result
        return {
            "v": VERSION,
            "id": self.id,
            "guid": self.guid,
            "index": str(self.index),
            "bit": "1" if r.bit else "0",
            "verdict": "1" if r.verdict else "0",
            "confidence": repr(float(r.confidence)),
            "metadata": r.metadata,
            "worker": self.worker,
            "scan_ms": f"{self.scan_ms:.3f}",
            "error": self.error,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> ScanReply:
        _version(fields)
        try:
            confidence = float(_text(fields, "confidence"))
            scan_ms = float(fields.get("scan_ms") or 0)
        except ValueError:
            raise BadEntry("confidence or scan_ms is not a number") from None
        if not math.isfinite(confidence):
            raise BadEntry("confidence is not finite")
        result = ScanResult(
            bit=_flag(fields, "bit"),
            verdict=_flag(fields, "verdict"),
            confidence=min(1.0, max(0.0, confidence)),
            metadata=fields.get("metadata", ""),
        )
        return cls(
            id=_text(fields, "id"),
            guid=_text(fields, "guid"),
            index=_int(fields, "index"),
            result=result,
            worker=fields.get("worker", ""),
            scan_ms=scan_ms,
            error=fields.get("error", ""),
        )


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (nearest rank; 0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
