"""``verbatim``: the devnet arbiter's ground truth, looked up by sha256 in the sample corpus (``samples.py``).

A known sample gets its recorded truth with full confidence. Anything else falls back to looking for
the EICAR test string, with lower confidence, so the arbiter can still vote on bounties posted by an
ambassador with a different corpus.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
from polyswarmclient.samples import contains_eicar, ground_truth_by_sha256

KNOWN_CONFIDENCE = 1.0
FALLBACK_CONFIDENCE = 0.5


class VerbatimArbiter(AbstractScanner):
    """Ground truth by sha256 (``truth`` maps lower-case hex digests to malicious/benign)."""

    def __init__(self, truth: Mapping[str, bool] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._truth: dict[str, bool] = {
            key.lower(): value for key, value in (truth if truth is not None else ground_truth_by_sha256()).items()
        }

    def verdict(self, content: bytes) -> ScanResult:
        """The synchronous core of :meth:`scan`: always sets the bit."""
        digest = hashlib.sha256(content).hexdigest()
        known = self._truth.get(digest)
        if known is not None:
            return ScanResult(
                bit=True,
                verdict=known,
                confidence=KNOWN_CONFIDENCE,
                metadata=f"verbatim: known sample {digest[:12]}",
            )
        malicious = contains_eicar(content)
        return ScanResult(
            bit=True,
            verdict=malicious,
            confidence=FALLBACK_CONFIDENCE,
            metadata="verbatim: unknown sample, EICAR check " + ("matched" if malicious else "clean"),
        )

    async def scan_async(
        self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        if isinstance(content, str):
            content = content.encode("utf-8")
        return self.verdict(content)
