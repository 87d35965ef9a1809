"""Planning one assertion: from an open bounty's scan results to :class:`Assert` or :class:`Skip`. Pure.

:func:`judge` turns the scan results into what we would assert (mask, verdicts, the confidences after
``--confidence``); :func:`plan` adds the bids (the strategy's, or the backend's own ``bid()`` clamped
into the protocol's range) and the reveal metadata. Nothing here does I/O: the engine fetches, scans and
asks the backend for a custom bid around these two calls.

:class:`OpenBounty` is a bounty still open for assertions, however we learned of it: its ``NewBounty``
event, or ``GET /bounties/<guid>`` while catching up after a reconnect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.amounts import format_amount
from polyswarmclient.services.microengine import bidding
from polyswarmclient.services.microengine.filters import ConfidenceModifier
from polyswarmclient.wire.events import NewBounty
from polyswarmclient.wire.models import Bounty, BountyParameters


@dataclass(frozen=True)
class OpenBounty:
    """What the engine needs to know about a bounty to assert on it."""

    guid: str
    chain: str
    artifact_type: str
    uri: str
    expiration: int
    metadata: Any
    #: The block we learned of it at (0 when unknown): scanning may last until ``expiration`` minus a margin.
    seen_at: int

    @classmethod
    def announced(cls, event: NewBounty) -> OpenBounty:
        """From its ``NewBounty`` event."""
        return cls(
            event.guid,
            event.chain,
            event.artifact_type,
            event.uri,
            event.expiration,
            event.metadata,
            event.block_number or 0,
        )

    @classmethod
    def listed(cls, bounty: Bounty, chain: str, head: int) -> OpenBounty:
        """From ``GET /bounties/<guid>``, read on ``chain`` when its newest block was ``head``."""
        return cls(bounty.guid, chain, bounty.artifact_type, bounty.uri, bounty.expiration, bounty.metadata, head)


@dataclass(frozen=True)
class Judgement:
    """What the scans say, per artifact: assert on it (``mask``), malicious or not, how sure, and why."""

    mask: tuple[bool, ...]
    verdicts: tuple[bool, ...]
    #: After ``--confidence`` favored or penalized the artifact's metadata; always in [0, 1].
    confidences: tuple[float, ...]
    #: Each scan's own metadata string (polyswarm-client hands these to ``bid()``).
    notes: tuple[str, ...]

    @property
    def asserts_anything(self) -> bool:
        return any(self.mask)


@dataclass(frozen=True)
class Assert:
    """Post this assertion (one bid per set mask bit); it costs ``cost`` NCT-wei with the assertion fee."""

    bids: tuple[int, ...]
    mask: tuple[bool, ...]
    verdicts: tuple[bool, ...]
    #: Revealed with the verdicts: the asserted artifacts' scan metadata (:func:`combine_metadata`).
    metadata: str
    cost: int


@dataclass(frozen=True)
class Skip:
    """Do not assert; ``reason`` completes the log line "bounty <guid>: <reason>"."""

    reason: str


def judge(results: Sequence[ScanResult], artifact_metadata: Sequence[Any], confidence: ConfidenceModifier) -> Judgement:
    """Scan results (one per artifact, in order) and the bounty's per-artifact metadata -> a judgement."""
    return Judgement(
        mask=tuple(r.bit for r in results),
        verdicts=tuple(r.bit and r.verdict for r in results),
        confidences=tuple(confidence.apply(r.confidence, artifact_metadata[i]) for i, r in enumerate(results)),
        notes=tuple(r.metadata for r in results),
    )


def plan(
    judged: Judgement,
    params: BountyParameters,
    strategy: bidding.BidStrategy,
    custom_bid: int | Sequence[int] | None = None,
) -> Assert | Skip:
    """Bids within the protocol's limits (the backend's ``custom_bid`` when it gave one), or a reason to skip."""
    if not judged.asserts_anything:
        return Skip(f"no artifact to assert on ({len(judged.mask)} scanned), no assertion")
    low, high = params.assertion_bid_minimum, params.assertion_bid_maximum
    if custom_bid is not None:
        bids = bidding.normalize_custom(custom_bid, judged.mask, low, high)
    else:
        bids = bidding.bids(strategy, judged.mask, judged.confidences, low, high)
    asserted = [note for note, bit in zip(judged.notes, judged.mask, strict=True) if bit]
    return Assert(
        bids=tuple(bids),
        mask=judged.mask,
        verdicts=judged.verdicts,
        metadata=_combined(asserted),
        cost=sum(bids) + params.assertion_fee,
    )


def combine_metadata(results: Sequence[ScanResult]) -> str:
    """Reveal metadata from the asserted artifacts' results, in artifact order.

    A JSON array when every piece is valid JSON (the assertion-metadata shape of spec §6), else the
    pieces joined with ``;`` as polyswarm-client does.
    """
    return _combined([r.metadata for r in results if r.bit])


def _combined(pieces: Sequence[str]) -> str:
    parsed: list[Any] = []
    for piece in pieces:
        try:
            parsed.append(json.loads(piece))
        except (TypeError, ValueError):
            return ";".join(pieces)
    return json.dumps(parsed, separators=(",", ":")) if pieces else ""


def verdict_text(mask: Sequence[bool], verdicts: Sequence[bool]) -> str:
    """``[malicious, benign, -]``: the verdict of each artifact, ``-`` where we do not assert."""
    shown = ("-" if not m else ("malicious" if v else "benign") for m, v in zip(mask, verdicts, strict=True))
    return "[" + ", ".join(shown) + "]"


def nct_text(values: Sequence[int]) -> str:
    """``[0.0625, 0.5] NCT``."""
    return "[" + ", ".join(format_amount(v) for v in values) + "] NCT"
