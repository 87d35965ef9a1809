"""Shared test helpers: polyswarmd envelopes and parameters, unsigned transactions, signed-tx decoding and a
recorder of posted ones, a real websocket server on an ephemeral port, the public test keystores, polling,
and running our CLIs in process or as subprocesses."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import aioresponses.core
import click
import rlp
from aioresponses import CallbackResult
from click.testing import CliRunner, Result
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

#: ``GET /bounties/parameters`` of a pretend community, as polyswarmd answers it.
PARAMETERS = {
    "bounty_fee": 62_500_000_000_000_000,
    "assertion_fee": 31_250_000_000_000_000,
    "bounty_amount_minimum": 2 * 10**18,
    "assertion_bid_minimum": 62_500_000_000_000_000,
    "assertion_bid_maximum": 10**18,
    "arbiter_lookback_range": 100,
    "max_duration": 100,
    "assertion_reveal_window": 10,
    "arbiter_vote_window": 100,
}


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


class Node:
    """An aioresponses callback for ``POST /transactions``: decodes and records every signed transaction
    posted (``posted``, and the raw hex in ``raw``) and answers as scripted in ``replies``, one per post
    (``None`` or an empty list: accepted, with the transaction's hash)."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.replies: list[Callable[[dict[str, Any]], CallbackResult] | None] = []

    def __call__(self, _url: Any, **kwargs: Any) -> CallbackResult:
        raw_hex = kwargs["json"]["transactions"][0]
        self.raw.append(raw_hex)
        tx = decode_signed(raw_hex)
        self.posted.append(tx)
        reply = self.replies.pop(0) if self.replies else None
        if reply is not None:
            return reply(tx)
        return CallbackResult(payload=ok([{"is_error": False, "message": tx["hash"]}]))


def chain_routes(
    m: aioresponses.aioresponses,
    base: str,
    account: str,
    chain: str = "side",
    *,
    nonce: int | None = 0,
    pending: Iterable[int] = (),
) -> Node:
    """Script on ``m`` the routes every action of ``account`` uses on ``chain``: ``GET /pending`` (the
    ``pending`` pool), ``GET /nonce?ignore_pending`` (``nonce``; left out when None, for a test that scripts
    its own), and ``POST /transactions``, recorded and answered by the returned :class:`Node`."""
    where = {"account": account, "chain": chain}
    m.get(url(base, "/pending", **where), payload=ok([str(p) for p in pending]), repeat=True)
    if nonce is not None:
        m.get(url(base, "/nonce", **where, ignore_pending=1), payload=ok(nonce), repeat=True)
    node = Node()
    m.post(url(base, "/transactions", **where), callback=node, repeat=True)
    return node


def scripted_action(
    m: aioresponses.aioresponses,
    base: str,
    account: str,
    path: str,
    *txs: dict[str, Any],
    chain: str = "side",
    rebuilds: bool = False,
    nonce: int | None = 0,
    pending: Iterable[int] = (),
) -> Node:
    """Script on ``m`` a polyswarmd that builds ``txs`` for ``account`` at ``POST path`` (once or, with
    ``rebuilds``, every time) and serves the :func:`chain_routes` after it; returns their :class:`Node`."""
    build = url(base, path, account=account, chain=chain, base_nonce=0)
    m.post(build, payload=built(*txs), repeat=rebuilds)
    return chain_routes(m, base, account, chain, nonce=nonce, pending=pending)


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


async def wait_until(predicate: Callable[[], Any], within: float = 5.0, what: str = "the condition") -> None:
    """Wait (without blocking the event loop) until ``predicate()`` is truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.005)


def cli_invoker(command: click.Command, prog_name: str, clear: Iterable[str] = ()) -> Callable[..., Result]:
    """``invoke(*args, env=None)``: run ``command`` in this process as ``prog_name`` would run.

    The environment variables in ``clear`` are unset for the run (``env`` may set them again), so a
    developer's own ``KEYFILE`` or ``BACKEND`` never changes what a test sees.
    """

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        environ: dict[str, str | None] = dict.fromkeys(clear)
        environ.update(env or {})
        return CliRunner().invoke(command, list(args), env=environ, prog_name=prog_name)

    return invoke


def options_at_connect(
    monkeypatch: Any, module: Any, invoke: Callable[..., Result], env: dict[str, str]
) -> dict[str, Any]:
    """Run a role command (``module``'s ``cli`` through ``invoke``) with ``env`` up to the moment it would
    connect, and return the parsed options it would connect with; nothing connects."""
    seen: dict[str, Any] = {}

    def fake_connect(options: dict[str, Any], *declared: Any) -> None:
        seen.update(options)
        raise SystemExit(0)

    monkeypatch.setattr(module, "connect", fake_connect)
    result = invoke(env=env)
    assert result.exit_code == 0, result.output
    return seen


def run_module(
    module: str,
    *args: str,
    clear: Iterable[str] = (),
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m MODULE ARGS`` as a user would: no terminal on stdin, output captured, this checkout's
    ``src/`` (and ``tests/`` fixtures) importable, and the environment variables in ``clear`` unset."""
    cleared = set(clear)
    environ = {k: v for k, v in os.environ.items() if k not in cleared}
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")]))
    environ["COLUMNS"] = "200"
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        cwd=cwd,
    )
