"""Transactions polyswarmd builds are checked call by call before anything is signed."""

from __future__ import annotations

from typing import Any

import eth_abi
import pytest

from polyswarmclient.errors import VerificationError
from polyswarmclient.eth import abi
from polyswarmclient.eth.bloom import bloom_words
from polyswarmclient.eth.verify import (
    Call,
    expect_post_assertion,
    expect_post_bounty,
    expect_relay_transfer,
    expect_reveal,
    expect_settle,
    expect_stake_deposit,
    expect_vote,
    is_v4_guid,
    verify,
)
from polyswarmclient.wire.models import UnsignedTransaction
from tests.helpers import EVIL, GUID, REGISTRY, RELAY, STAKING, TOKEN, URI, unsigned

FEE = 31_250_000_000_000_000
BIDS = [10**17, 2 * 10**17]
MASK = 0b101
COMMITMENT = 2**255 + 12345


def tx(to: str, data: bytes, **kw: Any) -> UnsignedTransaction:
    return UnsignedTransaction.from_json(unsigned(to, data, **kw))


def assertion_txs(**overrides: Any) -> list[UnsignedTransaction]:
    spender = overrides.get("spender", REGISTRY)
    value = overrides.get("value", sum(BIDS) + FEE)
    bids = overrides.get("bids", BIDS)
    return [
        tx(overrides.get("token", TOKEN), abi.APPROVE.encode(spender, value), value=overrides.get("eth", 0)),
        tx(
            overrides.get("registry", REGISTRY),
            abi.POST_ASSERTION.encode(abi.guid_to_int(GUID), bids, MASK, COMMITMENT),
        ),
    ]


def expected_assertion() -> list[Call]:
    return expect_post_assertion(guid=GUID, bids=BIDS, mask=MASK, commitment=COMMITMENT, assertion_fee=FEE)


def test_matching_assertion_passes_and_reports_what_it_saw() -> None:
    """A correct approve+postAssertion pair verifies and yields the chain id and contract roles to pin."""
    verified = verify(assertion_txs(), expected_assertion(), action="post assertion")
    assert verified.chain_id == 1338
    assert verified.contracts == {"nectar_token": TOKEN, "bounty_registry": REGISTRY}
    assert verified.calls[1]["bid"] == BIDS


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"value": sum(BIDS) + FEE + 1}, "argument value"),
        ({"bids": [10**17, 10**17]}, "argument bid"),
        ({"bids": [10**17, 2 * 10**17, 1]}, "argument bid"),
        ({"bids": [10**17]}, "argument bid"),
        ({"spender": EVIL}, "bounty registry"),
        ({"registry": EVIL}, "bounty registry"),
        ({"spender": TOKEN}, "same address"),
        ({"eth": 1}, "wei of ether"),
    ],
    ids=[
        "approve-amount",
        "bid-value",
        "extra-bid",
        "missing-bid",
        "spender",
        "registry-to",
        "spender-is-token",
        "eth-value",
    ],
)
def test_tampered_assertion_is_refused(overrides: dict[str, Any], needle: str) -> None:
    """Wrong amounts, bid arrays of the wrong length, a foreign spender or ether value are refused."""
    with pytest.raises(VerificationError, match=needle):
        verify(assertion_txs(**overrides), expected_assertion(), action="post assertion")


def test_wrong_selector_is_refused() -> None:
    """A transfer where an approve was expected never gets signed."""
    txs = assertion_txs()
    txs[0] = tx(TOKEN, abi.TRANSFER.encode(REGISTRY, sum(BIDS) + FEE))
    with pytest.raises(VerificationError, match="selector"):
        verify(txs, expected_assertion(), action="post assertion")


def test_extra_or_missing_transaction_is_refused() -> None:
    """The number of transactions must equal the number of expected calls."""
    txs = assertion_txs()
    with pytest.raises(VerificationError, match="3 transaction"):
        verify([*txs, tx(TOKEN, abi.TRANSFER.encode(EVIL, 1))], expected_assertion(), action="post assertion")
    with pytest.raises(VerificationError, match="1 transaction"):
        verify(txs[1:], expected_assertion(), action="post assertion")


