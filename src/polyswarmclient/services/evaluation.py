"""``microengine evaluate``: how a backend would fare on a labelled corpus, without any network.

A corpus is a directory holding the samples and a ``labels.csv`` (:data:`LABELS_FILE`): one line per
sample, ``<path relative to the directory>,<malicious|benign>``; blank lines and lines starting with ``#``
are skipped. The built-in example is the demo corpus (:mod:`polyswarmclient.samples`, 8 EICAR files and
8 benign texts).

Each sample is scanned once, one at a time, through the engine's isolated :class:`Backend` (so timings are
the scan's own), and bid on as a bounty of one file exactly as the engine would bid
(:func:`~polyswarmclient.services.microengine.planning.plan`: the backend's own ``bid()``, else its
package's bid strategy, else ``--bid-strategy``). What it would have won or lost follows the bounty
registry's settlement for an engine that asserts alone on a bounty of the minimum amount whose arbiter
votes the label: right, its bid comes back with the bounty amount; wrong, its bid is lost; the assertion
fee is paid either way. Nothing asserted, nothing paid.

The scoring (:func:`score`) is pure; :func:`evaluate` does the scans.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.amounts import format_amount
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import Backend
from polyswarmclient.errors import ConfigError
from polyswarmclient.samples import default_corpus
from polyswarmclient.services.microengine import bidding
from polyswarmclient.services.microengine.filters import ConfidenceModifier
from polyswarmclient.services.microengine.planning import Assert, judge, plan
from polyswarmclient.wire.models import BountyParameters

#: The labels file of a corpus directory.
LABELS_FILE = "labels.csv"
_LABELS = {"malicious": True, "benign": False}

_NCT = 10**18
#: The devnet's bounty registry parameters (``polyswarmd-devnet``'s defaults; a test keeps them equal).
DEVNET_PARAMETERS = BountyParameters(
    bounty_fee=62_500_000_000_000_000,
    assertion_fee=31_250_000_000_000_000,
    bounty_amount_minimum=2 * _NCT,
    assertion_bid_minimum=62_500_000_000_000_000,
    assertion_bid_maximum=1 * _NCT,
    arbiter_lookback_range=100,
    max_duration=100,
    assertion_reveal_window=10,
    arbiter_vote_window=10,
)


@dataclass(frozen=True)
class LabelledSample:
    """One corpus file and what it really is."""

    name: str
    content: bytes
    malicious: bool


def demo_samples() -> list[LabelledSample]:
    """The built-in demo corpus."""
    return [LabelledSample(s.name, s.content, s.malicious) for s in default_corpus().samples]


def read_corpus(directory: Path) -> list[LabelledSample]:
    """The samples listed in ``directory``/labels.csv, in its order. Raises ``ConfigError`` naming the line."""
    labels = directory / LABELS_FILE
    if not directory.is_dir():
        raise ConfigError(f"corpus {directory} is not a directory (it needs a {LABELS_FILE} and the samples)")
    try:
        text = labels.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"corpus {directory} has no {LABELS_FILE}: one line per sample, PATH,malicious|benign"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {labels}: {exc}") from None
    root = directory.resolve()
    samples: list[LabelledSample] = []
    seen: set[Path] = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{labels}:{number}"
        name, comma, label = line.rpartition(",")
        name, label = name.strip(), label.strip().lower()
        if not comma or not name or label not in _LABELS:
            raise ConfigError(f"{where}: expected PATH,malicious or PATH,benign, got {line[:80]!r}")
        path = (root / name).resolve()
        if not path.is_relative_to(root):
            raise ConfigError(f"{where}: {name} is outside the corpus directory")
        if path in seen:
            raise ConfigError(f"{where}: {name} is listed twice")
        seen.add(path)
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read {name}: {exc.strerror or exc}") from None
        samples.append(LabelledSample(name, content, _LABELS[label]))
    if not samples:
        raise ConfigError(f"{labels} lists no samples")
    return samples


@dataclass(frozen=True)
class Outcome:
    """One sample's scan, the bid on it and what its one-artifact bounty would pay."""

    name: str
    malicious: bool
    seconds: float
    asserted: bool = False
    verdict: bool = False
    bid: int = 0
    #: NCT-wei won (positive) or lost (negative), the assertion fee included.
    net: int = 0
    error: str | None = None

    @property
    def right(self) -> bool:
        return self.asserted and self.verdict == self.malicious


