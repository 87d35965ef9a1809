"""BountyRegistry on a real EVM: lifecycle, rounds, commit-reveal, votes, views and reverts."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from polyswarmclient.devnet.contracts.compile import load_artifact
from polyswarmclient.devnet.deploy import NCT, event_topic
from polyswarmclient.devnet.evm import ChainError

MIN_BID = 62_500_000_000_000_000

# Spec Appendix A
APPENDIX_SENDER = "0x34E583cf9C1789c3141538EeC77D9F0B8F7E89f2"
APPENDIX_COMMITMENTS = [
    (1, 5, 0x2077E73AB2DB249DF38A21EE7A377AF80B78FFDC7FD1609DACDBDA0B575F1FB2),
    (
        int.from_bytes(bytes(range(1, 33)), "big"),
        1,
        0x176C1AA3589C8CDF57A03768296D1FA0FF3D5B85B90F79FD232F0E16753DFE2A,
    ),
]
APPENDIX_BLOOM_URI = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
APPENDIX_BLOOM = [0, 2**205 + 2**112, 2**237, 0, 2**71 + 2**64 + 2**39 + 2**2, 2**43, 0, 0]


def _bloom_words(uri: str) -> list[int]:
    k = keccak(uri.encode())
    value = 0
    for j in range(8):
        value |= 1 << (((k[2 * j] << 8) | k[2 * j + 1]) & 2047)
    return [(value >> (256 * (7 - i))) & (2**256 - 1) for i in range(8)]


def _arbiter(env, label="arbiter"):
    return env.arbiter(label)


# ---------------------------------------------------------------- vectors


@pytest.mark.parametrize(("nonce", "verdicts", "expected"), APPENDIX_COMMITMENTS)
def test_commitment_vector_on_chain(env, nonce, verdicts, expected) -> None:
    """calculateCommitment reproduces the Appendix A commitment vectors on-chain."""
    assert env.call("BountyRegistry", "calculateCommitment", nonce, verdicts, APPENDIX_SENDER) == expected
    assert env.commitment(nonce, verdicts, APPENDIX_SENDER) == expected


def test_reveal_commitment_check_uses_the_spec_formula(env) -> None:
    """A reveal succeeds only with nonce/verdicts matching the commitment built for the sender."""
    poster, expert = env.user("poster", 10 * NCT), env.user("expert", 10 * NCT)
    guid, expiration = env.post_bounty(poster, num_artifacts=3)
    nonce, verdicts = APPENDIX_COMMITMENTS[0][:2]
    env.approve_assertion(expert, [MIN_BID, MIN_BID])
    c = env.call("BountyRegistry", "calculateCommitment", nonce, verdicts, expert.address)
    env.ok(expert, "BountyRegistry", "postAssertion", guid, [MIN_BID, MIN_BID], 0b101, c)
    env.next_tx_block(expiration)
    reg = "BountyRegistry"
    assert env.fails(expert, reg, "revealAssertion", guid, 0, nonce, 0b100, "") == "Commitment mismatch"
    assert env.fails(expert, reg, "revealAssertion", guid, 0, 2, verdicts, "") == "Commitment mismatch"
    receipt = env.ok(expert, reg, "revealAssertion", guid, 0, nonce, verdicts, "meta")
    assert receipt.logs[0].topics[0] == event_topic(load_artifact(reg)["abi"], "RevealedAssertion")
    author, mask, commitment, stored_nonce, stored_verdicts, metadata = env.call(
        "BountyRegistry", "assertionsByGuid", guid, 0
    )
    assert (author, mask, commitment, stored_nonce, stored_verdicts, metadata) == (
        expert.address,
        0b101,
        c,
        nonce,
        verdicts,
        "meta",
    )


def test_bloom_vector_is_stored_and_returned(env) -> None:
    """postBounty stores the Appendix A bloom words; bloomByGuid returns them most significant first."""
    assert _bloom_words(APPENDIX_BLOOM_URI) == APPENDIX_BLOOM
    poster = env.user("poster", 10 * NCT)
    guid, _ = env.post_bounty(poster, bloom=APPENDIX_BLOOM, uri=APPENDIX_BLOOM_URI)
    assert [env.call("BountyRegistry", "bloomByGuid", guid, i) for i in range(8)] == APPENDIX_BLOOM
    with pytest.raises(ChainError, match="Invalid bloom index"):
        env.call("BountyRegistry", "bloomByGuid", guid, 8)


# ---------------------------------------------------------------- lifecycle


def test_post_bounty_escrows_amount_plus_fee_and_records_fields(env) -> None:
    """postBounty pulls amount + bountyFee, emits NewBounty and fills bountiesByGuid."""
    poster = env.user("poster", 10 * NCT)
    guid, expiration = env.post_bounty(
        poster, amount=4 * NCT, num_artifacts=2, duration=7, metadata="m", artifact_type=1
    )
    assert env.balance(poster) == 10 * NCT - 4 * NCT - env.config.bounty_fee
    assert env.balance(env.addr("BountyRegistry")) == 4 * NCT + env.config.bounty_fee
    fields = env.call("BountyRegistry", "bountiesByGuid", guid)
    assert fields == (
        guid,
        1,
        poster.address,
        4 * NCT,
        APPENDIX_BLOOM_URI,
        2,
        expiration,
        "0x" + "0" * 40,
        False,
        0,
        0,
        "m",
    )
    logs = env.chain.get_logs(expiration - 7, env.chain.block_number(), address=env.addr("BountyRegistry"))
    new_bounty = "9131922187c384daa13e81999a6b48e917a94eab0fb8f64e3e749c22aa3cd54d"
    assert [log.topics[0].hex() for log in logs] == [new_bounty]


def test_rounds_follow_expiration_reveal_and_vote_windows(env) -> None:
    """getCurrentRound is 0 before E, 1 in [E,E+R), 2 then 3 after quorum, 4 from E+R+V."""
    poster, arb = env.user("poster", 10 * NCT), _arbiter(env)
    guid, e = env.post_bounty(poster, duration=3)
    r, v = env.config.assertion_reveal_window, env.config.arbiter_vote_window

    def round_at_head():
        return env.call("BountyRegistry", "getCurrentRound", guid)

    assert round_at_head() == 0
    env.next_tx_block(e + 1)  # head == e
    assert round_at_head() == 1
    env.next_tx_block(e + r + 1)  # head == e + r
    assert round_at_head() == 2
    env.ok(arb, "BountyRegistry", "voteOnBounty", guid, 0, True)
    assert round_at_head() == 3
    env.next_tx_block(e + r + v + 1)
    assert round_at_head() == 4


def test_vote_reaches_quorum_once_and_stores_relative_block(env) -> None:
    """With two arbiters, one malicious vote is a quorum (q >= N - q); QuorumReached is emitted once."""
    poster = env.user("poster", 10 * NCT)
    a1, a2 = _arbiter(env, "a1"), _arbiter(env, "a2")
    guid, e = env.post_bounty(poster, num_artifacts=2, amount=4 * NCT)
    quorum_topic = event_topic(load_artifact("BountyRegistry")["abi"], "QuorumReached")
    env.next_tx_block(e + env.config.assertion_reveal_window + 2)
    r1 = env.ok(a1, "BountyRegistry", "voteOnBounty", guid, 0b11, True)
    assert quorum_topic in [log.topics[0] for log in r1.logs]
    b = env.call("BountyRegistry", "bountiesByGuid", guid)
    assert b[8] is True and b[9] == r1.block_number - e and b[10] == 0b11
    r2 = env.ok(a2, "BountyRegistry", "voteOnBounty", guid, 0b111, False)
    assert quorum_topic not in [log.topics[0] for log in r2.logs]
    assert env.call("BountyRegistry", "votesByGuid", guid, 1) == (a2.address, 0b11, False)
    assert env.call("BountyRegistry", "getNumberOfVotes", guid) == 2


def test_benign_votes_below_majority_do_not_reach_quorum(env) -> None:
    """With three arbiters one benign vote is no quorum (b > N - b fails), and voting stays in round 2."""
    poster = env.user("poster", 10 * NCT)
    a1 = _arbiter(env, "a1")
    _arbiter(env, "a2"), _arbiter(env, "a3")
    guid, e = env.post_bounty(poster)
    env.next_tx_block(e + env.config.assertion_reveal_window)
    env.ok(a1, "BountyRegistry", "voteOnBounty", guid, 0, True)
    assert env.call("BountyRegistry", "getCurrentRound", guid) == 2
    assert env.call("BountyRegistry", "bountiesByGuid", guid)[8] is False


def test_get_bounty_guids_pages_by_page_size(env) -> None:
    """getBountyGuids(page) returns PAGE_SIZE guids per page in posting order, then an empty page."""
    poster = env.user("poster", 200 * NCT)
    assert env.call("BountyRegistry", "PAGE_SIZE") == 25
    guids = [env.post_bounty(poster, guid=1000 + i)[0] for i in range(27)]
    assert env.call("BountyRegistry", "getBountyGuids", 0) == guids[:25]
    assert env.call("BountyRegistry", "getBountyGuids", 1) == guids[25:]
    assert env.call("BountyRegistry", "getBountyGuids", 2) == []
    assert env.call("BountyRegistry", "getBountyGuids", 2**255) == []


def test_parameter_views_report_the_deploy_config(env) -> None:
    """The parameter getters read back the CommunityConfig the registry was deployed with."""
    c = env.config
    assert env.call("BountyRegistry", "bountyFee") == c.bounty_fee
    assert env.call("BountyRegistry", "assertionFee") == c.assertion_fee
    assert env.call("BountyRegistry", "BOUNTY_AMOUNT_MINIMUM") == c.bounty_amount_minimum
    assert env.call("BountyRegistry", "ASSERTION_BID_ARTIFACT_MINIMUM") == c.assertion_bid_minimum
    assert env.call("BountyRegistry", "ASSERTION_BID_ARTIFACT_MAXIMUM") == c.assertion_bid_maximum
    assert env.call("BountyRegistry", "assertionRevealWindow") == c.assertion_reveal_window
    assert env.call("BountyRegistry", "arbiterVoteWindow") == c.arbiter_vote_window
    assert env.call("BountyRegistry", "MAX_DURATION") == c.max_duration
    assert env.call("BountyRegistry", "ARBITER_LOOKBACK_RANGE") == c.arbiter_lookback_range


def test_managers_update_fees_windows_and_deprecation_with_events(env) -> None:
    """The fee, window and deprecation managers' calls emit their events; a deprecated registry refuses bounties."""
    abi = load_artifact("BountyRegistry")["abi"]
    poster = env.user("poster", 10 * NCT)
    r = env.ok(env.deployer, "BountyRegistry", "setBountyFee", 5)
    assert r.logs[0].topics[0] == event_topic(abi, "FeesUpdated")
    assert r.logs[0].data == (5).to_bytes(32, "big") + env.config.assertion_fee.to_bytes(32, "big")
    r = env.ok(env.deployer, "BountyRegistry", "setAssertionFee", 6)
    assert r.logs[0].data == (5).to_bytes(32, "big") + (6).to_bytes(32, "big")
    assert env.call("BountyRegistry", "bountyFee") == 5 and env.call("BountyRegistry", "assertionFee") == 6
    assert env.call("BountyRegistry", "DEFAULT_BOUNTY_FEE") == env.config.bounty_fee
    r = env.ok(env.deployer, "BountyRegistry", "setWindows", 3, 4)
    assert r.logs[0].topics[0] == event_topic(abi, "WindowsUpdated")
    assert env.call("BountyRegistry", "assertionRevealWindow") == 3
    assert env.fails(poster, "BountyRegistry", "setBountyFee", 1) == "Only fee manager"
    assert env.fails(poster, "BountyRegistry", "setWindows", 1, 1) == "Only window manager"
    assert env.fails(poster, "BountyRegistry", "deprecate", True) == "Only deprecator"
    r = env.ok(env.deployer, "BountyRegistry", "deprecate", True)
    assert r.logs[0].topics[0] == event_topic(abi, "Deprecated") and r.logs[0].data[-1] == 1
    assert env.call("BountyRegistry", "deprecatedBlock") == r.block_number
    assert env.call("BountyRegistry", "rollover") is True
    env.ok(poster, "NectarToken", "approve", env.addr("BountyRegistry"), 10 * NCT)
    reason = env.fails(poster, "BountyRegistry", "postBounty", 1, 0, 2 * NCT, "Qm", 1, 5, [0] * 8, "")
    assert reason == "Contract is deprecated"
    r = env.ok(env.deployer, "BountyRegistry", "undeprecate")
    assert r.logs[0].topics[0] == event_topic(abi, "Undeprecated")
    assert env.call("BountyRegistry", "deprecatedBlock") == 0
    env.ok(poster, "BountyRegistry", "postBounty", 1, 0, 2 * NCT, "Qm", 1, 5, [0] * 8, "")


