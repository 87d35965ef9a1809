"""The 1.6 roles and views on a real EVM: pause, role managers, arbiters with block numbers, stake
eligibility when voting, voters and arbiter candidates, the token callback into ArbiterStaking."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_abi import decode, encode

from polyswarmclient.devnet.contracts.compile import load_artifact
from polyswarmclient.devnet.deploy import NCT, CommunityConfig, event_topic

MIN_BID = 62_500_000_000_000_000
REG = "BountyRegistry"


def _topics(receipt, contract: str) -> list[str]:
    abi = load_artifact(contract)["abi"]
    names = {event_topic(abi, i["name"]): i["name"] for i in abi if i["type"] == "event"}
    return [names.get(bytes(log.topics[0]), "?") for log in receipt.logs]


def test_a_paused_registry_refuses_bounties_and_assertions_but_not_reveals(env) -> None:
    """pause() stops postBounty and postAssertion; reveals still land; unpause() opens posting again."""
    poster, expert, outsider = env.user("poster", 20 * NCT), env.user("expert", 10 * NCT), env.user("outsider")
    guid, e = env.post_bounty(poster, duration=10)
    env.approve_assertion(expert, [MIN_BID])
    env.ok(expert, REG, "postAssertion", guid, [MIN_BID], 1, env.commitment(7, 1, expert.address))
    assert env.fails(outsider, REG, "pause") == "Only pauser"
    r = env.ok(env.deployer, REG, "pause")
    assert _topics(r, REG) == ["Paused"] and decode(["address"], r.logs[0].data)[0] == env.deployer.address.lower()
    assert env.call(REG, "paused") is True
    env.ok(poster, "NectarToken", "approve", env.addr(REG), 10 * NCT)
    assert env.fails(poster, REG, "postBounty", 5, 0, 2 * NCT, "Qm", 1, 5, [0] * 8, "") == "Contract is paused"
    other = guid + 1
    assert env.fails(poster, REG, "postAssertion", guid, [MIN_BID], 1, 1) == "Contract is paused"
    env.next_tx_block(e)
    env.reveal(expert, guid, 0, 1)
    assert env.fails(env.deployer, REG, "pause") == "Already paused"
    r = env.ok(env.deployer, REG, "unpause")
    assert _topics(r, REG) == ["Unpaused"] and env.call(REG, "paused") is False
    env.ok(poster, REG, "postBounty", other, 0, 2 * NCT, "Qm", 1, 5, [0] * 8, "")


def test_pausers_add_each_other_and_renounce(env) -> None:
    """A pauser adds another (PauserAdded); a renounced pauser can no longer pause."""
    second = env.user("second")
    assert env.call(REG, "isPauser", env.deployer.address) is True
    r = env.ok(env.deployer, REG, "addPauser", second.address)
    assert _topics(r, REG) == ["PauserAdded"] and env.call(REG, "isPauser", second.address) is True
    r = env.ok(second, REG, "renouncePauser")
    assert _topics(r, REG) == ["PauserRemoved"]
    assert env.fails(second, REG, "pause") == "Only pauser"


def test_arbiter_managers_add_and_remove_arbiters_with_block_numbers(env) -> None:
    """addArbiter/removeArbiter by an arbiter manager emit the account (indexed) and the given block number."""
    manager, arb, outsider = env.user("manager"), env.user("arb"), env.user("outsider")
    assert env.fails(outsider, REG, "addArbiter", arb.address, 1) == "Only arbiter manager"
    r = env.ok(env.deployer, REG, "addArbiterManager", manager.address)
    assert _topics(r, REG) == ["ArbiterManagerAdded"] and env.call(REG, "isArbiterManager", manager.address)
    r = env.ok(manager, REG, "addArbiter", arb.address, 4242)
    [log] = r.logs
    assert _topics(r, REG) == ["AddedArbiter"]
    assert log.topics[1][-20:].hex() == arb.address[2:].lower() and decode(["uint256"], log.data) == (4242,)
    assert env.call(REG, "isArbiter", arb.address) is True and env.call(REG, "arbiterCount") == 1
    assert env.fails(manager, REG, "addArbiter", arb.address, 1) == "Already an arbiter"
    r = env.ok(manager, REG, "removeArbiter", arb.address, 4343)
    assert _topics(r, REG) == ["RemovedArbiter"] and decode(["uint256"], r.logs[0].data) == (4343,)
    assert env.call(REG, "isArbiter", arb.address) is False and env.call(REG, "arbiterCount") == 0
    assert env.fails(manager, REG, "removeArbiter", arb.address, 1) == "Not an arbiter"
    r = env.ok(env.deployer, REG, "removeArbiterManager", manager.address)
    assert _topics(r, REG) == ["ArbiterManagerRemoved"]
    assert env.fails(manager, REG, "addArbiter", arb.address, 1) == "Only arbiter manager"


def test_fee_window_and_deprecator_roles_move_and_ownership_transfers(env) -> None:
    """setFeeManager/setWindowManager hand the role over; deprecators and the owner change with events."""
    other = env.user("other")
    r = env.ok(env.deployer, REG, "setFeeManager", other.address)
    assert _topics(r, REG) == ["NewFeeManager"]
    assert [bytes(t)[-20:].hex() for t in r.logs[0].topics[1:]] == [
        env.deployer.address[2:].lower(),
        other.address[2:].lower(),
    ]
    assert env.fails(env.deployer, REG, "setBountyFee", 1) == "Only fee manager"
    env.ok(other, REG, "setBountyFee", 1)
    r = env.ok(env.deployer, REG, "setWindowManager", other.address)
    assert _topics(r, REG) == ["NewWindowManager"]
    env.ok(other, REG, "setWindows", 2, 2)
    r = env.ok(env.deployer, REG, "addDeprecator", other.address)
    assert _topics(r, REG) == ["DeprecatorAdded"] and env.call(REG, "isDeprecator", other.address)
    r = env.ok(other, REG, "removeDeprecator", env.deployer.address)
    assert _topics(r, REG) == ["DeprecatorRemoved"]
    assert env.fails(env.deployer, REG, "deprecate", False) == "Only deprecator"
    assert env.call(REG, "isOwner", sender=env.deployer.address) is True
    r = env.ok(env.deployer, REG, "transferOwnership", other.address)
    assert _topics(r, REG) == ["OwnershipTransferred"]
    assert env.call(REG, "owner") == other.address and env.call(REG, "isOwner", sender=other.address) is True
    env.ok(other, REG, "renounceOwnership")
    assert env.call(REG, "owner") == "0x" + "0" * 40


def test_voting_needs_stake_eligibility(env) -> None:
    """An arbiter below MINIMUM_STAKE cannot vote; once staked to the minimum it votes and is recorded."""
    poster = env.user("poster", 10 * NCT)
    arb = env.arbiter("arb", stake=env.config.minimum_stake - 1)
    guid, e = env.post_bounty(poster)
    env.next_tx_block(e + env.config.assertion_reveal_window)
    assert env.call("ArbiterStaking", "isEligible", arb.address) is False
    assert env.fails(arb, REG, "voteOnBounty", guid, 1, True) == "Arbiter not eligible"
    env.ok(env.deployer, "NectarToken", "mint", arb.address, 1)
    env.ok(arb, "NectarToken", "approve", env.addr("ArbiterStaking"), 1)
    env.ok(arb, "ArbiterStaking", "deposit", 1)
    r = env.ok(arb, REG, "voteOnBounty", guid, 1, True)
    staking_events = [log for log in r.logs if log.address == env.addr("ArbiterStaking")]
    assert _topics(r, REG).count("NewVote") == 1 and len(staking_events) == 2  # BountyRecorded, BountyVoteRecorded
    assert env.call("ArbiterStaking", "bounties", guid) is True
    assert env.call("ArbiterStaking", "bountyResponseByGuidAndAddress", guid, arb.address) is True
    assert env.call("ArbiterStaking", "arbiterResponseRate", arb.address) == (1, 1)
    assert env.call(REG, "arbiterVoteRegistryByGuid", guid, arb.address) is True
    assert env.call(REG, "getVoters", guid) == [arb.address]
    assert env.call(REG, "quorumVotesByGuid", guid, 0) == 1 and env.call(REG, "voteCountByGuid", guid, 0) == 1


@pytest.mark.parametrize("config", [replace(CommunityConfig(), minimum_stake=NCT, arbiter_vote_window=60)])
def test_an_arbiter_that_misses_votes_loses_eligibility(env) -> None:
    """After 10 voted bounties an arbiter that answered fewer than 9 in 10 of them may no longer vote."""
    poster = env.user("poster", 100 * NCT)
    busy, lazy = env.arbiter("busy"), env.arbiter("lazy")
    guids = [env.post_bounty(poster, duration=2) for _ in range(11)]
    env.next_tx_block(max(e for _, e in guids) + env.config.assertion_reveal_window)
    for guid, _ in guids[:9]:
        env.ok(busy, REG, "voteOnBounty", guid, 0, True)
    env.ok(lazy, REG, "voteOnBounty", guids[9][0], 0, True)
    env.ok(busy, REG, "voteOnBounty", guids[9][0], 0, True)
    assert env.call("ArbiterStaking", "arbiterResponseRate", lazy.address) == (1, 10)
    assert env.call("ArbiterStaking", "isEligible", busy.address) is True
    assert env.fails(lazy, REG, "voteOnBounty", guids[10][0], 0, True) == "Arbiter not eligible"
    voters, active = env.call(REG, "getActiveArbiters")
    assert voters == [busy.address, lazy.address] and active == [True, False]  # 10 of 11 bounties, 1 of 11


def test_arbiter_candidates_are_the_busiest_posters(env) -> None:
    """getArbiterCandidates lists the posters of the look-back range, most bounties first."""
    one, two = env.user("one", 50 * NCT), env.user("two", 50 * NCT)
    with pytest.raises(Exception, match="No bounties have been placed"):
        env.call(REG, "getArbiterCandidates")
    env.post_bounty(one)
    env.post_bounty(two)
    env.post_bounty(two)
    assert env.call(REG, "getArbiterCandidates") == [two.address, one.address]
    assert env.call(REG, "getActiveArbiters") == ([], [])


def test_settling_is_recorded_in_bounty_settled(env) -> None:
    """bountySettled(guid, account) turns true once that account settled, and a second settle is refused."""
    poster = env.user("poster", 10 * NCT)
    guid, e = env.post_bounty(poster, duration=2)
    c = env.config
    env.next_tx_block(e + c.assertion_reveal_window + c.arbiter_vote_window)
    assert env.call(REG, "bountySettled", guid, poster.address) is False
    env.ok(poster, REG, "settleBounty", guid)
    assert env.call(REG, "bountySettled", guid, poster.address) is True
    assert env.fails(poster, REG, "settleBounty", guid) == "Bounty already settled"


def test_public_assertion_mappings(env) -> None:
    """expertAssertionRegistryByGuid and assertionBidByGuid show who asserted and each bid portion."""
    poster, expert = env.user("poster", 10 * NCT), env.user("expert", 10 * NCT)
    guid, _ = env.post_bounty(poster, num_artifacts=2, amount=4 * NCT, duration=10)
    env.assert_on(expert, guid, [MIN_BID, 2 * MIN_BID], 0b11, 0b01)
    assert env.call(REG, "expertAssertionRegistryByGuid", guid, expert.address) is True
    assert env.call(REG, "expertAssertionRegistryByGuid", guid, poster.address) is False
    assert [env.call(REG, "assertionBidByGuid", guid, 0, k) for k in range(2)] == [MIN_BID, 2 * MIN_BID]


def test_approve_and_call_deposits_stake(env) -> None:
    """NectarToken.approveAndCall(staking, value, data) deposits through receiveApproval; only the token may call it."""
    arb = env.arbiter("arb", stake=0)
    env.ok(env.deployer, "NectarToken", "mint", arb.address, 5 * NCT)
    staking = env.addr("ArbiterStaking")
    token = env.addr("NectarToken")
    refused = env.fails(arb, "ArbiterStaking", "receiveApproval", arb.address, NCT, token, b"")
    assert refused == "Only the token"
    r = env.ok(arb, "NectarToken", "approveAndCall", staking, 2 * NCT, b"")
    assert env.call("ArbiterStaking", "balanceOf", arb.address) == 2 * NCT
    assert env.call("ArbiterStaking", "deposits", arb.address, 0) == (r.block_number, 2 * NCT)
    assert env.balance(arb) == 3 * NCT


def test_a_paused_staking_contract_refuses_deposits(env) -> None:
    """ArbiterStaking's pausers stop deposits until unpaused."""
    arb = env.arbiter("arb", stake=0)
    env.ok(env.deployer, "NectarToken", "mint", arb.address, NCT)
    env.ok(arb, "NectarToken", "approve", env.addr("ArbiterStaking"), NCT)
    env.ok(env.deployer, "ArbiterStaking", "pause")
    assert env.fails(arb, "ArbiterStaking", "deposit", NCT) == "Contract is paused"
    env.ok(env.deployer, "ArbiterStaking", "unpause")
    env.ok(arb, "ArbiterStaking", "deposit", NCT)


