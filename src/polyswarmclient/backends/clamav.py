"""``clamav``: every artifact goes to clamd (``INSTREAM``); malicious when clamd finds a signature.

Where clamd listens comes from ``CLAMD_SOCKET`` (a unix socket; wins when set), else ``CLAMD_HOST`` and
``CLAMD_PORT`` (default ``localhost:3310``); ``CLAMD_TIMEOUT`` (default 30 s) bounds each command.
``setup()`` sends ``PING``: no clamd there is a configuration error, so the engine stops at start with
one line. The signature clamd names is the verdict's ``malware_family``; clamd's engine and signature
versions go in ``scanner``. An artifact larger than clamd's ``StreamMaxLength`` gets no assertion (a
warning says so), and any other clamd failure fails that artifact's scan only.
"""

from __future__ import annotations

import logging
from typing import Any

from polyswarmclient.abstractscanner import AbstractScanner, ScanMode, ScanResult
from polyswarmclient.backends.clamd import ClamdAddress, ClamdClient, ClamdError, StreamTooLarge
from polyswarmclient.backends.metadata import verdict_metadata
from polyswarmclient.errors import ConfigError

log = logging.getLogger("microengine.backend.clamav")


def parse_version(line: str) -> tuple[str | None, str | None]:
    """``ClamAV 1.4.3/27000/Mon ...`` -> (``1.4.3``, ``27000``); a missing part is None."""
    parts = line.strip().split("/")
    engine = parts[0].removeprefix("ClamAV").strip() or None
    signatures = parts[1].strip() if len(parts) > 1 and parts[1].strip() else None
    return engine, signatures


class ClamavScanner(AbstractScanner):
    """Asks clamd about each artifact; asserts on every one clamd answers for, with full confidence."""

    def __init__(self, address: ClamdAddress | None = None, **kwargs: Any) -> None:
        super().__init__(ScanMode.ASYNC, **kwargs)
        self.address = address if address is not None else ClamdAddress.from_env()
        self.clamd = ClamdClient(self.address)
        self.engine_version: str | None = None
        self.signatures_version: str | None = None

    async def setup(self) -> bool:
        """PING clamd and read its version; no answer is a ConfigError (exit 2) that says where we looked."""
        try:
            await self.clamd.ping()
            self.engine_version, self.signatures_version = parse_version(await self.clamd.version())
        except ClamdError as exc:
            raise ConfigError(
                f"clamav backend: {exc}; start clamd, or point CLAMD_SOCKET (or CLAMD_HOST and CLAMD_PORT) at it"
            ) from None
        log.info("clamd %s at %s (signatures %s)", self.engine_version, self.address, self.signatures_version)
        return True

    async def scan_async(
        self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        try:
            found = await self.clamd.instream(data)
        except StreamTooLarge as exc:
            log.warning("bounty %s: no assertion on this artifact: %s", guid, exc)
            return ScanResult()
        return ScanResult(
            bit=True,
            verdict=found.malicious,
            confidence=1.0,
            metadata=verdict_metadata(
                found.signature or "",
                vendor_version=self.engine_version,
                signatures_version=self.signatures_version,
            ),
        )


__all__ = ["ClamavScanner", "ClamdError", "parse_version"]
