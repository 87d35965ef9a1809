"""Bids: one per asserted artifact, always inside the bounty's [minimum, maximum]."""

import pytest

from polyswarmclient.amounts import nct
from polyswarmclient.services.microengine import bidding

MIN = nct("0.0625")
MAX = nct("1")


def test_default_scales_with_confidence():
    """The default strategy bids the minimum at confidence 0, the maximum at 1, and halfway at 0.5."""
    s = bidding.strategy("default")
    assert bidding.bids(s, [True, True, True], [0.0, 0.5, 1.0], MIN, MAX) == [
        MIN,
        MIN + (MAX - MIN) // 2,
        MAX,
    ]


def test_conservative_always_bids_the_minimum():
    """--bid-strategy conservative never risks more than the minimum, whatever the confidence."""
    s = bidding.strategy("conservative")
    assert bidding.bids(s, [True, True], [0.0, 1.0], MIN, MAX) == [MIN, MIN]


def test_aggressive_starts_at_eight_times_the_minimum():
    """--bid-strategy aggressive bids 8x the minimum at zero confidence and the maximum at full confidence."""
    s = bidding.strategy("aggressive")
    assert bidding.bids(s, [True, True], [0.0, 1.0], MIN, MAX) == [8 * MIN, MAX]


def test_aggressive_floor_is_capped_by_the_maximum():
    """When 8x the minimum exceeds the maximum, aggressive bids the maximum instead of an invalid bid."""
    s = bidding.strategy("aggressive")
    assert bidding.bids(s, [True], [0.0], MIN, 4 * MIN) == [4 * MIN]


@pytest.mark.parametrize("confidence", [-3.0, 1.7, float("nan"), float("inf"), "garbage"])
def test_confidence_is_clamped(confidence):
    """A scanner reporting confidence outside [0, 1] (or NaN) can never push a bid out of range."""
    for name in bidding.STRATEGIES:
        (bid,) = bidding.bids(bidding.strategy(name), [True], [confidence], MIN, MAX)
        assert MIN <= bid <= MAX


def test_one_bid_per_set_mask_bit_in_artifact_order():
    """Bids follow the set mask bits in artifact order; unasserted artifacts get no bid."""
    s = bidding.strategy("default")
    assert bidding.bids(s, [False, True, False, True], [1.0, 0.0, 1.0, 1.0], MIN, MAX) == [MIN, MAX]


def test_amounts_are_integers():
    """Bids are integer NCT-wei, never floats."""
    s = bidding.strategy("default")
    assert all(type(b) is int for b in bidding.bids(s, [True], [0.333333], MIN, MAX))


def test_zero_maximum_means_minimum():
    """A polyswarmd that reports no bid maximum (0) gets minimum bids rather than reverted transactions."""
    assert bidding.bids(bidding.strategy("default"), [True], [1.0], MIN, 0) == [MIN]


def test_impossible_limits_are_refused():
    """Parameters with maximum below minimum raise instead of producing a bid the contract rejects."""
    with pytest.raises(ValueError):
        bidding.bids(bidding.strategy("default"), [True], [1.0], MAX, MIN)


def test_unknown_strategy_names_the_choices():
    """An unknown strategy name lists the valid ones."""
    with pytest.raises(ValueError, match="default, conservative, aggressive"):
        bidding.strategy("yolo")


def test_custom_single_bid_is_repeated_and_clamped():
    """A 1.x engine's single bid() int is used for every asserted artifact and clamped into range."""
    assert bidding.normalize_custom(10 * MAX, [True, False, True], MIN, MAX) == [MAX, MAX]
    assert bidding.normalize_custom(1, [True], MIN, MAX) == [MIN]


def test_custom_bid_list_must_match_mask():
    """A 2.x engine's bid() list must have one entry per asserted artifact."""
    assert bidding.normalize_custom([MIN, MAX], [True, True], MIN, MAX) == [MIN, MAX]
    with pytest.raises(ValueError, match="2 bids for 1"):
        bidding.normalize_custom([MIN, MAX], [True, False], MIN, MAX)