# ---------------------------------------------------------------- reverts


def test_post_bounty_reverts(env) -> None:
    """postBounty refuses amounts below the per-artifact minimum, bad durations, duplicates, no allowance."""
    poster = env.user("poster", 100 * NCT)
    reg = "BountyRegistry"

    def post(guid=1, amount=2 * NCT, n=1, duration=5, artifact_type=0, uri="Qm"):
        args = (guid, artifact_type, amount, uri, n, duration, [0] * 8, "")
        return env.fails(poster, reg, "postBounty", *args)

    assert post() == "Insufficient allowance"
    env.ok(poster, "NectarToken", "approve", env.addr(reg), 50 * NCT)
    assert post(amount=4 * NCT - 1, n=2) == "Bounty amount below minimum"
    assert post(duration=env.config.max_duration + 1) == "Invalid bounty duration"
    assert post(duration=0) == "Invalid bounty duration"
    assert post(n=0) == "Invalid number of artifacts"
    assert post(n=257, amount=600 * NCT) == "Invalid number of artifacts"
    assert post(artifact_type=2) == "Invalid artifact type"
    assert post(uri="") == "Invalid artifact URI"
    assert post(guid=0) == "Invalid bounty guid"
    env.ok(poster, reg, "postBounty", 1, 0, 2 * NCT, "Qm", 1, 5, [0] * 8, "")
    assert post() == "Duplicate bounty guid"


