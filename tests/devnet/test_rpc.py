"""``RpcChain`` maps the EmbeddedChain interface onto JSON-RPC (checked against a fake node, free port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from polyswarmclient.devnet.evm import ChainError
from polyswarmclient.devnet.rpc import RpcChain
from polyswarmclient.eth.rawtx import decode_raw_transaction

ADDRESS = "0x" + "ab" * 20
TX_HASH = "0x" + "11" * 32
BLOCK_HASH = "0x" + "22" * 32
TOPIC = "0x" + "33" * 32


@dataclass
class FakeNode:
    """Answers JSON-RPC from a table of ``method -> handler(params)``; records every call."""

    handlers: dict[str, Callable[[list[Any]], Any]] = field(default_factory=dict)
    calls: list[tuple[str, list[Any]]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append((body["method"], body["params"]))
        handler = self.handlers.get(body["method"])
        if handler is None:
            return web.json_response(
                {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601, "message": "method not found"}}
            )
        try:
            result = handler(body["params"])
        except ChainError as exc:
            error = {"code": -32000, "message": str(exc)}
            if exc.data:
                error["data"] = "0x" + exc.data.hex()
            return web.json_response({"jsonrpc": "2.0", "id": body["id"], "error": error})
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": result})


@pytest.fixture
async def node() -> AsyncIterator[FakeNode]:
    fake = FakeNode(handlers={"eth_chainId": lambda p: "0x53a"})
    app = web.Application()
    app.router.add_post("/", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
    try:
        yield fake
    finally:
        await runner.cleanup()


async def _chain(node: FakeNode) -> RpcChain:
    return await asyncio.to_thread(RpcChain, node.url)


async def test_chain_id_and_blocks_are_read_from_the_node(node: FakeNode) -> None:
    """The chain id comes from ``eth_chainId``; block number, hash and gas limit from the block RPCs."""
    node.handlers["eth_blockNumber"] = lambda p: "0x10"
    node.handlers["eth_getBlockByNumber"] = lambda p: {
        "hash": BLOCK_HASH,
        "gasLimit": "0x2faf080",
        "number": p[0],
    }
    chain = await _chain(node)
    assert chain.chain_id == 1338
    assert await asyncio.to_thread(chain.block_number) == 16
    assert await asyncio.to_thread(chain.block_hash, 5) == bytes.fromhex("22" * 32)
    assert await asyncio.to_thread(chain.block_gas_limit) == 50_000_000
    assert ("eth_getBlockByNumber", ["0x5", False]) in node.calls


async def test_nonces_and_txpool(node: FakeNode) -> None:
    """``get_nonce`` asks for ``pending`` or ``latest``; ``pending_nonces`` reads ``txpool_content``."""
    node.handlers["eth_getTransactionCount"] = lambda p: "0x7" if p[1] == "pending" else "0x5"
    node.handlers["txpool_content"] = lambda p: {
        "pending": {ADDRESS.upper().replace("0X", "0x"): {"5": {}, "6": {}}},
        "queued": {ADDRESS: {"9": {}}},
    }
    chain = await _chain(node)
    assert await asyncio.to_thread(chain.get_nonce, ADDRESS, pending=True) == 7
    assert await asyncio.to_thread(chain.get_nonce, ADDRESS) == 5
    assert await asyncio.to_thread(chain.pending_nonces, ADDRESS) == [5, 6, 9]


async def test_node_errors_keep_their_wording(node: FakeNode) -> None:
    """A node error reaches the caller as ``ChainError`` with the node's message (``known transaction``…)."""

    def refuse(params: list[Any]) -> Any:
        raise ChainError("known transaction: 1111")

    node.handlers["eth_sendRawTransaction"] = refuse
    chain = await _chain(node)
    with pytest.raises(ChainError, match="known transaction"):
        await asyncio.to_thread(chain.send_raw_transaction, b"\x01\x02")
    assert node.calls[-1] == ("eth_sendRawTransaction", ["0x0102"])


