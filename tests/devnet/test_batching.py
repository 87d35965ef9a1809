"""Batched mining: transactions that arrive together share a block, every one is mined once, in nonce order.

The chain-level tests drive ``EmbeddedChain.submit_batch`` directly; the server tests post through
``POST /transactions`` concurrently, as several clients at once would, and watch the websocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import aiohttp
import pytest
from eth_account import Account
from eth_utils import keccak

from polyswarmclient.devnet.deploy import NCT, contract_call, deploy_community, fund_account
from polyswarmclient.devnet.evm import ChainError, EmbeddedChain
from polyswarmclient.eth import abi
from polyswarmclient.wire.models import UnsignedTransaction
from tests.fixtures_devnet import DevnetApi, collect_messages, running_devnet
from tests.helpers import signer

KEYS = [keccak(f"batching sender {i}".encode()) for i in range(3)]
SENDERS = [Account.from_key(k).address for k in KEYS]


def _transfer(key: bytes, token: str, to: str, nonce: int, chain_id: int, amount: int = 1) -> bytes:
    tx = {
        "to": token,
        "data": abi.TRANSFER.encode(to, amount),
        "value": 0,
        "gas": 200_000,
        "gasPrice": 0,
        "nonce": nonce,
        "chainId": chain_id,
    }
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


@pytest.fixture(scope="module")
def funded() -> tuple[EmbeddedChain, str, str]:
    home, side = EmbeddedChain(1337), EmbeddedChain(1338)
    community = deploy_community(home, side)
    for address in SENDERS:
        fund_account(home, side, community, address, eth=NCT, nct_home=0, nct_side=1000 * NCT)
    return side, community.side.nectar_token, community.side.bounty_registry


def test_a_batch_is_one_block_with_every_transaction_once_in_nonce_order(funded) -> None:
    """15 transfers from 3 senders, posted in shuffled order (later nonces first), make one block: every
    one mined, each sender's in nonce order, each Transfer log once with its position in the block."""
    chain, token, to = funded
    starts = [chain.get_nonce(a) for a in SENDERS]
    raws = [(i, n, _transfer(KEYS[i], token, to, starts[i] + n, chain.chain_id)) for i in range(3) for n in range(5)]
    random.Random(7).shuffle(raws)
    head = chain.block_number()
    results, receipts = chain.submit_batch([raw for _i, _n, raw in raws])
    assert all(isinstance(r, bytes) for r in results), results
    assert chain.block_number() == head + 1
    assert len(receipts) == 15 and {r.block_number for r in receipts} == {head + 1}
    assert all(r.status == 1 for r in receipts)
    assert sorted(r.tx_hash for r in receipts) == sorted(results)  # type: ignore[type-var]
    assert [chain.get_nonce(a) for a in SENDERS] == [s + 5 for s in starts]
    logs = chain.get_logs(head + 1, head + 1)
    assert [lg.log_index for lg in logs] == list(range(15))
    assert sorted(lg.tx_hash for lg in logs) == sorted(r.tx_hash for r in receipts)
    # each sender's transactions appear in nonce order within the block
    order = {r.tx_hash: pos for pos, r in enumerate(receipts)}
    for i in range(3):
        mine = sorted((n, results[k]) for k, (j, n, _raw) in enumerate(raws) if j == i)
        positions = [order[h] for _n, h in mine]  # type: ignore[index]
        assert positions == sorted(positions)


def test_a_refused_transaction_does_not_cost_the_others_their_block(funded) -> None:
    """A stale nonce is refused on arrival; a transfer py-evm refuses once the earlier one in the same
    block spent the balance is dropped with its own error; the rest are mined, in one block."""
    chain, token, to = funded
    poor_key = keccak(b"batching poor sender")
    poor = Account.from_key(poor_key).address
    chain.fund(poor, 10**18)
    spend = {"to": SENDERS[0], "value": 6 * 10**17, "gas": 21_000, "gasPrice": 0, "chainId": chain.chain_id}
    first = bytes(Account.sign_transaction({**spend, "nonce": 0}, poor_key).raw_transaction)
    second = bytes(Account.sign_transaction({**spend, "nonce": 1}, poor_key).raw_transaction)
    nonce = chain.get_nonce(SENDERS[1])
    stale = _transfer(KEYS[1], token, to, nonce - 1, chain.chain_id, amount=2)
    good = _transfer(KEYS[1], token, to, nonce, chain.chain_id)
    results, receipts = chain.submit_batch([first, stale, second, good])
    assert isinstance(results[1], ChainError) and results[1].message == "nonce too low"
    assert isinstance(results[2], ChainError) and "invalid transaction" in results[2].message
    assert isinstance(results[0], bytes) and isinstance(results[3], bytes)
    assert chain.get_receipt(results[0]).status == 1 and chain.get_receipt(results[3]).status == 1
    assert chain.get_receipt(results[0]).block_number == chain.get_receipt(results[3]).block_number
    assert chain.get_nonce(poor) == 1 and chain.get_nonce(SENDERS[1]) == nonce + 1


