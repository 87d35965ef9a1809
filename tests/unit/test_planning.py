"""Planning one assertion from scan results: what to assert, the bids, the reveal metadata; no I/O."""

from __future__ import annotations

import json

import pytest

from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.services.microengine.bidding import STRATEGIES
from polyswarmclient.services.microengine.filters import parse_confidence
from polyswarmclient.services.microengine.planning import (
    Assert,
    OpenBounty,
    Skip,
    combine_metadata,
    judge,
    nct_text,
    plan,
    verdict_text,
)
from polyswarmclient.wire.events import NewBounty
from polyswarmclient.wire.models import Bounty, BountyParameters
from tests.helpers import PARAMETERS

PARAMS = BountyParameters.from_json(PARAMETERS)  # bids 0.0625 to 1 NCT, assertion fee 0.03125 NCT
MIN, MAX, FEE = PARAMS.assertion_bid_minimum, PARAMS.assertion_bid_maximum, PARAMS.assertion_fee
DEFAULT = STRATEGIES["default"]
NO_MODIFIER = parse_confidence([])
MALICIOUS = ScanResult(bit=True, verdict=True, confidence=1.0, metadata='{"malware_family": "EICAR"}')
BENIGN = ScanResult(bit=True, verdict=False, confidence=0.5, metadata='{"malware_family": ""}')
UNSURE = ScanResult(bit=False, verdict=True, confidence=0.9, metadata="timed out")


def planned(results: list[ScanResult], custom_bid: int | list[int] | None = None) -> Assert | Skip:
    return plan(judge(results, [{}] * len(results), NO_MODIFIER), PARAMS, DEFAULT, custom_bid)


def test_mask_and_verdicts_come_from_the_scans() -> None:
    """We assert where a scan set ``bit``; an artifact we do not assert on is never called malicious."""
    judged = judge([MALICIOUS, UNSURE, BENIGN], [{}, {}, {}], NO_MODIFIER)
    assert judged.mask == (True, False, True)
    assert judged.verdicts == (True, False, False)
    assert judged.notes == (MALICIOUS.metadata, "timed out", BENIGN.metadata)


def test_confidence_rules_apply_to_each_artifacts_metadata() -> None:
    """--confidence favors or penalizes by the artifact's own metadata, clamped to [0, 1]."""
    modifier = parse_confidence([("favor", "mimetype", "==", "text/plain"), ("penalize", "size", ">", "10")])
    judged = judge([MALICIOUS, BENIGN, BENIGN], [{"mimetype": "text/plain"}, {"size": 99}, {}], modifier)
    assert judged.confidences == (1.0, pytest.approx(0.4), 0.5)


def test_nothing_to_assert_is_a_skip_that_says_why() -> None:
    """No set bit: no assertion, and the reason counts the scanned artifacts."""
    assert planned([UNSURE, ScanResult()]) == Skip("no artifact to assert on (2 scanned), no assertion")


def test_bids_follow_confidence_and_cost_adds_the_fee() -> None:
    """One bid per asserted artifact: confidence 1 bids the maximum, 0.5 halfway; cost = bids + fee."""
    decision = planned([MALICIOUS, UNSURE, BENIGN])
    assert isinstance(decision, Assert)
    assert decision.mask == (True, False, True) and decision.verdicts == (True, False, False)
    assert decision.bids == (MAX, MIN + (MAX - MIN) // 2)
    assert decision.cost == sum(decision.bids) + FEE


def test_a_custom_bid_is_used_for_every_asserted_artifact_and_clamped() -> None:
    """An engine's own bid() (one amount, 1.x style) is used per set bit, kept inside the protocol's range."""
    decision = planned([MALICIOUS, BENIGN], custom_bid=10 * MAX)
    assert isinstance(decision, Assert) and decision.bids == (MAX, MAX)
    decision = planned([MALICIOUS, UNSURE], custom_bid=[1])
    assert isinstance(decision, Assert) and decision.bids == (MIN,)
    with pytest.raises(ValueError, match="2 bids for 1 asserted"):
        planned([MALICIOUS, UNSURE], custom_bid=[MIN, MIN])


def test_reveal_metadata_is_a_json_array_of_the_asserted_artifacts() -> None:
    """Metadata of asserted artifacts only, in artifact order, as one JSON array."""
    decision = planned([MALICIOUS, UNSURE, BENIGN])
    assert isinstance(decision, Assert)
    assert json.loads(decision.metadata) == [{"malware_family": "EICAR"}, {"malware_family": ""}]


def test_metadata_that_is_not_json_is_joined_with_semicolons() -> None:
    """As polyswarm-client does, free-text scan metadata is joined with ``;``; nothing asserted gives ''."""
    texts = [ScanResult(bit=True, metadata="one"), ScanResult(bit=True, metadata='{"a": 1}')]
    assert combine_metadata(texts) == 'one;{"a": 1}'
    assert combine_metadata([UNSURE]) == ""


def test_the_event_and_the_rest_answer_give_the_same_open_bounty() -> None:
    """A bounty announced by its event and one found by a catch-up are the same value to the engine."""
    event = NewBounty(
        chain="side",
        block_number=101,
        guid="7c1e6c0e-0000-4000-8000-000000000001",
        artifact_type="file",
        author="0xB8978B0D6aBB3D5BAeEaCbAC35d6B24F39AA443A",
        amount=MIN,
        uri="QmArtifacts",
        expiration=120,
        metadata=[{"mimetype": "text/plain"}],
    )
    listed = Bounty(
        guid=event.guid,
        artifact_type="file",
        author=event.author,
        amount=MIN,
        uri="QmArtifacts",
        num_artifacts=1,
        expiration=120,
        assigned_arbiter="",
        quorum_reached=False,
        quorum_reached_block=0,
        quorum_mask=(),
        metadata=[{"mimetype": "text/plain"}],
    )
    assert OpenBounty.announced(event) == OpenBounty.listed(listed, "side", head=101)


def test_log_texts() -> None:
    """Verdicts read as words, ``-`` where we do not assert; bids in NCT."""
    assert verdict_text([True, False, True], [True, True, False]) == "[malicious, -, benign]"
    assert nct_text([MIN, MAX]) == "[0.0625, 1] NCT"
