"""A running in-process devnet for any test tier, and a tiny hand-rolled polyswarmd client for it.

    async with running_devnet(block_time=0.2) as (url, devnet):
        ...

``running_devnet`` starts :class:`~polyswarmclient.devnet.node.Devnet` on an ephemeral port with the
repository's ``keyfiles-testing/`` funded; keyword arguments override :class:`DevnetConfig` fields.
``DevnetApi`` speaks HTTP to it and signs transactions by hand with eth-account (through
``polyswarmclient.eth.keys.Signer``), one ``POST /transactions`` per tx, as polyswarm-client 2.13.3 does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp

from polyswarmclient.devnet.node import Devnet, DevnetConfig
from polyswarmclient.eth.keys import Signer
from polyswarmclient.wire.models import UnsignedTransaction

ROOT = Path(__file__).resolve().parents[1]
KEYFILES = ROOT / "keyfiles-testing"


class RunningDevnet(NamedTuple):
    url: str
    devnet: Devnet

    async def mine_to(self, block: int, chain: str = "side") -> None:
        """Mine until ``chain``'s head is at least ``block``."""
        head = self.devnet.node(chain).head
        if head < block:
            await self.devnet.mine(chain, block - head)


async def collect_messages(ws: aiohttp.ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    """Append every JSON text message of ``ws`` to ``into`` until it closes."""
    async for message in ws:
        if message.type == aiohttp.WSMsgType.TEXT:
            into.append(json.loads(message.data))


@asynccontextmanager
async def running_devnet(*, block_time: float = 0.2, **overrides: Any) -> AsyncIterator[RunningDevnet]:
    """Start a devnet on ``127.0.0.1:<free port>``; stop it on exit."""
    settings: dict[str, Any] = {
        "port": 0,
        "block_time": block_time,
        "keyfiles_dir": KEYFILES,
        "relay_confirmations": 2,
        "poll_interval": 0.1,
    }
    settings.update(overrides)
    devnet = Devnet(DevnetConfig(**settings))
    await devnet.start()
    try:
        yield RunningDevnet(devnet.url, devnet)
    finally:
        await devnet.stop()


class Reply(NamedTuple):
    status: int
    body: Any

    @property
    def result(self) -> Any:
        assert self.status == 200 and self.body.get("status") == "OK", self
        return self.body.get("result")


class DevnetApi:
    """Raw HTTP against a devnet: every call returns ``Reply(status, parsed JSON body)``."""

    def __init__(self, session: aiohttp.ClientSession, base: str, *, api_key: str | None = None) -> None:
        self.session = session
        self.base = base
        self.headers = {"Authorization": api_key} if api_key else {}

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {"headers": {**self.headers, **(headers or {})}}
        if params:
            kwargs["params"] = {k: str(v) for k, v in params.items()}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"]["Content-Type"] = "application/json"
        elif data is not None:
            kwargs["data"] = data
        async with self.session.request(method, self.base + path, **kwargs) as response:
            raw = await response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = raw
            return Reply(response.status, parsed)

    async def get(self, path: str, **params: Any) -> Reply:
        return await self.request("GET", path, params=params)

    async def upload(self, *files: bytes) -> str:
        form = aiohttp.FormData()
        for i, content in enumerate(files):
            form.add_field("file", content, filename=f"f{i}")
        reply = await self.request("POST", "/artifacts", data=form)
        return str(reply.result)

    async def build(self, path: str, signer: Signer, body: Any = None, *, chain: str = "side") -> Reply:
        """POST a transaction-building route with ``base_nonce`` = the account's pending nonce."""
        nonce = (await self.get("/nonce", chain=chain, account=signer.address)).result
        params = {"chain": chain, "account": signer.address, "base_nonce": nonce}
        return await self.request("POST", path, params=params, body=body if body is not None else {})

    async def post_signed(self, signer: Signer, txs: list[dict[str, Any]], *, chain: str = "side") -> list[str]:
        """Sign each unsigned tx and POST it alone; returns the tx hashes (asserts acceptance)."""
        hashes = []
        for tx in txs:
            raw, tx_hash = signer.sign(UnsignedTransaction.from_json(tx))
            reply = await self.request(
                "POST",
                "/transactions",
                params={"chain": chain, "account": signer.address},
                body={"transactions": [raw.hex()]},
            )
            assert reply.status == 200, reply
            hashes.append(tx_hash)
        return hashes

    async def confirm(self, signer: Signer, hashes: list[str], *, chain: str = "side") -> Reply:
        return await self.request(
            "GET",
            "/transactions",
            params={"chain": chain, "account": signer.address},
            body={"transactions": hashes},
        )

    async def transact(self, path: str, signer: Signer, body: Any = None, *, chain: str = "side") -> dict[str, Any]:
        """Build, sign, post and confirm; returns the decoded events of ``GET /transactions``."""
        built = (await self.build(path, signer, body, chain=chain)).result
        hashes = await self.post_signed(signer, built["transactions"], chain=chain)
        reply = await self.confirm(signer, hashes, chain=chain)
        result: dict[str, Any] = reply.result
        return result

    async def nct(self, address: str, chain: str = "side") -> int:
        return int((await self.get(f"/balances/{address}/nct", chain=chain)).result)