def test_post_assertion_reverts(env) -> None:
    """postAssertion checks bid range, bid/mask count, mask range, duplicates, allowance and expiration."""
    poster, expert = env.user("poster", 10 * NCT), env.user("expert", 10 * NCT)
    guid, e = env.post_bounty(poster, num_artifacts=2, amount=4 * NCT, duration=30)
    reg = "BountyRegistry"
    assert env.fails(expert, reg, "postAssertion", guid, [MIN_BID], 0b1, 1) == "Insufficient allowance"
    env.ok(expert, "NectarToken", "approve", env.addr(reg), 5 * NCT)
    assert env.fails(expert, reg, "postAssertion", guid, [MIN_BID - 1], 0b1, 1) == "Bid not between min & max"
    assert env.fails(expert, reg, "postAssertion", guid, [NCT + 1], 0b1, 1) == "Bid not between min & max"
    mismatch = "Bid does not match mask count"
    assert env.fails(expert, reg, "postAssertion", guid, [MIN_BID], 0b11, 1) == mismatch
    assert env.fails(expert, reg, "postAssertion", guid, [MIN_BID, MIN_BID], 0b1, 1) == mismatch
    too_wide = "Mask exceeds number of artifacts"
    assert env.fails(expert, reg, "postAssertion", guid, [MIN_BID], 0b100, 1) == too_wide
    assert env.fails(expert, reg, "postAssertion", 12345, [MIN_BID], 0b1, 1) == "Bounty does not exist"
    env.ok(expert, reg, "postAssertion", guid, [MIN_BID], 0b10, 1)
    assert env.fails(expert, reg, "postAssertion", guid, [MIN_BID], 0b1, 1) == "Duplicate assertion"
    late = env.user("late", 10 * NCT)
    env.ok(late, "NectarToken", "approve", env.addr(reg), 5 * NCT)
    env.next_tx_block(e)
    assert env.fails(late, reg, "postAssertion", guid, [MIN_BID], 0b1, 1) == "Bounty inactive"
    assert env.call(reg, "getBids", guid, 0) == [MIN_BID]
    with pytest.raises(ChainError, match="Invalid assertion id"):
        env.call(reg, "getBids", guid, 1)


