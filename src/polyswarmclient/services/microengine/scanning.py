"""Scanning one bounty: list its artifacts, then fetch and scan them concurrently within a time budget.

At most ``max_concurrent_scans`` artifacts are fetched and scanned at once, across all bounties. An
artifact that ``--filter`` rejects, that cannot be fetched or decoded, whose scan fails, or that is not
finished when the budget runs out gets an empty result (no assertion on it); the others still count.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import Backend
from polyswarmclient.services.microengine.config import EngineClient
from polyswarmclient.services.microengine.filters import BountyFilter, artifact_metadata
from polyswarmclient.services.microengine.planning import OpenBounty

log = logging.getLogger("microengine")


@dataclass(frozen=True)
class Scanned:
    """One result per artifact, in order, and each artifact's metadata object (``{}`` when unknown)."""

    results: list[ScanResult]
    metadata: list[dict[str, Any]]


class Scanner:
    """Fetch and scan the artifacts of bounties, sharing one limit on concurrent scans."""

    def __init__(self, client: EngineClient, backend: Backend, bounty_filter: BountyFilter, slots: int) -> None:
        self.client = client
        self.backend = backend
        self.bounty_filter = bounty_filter
        self._slots = asyncio.Semaphore(max(1, slots))

    async def scan(self, bounty: OpenBounty, budget: float) -> Scanned:
        """Scan every artifact of ``bounty`` within ``budget`` seconds (no results: it lists no artifacts)."""
        listing = await self.client.list_artifacts(bounty.uri)
        metadata = artifact_metadata(bounty.metadata, len(listing))
        results = [ScanResult() for _ in listing]
        try:
            async with asyncio.timeout(budget):
                async with asyncio.TaskGroup() as tg:
                    for index in range(len(listing)):
                        tg.create_task(self._scan_one(bounty, index, metadata[index], results))
        except TimeoutError:
            log.warning(
                "bounty %s: scan timed out after %.1fs; asserting on the %d artifact(s) finished in time",
                bounty.guid,
                budget,
                sum(1 for r in results if r.bit),
            )
        return Scanned(results, metadata)

    async def _scan_one(self, bounty: OpenBounty, index: int, metadata: Any, results: list[ScanResult]) -> None:
        """Fill in ``results[index]``; every failure is logged and leaves it empty."""
        if not self.bounty_filter.allows(metadata):
            log.debug("bounty %s: artifact %d rejected by --filter", bounty.guid, index)
            return
        try:
            async with self._slots:
                content = await self.client.fetch_artifact(bounty.uri, index)
                if content is None:
                    log.info("bounty %s: artifact %d could not be fetched; not asserting on it", bounty.guid, index)
                    return
                kind = ArtifactType.coerce(bounty.artifact_type)
                try:
                    decoded = kind.decode_content(content)
                except ValueError as exc:
                    log.info("bounty %s: artifact %d: %s; not asserting on it", bounty.guid, index, exc)
                    return
                assert decoded is not None
                results[index] = await self.backend.scan(bounty.guid, kind, decoded, metadata, bounty.chain)
        except Exception as exc:
            log.warning(
                "bounty %s: scanning artifact %d failed (%s: %s); not asserting on it",
                bounty.guid,
                index,
                exc.__class__.__name__,
                exc,
            )
