"""The pure core of the demo's report: judging the engine's verdicts and adding up what they earned."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def judge(mask: Sequence[bool], verdicts: Sequence[bool], reference: Sequence[bool | None]) -> list[bool | None]:
    """Per artifact: True (correct), False (wrong), or None (not asserted, or no reference)."""
    out: list[bool | None] = []
    for i, asserted in enumerate(mask):
        truth = reference[i] if i < len(reference) else None
        out.append(None if not asserted or truth is None or i >= len(verdicts) else verdicts[i] == truth)
    return out


@dataclass(frozen=True)
class BountyView:
    """What the public event stream told about one bounty, from the engine's point of view."""

    guid: str
    chain: str
    truth: tuple[bool | None, ...] | None = None  # corpus ground truth, fetched when the bounty appears
    mask: tuple[bool, ...] | None = None  # the engine's assertion
    bids: tuple[int, ...] = ()  # one per asserted artifact, in artifact order
    verdicts: tuple[bool, ...] | None = None  # the engine's revealed verdicts
    votes: tuple[bool, ...] | None = None  # the arbiter's vote
    payout: int | None = None  # what the engine's settle paid it

    @property
    def asserted(self) -> bool:
        return self.mask is not None

    def reference(self) -> tuple[str, tuple[bool | None, ...]] | None:
        """What the verdicts are judged against: the arbiter's vote, else the corpus ground truth."""
        if self.votes is not None:
            return "the arbiter's vote", tuple(self.votes)
        if self.truth is not None:
            return "the ground truth", self.truth
        return None

    def judgement(self) -> list[bool | None]:
        reference = self.reference()
        if self.mask is None or self.verdicts is None or reference is None:
            return []
        return judge(self.mask, self.verdicts, reference[1])

    @property
    def correct(self) -> bool:
        """Every asserted artifact matched the reference."""
        marks = [m for m in self.judgement() if m is not None]
        return bool(marks) and all(marks)

    def bids_per_artifact(self) -> list[int | None]:
        """The bid on each artifact, None where the engine did not assert."""
        packed = iter(self.bids)
        return [next(packed, None) if asserted else None for asserted in self.mask or ()]


@dataclass(frozen=True)
class Summary:
    """The whole run: bounties seen, asserted and judged, and the engine's sidechain NCT (in NCT-wei)."""

    seen: int
    asserted: int
    correct: int
    wrong: int
    payouts: int
    bids: int
    fees: int
    before: int
    after: int


def summarize(views: Iterable[BountyView], assertion_fee: int, before: int, after: int) -> Summary:
    views = list(views)
    asserted = [v for v in views if v.asserted]
    judged = [v for v in asserted if any(m is not None for m in v.judgement())]
    correct = sum(1 for v in judged if v.correct)
    return Summary(
        seen=len(views),
        asserted=len(asserted),
        correct=correct,
        wrong=len(judged) - correct,
        payouts=sum(v.payout or 0 for v in asserted),
        bids=sum(sum(v.bids) for v in asserted),
        fees=assertion_fee * len(asserted),
        before=before,
        after=after,
    )