def test_reveal_reverts_outside_window_and_for_others(env) -> None:
    """revealAssertion works only in [E, E+R), only for the author, once, with a nonzero nonce."""
    poster, expert, other = env.user("poster", 10 * NCT), env.user("expert", 10 * NCT), env.user("other")
    guid, e = env.post_bounty(poster)
    index = env.assert_on(expert, guid, [MIN_BID], 0b1, 0b1, nonce=9)
    reg = "BountyRegistry"
    env.next_tx_block(e - 1)
    assert env.fails(expert, reg, "revealAssertion", guid, index, 9, 1, "") == "Bounty still active"
    assert env.fails(other, reg, "revealAssertion", guid, index, 9, 1, "") == "Not assertion author"
    assert env.fails(expert, reg, "revealAssertion", guid, index + 1, 9, 1, "") == "Invalid assertion id"
    assert env.fails(expert, reg, "revealAssertion", guid, index, 0, 1, "") == "Invalid nonce"
    env.reveal(expert, guid, index, 0b1, nonce=9)
    assert env.fails(expert, reg, "revealAssertion", guid, index, 9, 1, "") == "Assertion already revealed"

    expert2 = env.user("expert2", 10 * NCT)
    guid2, e2 = env.post_bounty(poster)
    index2 = env.assert_on(expert2, guid2, [MIN_BID], 0b1, 0b1, nonce=9)
    env.next_tx_block(e2 + env.config.assertion_reveal_window)
    assert env.fails(expert2, reg, "revealAssertion", guid2, index2, 9, 1, "") == "Reveal window closed"