def test_reads_follow_the_latest_block_and_a_state_changing_call_leaves_no_trace(funded) -> None:
    """The cached read state moves with every block, and eth_call of a transfer changes nothing."""
    chain, token, to = funded
    before = int(contract_call(chain, token, "NectarToken", "balanceOf", to))
    chain.call(token, abi.TRANSFER.encode(to, 5), sender=SENDERS[2])  # simulated only
    assert int(contract_call(chain, token, "NectarToken", "balanceOf", to)) == before
    chain.send_raw_transaction(_transfer(KEYS[2], token, to, chain.get_nonce(SENDERS[2]), chain.chain_id, 3))
    assert int(contract_call(chain, token, "NectarToken", "balanceOf", to)) == before + 3


# --- through the server ----------------------------------------------------------------------------------

ACCOUNTS = ("ambassador", "spare1", "spare2", "spare3")
BOUNTIES_EACH = 3
DURATION = 8


async def _signed_bounties(api: DevnetApi, uri: str) -> dict[str, list[tuple[int, str, str]]]:
    """Per account, BOUNTIES_EACH bounties' transactions, signed: ``(nonce, raw hex, tx hash)``."""
    out: dict[str, list[tuple[int, str, str]]] = {}
    for who in ACCOUNTS:
        s = signer(who)
        base = int((await api.get("/nonce", chain="side", account=s.address)).result)
        txs: list[tuple[int, str, str]] = []
        for b in range(BOUNTIES_EACH):
            params = {"chain": "side", "account": s.address, "base_nonce": base + 2 * b}
            body = {"amount": str(2 * NCT), "uri": uri, "duration": DURATION, "artifact_type": "file"}
            built = (await api.request("POST", "/bounties", params=params, body=body)).result
            for tx in built["transactions"]:
                raw, tx_hash = s.sign(UnsignedTransaction.from_json(tx))
                txs.append((int(tx["nonce"]), raw.hex(), tx_hash))
        out[s.address] = txs
    return out


@pytest.mark.asyncio
async def test_concurrent_clients_share_blocks_and_windows_stay_counted_in_blocks() -> None:
    """24 transactions (4 accounts x 3 bounties, nonces posted out of order) at once: every one mined,
    nonces in order, each bounty event once, and they take a few blocks, not 24, so a bounty posted in
    the burst has not run out of its 8-block window by the end of it."""
    async with running_devnet(block_time=30.0, batch_window=0.2) as net, aiohttp.ClientSession() as session:
        api = DevnetApi(session, net.url)
        uri = await api.upload(b"batched bounty artifact")
        signed = await _signed_bounties(api, uri)
        messages: list[dict[str, Any]] = []
        ws = await session.ws_connect(net.url.replace("http", "ws", 1) + "/events?chain=side")
        collector = asyncio.create_task(collect_messages(ws, messages))
        head = net.devnet.side.head
        posts = [(account, item) for account, items in signed.items() for item in items]
        random.Random(3).shuffle(posts)

        async def post(account: str, raw: str) -> Any:
            params = {"chain": "side", "account": account}
            return await api.request("POST", "/transactions", params=params, body={"transactions": [raw]})

        replies = await asyncio.gather(*(post(account, raw) for account, (_n, raw, _h) in posts))
        assert all(r.status == 200 for r in replies), [r for r in replies if r.status != 200]
        burst_head = net.devnet.side.head
        await net.devnet.mine("side", 1)  # GET /transactions waits for one block on top
        for account, items in signed.items():
            confirmed = await api.request(
                "GET",
                "/transactions",
                params={"chain": "side", "account": account},
                body={"transactions": [h for _n, _raw, h in items]},
            )
            assert confirmed.status == 200 and confirmed.body["result"]["errors"] == [], confirmed
            assert len(confirmed.body["result"]["bounties"]) == BOUNTIES_EACH
        chain = net.devnet.side.chain
        for account, items in signed.items():
            receipts = [chain.get_receipt(bytes.fromhex(h[2:])) for _n, _raw, h in sorted(items)]
            assert all(r is not None and r.status == 1 for r in receipts)
            blocks = [r.block_number for r in receipts]
            assert blocks == sorted(blocks)  # nonce order never goes back a block
            assert int((await api.get("/nonce", chain="side", account=account)).result) == items[-1][0] + 1
        assert burst_head - head <= 4, f"24 transactions took {burst_head - head} blocks"
        await asyncio.sleep(0.3)
        await ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        bounty_events = [m for m in messages if m["event"] == "bounty"]
        guids = [m["data"]["guid"] for m in bounty_events]
        assert len(guids) == len(ACCOUNTS) * BOUNTIES_EACH == len(set(guids))
        assert all(int(m["data"]["expiration"]) > burst_head for m in bounty_events)
        blocks_seen = [m["data"]["number"] for m in messages if m["event"] == "block"]
        assert blocks_seen == sorted(set(blocks_seen))  # each block announced once, in order