async def test_receipts_and_logs_are_mapped(node: FakeNode) -> None:
    """Receipts and logs become ``Receipt``/``Log`` values; a pending tx has no receipt."""
    log = {
        "address": ADDRESS,
        "topics": [TOPIC],
        "data": "0x" + "00" * 31 + "05",
        "blockNumber": "0x3",
        "transactionHash": TX_HASH,
        "logIndex": "0x1",
    }
    receipts = {
        TX_HASH: {
            "transactionHash": TX_HASH,
            "blockNumber": "0x3",
            "blockHash": BLOCK_HASH,
            "status": "0x0",
            "gasUsed": "0x5208",
            "logs": [log],
            "to": ADDRESS,
            "from": ADDRESS,
            "contractAddress": None,
        }
    }
    node.handlers["eth_getTransactionReceipt"] = lambda p: receipts.get(p[0])
    node.handlers["eth_getLogs"] = lambda p: [log]
    chain = await _chain(node)
    receipt = await asyncio.to_thread(chain.get_receipt, bytes.fromhex(TX_HASH[2:]))
    assert receipt is not None and receipt.status == 0 and receipt.block_number == 3 and receipt.gas_used == 21000
    assert receipt.logs[0].topics == [bytes.fromhex("33" * 32)] and receipt.logs[0].log_index == 1
    assert await asyncio.to_thread(chain.get_receipt, b"\x99" * 32) is None
    logs = await asyncio.to_thread(chain.get_logs, 1, 3, topic0=bytes.fromhex("33" * 32))
    assert logs[0].data[-1] == 5
    assert node.calls[-1] == ("eth_getLogs", [{"fromBlock": "0x1", "toBlock": "0x3", "topics": [TOPIC]}])


async def test_call_and_revert_reason(node: FakeNode) -> None:
    """``call`` returns the raw bytes; ``revert_reason`` replays the tx and decodes ``Error(string)``."""
    import eth_abi

    revert = bytes.fromhex("08c379a0") + eth_abi.encode(["string"], ["Bounty does not exist"])

    def eth_call(params: list[Any]) -> Any:
        if params[1] == "0x4":
            raise ChainError("execution reverted", data=revert)
        return "0x" + "00" * 31 + "2a"

    node.handlers["eth_call"] = eth_call
    node.handlers["eth_getTransactionByHash"] = lambda p: {
        "from": ADDRESS,
        "to": ADDRESS,
        "input": "0x1234",
        "value": "0x0",
        "blockNumber": "0x5",
    }
    chain = await _chain(node)
    assert await asyncio.to_thread(chain.call, ADDRESS, b"\x12\x34") == (42).to_bytes(32, "big")
    assert await asyncio.to_thread(chain.revert_reason, bytes.fromhex(TX_HASH[2:])) == "Bounty does not exist"


async def test_transact_signs_locally_and_waits_for_the_receipt(node: FakeNode) -> None:
    """``transact`` signs an EIP-155 tx with the node's chain id and nonce and returns the mined receipt."""
    sent: list[bytes] = []

    def send(params: list[Any]) -> Any:
        raw = bytes.fromhex(params[0][2:])
        sent.append(raw)
        return "0x" + decode_raw_transaction(raw).tx_hash.hex()

    node.handlers.update(
        {
            "eth_getTransactionCount": lambda p: "0x3",
            "eth_gasPrice": lambda p: "0x0",
            "eth_getBlockByNumber": lambda p: {"hash": BLOCK_HASH, "gasLimit": "0x1000000"},
            "eth_sendRawTransaction": send,
            "eth_getTransactionReceipt": lambda p: {
                "transactionHash": p[0],
                "blockNumber": "0x9",
                "blockHash": BLOCK_HASH,
                "status": "0x1",
                "gasUsed": "0x1",
                "logs": [],
                "to": ADDRESS,
                "from": ADDRESS,
            },
        }
    )
    chain = await _chain(node)
    receipt = await asyncio.to_thread(chain.transact, b"\x01" * 32, ADDRESS, b"\xaa", 0)
    decoded = decode_raw_transaction(sent[0])
    assert decoded.nonce == 3 and decoded.chain_id == 1338 and decoded.to is not None
    assert decoded.to.lower() == ADDRESS and decoded.data == b"\xaa" and decoded.gas == 0x1000000
    assert receipt.block_number == 9


async def test_fund_uses_a_dev_balance_api(node: FakeNode) -> None:
    """``fund`` raises the balance with ``anvil_setBalance`` when the node has it."""
    node.handlers["eth_getBalance"] = lambda p: "0x10"
    node.handlers["anvil_setBalance"] = lambda p: None
    chain = await _chain(node)
    await asyncio.to_thread(chain.fund, ADDRESS, 16)
    method, params = node.calls[-1]
    assert method == "anvil_setBalance" and params[1] == "0x20"


async def test_unreachable_node_is_a_chain_error() -> None:
    """A node that does not answer gives one ``ChainError`` naming the URL."""
    with pytest.raises(ChainError, match="cannot reach"):
        await asyncio.to_thread(RpcChain, "http://127.0.0.1:9/", timeout=1.0)