def test_vote_reverts(env) -> None:
    """voteOnBounty is for arbiters, once each, only in [E+R, E+R+V)."""
    poster, arb, outsider = env.user("poster", 10 * NCT), _arbiter(env), env.user("outsider")
    guid, e = env.post_bounty(poster)
    r, v = env.config.assertion_reveal_window, env.config.arbiter_vote_window
    reg = "BountyRegistry"
    env.next_tx_block(e + r - 1)
    assert env.fails(arb, reg, "voteOnBounty", guid, 1, True) == "Voting not open"
    assert env.fails(outsider, reg, "voteOnBounty", guid, 1, True) == "Not an arbiter"
    env.ok(arb, reg, "voteOnBounty", guid, 1, True)
    assert env.fails(arb, reg, "voteOnBounty", guid, 1, True) == "Arbiter already voted"
    arb2 = _arbiter(env, "arb2")
    env.next_tx_block(e + r + v)
    assert env.fails(arb2, reg, "voteOnBounty", guid, 1, True) == "Voting window closed"
    assert env.fails(arb2, reg, "voteOnBounty", 4242, 1, True) == "Bounty does not exist"


def test_settle_reverts_too_early_and_twice(env) -> None:
    """Non-arbiters settle after quorum or E+R+V, arbiters only from E+R+V, each address once."""
    poster, arb = env.user("poster", 10 * NCT), _arbiter(env)
    guid, e = env.post_bounty(poster)
    r, v = env.config.assertion_reveal_window, env.config.arbiter_vote_window
    reg = "BountyRegistry"
    assert env.fails(poster, reg, "settleBounty", guid) == "Bounty not yet settleable"
    env.next_tx_block(e + r)
    assert env.fails(poster, reg, "settleBounty", guid) == "Bounty not yet settleable"
    env.ok(arb, reg, "voteOnBounty", guid, 0, True)  # sole arbiter: quorum
    assert env.fails(arb, reg, "settleBounty", guid) == "Bounty not yet settleable"
    env.ok(poster, reg, "settleBounty", guid)
    assert env.fails(poster, reg, "settleBounty", guid) == "Bounty already settled"
    env.next_tx_block(e + r + v)
    env.ok(arb, reg, "settleBounty", guid)
    assert env.fails(arb, reg, "settleBounty", guid) == "Bounty already settled"
    assert env.fails(arb, reg, "settleBounty", 777) == "Bounty does not exist"


def test_views_of_missing_items(env) -> None:
    """A missing bounty reads as zeros; bad assertion/vote indexes and getCurrentRound of it revert."""
    reg = "BountyRegistry"
    assert env.call(reg, "bountiesByGuid", 99)[2] == "0x" + "0" * 40
    assert env.call(reg, "getNumberOfAssertions", 99) == 0
    with pytest.raises(ChainError, match="Invalid assertion id"):
        env.call(reg, "assertionsByGuid", 99, 0)
    with pytest.raises(ChainError, match="Invalid vote id"):
        env.call(reg, "votesByGuid", 99, 0)
    with pytest.raises(ChainError, match="Bounty does not exist"):
        env.call(reg, "getCurrentRound", 99)
