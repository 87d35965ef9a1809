"""The worker's settings (standard library only, so the CLI declares its options without importing Redis)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerConfig:
    """The worker's settings (the CLI builds them from its options)."""

    #: Jobs scanned at the same time by this process.
    concurrency: int = 1
    #: Seconds a job may sit unacknowledged at a worker that stopped answering before another takes it.
    claim_timeout: float = 5.0