def test_non_canonical_encoding_is_refused() -> None:
    """Dirty padding or trailing bytes that a lax decoder would ignore are refused."""
    good = abi.APPROVE.encode(REGISTRY, sum(BIDS) + FEE)
    dirty = good[:4] + b"\x01" + good[5:]  # a non-zero byte in the address padding
    trailing = good + b"\x00" * 32
    for data in (dirty, trailing):
        txs = assertion_txs()
        txs[0] = tx(TOKEN, data)
        with pytest.raises(VerificationError):
            verify(txs, expected_assertion(), action="post assertion")


# --- eth-abi 1.x: polyswarmd 2.2.0 encodes an empty string or bytes with one extra zero word ---------

WORD = 32
TWO_STRINGS = abi.Function("pair", ("first", "second"), ("string", "string"))


def _word(value: int) -> bytes:
    return value.to_bytes(WORD, "big")


def test_eth_abi_v1_form_of_an_empty_string_has_one_more_zero_word() -> None:
    """An empty string is offset, zero length and one zero word, as eth-abi 1.3.0 encodes it."""
    assert abi.encode_eth_abi_v1(["string"], [""]) == _word(0x20) + _word(0) + _word(0)
    assert abi.encode_eth_abi_v1(["bytes", "string"], [b"", "x"]) == (
        _word(0x40) + _word(0x80) + _word(0) + _word(0) + _word(1) + b"x".ljust(WORD, b"\0")
    )
    assert abi.encode_eth_abi_v1(["uint256[]", "string"], [[], "y"]) == eth_abi.encode(
        ["uint256[]", "string"], [[], "y"]
    )


def test_post_bounty_with_empty_metadata_in_the_eth_abi_v1_form_verifies() -> None:
    """polyswarmd 2.2.0's postBounty with empty metadata (one extra zero word) is signed like the canonical one."""
    txs = _bounty_txs(abi.guid_to_int(GUID), bloom_words([URI]))
    canonical = txs[1].data
    txs[1] = tx(REGISTRY, canonical + bytes(WORD))
    verified = verify(txs, _bounty_expected(), action="post bounty")
    assert verified.calls[1]["metadata"] == "" and verified.calls[1]["artifactURI"] == URI


def test_reveal_with_empty_metadata_in_the_eth_abi_v1_form_verifies() -> None:
    """A reveal with empty metadata in the eth-abi 1.x form verifies with every argument checked."""
    g = abi.guid_to_int(GUID)
    data = abi.REVEAL_ASSERTION.encode(g, 3, 77, 0b101, "") + bytes(WORD)
    expected = expect_reveal(guid=GUID, index=3, nonce=77, verdicts=0b101, metadata="")
    assert verify([tx(REGISTRY, data)], expected, action="reveal").calls[0]["nonce"] == 77
    with pytest.raises(VerificationError, match="nonce"):
        verify(
            [tx(REGISTRY, data)],
            expect_reveal(guid=GUID, index=3, nonce=78, verdicts=0b101, metadata=""),
            action="reveal",
        )


def test_a_later_dynamic_argument_moves_by_the_extra_word() -> None:
    """With an empty first string, the eth-abi 1.x form puts the second one 32 bytes later, and decodes to it."""
    v1 = abi.encode_eth_abi_v1(["string", "string"], ["", "x"])
    assert TWO_STRINGS.decode(TWO_STRINGS.selector + v1) == {"first": "", "second": "x"}