@dataclass(frozen=True)
class Score:
    """The figures ``microengine evaluate`` prints."""

    samples: int
    malicious: int
    asserted: int
    errors: int
    true_positives: int
    false_positives: int
    right: int
    wrong: int
    #: None when the engine called nothing malicious (precision) or the corpus has no malicious sample (recall).
    precision: float | None
    recall: float | None
    mean_seconds: float
    p99_seconds: float
    won: int
    lost: int
    fees: int

    @property
    def net(self) -> int:
        return self.won - self.lost - self.fees


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def score(outcomes: Sequence[Outcome], params: BountyParameters) -> Score:
    """Precision, recall, scan times and NCT from the outcomes. Pure."""
    asserted = [o for o in outcomes if o.asserted]
    tp = sum(1 for o in asserted if o.verdict and o.malicious)
    fp = sum(1 for o in asserted if o.verdict and not o.malicious)
    malicious = sum(1 for o in outcomes if o.malicious)
    right = [o for o in asserted if o.right]
    wrong = [o for o in asserted if not o.right]
    times = [o.seconds for o in outcomes]
    return Score(
        samples=len(outcomes),
        malicious=malicious,
        asserted=len(asserted),
        errors=sum(1 for o in outcomes if o.error is not None),
        true_positives=tp,
        false_positives=fp,
        right=len(right),
        wrong=len(wrong),
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / malicious if malicious else None,
        mean_seconds=sum(times) / len(times) if times else 0.0,
        p99_seconds=percentile(times, 99),
        won=params.bounty_amount_minimum * len(right),
        lost=sum(o.bid for o in wrong),
        fees=params.assertion_fee * len(asserted),
    )


def settle_alone(malicious: bool, decision: Assert, params: BountyParameters) -> int:
    """What one engine asserting alone on a one-artifact bounty of the minimum amount nets once the arbiter
    voted ``malicious``: the bounty amount when right (its bid comes back), minus its bid when wrong; minus
    the assertion fee either way (the bounty registry's settlement with a single expert)."""
    right = decision.verdicts[0] == malicious
    return (params.bounty_amount_minimum if right else -decision.bids[0]) - params.assertion_fee


async def _scan_one(
    backend: Backend, sample: LabelledSample, index: int, scan_timeout: float | None
) -> tuple[ScanResult | None, float, str | None]:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(scan_timeout):
            result = await backend.scan(f"evaluate-{index}", ArtifactType.FILE, sample.content, None, "side")
    except TimeoutError:
        return None, time.perf_counter() - started, f"no answer within {scan_timeout:g} s"
    except Exception as exc:  # a failing scan loses only its sample, as in the engine
        return None, time.perf_counter() - started, f"{exc.__class__.__name__}: {exc}"
    return result, time.perf_counter() - started, None


