"""The signer's policy: what a compromised client may and may not get signed (pure, no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from polyswarmclient.eth.abi import (
    APPROVE,
    POST_ASSERTION,
    POST_BOUNTY,
    REVEAL_ASSERTION,
    SETTLE_BOUNTY,
    STAKE_DEPOSIT,
    TRANSFER,
    VOTE_ON_BOUNTY,
    guid_to_int,
)
from polyswarmclient.signer.policy import (
    NCT,
    Limits,
    PinnedChain,
    Refuse,
    Sign,
    Spent,
    TxRequest,
    decide,
)

ME = "0x1111111111111111111111111111111111111111"
STRANGER = "0x9999999999999999999999999999999999999999"
TOKEN = "0x2222222222222222222222222222222222222222"
REGISTRY = "0x3333333333333333333333333333333333333333"
RELAY = "0x4444444444444444444444444444444444444444"
STAKING = "0x5555555555555555555555555555555555555555"
HOME_TOKEN = "0x6666666666666666666666666666666666666666"
HOME_RELAY = "0x7777777777777777777777777777777777777777"
SIDE = PinnedChain(
    "side",
    1338,
    {"nectar_token": TOKEN, "bounty_registry": REGISTRY, "erc20_relay": RELAY, "arbiter_staking": STAKING},
)
HOME = PinnedChain("home", 1337, {"nectar_token": HOME_TOKEN, "erc20_relay": HOME_RELAY})
CHAINS = [SIDE, HOME]
LIMITS = Limits(max_nct_per_tx=100 * NCT, max_nct_per_day=250 * NCT, max_gas_per_tx=10**16, max_gas_per_day=3 * 10**16)
GUID = guid_to_int(str(uuid.UUID(int=12345, version=4)))


def tx(to: str, data: bytes, *, chain_id: int | None = 1338, **changes: object) -> TxRequest:
    base = TxRequest(sender=ME, to=to, data=data, value=0, gas=100_000, gas_price=0, nonce=7, chain_id=chain_id)
    return replace(base, **changes)  # type: ignore[arg-type]


NOTHING_SPENT = Spent()


def judge(request: TxRequest, spent: Spent = NOTHING_SPENT) -> Sign | Refuse:
    return decide(request, ME, CHAINS, LIMITS, spent)


def refused(request: TxRequest, spent: Spent = NOTHING_SPENT) -> str:
    decision = judge(request, spent)
    assert isinstance(decision, Refuse), f"signed {request}"
    return decision.reason


@pytest.mark.parametrize(
    "request_",
    [
        tx(TOKEN, APPROVE.encode(REGISTRY, 5 * NCT)),
        tx(TOKEN, APPROVE.encode(STAKING, 5 * NCT)),
        tx(TOKEN, TRANSFER.encode(RELAY, 5 * NCT)),
        tx(HOME_TOKEN, TRANSFER.encode(HOME_RELAY, 5 * NCT), chain_id=1337),
        tx(REGISTRY, POST_ASSERTION.encode(GUID, [NCT], 1, 99)),
        tx(REGISTRY, REVEAL_ASSERTION.encode(GUID, 0, 5, 1, "")),
        tx(REGISTRY, VOTE_ON_BOUNTY.encode(GUID, 1, True)),
        tx(REGISTRY, SETTLE_BOUNTY.encode(GUID)),
        tx(REGISTRY, POST_BOUNTY.encode(GUID, 0, NCT, "QmHash", 1, 10, [0] * 8, "")),
        tx(STAKING, STAKE_DEPOSIT.encode(NCT)),
    ],
    ids=lambda r: r.data[:4].hex(),
)
def test_what_the_roles_need_is_signed(request_: TxRequest) -> None:
    """Each function a role sends, to its pinned contract on a pinned chain, within the caps, is signed."""
    assert isinstance(judge(request_), Sign)


def test_an_approval_and_a_relay_transfer_count_as_nct_leaving_the_wallet() -> None:
    """The amount an approval or a transfer names is what the caps count; a reveal moves nothing."""
    approve = judge(tx(TOKEN, APPROVE.encode(REGISTRY, 7 * NCT)))
    reveal = judge(tx(REGISTRY, REVEAL_ASSERTION.encode(GUID, 0, 5, 1, ""), gas_price=10**9))
    assert isinstance(approve, Sign) and approve.call.nct_out == 7 * NCT and approve.call.function == "approve"
    assert isinstance(reveal, Sign) and reveal.call.nct_out == 0 and reveal.call.gas_cost == 100_000 * 10**9


def test_a_transfer_to_another_address_is_refused() -> None:
    """NCT goes by transfer to the relay only: a transfer to anyone else is refused, naming the relay."""
    reason = refused(tx(TOKEN, TRANSFER.encode(STRANGER, NCT)))
    assert "only to the pinned relay" in reason and RELAY in reason


def test_an_approval_to_a_stranger_is_refused() -> None:
    """An approval may name the pinned registry, staking or relay only; the token itself is no spender either."""
    assert "not the pinned bounty registry" in refused(tx(TOKEN, APPROVE.encode(STRANGER, NCT)))
    assert "not the pinned bounty registry" in refused(tx(TOKEN, APPROVE.encode(TOKEN, NCT)))


def test_a_relay_transfer_above_the_per_transaction_cap_is_refused() -> None:
    """A withdrawal of more than the per-transaction cap is refused even to the pinned relay."""
    reason = refused(tx(TOKEN, TRANSFER.encode(RELAY, 101 * NCT)))
    assert "above the per-transaction cap of 100 NCT" in reason


def test_a_burst_past_the_daily_cap_is_refused() -> None:
    """What was signed in the last 24 hours counts: the transaction that would pass the daily cap is refused."""
    assert isinstance(judge(tx(TOKEN, APPROVE.encode(REGISTRY, 50 * NCT)), Spent(nct=200 * NCT)), Sign)
    reason = refused(tx(TOKEN, APPROVE.encode(REGISTRY, 51 * NCT)), Spent(nct=200 * NCT))
    assert "above the cap of 250 NCT" in reason and "200 NCT already" in reason


def test_gas_is_capped_per_transaction_and_per_day() -> None:
    """On a paid chain, gas x price above the per-transaction cap, or past the daily gas cap, is refused."""
    settle = SETTLE_BOUNTY.encode(GUID)
    assert "per-transaction cap" in refused(tx(REGISTRY, settle, gas=200_000, gas_price=10**11))
    assert "24-hour total" in refused(tx(REGISTRY, settle, gas=100_000, gas_price=10**11), Spent(gas=25 * 10**15))


def test_a_wrong_chain_id_is_refused() -> None:
    """A chain id that is not pinned (or none) is refused, whatever the call."""
    assert "chain id 1 is not a pinned chain" in refused(tx(TOKEN, APPROVE.encode(REGISTRY, NCT), chain_id=1))
    assert "no chainId" in refused(tx(TOKEN, APPROVE.encode(REGISTRY, NCT), chain_id=None))


def test_an_unpinned_contract_is_refused() -> None:
    """A call to any address that is not a pinned contract of that chain is refused, even a known selector."""
    reason = refused(tx(STRANGER, SETTLE_BOUNTY.encode(GUID)))
    assert f"{STRANGER} is not a pinned contract on the side chain" in reason
    # the home chain pins no registry: a side registry address there is unknown
    assert "not a pinned contract on the home chain" in refused(tx(REGISTRY, SETTLE_BOUNTY.encode(GUID), chain_id=1337))


def test_functions_the_roles_never_call_are_refused() -> None:
    """transferFrom, a registry call on the token, anything on the relay: refused, listing what is allowed."""
    transfer_from = bytes.fromhex("23b872dd") + bytes(96)
    assert "is not a function the roles need" in refused(tx(TOKEN, transfer_from))
    assert "allowed there: approve, transfer" in refused(tx(TOKEN, SETTLE_BOUNTY.encode(GUID)))
    assert "allowed there: nothing" in refused(tx(RELAY, APPROVE.encode(REGISTRY, NCT)))


def test_ether_a_foreign_sender_contract_creation_and_bad_encodings_are_refused() -> None:
    """value > 0, another account's transaction, no recipient, and call data that is not the canonical
    encoding (trailing bytes) are all refused."""
    approve = APPROVE.encode(REGISTRY, NCT)
    assert "value 0 only" in refused(tx(TOKEN, approve, value=1))
    assert "signs for" in refused(tx(TOKEN, approve, sender=STRANGER))
    assert "contract creation" in refused(replace(tx(TOKEN, approve), to=None))
    assert "neither the canonical" in refused(tx(TOKEN, approve + bytes(32)))


def test_requests_are_parsed_as_clef_sends_them() -> None:
    """Hex quantities and data, ``input`` for ``data``; a type-2 transaction and garbage are refused."""
    parsed = TxRequest.from_clef(
        {
            "from": ME,
            "to": TOKEN,
            "gas": "0x5208",
            "gasPrice": "0x0",
            "nonce": "0x3",
            "input": "0x0102",
            "chainId": "0x53a",
        }
    )
    assert (parsed.gas, parsed.nonce, parsed.data, parsed.chain_id, parsed.value) == (21000, 3, b"\x01\x02", 1338, 0)
    with pytest.raises(ValueError, match="legacy"):
        TxRequest.from_clef({"to": TOKEN, "maxFeePerGas": "0x1", "gas": "0x1", "nonce": "0x0"})
    with pytest.raises(ValueError, match="gasPrice"):
        TxRequest.from_clef({"to": TOKEN, "gas": "0x1", "nonce": "0x0"})
    with pytest.raises(ValueError, match="differ"):
        TxRequest.from_clef({"to": TOKEN, "data": "0x01", "input": "0x02", "gas": "0x1", "gasPrice": "0x0"})