def _near_misses() -> dict[str, tuple[abi.Function, bytes]]:
    reveal = abi.REVEAL_ASSERTION.encode(abi.guid_to_int(GUID), 3, 77, 0b101, "")
    head, tail = reveal[: 4 + 5 * WORD], reveal[4 + 5 * WORD :]  # tail: the metadata's zero length word
    v1_pair = abi.encode_eth_abi_v1(["string", "string"], ["", "x"])
    return {
        "two-extra-words": (abi.REVEAL_ASSERTION, reveal + bytes(2 * WORD)),
        "non-zero-extra-word": (abi.REVEAL_ASSERTION, reveal + _word(1)),
        "half-an-extra-word": (abi.REVEAL_ASSERTION, reveal + bytes(WORD // 2)),
        "offset-past-a-gap": (
            abi.REVEAL_ASSERTION,
            head[: 4 + 4 * WORD] + _word(6 * WORD) + bytes(WORD) + tail,
        ),
        "extra-word-after-a-non-empty-string": (
            abi.REVEAL_ASSERTION,
            abi.REVEAL_ASSERTION.encode(abi.guid_to_int(GUID), 3, 77, 0b101, "m") + bytes(WORD),
        ),
        "canonical-offsets-with-the-extra-word": (
            TWO_STRINGS,
            TWO_STRINGS.selector + _word(0x40) + _word(0x60) + _word(0) + _word(0) + v1_pair[5 * WORD :],
        ),
        "trailing-data-that-changes-the-second-string": (
            TWO_STRINGS,
            TWO_STRINGS.selector + _word(0x40) + _word(0xC0) + v1_pair[2 * WORD :] + _word(1) + b"z".ljust(WORD, b"\0"),
        ),
    }


@pytest.mark.parametrize("case", list(_near_misses()))
def test_near_misses_of_the_two_encodings_are_refused(case: str) -> None:
    """Call data that merely decodes (other offsets, dirty or extra words, values moved) is refused."""
    function, data = _near_misses()[case]
    with pytest.raises(ValueError, match="neither the canonical nor the eth-abi 1.x encoding"):
        function.decode(data)


def test_mixed_chain_ids_are_refused() -> None:
    """All transactions of one action must name the same chain."""
    txs = assertion_txs()
    txs[1] = tx(REGISTRY, txs[1].data, chain_id=1)
    with pytest.raises(VerificationError, match="chain ids"):
        verify(txs, expected_assertion(), action="post assertion")


@pytest.mark.parametrize("to", ["0x" + "00" * 20, "0x1234", "not an address"])
def test_bad_recipient_is_refused(to: str) -> None:
    """The zero address or something that is not an address as ``to`` is refused."""
    txs = assertion_txs()
    txs[1] = UnsignedTransaction(to=to, data=txs[1].data, value=0, gas=1, gas_price=0, nonce=0, chain_id=1338)
    with pytest.raises(VerificationError):
        verify(txs, expected_assertion(), action="post assertion")


def _bounty_txs(guid: int, bloom: list[int]) -> list[UnsignedTransaction]:
    return [
        tx(TOKEN, abi.APPROVE.encode(REGISTRY, 10**18 + 62_500_000_000_000_000)),
        tx(REGISTRY, abi.POST_BOUNTY.encode(guid, 0, 10**18, URI, 1, 20, bloom, "")),
    ]


def _bounty_expected() -> list[Call]:
    return expect_post_bounty(
        amount=10**18,
        bounty_fee=62_500_000_000_000_000,
        artifact_type="file",
        uri=URI,
        num_artifacts=1,
        duration=20,
        bloom=bloom_words([URI]),
        metadata="",
    )


def test_post_bounty_accepts_any_v4_guid_and_our_bloom() -> None:
    """The server picks the GUID; any v4 UUID is fine when every other argument matches."""
    verified = verify(_bounty_txs(abi.guid_to_int(GUID), bloom_words([URI])), _bounty_expected(), action="post bounty")
    assert verified.calls[1]["guid"] == abi.guid_to_int(GUID)


def test_post_bounty_refuses_non_v4_guid_and_foreign_bloom() -> None:
    """A GUID that is not a v4 UUID, or a bloom we did not compute, is refused."""
    non_v4 = abi.guid_to_int("5f0c1a52-3d7e-1c1b-9a8e-0123456789ab")
    assert not is_v4_guid(non_v4)
    with pytest.raises(VerificationError, match="version-4"):
        verify(_bounty_txs(non_v4, bloom_words([URI])), _bounty_expected(), action="post bounty")
    with pytest.raises(VerificationError, match="bloom"):
        verify(_bounty_txs(abi.guid_to_int(GUID), bloom_words(["QmOther"])), _bounty_expected(), action="post bounty")


def test_single_call_actions_check_every_argument() -> None:
    """Reveal, vote and settle verify guid, index, nonce, verdicts, metadata, votes and valid_bloom."""
    g = abi.guid_to_int(GUID)
    reveal = expect_reveal(guid=GUID, index=3, nonce=7, verdicts=0b1, metadata="m")
    verify([tx(REGISTRY, abi.REVEAL_ASSERTION.encode(g, 3, 7, 1, "m"))], reveal, action="reveal")
    with pytest.raises(VerificationError, match="nonce"):
        verify([tx(REGISTRY, abi.REVEAL_ASSERTION.encode(g, 3, 8, 1, "m"))], reveal, action="reveal")
    with pytest.raises(VerificationError, match="metadata"):
        verify([tx(REGISTRY, abi.REVEAL_ASSERTION.encode(g, 3, 7, 1, "x"))], reveal, action="reveal")
    vote = expect_vote(guid=GUID, votes=0b10, valid_bloom=True)
    verify([tx(REGISTRY, abi.VOTE_ON_BOUNTY.encode(g, 2, True))], vote, action="vote")
    with pytest.raises(VerificationError, match="validBloom"):
        verify([tx(REGISTRY, abi.VOTE_ON_BOUNTY.encode(g, 2, False))], vote, action="vote")
    settle = expect_settle(guid=GUID)
    with pytest.raises(VerificationError, match="bountyGuid"):
        verify([tx(REGISTRY, abi.SETTLE_BOUNTY.encode(g + 1))], settle, action="settle")


def test_relay_transfer_reports_the_relay_and_refuses_other_amounts() -> None:
    """A relay transfer's recipient is reported as the erc20_relay role; the amount must match."""
    verified = verify([tx(TOKEN, abi.TRANSFER.encode(RELAY, 5))], expect_relay_transfer(amount=5), action="relay")
    assert verified.contracts == {"nectar_token": TOKEN, "erc20_relay": RELAY}
    with pytest.raises(VerificationError, match="value"):
        verify([tx(TOKEN, abi.TRANSFER.encode(RELAY, 6))], expect_relay_transfer(amount=5), action="relay")


def test_stake_deposit_approval_must_go_to_the_staking_contract_called_next() -> None:
    """approve(spender) must be the ArbiterStaking contract that the deposit transaction calls."""
    good = [tx(TOKEN, abi.APPROVE.encode(STAKING, 9)), tx(STAKING, abi.STAKE_DEPOSIT.encode(9))]
    assert verify(good, expect_stake_deposit(amount=9), action="stake").contracts["arbiter_staking"] == STAKING
    bad = [tx(TOKEN, abi.APPROVE.encode(EVIL, 9)), tx(STAKING, abi.STAKE_DEPOSIT.encode(9))]
    with pytest.raises(VerificationError, match="arbiter staking"):
        verify(bad, expect_stake_deposit(amount=9), action="stake")


def test_expectations_must_cover_every_argument() -> None:
    """An expectation that leaves an argument unchecked is a programming error, caught at once."""
    with pytest.raises(ValueError, match="exactly"):
        Call(abi.APPROVE, "nectar_token", {"value": 1})


def test_gas_cost_above_the_fee_cap_is_refused() -> None:
    """A transaction priced to cost more ether than --max-tx-fee is refused; gasPrice 0 always passes."""
    import dataclasses

    free = assertion_txs()
    assert verify(free, expected_assertion(), action="post assertion", max_fee=0).chain_id == 1338
    pricey = [dataclasses.replace(t, gas=500_000, gas_price=10**12) for t in free]  # 0.5 ETH each
    with pytest.raises(VerificationError, match=r"above the --max-tx-fee limit of 50000000000000000 wei"):
        verify(pricey, expected_assertion(), action="post assertion", max_fee=5 * 10**16)
    affordable = [dataclasses.replace(t, gas=500_000, gas_price=10**11) for t in free]  # exactly 0.05 ETH
    verify(affordable, expected_assertion(), action="post assertion", max_fee=5 * 10**16)


def test_gas_is_bounded_per_function_where_it_costs_ether() -> None:
    """On a paid chain a call asking for far more gas than it needs is refused; free chains may ask for the
    block gas limit (that is what polyswarmd does there)."""
    import dataclasses

    free = [dataclasses.replace(t, gas=50_000_000) for t in assertion_txs()]
    verify(free, expected_assertion(), action="post assertion")
    greedy = [dataclasses.replace(t, gas=50_000_000, gas_price=1) for t in assertion_txs()]
    with pytest.raises(VerificationError, match="never needs more than 2000000"):
        verify(greedy, expected_assertion(), action="post assertion")