async def evaluate(
    backend: Backend,
    samples: Sequence[LabelledSample],
    params: BountyParameters,
    strategy: bidding.BidStrategy,
    *,
    scan_timeout: float | None = 60.0,
) -> list[Outcome]:
    """Scan every sample with ``backend`` (set up by the caller), one at a time, and bid as the engine would."""
    outcomes: list[Outcome] = []
    limits = (params.assertion_bid_minimum, params.assertion_bid_maximum)
    for index, sample in enumerate(samples):
        result, seconds, error = await _scan_one(backend, sample, index, scan_timeout)
        if result is None or not result.bit:
            outcomes.append(Outcome(sample.name, sample.malicious, seconds, error=error))
            continue
        judged = judge([result], [None], ConfidenceModifier())
        custom: Any = None
        if backend.has_custom_bid:
            custom = await backend.custom_bid(
                f"evaluate-{index}", judged.mask, judged.verdicts, judged.confidences, judged.notes, "side", limits
            )
        decision = plan(judged, params, strategy, custom)
        assert isinstance(decision, Assert)  # the one artifact is asserted on
        outcomes.append(
            Outcome(
                sample.name,
                sample.malicious,
                seconds,
                asserted=True,
                verdict=decision.verdicts[0],
                bid=decision.bids[0],
                net=settle_alone(sample.malicious, decision, params),
            )
        )
    return outcomes


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _signed(wei: int) -> str:
    return ("+" if wei >= 0 else "-") + format_amount(abs(wei))


@dataclass(frozen=True)
class EvaluationReport:
    """What ``microengine evaluate`` prints, as text lines or as one JSON object."""

    corpus: str
    backend: str
    #: Who chose the bids: ``--bid-strategy NAME``, the package's strategy or the engine's own ``bid()``.
    bidder: str
    #: Where the bounty parameters came from, e.g. ``devnet defaults (offline)``.
    parameters_source: str
    parameters: BountyParameters
    score: Score

    def lines(self) -> list[str]:
        s, p = self.score, self.parameters
        return [
            f"corpus      {self.corpus}: {s.samples} samples, {s.malicious} malicious, "
            f"{s.samples - s.malicious} benign",
            f"backend     {self.backend}, bids by {self.bidder}",
            f"scanned     {s.samples}: asserted on {s.asserted}, right {s.right}, wrong {s.wrong}, failed {s.errors}",
            f"precision   {_ratio(s.precision)} ({s.true_positives} of {s.true_positives + s.false_positives} "
            "malicious verdicts right)",
            f"recall      {_ratio(s.recall)} ({s.true_positives} of {s.malicious} malicious samples found)",
            f"scan time   mean {s.mean_seconds * 1000:.2f} ms, p99 {s.p99_seconds * 1000:.2f} ms",
            f"parameters  {self.parameters_source}: bounty {format_amount(p.bounty_amount_minimum)} NCT per "
            f"artifact, bids {format_amount(p.assertion_bid_minimum)}-{format_amount(p.assertion_bid_maximum)} "
            f"NCT, assertion fee {format_amount(p.assertion_fee)} NCT",
            f"NCT         {_signed(s.net)} (won {format_amount(s.won)} on {s.right} right, lost "
            f"{format_amount(s.lost)} in bids on {s.wrong} wrong, fees {format_amount(s.fees)}), one bounty per "
            "sample, the engine alone, the arbiter voting the label",
        ]

    def json(self) -> str:
        s, p = self.score, self.parameters
        return json.dumps(
            {
                "corpus": self.corpus,
                "backend": self.backend,
                "bids_by": self.bidder,
                "samples": s.samples,
                "malicious": s.malicious,
                "asserted": s.asserted,
                "right": s.right,
                "wrong": s.wrong,
                "failed": s.errors,
                "precision": s.precision,
                "recall": s.recall,
                "scan_seconds": {"mean": s.mean_seconds, "p99": s.p99_seconds},
                "parameters": {"source": self.parameters_source, **dataclasses.asdict(p)},
                # amounts in NCT-wei, as decimal strings (exact)
                "nct_wei": {"net": str(s.net), "won": str(s.won), "lost": str(s.lost), "fees": str(s.fees)},
            },
            sort_keys=True,
        )


__all__ = [
    "DEVNET_PARAMETERS",
    "EvaluationReport",
    "LABELS_FILE",
    "LabelledSample",
    "Outcome",
    "Score",
    "demo_samples",
    "evaluate",
    "percentile",
    "read_corpus",
    "score",
    "settle_alone",
]
