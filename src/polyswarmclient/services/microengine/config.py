"""What a microengine is given and what it reports: its settings, its counters, the client slice it uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.services.microengine.filters import BountyFilter, ConfidenceModifier
from polyswarmclient.wire.events import Event
from polyswarmclient.wire.models import ArtifactEntry, Assertion, Bounty, BountyParameters


class EngineClient(Protocol):
    """The slice of the client facade the engine uses (the real ``PolyswarmClient``, or a fake in tests)."""

    address: str

    async def bounty_parameters(self, chain: str = "side", *, refresh: bool = False) -> BountyParameters: ...
    async def block_number(self, chain: str) -> int: ...
    async def get_bounty(self, guid: str, chain: str = "side") -> Bounty: ...
    async def list_assertions(self, guid: str, chain: str = "side") -> list[Assertion]: ...
    def iter_bounty_pages(
        self, chain: str = "side", *, start_page: int = 0
    ) -> AsyncIterator[tuple[int, list[str]]]: ...
    async def list_artifacts(self, uri: str) -> list[ArtifactEntry]: ...
    async def fetch_artifact(self, uri: str, index: int) -> bytes | None: ...
    async def post_metadata(self, metadata: Any) -> str: ...
    async def nct_balance(self, chain: str, address: str | None = None) -> int: ...
    async def post_assertion(
        self, guid: str, bids: list[int], mask: list[bool], commitment: int, chain: str = "side"
    ) -> int: ...
    async def reveal_assertion(
        self, guid: str, index: int, nonce: int, verdicts: list[bool], metadata: str, chain: str = "side"
    ) -> None: ...
    async def settle(self, guid: str, chain: str = "side") -> None: ...
    def events(self, chain: str) -> AsyncIterator[Event]: ...


@dataclass(frozen=True)
class EngineConfig:
    """Service settings (the CLI builds this from its options)."""

    chains: tuple[str, ...] = ("side",)
    artifact_types: tuple[ArtifactType, ...] = (ArtifactType.FILE,)
    #: >0: handle this many bounties, then exit 0 once each is settled or skipped. Tx errors become fatal.
    testing: int = 0
    bid_strategy: str = "default"
    #: Bid with the ``BidStrategyBase`` subclass the backend's package defines, when it defines one (the CLI
    #: turns this off when --bid-strategy is given); a backend's own ``bid()`` still comes first.
    package_bid_strategy: bool = True
    bounty_filter: BountyFilter = field(default_factory=BountyFilter)
    confidence: ConfidenceModifier = field(default_factory=ConfidenceModifier)
    max_concurrent_scans: int = 8
    #: Upper bound on one bounty's fetch+scan time, seconds (the block deadline usually binds first).
    scan_timeout: float | None = 60.0
    #: Assumed seconds per block, to turn "blocks until expiration" into a scan timeout.
    block_time: float = 1.0
    #: At most how many handled bounty GUIDs to remember for de-duplication (each is forgotten sooner, once
    #: its bounty can no longer be taken; the catch-up keeps at most five times this many expired GUIDs).
    seen_cache_size: int = 10_000


def counter(meaning: str) -> int:
    """A counter of :class:`EngineStats`, starting at 0; ``meaning`` documents it (``fields()`` metadata)."""
    return field(default=0, metadata={"meaning": meaning})


@dataclass
class EngineStats:
    """Counters a user (or a test) can read after a run."""

    bounties_seen: int = counter("bounties announced on our chains, each GUID once")
    bounties_handled: int = counter("bounties taken (counted against --testing N)")
    assertions: int = counter("assertions posted and mined")
    skipped: int = counter("bounties taken but not asserted on (too late, nothing scanned, low balance)")
    failed: int = counter("bounties whose handling raised an error")
    reveals: int = counter("assertions revealed")
    forfeits: int = counter("reveals forfeited (window closed, or the reveal kept failing)")
    settles: int = counter("bounties we settled")
    payouts: int = counter("NCT-wei paid out to us, as the settle events report it")
