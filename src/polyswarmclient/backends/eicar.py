"""``eicar``: malicious iff the EICAR anti-virus test string occurs in the artifact (file or URL)."""

from __future__ import annotations

import json
import platform
from typing import Any

from polyswarmclient import __version__
from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
from polyswarmclient.artifacts import ArtifactType

# Assembled at import time so that this source file does not itself look like the test file to a scanner.
_HEAD = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$"
_TAIL = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR: bytes = (_HEAD + _TAIL).encode("ascii")

FAMILY = "EICAR-Test-File"


def _scanner_info() -> dict[str, Any]:
    return {
        "vendor_version": __version__,
        "version": __version__,
        "environment": {"operating_system": platform.system(), "architecture": platform.machine()},
    }


def verdict_metadata(malicious: bool) -> str:
    return json.dumps({"malware_family": FAMILY if malicious else "", "scanner": _scanner_info()})


class EicarScanner(AbstractScanner):
    """Asserts on every artifact it can read; verdict malicious iff EICAR is a substring."""

    async def scan_async(
        self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        kind = ArtifactType.coerce(artifact_type) if artifact_type is not None else ArtifactType.FILE
        if content is None:
            return ScanResult()
        data = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else bytes(content)
        if kind not in (ArtifactType.FILE, ArtifactType.URL):  # pragma: no cover - enum has only these
            return ScanResult()
        malicious = EICAR in data
        return ScanResult(bit=True, verdict=malicious, confidence=1.0, metadata=verdict_metadata(malicious))
