"""Scanning one bounty: list its artifacts, then fetch and scan them concurrently within a time budget.

At most ``max_concurrent_scans`` artifacts are fetched and scanned at once, across all bounties. An
artifact that ``--filter`` rejects, that cannot be fetched or decoded, whose scan fails, or that is not
finished when the budget runs out gets an empty result (no assertion on it); the others still count.

The backend runs off the engine's loop (:class:`~polyswarmclient.backends.Backend`), so the budget is
enforced from here even when a scan never yields. A scan abandoned at the budget keeps its slot until
its backend code really returns: stuck scans cannot pile up beyond ``max_concurrent_scans``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from polyswarmclient import metrics
from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import Backend, Job
from polyswarmclient.services.microengine.config import EngineClient
from polyswarmclient.services.microengine.filters import BountyFilter, artifact_metadata
from polyswarmclient.services.microengine.planning import OpenBounty

log = logging.getLogger("microengine")


@dataclass(frozen=True)
class Scanned:
    """One result per artifact, in order, and each artifact's metadata object (``{}`` when unknown).

    ``skipped`` says why the bounty was not scanned at all (the scan queue is down), else it is empty."""

    results: list[ScanResult]
    metadata: list[dict[str, Any]]
    skipped: str = ""


class ScanStep(Protocol):
    """What the assertion step scans with: :class:`Scanner` in process, or a scan queue's producer
    (:mod:`polyswarmclient.scanqueue.producer`) that has ``worker`` processes scan."""

    async def scan(self, bounty: OpenBounty, budget: float) -> Scanned: ...


class Scanner:
    """Fetch and scan the artifacts of bounties, sharing one limit on concurrent scans."""

    def __init__(self, client: EngineClient, backend: Backend, bounty_filter: BountyFilter, slots: int) -> None:
        self.client = client
        self.backend = backend
        self.bounty_filter = bounty_filter
        self._capacity = max(1, slots)
        self._slots = asyncio.Semaphore(self._capacity)
        #: Scans abandoned at their budget whose backend code is still running (each holds a slot).
        self.overran = 0
        #: Artifacts waiting for a scan slot.
        self._waiting = 0

    async def scan(self, bounty: OpenBounty, budget: float) -> Scanned:
        """Scan every artifact of ``bounty`` within ``budget`` seconds (no results: it lists no artifacts)."""
        listing = await self.client.list_artifacts(bounty.uri)
        metadata = artifact_metadata(bounty.metadata, len(listing))
        results = [ScanResult() for _ in listing]
        done = [False] * len(listing)
        try:
            async with asyncio.timeout(budget):
                async with asyncio.TaskGroup() as tg:
                    for index in range(len(listing)):
                        tg.create_task(self._scan_one(bounty, index, metadata[index], results, done))
        except TimeoutError:
            unfinished = [i for i, finished in enumerate(done) if not finished]
            metrics.SCAN_TIMEOUTS.inc(len(unfinished), chain=bounty.chain)
            late = ", ".join(map(str, unfinished))
            log.warning(
                "bounty %s: scan timed out after %.1fs: backend %s did not finish artifact(s) %s, abandoned "
                "(no assertion on them); asserting on the %d artifact(s) finished in time",
                bounty.guid,
                budget,
                self.backend.name,
                late,
                sum(1 for r in results if r.bit),
            )
        return Scanned(results, metadata)

    async def _scan_one(
        self, bounty: OpenBounty, index: int, metadata: Any, results: list[ScanResult], done: list[bool]
    ) -> None:
        """Fill in ``results[index]``; every failure is logged and leaves it empty."""
        if not self.bounty_filter.allows(metadata):
            log.debug("bounty %s: artifact %d rejected by --filter", bounty.guid, index)
            done[index] = True
            return
        self._waiting += 1
        metrics.QUEUE_DEPTH.add(1)  # the scanners of every community add up
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
            metrics.QUEUE_DEPTH.add(-1)
        done[index] = True  # unless cancelled below
        started = time.monotonic()
        job: Job[ScanResult] | None = None
        try:
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
            job = self.backend.start_scan(bounty.guid, kind, decoded, metadata, bounty.chain)
            results[index] = await job.result()
            metrics.SCAN_SECONDS.observe(time.monotonic() - started)
        except asyncio.CancelledError:
            done[index] = False  # the budget ran out (or the engine stops) before it finished
            raise
        except Exception as exc:
            metrics.SCAN_ERRORS.inc(chain=bounty.chain)
            log.warning(
                "bounty %s: scanning artifact %d failed (%s: %s); not asserting on it",
                bounty.guid,
                index,
                exc.__class__.__name__,
                exc,
            )
        finally:
            if job is None or job.finished:
                self._slots.release()
            else:
                self._hold_slot(job)

    def _hold_slot(self, job: Job[ScanResult]) -> None:
        """``job`` was abandoned while its backend code still runs: its slot is freed only when that ends."""
        self.overran += 1
        job.when_finished(self._overran_scan_ended)
        if self.overran >= self._capacity:
            log.warning(
                "backend %s: every scan slot (%d) is held by a scan that overran its deadline and is still "
                "running; new artifacts wait for one of them to return (the backend blocks or loops without "
                "awaiting: see docs/backends.md)",
                self.backend.name,
                self._capacity,
            )

    def _overran_scan_ended(self) -> None:
        self.overran -= 1
        self._slots.release()
        log.info("backend %s: a scan that overran has returned; its scan slot is free again", self.backend.name)
