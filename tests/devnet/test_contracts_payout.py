"""Settlement payouts of BountyRegistry (1.5 rules, amount spread evenly), checked to the NCT-wei."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_abi import decode

from polyswarmclient.devnet.contracts.compile import load_artifact
from polyswarmclient.devnet.deploy import NCT, CommunityConfig, event_topic

F_B = 62_500_000_000_000_000
F_A = 31_250_000_000_000_000
HALF = NCT // 2
QUARTER = NCT // 4


def _arbiter(env, label="arbiter"):
    return env.arbiter(label)


def _settle(env, who) -> int:
    """Settle and return the payout reported by SettledBounty, checking it equals the balance change."""
    before = env.balance(who)
    receipt = env.ok(who, "BountyRegistry", "settleBounty", env.current_guid)
    topic = event_topic(load_artifact("BountyRegistry")["abi"], "SettledBounty")
    [log] = [log for log in receipt.logs if log.topics[0] == topic]
    guid, settler, payout = decode(["uint128", "address", "uint256"], log.data)
    assert guid == env.current_guid and settler.lower() == who.address.lower()
    assert env.balance(who) - before == payout
    return int(payout)


def _to_vote_round(env, e):
    env.next_tx_block(e + env.config.assertion_reveal_window)


def _to_end(env, e):
    c = env.config
    env.next_tx_block(e + c.assertion_reveal_window + c.arbiter_vote_window)


def _one_expert_then_vote(env, amount, num_artifacts, *, bid, mask, verdicts, votes):
    """A bounty (10 blocks) with one expert's revealed single-bid assertion and the arbiter's vote.

    Returns ``(poster, expert, arbiter, expiration)``; the bounty is ``env.current_guid``.
    """
    poster, a, arb = env.user("poster", 10 * NCT), env.user("a", 10 * NCT), _arbiter(env)
    guid, e = env.post_bounty(poster, amount=amount, num_artifacts=num_artifacts, duration=10)
    env.current_guid = guid
    ia = env.assert_on(a, guid, [bid], mask, verdicts)
    env.next_tx_block(e)
    env.reveal(a, guid, ia, verdicts)
    _to_vote_round(env, e)
    env.ok(arb, "BountyRegistry", "voteOnBounty", guid, votes, True)
    return poster, a, arb, e


def test_correct_expert_takes_bounty_and_losers_bids(env) -> None:
    """Correct expert: bid + bid*losers/winners + bid*amount_i/winners; wrong and unrevealed lose bids;
    the assigned arbiter gets the remainder (the fees)."""
    poster = env.user("poster", 10 * NCT)
    a, b, c = env.user("a", 10 * NCT), env.user("b", 10 * NCT), env.user("c", 10 * NCT)
    arb = _arbiter(env)
    guid, e = env.post_bounty(poster, amount=4 * NCT, num_artifacts=2, duration=20)
    env.current_guid = guid
    ia = env.assert_on(a, guid, [NCT, HALF], 0b11, 0b01)
    ib = env.assert_on(b, guid, [HALF], 0b01, 0b00)
    env.assert_on(c, guid, [QUARTER], 0b01, 0b01)  # never revealed: counts as wrong
    env.next_tx_block(e)
    env.reveal(a, guid, ia, 0b01)
    env.reveal(b, guid, ib, 0b00)
    _to_vote_round(env, e)
    env.ok(arb, "BountyRegistry", "voteOnBounty", guid, 0b01, True)  # quorum: experts may settle now

    # artifact 0: winner pool 1, loser pool 0.75, amount_i 2 -> a gets 1 + 0.75 + 2
    # artifact 1: winner pool 0.5, nothing lost      -> a gets 0.5 + 0 + 2
    assert _settle(env, a) == NCT + 3 * QUARTER + 2 * NCT + HALF + 2 * NCT
    assert _settle(env, b) == 0
    assert _settle(env, c) == 0
    assert _settle(env, poster) == 0
    _to_end(env, e)
    assert _settle(env, arb) == F_B + 3 * F_A
    assert env.call("BountyRegistry", "bountiesByGuid", guid)[7] == arb.address
    assert env.balance(env.addr("BountyRegistry")) == 0
    assert env.balance(a) == 10 * NCT - NCT - HALF - F_A + 6 * NCT + QUARTER
    assert env.balance(b) == 10 * NCT - HALF - F_A
    assert env.balance(c) == 10 * NCT - QUARTER - F_A
    assert env.balance(poster) == 10 * NCT - 4 * NCT - F_B


def test_unasserted_artifact_is_refunded_to_poster(env) -> None:
    """With votes, the per-artifact amount of every artifact nobody asserted on goes back to the poster."""
    poster, a, arb, e = _one_expert_then_vote(env, 6 * NCT, 3, bid=NCT, mask=0b001, verdicts=0b001, votes=0b001)
    assert _settle(env, poster) == 4 * NCT
    assert _settle(env, a) == NCT + 2 * NCT
    _to_end(env, e)
    assert _settle(env, arb) == F_B + F_A
    assert env.balance(env.addr("BountyRegistry")) == 0


def test_wrong_majority_artifact_pays_the_arbiter(env) -> None:
    """If every expert on an artifact is wrong, its amount and the bids go to the arbiter remainder."""
    poster, a, arb, e = _one_expert_then_vote(env, 2 * NCT, 1, bid=HALF, mask=0b1, verdicts=0b0, votes=0b1)
    _to_end(env, e)
    assert _settle(env, a) == 0
    assert _settle(env, poster) == 0
    assert _settle(env, arb) == F_B + F_A + 2 * NCT + HALF


def test_no_votes_returns_fees_bids_and_shares(env) -> None:
    """Without votes the poster gets the bounty fee back and each expert its fee, bids and
    amount_i/len(A) per bid entry; the first settling arbiter takes the rest."""
    poster = env.user("poster", 10 * NCT)
    a, b = env.user("a", 10 * NCT), env.user("b", 10 * NCT)
    arb = _arbiter(env)
    guid, e = env.post_bounty(poster, amount=4 * NCT, num_artifacts=2, duration=10)
    env.current_guid = guid
    ia = env.assert_on(a, guid, [NCT, HALF], 0b11, 0b11)
    ib = env.assert_on(b, guid, [QUARTER], 0b01, 0b00)
    env.next_tx_block(e)
    env.reveal(a, guid, ia, 0b11)
    env.reveal(b, guid, ib, 0b00)
    _to_end(env, e)
    # share = amount_i / len(A) = 2 / 2 = 1 NCT per bid entry
    assert _settle(env, a) == F_A + (NCT + NCT) + (NCT + HALF)
    assert _settle(env, b) == F_A + NCT + QUARTER
    assert _settle(env, poster) == F_B
    assert _settle(env, arb) == NCT
    assert env.balance(env.addr("BountyRegistry")) == 0


def test_no_assertions_no_votes_refunds_everything(env) -> None:
    """A bounty nobody asserted on or voted on returns amount + bounty fee to the poster."""
    poster, arb = env.user("poster", 10 * NCT), _arbiter(env)
    guid, e = env.post_bounty(poster, amount=2 * NCT)
    env.current_guid = guid
    _to_end(env, e)
    assert _settle(env, poster) == 2 * NCT + F_B
    assert _settle(env, arb) == 0
    assert env.balance(poster) == 10 * NCT


def test_no_assertions_with_votes_pays_fee_to_arbiter(env) -> None:
    """With votes but no assertions the poster gets the amount and the arbiter the bounty fee."""
    poster, arb = env.user("poster", 10 * NCT), _arbiter(env)
    guid, e = env.post_bounty(poster, amount=2 * NCT)
    env.current_guid = guid
    _to_vote_round(env, e)
    env.ok(arb, "BountyRegistry", "voteOnBounty", guid, 0, True)
    assert _settle(env, poster) == 2 * NCT
    _to_end(env, e)
    assert _settle(env, arb) == F_B


@pytest.mark.parametrize("config", [replace(CommunityConfig(), minimum_stake=0)])
def test_arbiter_reward_goes_to_stake_weighted_voter(env) -> None:
    """The first arbiter settle assigns the arbiter by stake among voters (minimum stake 0: an unstaked one votes)."""
    poster = env.user("poster", 10 * NCT)
    staked, unstaked = env.arbiter("staked", 1_000 * NCT), env.arbiter("unstaked", 0)
    guid, e = env.post_bounty(poster, amount=2 * NCT)
    env.current_guid = guid
    _to_vote_round(env, e)
    env.ok(staked, "BountyRegistry", "voteOnBounty", guid, 0, True)
    env.ok(unstaked, "BountyRegistry", "voteOnBounty", guid, 0, True)
    _to_end(env, e)
    assert _settle(env, unstaked) == 0
    assert env.call("BountyRegistry", "bountiesByGuid", guid)[7] == staked.address
    assert _settle(env, staked) == F_B


def test_assertion_escrow_pulls_bids_plus_fee(env) -> None:
    """postAssertion pulls sum(bid) + assertionFee and emits NewAssertion with the bid list."""
    poster, a = env.user("poster", 10 * NCT), env.user("a", 10 * NCT)
    guid, _ = env.post_bounty(poster, amount=6 * NCT, num_artifacts=3, duration=10)
    env.approve_assertion(a, [NCT, HALF])
    receipt = env.ok(a, "BountyRegistry", "postAssertion", guid, [NCT, HALF], 0b101, 42)
    assert env.balance(a) == 10 * NCT - NCT - HALF - F_A
    abi = load_artifact("BountyRegistry")["abi"]
    [log] = [log for log in receipt.logs if log.topics[0] == event_topic(abi, "NewAssertion")]
    values = decode(["uint128", "address", "uint256", "uint256[]", "uint256", "uint256", "uint256"], log.data)
    assert values[0] == guid and values[2] == 0 and list(values[3]) == [NCT, HALF]
    assert values[4:] == (0b101, 3, 42)
