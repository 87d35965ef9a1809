"""``scratch``: asserts on everything and calls it benign. A template and a plumbing test, not a scanner."""

from __future__ import annotations

import json
from typing import Any

from polyswarmclient import __version__
from polyswarmclient.abstractscanner import AbstractScanner, ScanResult


class ScratchScanner(AbstractScanner):
    """Asserts on every artifact, benign, with full confidence (AbstractScanner's default async mode)."""

    async def scan_async(
        self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        info = {"malware_family": "", "scanner": {"vendor_version": __version__, "version": __version__}}
        return ScanResult(bit=True, verdict=False, confidence=1.0, metadata=json.dumps(info))
