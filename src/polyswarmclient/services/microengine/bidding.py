"""Bids: pure functions from (mask, confidences, bounty limits) to NCT-wei integers.

One bid per **set** mask bit, in artifact order (spec §5.6). Every bid lies in
``[assertion_bid_minimum, assertion_bid_maximum]``, whatever the strategy or a custom ``bid()`` says, so a
bid can never make the assertion revert (spec pitfall 15).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

#: Confidence resolution: confidences are floats from scanners; amounts never are.
_SCALE = 1_000_000


@dataclass(frozen=True)
class BidStrategy:
    """``min_multiplier``/``max_multiplier`` scale the protocol minimum, as in polyswarm-client 2.x.

    ``bid = low + (high - low) * confidence`` with ``low = max(min * min_multiplier, min)`` and
    ``high = min(min * max_multiplier, max)``; ``None`` leaves that end at the protocol limit.
    """

    name: str
    min_multiplier: int | None = None
    max_multiplier: int | None = None


STRATEGIES: dict[str, BidStrategy] = {
    "default": BidStrategy("default"),
    "conservative": BidStrategy("conservative", 1, 1),
    "aggressive": BidStrategy("aggressive", 8, None),
}


def strategy(name: str) -> BidStrategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown bid strategy {name!r}; use one of: {', '.join(STRATEGIES)}") from None


def clamp_confidence(value: float) -> Fraction:
    """Confidence as an exact fraction in [0, 1]; NaN and garbage count as 0."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return Fraction(0)
    if math.isnan(f) or f <= 0:
        return Fraction(0)
    if f >= 1:
        return Fraction(1)
    return Fraction(round(f * _SCALE), _SCALE)


def limits(minimum: int, maximum: int) -> tuple[int, int]:
    """The usable [low, high] range. A maximum of 0 (seed-era polyswarmd reports none) means the minimum."""
    if minimum <= 0:
        raise ValueError(f"bounty parameters give a non-positive bid minimum ({minimum})")
    if maximum <= 0:
        maximum = minimum
    if maximum < minimum:
        raise ValueError(f"bounty parameters allow no bid: maximum {maximum} is below minimum {minimum}")
    return minimum, maximum


def clamp_bid(value: int, minimum: int, maximum: int) -> int:
    low, high = limits(minimum, maximum)
    return max(low, min(high, int(value)))


def bid_for(strat: BidStrategy, confidence: float, minimum: int, maximum: int) -> int:
    """One artifact's bid under ``strat``."""
    low, high = limits(minimum, maximum)
    floor = low if strat.min_multiplier is None else max(low * strat.min_multiplier, low)
    ceiling = high if strat.max_multiplier is None else min(low * strat.max_multiplier, high)
    floor = min(floor, high)
    ceiling = max(ceiling, floor)
    c = clamp_confidence(confidence)
    value = floor + int((ceiling - floor) * c)
    return clamp_bid(value, minimum, maximum)


def bids(
    strat: BidStrategy, mask: Sequence[bool], confidences: Sequence[float], minimum: int, maximum: int
) -> list[int]:
    """Bids for every set bit of ``mask``, in artifact order; ``confidences`` is per artifact."""
    if len(confidences) < len(mask):
        raise ValueError("one confidence per artifact is needed")
    return [bid_for(strat, confidences[i], minimum, maximum) for i, bit in enumerate(mask) if bit]


def normalize_custom(value: int | Sequence[int], mask: Sequence[bool], minimum: int, maximum: int) -> list[int]:
    """Turn an engine's own ``bid()`` answer into a valid bid list.

    A single int (the 1.x API) is used for every set bit; a list must have one entry per set bit. Each
    entry is clamped into [minimum, maximum].
    """
    count = sum(1 for bit in mask if bit)
    if isinstance(value, bool):
        raise TypeError("bid() returned a bool, not an amount in NCT-wei")
    if isinstance(value, int):
        raw = [value] * count
    else:
        raw = [int(v) for v in value]
        if len(raw) != count:
            raise ValueError(f"bid() returned {len(raw)} bids for {count} asserted artifacts")
    return [clamp_bid(v, minimum, maximum) for v in raw]
