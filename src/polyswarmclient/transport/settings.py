"""The transport's settings: plain dataclasses, importable without aiohttp (the CLI reads their defaults
to declare its options before anything heavy is imported)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimitSettings:
    """How every request waits out HTTP 429 (:mod:`polyswarmclient.transport.ratelimit`)."""

    #: Without Retry-After, the shared pause starts near ``base`` and doubles up to ``cap`` (Retry-After is
    #: capped at ``cap`` too).
    base: float = 2.0
    cap: float = 30.0
    #: Pauses one request may sit through before it fails with :class:`RateLimited`.
    retries: int = 6
    #: After a pause, waiting requests are let through one per this many seconds.
    spacing: float = 0.05


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts (seconds) and retry policy."""

    connect_timeout: float = 10.0
    #: Most calls answer quickly.
    request_timeout: float = 30.0
    #: ``GET /transactions`` blocks up to 10 s (side) / 60 s (home) per hash, one after another.
    receipt_timeout: float = 300.0
    #: ``POST /artifacts`` may carry many megabytes.
    upload_timeout: float = 300.0
    #: Extra attempts after the first one, for retryable failures.
    max_retries: int = 4
    retry_base: float = 0.5
    retry_cap: float = 8.0
    #: The one gate all requests wait at after an HTTP 429.
    rate_limit: RateLimitSettings = field(default_factory=RateLimitSettings)
    #: Seconds one request may take in all, retries included (at least its own time limit); a server
    #: that answers a byte at a time cannot keep a command silent for longer.
    total_timeout: float = 60.0
    #: Most bytes of one answer, decompressed: JSON envelopes are small, so a bigger one is hostile.
    max_reply_bytes: int = 8 * 2**20
    #: Most bytes of one artifact, decompressed (polyswarmd's own default cap is 10 MiB).
    max_artifact_bytes: int = 10 * 2**20


@dataclass(frozen=True)
class StreamSettings:
    """The event stream's reconnect delays, time limits (seconds) and message cap."""

    backoff_base: float = 1.0
    backoff_cap: float = 32.0
    #: Connecting plus the websocket handshake.
    open_timeout: float = 10.0
    #: After this long without a frame the client pings; no pong within half of it drops the socket.
    #: ``None``: no pings (``idle_timeout`` still applies).
    ping_interval: float | None = 20.0
    #: Waiting for the server's answer to our close frame.
    close_timeout: float = 5.0
    #: A bigger message drops the connection unread (events are small JSON objects).
    max_message_bytes: int = 16 * 1024 * 1024
    #: A socket that delivers nothing (not even a block) for this long is treated as dead and re-opened:
    #: polyswarmd sends a block message per new block, so silence means its poller or the path is stuck.
    idle_timeout: float | None = 120.0
