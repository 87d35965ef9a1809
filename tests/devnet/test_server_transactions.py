"""``POST /transactions`` checks and node errors, and ``GET /transactions`` waiting, decoding and errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from eth_utils import keccak

from polyswarmclient.eth import abi
from polyswarmclient.wire.models import UnsignedTransaction
from tests.fixtures_devnet import DevnetApi, RunningDevnet, running_devnet
from tests.helpers import signer

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    async with running_devnet(block_time=0.2, receipt_timeout_side=1.0) as running:
        yield running


async def _transfer_tx(api: DevnetApi, who: str, amount: int = 10**18, *, chain: str = "side") -> dict[str, Any]:
    """An unsigned NCT transfer to the relay, built by the server with the account's current nonce."""
    s = signer(who)
    reply = await api.build(
        "/relay/withdrawal" if chain == "side" else "/relay/deposit", s, {"amount": str(amount)}, chain=chain
    )
    tx: dict[str, Any] = reply.result["transactions"][0]
    return tx


def _sign(who: str, tx: dict[str, Any]) -> tuple[str, str]:
    raw, tx_hash = signer(who).sign(UnsignedTransaction.from_json(tx))
    return raw.hex(), tx_hash


async def _post(api: DevnetApi, account: str, raws: list[str], chain: str = "side") -> Any:
    return await api.request(
        "POST", "/transactions", params={"chain": chain, "account": account}, body={"transactions": raws}
    )


async def test_accepted_transaction_returns_its_hash(api: DevnetApi) -> None:
    """A valid signed tx is answered with ``[{"is_error": false, "message": "0x<hash>"}]``."""
    raw, tx_hash = _sign("spare2", await _transfer_tx(api, "spare2"))
    reply = await _post(api, signer("spare2").address, [raw])
    assert reply == (200, {"status": "OK", "result": [{"is_error": False, "message": tx_hash}]})


async def test_resending_keeps_geths_known_transaction_wording(api: DevnetApi) -> None:
    """Posting the same tx twice gives 400 with ``Invalid transaction error`` and ``known transaction``."""
    raw, tx_hash = _sign("spare2", await _transfer_tx(api, "spare2"))
    account = signer("spare2").address
    assert (await _post(api, account, [raw])).status == 200
    again = await _post(api, account, [raw])
    assert again.status == 400
    (entry,) = again.body["errors"]
    assert entry["is_error"] is True
    assert entry["message"].startswith(f"Invalid transaction error for tx {tx_hash}: ")
    assert "known transaction" in entry["message"]


async def test_wrong_sender_is_refused(api: DevnetApi) -> None:
    """A tx signed by another key than ``account`` gives ``Invalid transaction sender``."""
    raw, tx_hash = _sign("spare3", await _transfer_tx(api, "spare3"))
    expected, other = signer("spare2").address, signer("spare3").address
    reply = await _post(api, expected, [raw])
    assert reply.status == 400
    assert reply.body["errors"] == [
        {
            "is_error": True,
            "message": f"Invalid transaction sender for tx {tx_hash}: expected {expected} got {other}",
        }
    ]


async def test_transaction_signed_for_the_other_chain_is_refused(api: DevnetApi, net: RunningDevnet) -> None:
    """A sidechain transaction signed with the homechain's chain id is refused and never mined, although
    the route decodes it once for both its own checks and the chain."""
    tx = await _transfer_tx(api, "spare3")
    home_id = net.devnet.node("home").chain.chain_id
    assert tx["chainId"] != home_id
    raw, tx_hash = _sign("spare3", {**tx, "chainId": home_id})
    reply = await _post(api, signer("spare3").address, [raw])
    assert reply.status == 400
    (entry,) = reply.body["errors"]
    assert entry["message"] == f"Invalid transaction error for tx {tx_hash}: invalid sender"
    assert net.devnet.node("side").chain.peek_receipt(bytes.fromhex(tx_hash[2:])) is None
    good, _ = _sign("spare3", tx)  # the same nonce signed for the sidechain still goes through
    assert (await _post(api, signer("spare3").address, [good])).status == 200


