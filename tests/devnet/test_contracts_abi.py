"""Function selectors and event topics of the devnet ABIs equal the spec §5.12 tables."""

from __future__ import annotations

import pytest

from polyswarmclient.devnet.contracts.compile import load_artifact
from polyswarmclient.devnet.deploy import event_topic, find_function, function_signature, selector

# (contract, function, signature from spec §5.12, selector)
SELECTORS = [
    ("NectarToken", "approve", "approve(address,uint256)", "095ea7b3"),
    ("NectarToken", "transfer", "transfer(address,uint256)", "a9059cbb"),
    (
        "BountyRegistry",
        "postBounty",
        "postBounty(uint128,uint256,uint256,string,uint256,uint256,uint256[8],string)",
        "b2e366a8",
    ),
    ("BountyRegistry", "postAssertion", "postAssertion(uint128,uint256[],uint256,uint256)", "ea11731e"),
    (
        "BountyRegistry",
        "revealAssertion",
        "revealAssertion(uint128,uint256,uint256,uint256,string)",
        "f8f32de6",
    ),
    ("BountyRegistry", "voteOnBounty", "voteOnBounty(uint128,uint256,bool)", "27028aae"),
    ("BountyRegistry", "settleBounty", "settleBounty(uint128)", "5592d687"),
    ("ArbiterStaking", "deposit", "deposit(uint256)", "b6b55f25"),
    ("ArbiterStaking", "withdraw", "withdraw(uint256)", "2e1a7d4d"),
]

# (contract, event, topic0 from spec §5.12)
TOPICS = [
    ("NectarToken", "Transfer", "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"),
    ("BountyRegistry", "NewBounty", "9131922187c384daa13e81999a6b48e917a94eab0fb8f64e3e749c22aa3cd54d"),
    ("BountyRegistry", "NewAssertion", "8c8e02e3895732fddc6a8baaf2dce21b88b94f2aaecd6a5dae5c03c518693db3"),
    (
        "BountyRegistry",
        "RevealedAssertion",
        "ff6d1bd0c214f72eea059c589e55a6434ed3011c01ccd7d7ee0d7353737937c1",
    ),
    ("BountyRegistry", "NewVote", "1d62bec22c4ae1400a6dcb3de090f5410bd8f5dd38a067142a96bcc1d2c3e49b"),
    ("BountyRegistry", "QuorumReached", "1ea03b2592e477a842b82e314d6518fb90858c4e5405570ec8405e4b117517d2"),
    ("BountyRegistry", "SettledBounty", "70934d8a70c66e7fe28bfa368685d0f82f882fd79f440c57ec55d15f64e2ae55"),
    ("BountyRegistry", "FeesUpdated", "5c6323bf1c2d7aaea2c091a4751c1c87af7f2864650c336507a77d0557af37a1"),
    ("BountyRegistry", "WindowsUpdated", "710c8b3bcc669d7c9862e563f43e29e3df52391f837c65b3d891f16023faf0f4"),
    ("BountyRegistry", "Deprecated", "92a709fe0704b42849ae468c6c839690d63164022fbd0d6b49502f95bc6424ff"),
    ("BountyRegistry", "Undeprecated", "7ddd36d52b57a3f725e7df4abbcd9b706fd8165aafcc76a09ecc5714fc4c54f1"),
    ("ArbiterStaking", "NewDeposit", "2cb77763bc1e8490c1a904905c4d74b4269919aca114464f4bb4d911e60de364"),
    ("ArbiterStaking", "NewWithdrawal", "6e2e05fb6a732995d6952d9158ca6b75f11cc6bf5a4af943aa1eb475a249440b"),
    ("ERC20Relay", "WithdrawalProcessed", "795e632c8461fc35886225b3713f3022719e2b40847c5f3bd3fef5c54b4c0fb0"),
]


@pytest.mark.parametrize(("contract", "fn", "signature", "expected"), SELECTORS)
def test_function_selector_matches_spec(contract: str, fn: str, signature: str, expected: str) -> None:
    """Each client-called function has the 1.6 signature and selector of spec §5.12."""
    abi = load_artifact(contract)["abi"]
    assert function_signature(find_function(abi, fn)) == signature
    assert selector(abi, fn).hex() == expected


