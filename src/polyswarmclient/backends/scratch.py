"""``scratch``: asserts on everything and calls it benign. A template and a plumbing test, not a scanner."""

from __future__ import annotations

import json
from typing import Any

from polyswarmclient import __version__
from polyswarmclient.abstractscanner import AbstractScanner, ScanMode, ScanResult


class ScratchScanner(AbstractScanner):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(ScanMode.ASYNC)

    async def scan_async(
        self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        info = {"malware_family": "", "scanner": {"vendor_version": __version__, "version": __version__}}
        return ScanResult(bit=True, verdict=False, confidence=1.0, metadata=json.dumps(info))