async def test_recipient_must_be_a_community_contract(api: DevnetApi) -> None:
    """A tx to an address that is none of the chain's contracts gives ``Invalid transaction recipient``."""
    tx = await _transfer_tx(api, "spare3")
    tx["to"] = "0x" + "66" * 20
    raw, tx_hash = _sign("spare3", tx)
    reply = await _post(api, signer("spare3").address, [raw])
    assert reply.body["errors"][0]["message"].startswith(f"Invalid transaction recipient for tx {tx_hash}: 0x6666")


async def test_one_bad_entry_fails_the_whole_list(api: DevnetApi) -> None:
    """With one good and one bad tx the answer is 400 with both entries, the good one submitted."""
    s = signer("spare3")
    tx = await _transfer_tx(api, "spare3")
    good, good_hash = _sign("spare3", tx)
    stale, _ = _sign("spare3", {**tx, "nonce": tx["nonce"] - 1 if tx["nonce"] else tx["nonce"], "data": tx["data"]})
    reply = await _post(api, s.address, [good, stale])
    assert reply.status == 400
    first, second = reply.body["errors"]
    assert first == {"is_error": False, "message": good_hash}
    assert second["is_error"] is True and "Invalid transaction error" in second["message"]


async def test_body_must_be_hex_without_0x_and_at_most_ten(api: DevnetApi) -> None:
    """``0x`` hex and lists over ten items are ``Invalid JSON``; garbage is ``Invalid transaction``."""
    account = signer("spare3").address
    prefixed = await _post(api, account, ["0xdeadbeef"])
    assert prefixed.status == 400 and prefixed.body["errors"].startswith("Invalid JSON")
    too_many = await _post(api, account, ["00"] * 11)
    assert too_many.status == 400 and too_many.body["errors"].startswith("Invalid JSON")
    garbage = await _post(api, account, ["deadbeef"])
    assert garbage.status == 400 and garbage.body["errors"][0]["message"].startswith("Invalid transaction: ")


async def test_undecodable_item_fails_the_whole_post_with_one_entry(api: DevnetApi) -> None:
    """As at HEAD, all txs are decoded first: one undecodable item gives a single ``Invalid transaction``
    entry and nothing is sent, not even the valid tx next to it."""
    s = signer("spare3")
    tx = await _transfer_tx(api, "spare3")
    good, good_hash = _sign("spare3", tx)
    reply = await _post(api, s.address, [good, "deadbeef"])
    assert reply.status == 400 and len(reply.body["errors"]) == 1
    (entry,) = reply.body["errors"]
    assert entry["is_error"] is True and entry["message"].startswith("Invalid transaction: ")
    resent = await _post(api, s.address, [good])  # it was never sent, so this is not a known tx
    assert resent.status == 200 and resent.body["result"] == [{"is_error": False, "message": good_hash}]


async def test_get_transactions_decodes_the_first_transfer(api: DevnetApi, net: RunningDevnet) -> None:
    """A mined transfer shows up as one ``transfers`` item with a string value, plus ``"errors": []``."""
    s = signer("spare2")
    tx = await _transfer_tx(api, "spare2", 12345)
    raw, tx_hash = _sign("spare2", tx)
    await _post(api, s.address, [raw])
    reply = await api.confirm(s, [tx_hash[2:]])  # hashes work without 0x too
    assert reply.result == {
        "transfers": [{"from": s.address, "to": net.devnet.side.addresses.erc20_relay, "value": "12345"}],
        "errors": [],
    }


async def test_get_transactions_waits_for_one_more_block(api: DevnetApi, net: RunningDevnet) -> None:
    """``GET /transactions`` answers only once a block is mined on top of the transaction's block."""
    s = signer("spare2")
    raw, tx_hash = _sign("spare2", await _transfer_tx(api, "spare2"))
    await _post(api, s.address, [raw])
    mined_in = await net.devnet.side.run(net.devnet.side.chain.get_receipt, bytes.fromhex(tx_hash[2:]))
    await api.confirm(s, [tx_hash])
    assert net.devnet.side.head >= mined_in.block_number + 1


async def test_unknown_hash_times_out_with_the_retry_substring(api: DevnetApi) -> None:
    """A hash that is never mined gives 400 ``timeout during wait for receipt`` after the chain's timeout."""
    s = signer("spare2")
    unknown = "0x" + keccak(b"never sent").hex()
    reply = await api.confirm(s, [unknown])
    assert reply.status == 400
    assert reply.body["errors"] == {"errors": [f"transaction {unknown}: timeout during wait for receipt"]}


