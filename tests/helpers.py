"""Shared test helpers: polyswarmd envelopes, unsigned transactions, signed-tx decoding, a real
websocket server on an ephemeral port, and the public test keystores."""

from __future__ import annotations

import functools
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aioresponses.core
import rlp
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from websockets.asyncio.server import ServerConnection, serve
from yarl import URL

from polyswarmclient.eth.keys import Signer, load_keyfile


class _NoWriter:
    output_size = 0


class _CompatClientResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp >= 3.13 requires."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _NoWriter())
        super().__init__(*args, **kwargs)


if "stream_writer" in aiohttp.ClientResponse.__init__.__code__.co_varnames:
    aioresponses.core.ClientResponse = _CompatClientResponse  # type: ignore[misc]

ROOT = Path(__file__).resolve().parents[1]
KEYFILES = ROOT / "keyfiles-testing"

SIDE_CHAIN_ID = 1338
HOME_CHAIN_ID = 1337

# Contract addresses of a pretend community (checksummed).
TOKEN = to_checksum_address("0x" + "1a" * 20)
REGISTRY = to_checksum_address("0x" + "2b" * 20)
RELAY = to_checksum_address("0x" + "3c" * 20)
STAKING = to_checksum_address("0x" + "4d" * 20)
EVIL = to_checksum_address("0x" + "66" * 20)

GUID = "5f0c1a52-3d7e-4c1b-9a8e-0123456789ab"  # a canonical v4 UUID
URI = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


def ok(result: Any = None) -> dict[str, Any]:
    """A polyswarmd success envelope."""
    body: dict[str, Any] = {"status": "OK"}
    if result is not None:
        body["result"] = result
    return body


def fail(errors: Any) -> dict[str, Any]:
    """A polyswarmd failure envelope (``errors`` may be a str, a list or a dict)."""
    return {"status": "FAIL", "errors": errors}


def unsigned(
    to: str, data: bytes, *, chain_id: int = SIDE_CHAIN_ID, value: int = 0, gas: int = 500_000, nonce: int = 0
) -> dict[str, Any]:
    """One unsigned transaction exactly as polyswarmd's builders return it."""
    return {
        "to": to,
        "data": "0x" + data.hex(),
        "value": value,
        "gas": gas,
        "gasPrice": 0,
        "nonce": nonce,
        "chainId": chain_id,
    }


def built(*txs: dict[str, Any]) -> dict[str, Any]:
    """The answer of a transaction-building route."""
    return ok({"transactions": list(txs)})


def url(base: str, path: str, **params: Any) -> URL:
    """The exact URL (with query) aioresponses matches and records (it sorts the query)."""
    return URL(base + path).with_query(sorted((k, str(v)) for k, v in params.items()))


@functools.cache
def signer(name: str = "microengine") -> Signer:
    """A :class:`Signer` from the public test keystores (password ``password``)."""
    return load_keyfile(KEYFILES / f"{name}_keyfile", "password")


def decode_signed(raw_hex: str) -> dict[str, Any]:
    """Decode a raw legacy (EIP-155) transaction as posted to ``POST /transactions``."""
    raw = bytes.fromhex(raw_hex)
    nonce, gas_price, gas, to, value, data, v, r, s = rlp.decode(raw)
    return {
        "nonce": int.from_bytes(nonce, "big"),
        "gas": int.from_bytes(gas, "big"),
        "to": to_checksum_address(to),
        "value": int.from_bytes(value, "big"),
        "data": bytes(data),
        "chain_id": (int.from_bytes(v, "big") - 35) // 2,
        "sender": Account.recover_transaction(raw),
        "hash": "0x" + keccak(raw).hex(),
    }


def unused_port() -> int:
    """A TCP port nothing listens on (bound and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def message(event: str, data: Any, **extra: Any) -> str:
    """A websocket message as polyswarmd sends it."""
    return json.dumps({"event": event, "data": data, **extra})


@asynccontextmanager
async def ws_server(handler: Callable[[ServerConnection], Awaitable[None]]) -> AsyncIterator[str]:
    """A real websocket server on 127.0.0.1, ephemeral port; yields its ``ws://host:port`` base."""
    server = await serve(handler, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
