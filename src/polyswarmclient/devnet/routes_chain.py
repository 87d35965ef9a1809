"""``/status``, ``/syncing``, ``/nonce``, ``/pending`` and ``/transactions`` (spec §2.2, §2.3)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from polyswarmclient.devnet.chainnode import ChainNode
from polyswarmclient.devnet.http import (
    AUTHENTICATED,
    CTX,
    ApiFailure,
    Routes,
    chain_scope,
    fail,
    invalid_json,
    json_body,
    ok,
    require_object,
)
from polyswarmclient.devnet.logs import transaction_events
from polyswarmclient.eth import abi
from polyswarmclient.eth.rawtx import DecodedTransaction, decode_raw_transaction

MAX_TRANSACTIONS = 10
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_TX_HASH = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")

routes = Routes()


async def _chain_status(node: ChainNode) -> dict[str, Any]:
    try:
        async with asyncio.timeout(2):
            block = await node.run(node.chain.block_number)
    except Exception:
        return {"reachable": False}
    return {"reachable": True, "syncing": False, "block": int(block)}


@routes.get("/status")
async def status(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    result: dict[str, Any] = {
        "community": ctx.community,
        "home": await _chain_status(ctx.home),
        "side": await _chain_status(ctx.side),
        "artifact_services": {"ipfs": {"reachable": True}},
    }
    if ctx.auth_enforced:
        result["auth"] = {"reachable": True}
    return ok(result)


@routes.get("/syncing")
async def syncing(request: web.Request) -> web.Response:
    chain_scope(request)
    return ok(False)


@routes.get("/nonce")
async def nonce(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    pending = "ignore_pending" not in request.query
    return ok(int(await node.run(node.chain.get_nonce, account, pending=pending)))


@routes.get("/pending")
async def pending(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    nonces = await node.run(node.chain.pending_nonces, account)
    return ok([str(n) for n in nonces])


def _is_withdrawal(request: web.Request, tx: DecodedTransaction) -> bool:
    """The one transaction an anonymous caller may post: NCT ``transfer`` to the side relay (spec §2.1)."""
    side = request.app[CTX].side
    if tx.to is None or tx.to.lower() != side.addresses.nectar_token.lower():
        return False
    if tx.value != 0 or tx.chain_id != side.chain_id:
        return False
    try:
        args = abi.TRANSFER.decode(tx.data)
    except ValueError:
        return False
    return bool(args["to"].lower() == side.addresses.erc20_relay.lower() and args["value"] > 0)


def _decode_all(node: ChainNode, raw_hexes: list[str]) -> list[tuple[bytes, DecodedTransaction, Any]]:
    """Decode every item first, like polyswarmd HEAD; raises ``ValueError`` on the first bad one.

    Each item comes with the chain's own decoded transaction when the chain decodes (the embedded
    chains): the route and the chain then share one decode and one signature recovery.
    """
    decode = getattr(node.chain, "decode_transaction", None)
    out = []
    for raw_hex in raw_hexes:
        raw = bytes.fromhex(raw_hex)
        if decode is not None:
            try:
                chain_tx = decode(raw)
            except Exception:
                chain_tx = None  # the fields below say why, in the usual words
            if chain_tx is not None:
                out.append((raw, _fields_of(chain_tx, raw), chain_tx))
                continue
        out.append((raw, decode_raw_transaction(raw), None))
    return out


def _fields_of(tx: Any, raw: bytes) -> DecodedTransaction:
    """The route's view of py-evm's transaction ``tx`` (what ``decode_raw_transaction`` gives)."""
    to = bytes(tx.to)
    return DecodedTransaction(
        tx_hash=bytes(tx.hash),
        sender=abi.checksum(bytes(tx.sender)),
        to=abi.checksum(to) if len(to) == 20 else None,
        value=int(tx.value),
        data=bytes(tx.data),
        nonce=int(tx.nonce),
        gas=int(tx.gas),
        chain_id=tx.chain_id,
        gas_price=int(tx.max_fee_per_gas),
    )


async def _submit(
    request: web.Request, node: ChainNode, account: str, raw: bytes, tx: DecodedTransaction, chain_tx: Any
) -> dict[str, Any]:
    from polyswarmclient.devnet.evm import ChainError

    tx_hash = "0x" + tx.tx_hash.hex()
    # polyswarmd's order: the anonymous-withdrawal rule, then the sender, then the recipient.
    if not request[AUTHENTICATED] and not _is_withdrawal(request, tx):
        return {
            "is_error": True,
            "message": f"Invalid transaction for tx {tx_hash}: only withdrawals allowed without an API key",
        }
    if tx.sender != account:
        return {
            "is_error": True,
            "message": f"Invalid transaction sender for tx {tx_hash}: expected {account} got {tx.sender}",
        }
    if node.kind_of(tx.to) is None:
        return {"is_error": True, "message": f"Invalid transaction recipient for tx {tx_hash}: {tx.to}"}
    try:
        await node.send_raw_transaction(raw, chain_tx)
    except ChainError as exc:
        return {"is_error": True, "message": f"Invalid transaction error for tx {tx_hash}: {exc}"}
    return {"is_error": False, "message": tx_hash}


async def _transactions_field(request: web.Request, pattern: re.Pattern[str], mismatch: str) -> list[str]:
    """The body's ``transactions``: at most ``MAX_TRANSACTIONS`` strings matching ``pattern``.

    Anything else is 400 ``Invalid JSON``; an item that does not match is named, followed by ``mismatch``.
    """
    body = require_object(await json_body(request), ["transactions"])
    items = body["transactions"]
    if not isinstance(items, list):
        raise invalid_json(f"{items!r} is not of type 'array'")
    if len(items) > MAX_TRANSACTIONS:
        raise invalid_json(f"{items!r} is too long")
    for item in items:
        if not isinstance(item, str) or not pattern.match(item):
            raise invalid_json(f"{item!r} {mismatch}")
    return items


@routes.post("/transactions")
async def post_transactions(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    txs = await _transactions_field(request, _HEX, "does not match '^[0-9a-fA-F]+$'")
    if not request[AUTHENTICATED] and len(txs) != 1:
        raise ApiFailure(403, "Posting multiple transactions requires an API key")
    try:
        decoded = _decode_all(node, txs)
    except ValueError as exc:
        # One undecodable item: a single error entry and nothing is sent (spec §2.3, HEAD).
        return fail([{"is_error": True, "message": f"Invalid transaction: {exc}"}], 400)
    # Submitted together (in order) so that they go into the same block.
    submits = (_submit(request, node, account, raw, tx, chain_tx) for raw, tx, chain_tx in decoded)
    results = await asyncio.gather(*submits)
    if any(r["is_error"] for r in results):
        return fail(results, 400)
    return ok(results)


async def _wait_mined(node: ChainNode, tx_hash: bytes, limit: float) -> Any:
    """The receipt once the tx is mined and one more block is on top, or ``None`` on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        receipt = await node.receipt(tx_hash)
        if receipt is not None and node.head >= receipt.block_number + 1:
            return receipt
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        target = receipt.block_number + 1 if receipt is not None else node.head + 1
        await node.wait_for_head(target, min(remaining, 0.25 if receipt is None else remaining))


@routes.get("/transactions")
async def get_transactions(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    ctx = request.app[CTX]
    hashes = await _transactions_field(request, _TX_HASH, "is not a transaction hash")
    timeout = ctx.receipt_timeouts.get(node.name, 10.0)
    merged: dict[str, Any] = {}
    errors: list[str] = []
    for item in hashes:
        tx_hash = bytes.fromhex(item.removeprefix("0x"))
        shown = "0x" + tx_hash.hex()
        receipt = await _wait_mined(node, tx_hash, timeout)
        if receipt is None:
            errors.append(f"transaction {shown}: timeout during wait for receipt")
            continue
        if receipt.status != 1:
            reason = await node.run(node.chain.revert_reason, tx_hash)
            if reason:
                errors.append(
                    f"transaction {shown}: transaction failed at block {receipt.block_number}, error: {reason}"
                )
            else:
                errors.append(
                    f"transaction {shown}: transaction failed at block {receipt.block_number}, check parameters"
                )
            continue
        for key, items in transaction_events(node, receipt.logs).items():
            merged.setdefault(key, []).extend(items)
    merged["errors"] = errors
    if errors:
        return fail(merged, 400)
    return ok(merged)