def test_relay_withdrawals_report_destination_net_amount_and_processed(env) -> None:
    """withdrawals(keccak(tx, block hash, number)) gives the three 1.2 values; the approval list is public."""
    from eth_utils import keccak

    from polyswarmclient.devnet.deploy import devnet_address, devnet_key

    env.ok(env.deployer, "NectarToken", "mint", env.addr("ERC20Relay"), 100 * NCT)
    verifier = env.user("unused")
    verifier.key, verifier.address = devnet_key("relay"), devnet_address("relay")
    dest = env.user("dest")
    tx_hash, block_hash = b"\x01" * 32, b"\x02" * 32
    env.ok(verifier, "ERC20Relay", "approveWithdrawal", dest.address, 3 * NCT, tx_hash, block_hash, 9)
    key = keccak(tx_hash + block_hash + encode(["uint256"], [9]))
    assert env.call("ERC20Relay", "withdrawals", key) == (dest.address, 3 * NCT, True)
    assert env.call("ERC20Relay", "withdrawalApprovals", key, 0) == verifier.address


def test_relay_anchors_blocks_with_its_verifiers(env) -> None:
    """anchor() by the verifier anchors the block (AnchoredBlock); a new block replaces an anchored one."""
    from polyswarmclient.devnet.deploy import devnet_address, devnet_key

    verifier = env.user("unused")
    verifier.key, verifier.address = devnet_key("relay"), devnet_address("relay")
    r = env.ok(verifier, "ERC20Relay", "anchor", b"\x03" * 32, 5)
    assert _topics(r, "ERC20Relay") == ["AnchoredBlock"]
    assert env.call("ERC20Relay", "anchors", 0) == (b"\x03" * 32, 5, True)
    assert env.fails(verifier, "ERC20Relay", "anchor", b"\x03" * 32, 5) == "Already approved anchor block"
    assert env.fails(verifier, "ERC20Relay", "unanchor") == "Block anchor already processed"
    assert env.fails(env.user("x"), "ERC20Relay", "anchor", b"\x04" * 32, 6) == "Not a verifier"
