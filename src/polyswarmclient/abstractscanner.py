"""Compatibility: the scanner API engines written for polyswarm-client expect.

An engine-template package exposes ``Scanner(AbstractScanner)`` and implements one of

* ``async def scan_async(self, guid, artifact_type, content, metadata, chain)`` (2.x, ASYNC mode),
* ``def scan_sync(self, guid, artifact_type, content, metadata, chain) -> ScanResult`` (2.x, SYNC mode; run
  in a worker thread),
* ``async def scan(self, guid, artifact_type, content, metadata, chain)`` (2.x, overriding ``scan``), or
* ``async def scan(self, guid, content, chain)`` returning ``ScanResult`` or ``(bit, verdict, metadata)``
  (1.x).

The microengine calls every one of them through :func:`call_scan`, so each style runs unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from polyswarmclient.artifacts import ArtifactType

log = logging.getLogger("polyswarmclient.scanner")

__all__ = ["AbstractScanner", "ArtifactType", "ScanMode", "ScanResult", "call_scan", "maybe_await", "scan_args"]


@dataclass
class ScanResult:
    """What a scan says about one artifact.

    ``bit``: we assert on this artifact. ``verdict``: malicious. ``confidence`` in [0, 1] scales the bid.
    ``metadata``: a string, ideally a JSON verdict object like ``{"malware_family": "..."}``.

    Not frozen, because 1.x/2.x engines sometimes fill a result in place; the engine copies what it needs.
    """

    bit: bool = False
    verdict: bool = False
    confidence: float = 1.0
    metadata: str = ""

    @classmethod
    def coerce(cls, value: Any) -> ScanResult:
        """A ``ScanResult``, an object with the same attributes, or a 1.x ``(bit, verdict, metadata)``."""
        if isinstance(value, ScanResult):
            return value
        if value is None:
            return cls()
        if isinstance(value, tuple | list) and len(value) in (2, 3):
            bit, verdict, *rest = value
            return cls(bit=bool(bit), verdict=bool(verdict), metadata=_metadata_text(rest[0] if rest else ""))
        if hasattr(value, "bit") and hasattr(value, "verdict"):
            return cls(
                bit=bool(value.bit),
                verdict=bool(value.verdict),
                confidence=float(getattr(value, "confidence", 1.0)),
                metadata=_metadata_text(getattr(value, "metadata", "")),
            )
        raise TypeError(f"a scan must return a ScanResult or (bit, verdict, metadata), got {type(value).__name__}")


def _metadata_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


class ScanMode(Enum):
    ASYNC = 0
    SYNC = 1


class AbstractScanner:
    """Base class for scan backends. Override ``scan_async`` (default mode) or ``scan_sync`` (SYNC mode)."""

    def __init__(self, mode: ScanMode = ScanMode.ASYNC, **kwargs: Any) -> None:
        self.mode = mode

    async def setup(self) -> bool:
        """Prepare the backend (load rules, open connections). Return False to refuse to start."""
        return True

    async def teardown(self) -> None:
        """Release what :meth:`setup` took."""

    async def scan(self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str) -> ScanResult:
        if self.mode is ScanMode.SYNC:
            result = await asyncio.to_thread(self.scan_sync, guid, artifact_type, content, metadata, chain)
        else:
            result = await self.scan_async(guid, artifact_type, content, metadata, chain)
        return ScanResult.coerce(result)

    async def scan_async(
        self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        raise NotImplementedError(f"{type(self).__name__} must implement scan_async (or scan_sync with ScanMode.SYNC)")

    def scan_sync(self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str) -> ScanResult:
        raise NotImplementedError(f"{type(self).__name__} must implement scan_sync (or scan_async with ScanMode.ASYNC)")

    async def __aenter__(self) -> AbstractScanner:
        if await maybe_await(self.setup()) is False:
            from polyswarmclient.errors import ScanError

            raise ScanError(f"{type(self).__name__}.setup() failed")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await maybe_await(self.teardown())


async def maybe_await(value: Any) -> Any:
    """``await`` the value if it is awaitable: lets setup/teardown/bid be sync or async."""
    if inspect.isawaitable(value):
        return await value
    return value


def _positional_arity(func: Callable[..., Any]) -> int | None:
    """How many positional arguments a bound method takes (None when it takes ``*args``)."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    count = 0
    for param in sig.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            return None
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def scan_args(scan: Callable[..., Any], *request: Any) -> tuple[Any, ...]:
    """The arguments ``scan`` takes, from the 2.x ``request`` ``(guid, artifact_type, content, metadata,
    chain)``: three positional parameters means the 1.x ``scan(guid, content, chain)``."""
    guid, _artifact_type, content, _metadata, chain = request
    if _positional_arity(scan) == 3:
        return (guid, content, chain)
    return request


async def call_scan(scan: Callable[..., Any], *request: Any) -> ScanResult:
    """Call a ``scan`` method of any supported style (see :func:`scan_args`) and return a :class:`ScanResult`.

    Sync functions run in a thread. (The microengine does not call this on its own loop: its
    :class:`~polyswarmclient.backends.Backend` runs it on the backend's loop, in the backend's thread.)
    """
    args = scan_args(scan, *request)
    if inspect.iscoroutinefunction(scan) or inspect.iscoroutinefunction(getattr(scan, "__func__", None)):
        result = await scan(*args)
    else:
        result = await asyncio.to_thread(scan, *args)
        result = await maybe_await(result)
    return ScanResult.coerce(result)