@pytest.mark.parametrize(("contract", "event", "expected"), TOPICS)
def test_event_topic_matches_spec(contract: str, event: str, expected: str) -> None:
    """Each decoded event has the topic0 of spec §5.12."""
    assert event_topic(load_artifact(contract)["abi"], event).hex() == expected


MARKET_EVENTS = {"NewBounty", "NewAssertion", "RevealedAssertion", "NewVote", "QuorumReached", "SettledBounty"}


def test_bounty_registry_events_have_no_indexed_arguments() -> None:
    """No argument of a BountyRegistry marketplace event is indexed, as in the 1.6 ABI."""
    for item in load_artifact("BountyRegistry")["abi"]:
        if item["type"] == "event" and item["name"] in MARKET_EVENTS | {"FeesUpdated", "WindowsUpdated"}:
            assert not any(p["indexed"] for p in item["inputs"]), item["name"]


def test_event_argument_names_match_the_1_6_abi() -> None:
    """Events decode to the 1.6 field names (Vyper's _from is published as from)."""
    names = {
        (c, i["name"]): [p["name"] for p in i["inputs"]]
        for c in ("NectarToken", "BountyRegistry", "ArbiterStaking", "ERC20Relay")
        for i in load_artifact(c)["abi"]
        if i["type"] == "event"
    }
    assert names[("NectarToken", "Transfer")] == ["from", "to", "value"]
    assert names[("ArbiterStaking", "NewDeposit")] == ["from", "value"]
    assert names[("BountyRegistry", "NewBounty")] == [
        "guid",
        "artifactType",
        "author",
        "amount",
        "artifactURI",
        "expirationBlock",
        "metadata",
    ]
    assert names[("BountyRegistry", "NewVote")] == ["bountyGuid", "votes", "numArtifacts", "voter"]


def test_view_outputs_have_the_1_6_shapes() -> None:
    """bountiesByGuid, assertionsByGuid and votesByGuid return the flat 1.6 field lists."""
    abi = load_artifact("BountyRegistry")["abi"]
    bounty = find_function(abi, "bountiesByGuid")["outputs"]
    assert [(o["name"], o["type"]) for o in bounty] == [
        ("guid", "uint128"),
        ("artifactType", "uint8"),
        ("author", "address"),
        ("amount", "uint256"),
        ("artifactURI", "string"),
        ("numArtifacts", "uint256"),
        ("expirationBlock", "uint256"),
        ("assignedArbiter", "address"),
        ("quorumReached", "bool"),
        ("quorumBlock", "uint256"),
        ("quorumMask", "uint256"),
        ("metadata", "string"),
    ]
    assertion = find_function(abi, "assertionsByGuid")
    assert function_signature(assertion) == "assertionsByGuid(uint128,uint256)"
    assert [o["type"] for o in assertion["outputs"]] == [
        "address",
        "uint256",
        "uint256",
        "uint256",
        "uint256",
        "string",
    ]
    assert [o["type"] for o in find_function(abi, "votesByGuid")["outputs"]] == ["address", "uint256", "bool"]
    assert [o["type"] for o in find_function(abi, "getBids")["outputs"]] == ["uint256[]"]
    assert [o["type"] for o in find_function(abi, "getBountyGuids")["outputs"]] == ["uint128[]"]
    for view in (
        "PAGE_SIZE",
        "bountyFee",
        "assertionFee",
        "assertionRevealWindow",
        "arbiterVoteWindow",
        "BOUNTY_AMOUNT_MINIMUM",
        "ASSERTION_BID_ARTIFACT_MINIMUM",
        "ASSERTION_BID_ARTIFACT_MAXIMUM",
        "MAX_DURATION",
        "ARBITER_LOOKBACK_RANGE",
        "deprecatedBlock",
    ):
        assert find_function(abi, view)["stateMutability"] == "view"
