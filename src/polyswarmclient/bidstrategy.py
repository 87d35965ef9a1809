"""Compatibility: polyswarm-client 2.x's ``polyswarmclient.bidstrategy``, on the engine's own bid rule.

An engine-template engine subclasses :class:`BidStrategyBase` with
``super().__init__(min_bid_multiplier=8, max_bid_multiplier=8)``. The multipliers mean what they meant
in 2.x, and the bids come from :mod:`polyswarmclient.services.microengine.bidding` (the rule
``--bid-strategy`` uses): per asserted artifact, from ``max(minimum × min_multiplier, minimum)`` to
``min(minimum × max_multiplier, maximum)`` by confidence, ``None`` leaving that end at the bounty's
limit, every bid clamped to the bounty's limits.

The 2.x strategy names map onto ``--bid-strategy``'s: ``default`` (:class:`DefaultBidStrategy`),
``conservative`` (:class:`ConservativeBidStrategy`) and ``aggressive`` (:class:`AggressiveBidStrategy`);
:func:`strategy_for_name` finds one by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from polyswarmclient.services.microengine.bidding import STRATEGIES, BidStrategy, bids

__all__ = [
    "AggressiveBidStrategy",
    "BidStrategyBase",
    "ConservativeBidStrategy",
    "DefaultBidStrategy",
    "strategy_for_name",
]


class BidStrategyBase:
    """A bid strategy as polyswarm-client 2.x defined it: two multipliers of the bounty's minimum bid."""

    def __init__(self, min_bid_multiplier: int | None = None, max_bid_multiplier: int | None = None) -> None:
        for name, value in (("min_bid_multiplier", min_bid_multiplier), ("max_bid_multiplier", max_bid_multiplier)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number of at least 1 (or None), not {value!r}")
        self.min_bid_multiplier = min_bid_multiplier
        self.max_bid_multiplier = max_bid_multiplier

    @property
    def strategy(self) -> BidStrategy:
        """The same strategy as the engine's bid rule sees it."""
        return BidStrategy(type(self).__name__, self.min_bid_multiplier, self.max_bid_multiplier)

    async def bid(
        self,
        guid: str,
        mask: Sequence[bool],
        verdicts: Sequence[bool],
        confidences: Sequence[float],
        metadatas: Sequence[Any],
        min_allowed_bid: int,
        max_allowed_bid: int,
        chain: str,
    ) -> list[int]:
        """One bid (NCT-wei) per set bit of ``mask``, in artifact order (the 2.x signature)."""
        return bids(self.strategy, mask, confidences, int(min_allowed_bid), int(max_allowed_bid))


def _named(name: str) -> tuple[int | None, int | None]:
    found = STRATEGIES[name]
    return found.min_multiplier, found.max_multiplier


class DefaultBidStrategy(BidStrategyBase):
    """``default``: from the bounty's minimum to its maximum, by confidence."""

    def __init__(self) -> None:
        super().__init__(*_named("default"))


class ConservativeBidStrategy(BidStrategyBase):
    """``conservative``: always the minimum."""

    def __init__(self) -> None:
        super().__init__(*_named("conservative"))


class AggressiveBidStrategy(BidStrategyBase):
    """``aggressive``: from 8 times the minimum up to the maximum, by confidence."""

    def __init__(self) -> None:
        super().__init__(*_named("aggressive"))


_BY_NAME: dict[str, type[BidStrategyBase]] = {
    "default": DefaultBidStrategy,
    "conservative": ConservativeBidStrategy,
    "aggressive": AggressiveBidStrategy,
}


def strategy_for_name(name: str) -> BidStrategyBase:
    """The 2.x strategy called ``name`` (``default``, ``conservative``, ``aggressive``)."""
    try:
        return _BY_NAME[name]()
    except KeyError:
        raise ValueError(f"unknown bid strategy {name!r}; use one of: {', '.join(_BY_NAME)}") from None
