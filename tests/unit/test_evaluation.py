"""The scoring of `microengine evaluate`: pure figures from per-sample outcomes."""

import dataclasses

from polyswarmclient.devnet.deploy import CommunityConfig
from polyswarmclient.services.evaluation import DEVNET_PARAMETERS, Outcome, percentile, score


def test_offline_parameters_are_the_devnets():
    """The parameters evaluate calls "devnet defaults" are the ones polyswarmd-devnet deploys."""
    community = dataclasses.asdict(CommunityConfig())
    for name, value in dataclasses.asdict(DEVNET_PARAMETERS).items():
        assert community[name] == value, name


def test_precision_recall_and_nct_follow_the_outcomes():
    """One hit, one false alarm, one miss, one right benign, one unasserted: precision 1/2, recall 1/3, the
    bounty amount for each right call, the bids of the wrong ones, a fee per assertion."""
    p = DEVNET_PARAMETERS
    outcomes = [
        Outcome("hit", True, 0.001, asserted=True, verdict=True, bid=10),
        Outcome("false alarm", False, 0.002, asserted=True, verdict=True, bid=20),
        Outcome("miss", True, 0.003, asserted=True, verdict=False, bid=30),
        Outcome("benign", False, 0.004, asserted=True, verdict=False, bid=40),
        Outcome("skipped", True, 0.100),
    ]
    s = score(outcomes, p)
    assert (s.precision, s.recall) == (0.5, 1 / 3)
    assert (s.right, s.wrong, s.asserted) == (2, 2, 4)
    assert s.net == 2 * p.bounty_amount_minimum - 50 - 4 * p.assertion_fee
    assert s.p99_seconds == 0.100 and abs(s.mean_seconds - 0.022) < 1e-9


def test_percentile_is_nearest_rank():
    """p99 of 1..100 is 99, of one value that value, of nothing 0."""
    assert percentile([float(i) for i in range(100, 0, -1)], 99) == 99.0
    assert percentile([0.5], 99) == 0.5
    assert percentile([], 99) == 0.0