async def test_reverted_transaction_reports_failure_and_reason(api: DevnetApi) -> None:
    """A mined, reverted tx gives ``transaction failed at block <n>, error: <reason>`` (never retried)."""
    s = signer("spare3")
    built = (await api.build(f"/bounties/{uuid.uuid4()}/settle", s)).result
    hashes = await api.post_signed(s, built["transactions"])
    reply = await api.confirm(s, hashes)
    assert reply.status == 400
    (message,) = reply.body["errors"]["errors"]
    assert message.startswith(f"transaction {hashes[0]}: transaction failed at block ")
    assert ", error: " in message


async def test_only_first_log_of_each_type_is_decoded(net: RunningDevnet) -> None:
    """Two ``Transfer`` logs in one receipt give one ``transfers`` item; ``SettledBounty`` is never listed."""
    from polyswarmclient.devnet.evm import Log
    from polyswarmclient.devnet.logs import transaction_events

    side = net.devnet.side
    a, b = signer("spare1").address, signer("spare2").address

    def transfer(to: str, value: int, index: int) -> Log:
        topics = [
            abi.TRANSFER_EVENT.topic,
            bytes(12) + bytes.fromhex(a[2:]),
            bytes(12) + bytes.fromhex(to[2:]),
        ]
        return Log(side.addresses.nectar_token, topics, value.to_bytes(32, "big"), 5, b"\x01" * 32, index)

    settled = Log(
        side.addresses.bounty_registry,
        [abi.SETTLED_BOUNTY.topic],
        (7).to_bytes(32, "big") + bytes(12) + bytes.fromhex(a[2:]) + (9).to_bytes(32, "big"),
        5,
        b"\x01" * 32,
        2,
    )
    events = transaction_events(side, [transfer(b, 1, 0), transfer(a, 2, 1), settled])
    assert events == {"transfers": [{"from": a, "to": b, "value": "1"}]}


async def test_a_log_is_decoded_once_for_the_websocket_and_get_transactions(net: RunningDevnet) -> None:
    """The same log (same contract, topics and data) decodes to the same shared result; the same topics and
    data from another contract do not (a ``Transfer`` counts only from the token)."""
    from polyswarmclient.devnet import logs
    from polyswarmclient.devnet.evm import Log

    side = net.devnet.side
    a, b = signer("spare1").address, signer("spare2").address
    topics = [abi.TRANSFER_EVENT.topic, bytes(12) + bytes.fromhex(a[2:]), bytes(12) + bytes.fromhex(b[2:])]
    data = (3).to_bytes(32, "big")
    first = logs._decode(side, Log(side.addresses.nectar_token, list(topics), data, 7, b"\x02" * 32, 0))
    again = logs._decode(side, Log(side.addresses.nectar_token, list(topics), data, 8, b"\x03" * 32, 4))
    assert first == ("Transfer", {"from": a, "to": b, "value": 3})
    assert again is first
    assert logs._decode(side, Log(side.addresses.bounty_registry, list(topics), data, 7, b"\x02" * 32, 0)) is None
    # a Transfer log missing its recipient topic is not an event the stream carries
    assert logs._decode(side, Log(side.addresses.nectar_token, topics[:2], data, 7, b"\x04" * 32, 0)) is None


async def test_immutable_registry_getters_are_read_from_the_chain_once(net: RunningDevnet) -> None:
    """``BOUNTY_AMOUNT_MINIMUM`` and the other deploy-time values are read once; ``bountyFee`` (which the
    owner may change) is read from the chain every time."""
    side = net.devnet.side
    sent: list[int] = []
    call_many = side.chain.call_many

    def counting(address: str, encoded: list[bytes]) -> Any:
        sent.append(len(encoded))
        return call_many(address, encoded)

    side.chain.call_many = counting
    side._fixed.clear()
    try:
        getters = (("BOUNTY_AMOUNT_MINIMUM",), ("bountyFee",), ("MAX_DURATION",))
        first = await side.calls("BountyRegistry", *getters)
        second = await side.calls("BountyRegistry", *getters)
    finally:
        del side.chain.call_many
    assert first == second
    assert all(isinstance(v, int) and v > 0 for v in first)
    assert sent == [3, 1]
