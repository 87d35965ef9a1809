"""The arbiter's pure decisions: when to vote and settle, what to vote, bloom validity, stake top-up."""

from __future__ import annotations

import pytest

from polyswarmclient.amounts import nct
from polyswarmclient.eth.bloom import bloom_words
from polyswarmclient.services.arbiter import (
    VoteStatus,
    bloom_is_valid,
    decide_votes,
    settle_due,
    stake_shortfall,
    vote_status,
)
from polyswarmclient.wire.models import StakingParameters

E, R, V = 110, 25, 100


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (E, VoteStatus.EARLY),
        (E + R - 1, VoteStatus.EARLY),
        (E + R, VoteStatus.EARLY),  # like polyswarm-client: the first block *after* E+R
        (E + R + 1, VoteStatus.OPEN),
        (E + R + V - 2, VoteStatus.OPEN),  # a vote mined in the next block still lands inside the window
        (E + R + V - 1, VoteStatus.MISSED),
        (E + R + V + 50, VoteStatus.MISSED),
    ],
)
def test_vote_status_follows_the_contract_window(block: int, expected: VoteStatus) -> None:
    """The arbiter votes from the first block after E+R while a vote can still land before E+R+V."""
    assert vote_status(block, E, R, V) is expected


def test_settle_waits_for_the_end_of_the_vote_window() -> None:
    """An arbiter settles only at or after E+R+V, the contract's rule for arbiters."""
    assert not settle_due(E + R + V - 1, E, R, V)
    assert settle_due(E + R + V, E, R, V)
    assert settle_due(E + R + V + 300, E, R, V)


def test_votes_are_the_verdicts_in_artifact_order() -> None:
    """Each artifact's verdict becomes its vote (malicious = True)."""
    assert decide_votes([True, False, True]) == [True, False, True]


@pytest.mark.parametrize("verdicts", [[True, None], [None], []])
def test_no_vote_when_any_artifact_lacks_a_verdict(verdicts: list[bool | None]) -> None:
    """One artifact that could not be fetched or scanned means no vote at all."""
    assert decide_votes(verdicts) is None


def test_bloom_matches_the_artifact_listing() -> None:
    """The bounty's bloom is valid when rebuilt from its artifact hashes (order does not matter)."""
    hashes = ["QmAaa", "QmBbb", "QmCcc"]
    words = bloom_words(hashes)
    assert bloom_is_valid(words, hashes)
    assert bloom_is_valid(words, list(reversed(hashes)))


def test_bloom_mismatch_is_detected() -> None:
    """A bloom over other artifacts, a missing artifact, or a malformed word list is invalid."""
    words = bloom_words(["QmAaa", "QmBbb"])
    assert not bloom_is_valid(words, ["QmAaa"])
    assert not bloom_is_valid(words, ["QmAaa", "QmBbb", "QmCcc"])
    assert not bloom_is_valid(words[:7], ["QmAaa", "QmBbb"])
    assert not bloom_is_valid([0] * 8, ["QmAaa"])


def test_stake_shortfall_tops_up_to_the_minimum() -> None:
    """The arbiter deposits exactly what is missing to reach minimum_stake, and nothing above it."""
    params = StakingParameters(
        minimum_stake=nct(10), maximum_stake=nct(100), vote_ratio_numerator=9, vote_ratio_denominator=10
    )
    assert stake_shortfall(0, params) == nct(10)
    assert stake_shortfall(nct("2.5"), params) == nct("7.5")
    assert stake_shortfall(nct(10), params) == 0
    assert stake_shortfall(nct(50), params) == 0
