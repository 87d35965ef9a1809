"""The floor bench_engine.py compares the microengine against: the least a client must do per bounty.

One process, one event loop: aiohttp for REST and the event stream, eth-account to sign. Per bounty it lists
and fetches the artifact, looks for the EICAR string, asks polyswarmd to build the assertion, signs and posts
each transaction, reads the receipt (``GET /transactions``), then reveals after expiration and settles after
the vote window the same way: 12 requests per one-artifact bounty, as polyswarm-client 2.13.3 makes them
without its metadata upload and balance check. It verifies nothing, keeps no state and never retries, so
it is not a client anyone should run: it only marks the cost of the protocol itself.

    python benchmarks/engine_floor.py --addr 127.0.0.1:PORT --keyfile K --password P --bounties N

It prints ``floor ready`` once subscribed, and exits 0 after settling N bounties.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from eth_keys.datatypes import PrivateKey

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]

from polyswarmclient.eth.commitment import commitment, new_nonce  # noqa: E402  (pure functions)

EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class Floor:
    def __init__(self, base: str, key: bytes, address: str, bounties: int) -> None:
        self.base = base
        self.key = PrivateKey(key)  # parsed once, as the engine's Signer does
        self.address = address
        self.wanted = bounties
        self.settled = 0
        self.head = 0
        self.nonce = 0
        self.blocks = asyncio.Condition()
        self.done = asyncio.Event()
        self.params: dict[str, Any] = {}

    async def call(self, session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> Any:
        params = {"chain": "side", "account": self.address}
        async with session.request(method, self.base + path, params=params, **kwargs) as response:
            body = await response.json(content_type=None)
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: {response.status} {body}")
        return body["result"]

    async def transact(self, session: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> dict[str, Any]:
        built = await self.call(session, "POST", path + "?base_nonce=0", json=body)
        hashes = []
        for tx in built["transactions"]:
            tx["nonce"] = self.nonce
            self.nonce += 1
            raw = Account.sign_transaction(tx, self.key).raw_transaction
            [sent] = await self.call(session, "POST", "/transactions", json={"transactions": [bytes(raw).hex()]})
            hashes.append(sent["message"])
        data = json.dumps({"transactions": hashes})
        headers = {"Content-Type": "application/json"}
        result: dict[str, Any] = await self.call(session, "GET", "/transactions", data=data, headers=headers)
        return result

    async def until_block(self, number: int) -> None:
        async with self.blocks:
            await self.blocks.wait_for(lambda: self.head >= number)

    async def bounty(self, session: aiohttp.ClientSession, data: dict[str, Any]) -> None:
        guid, uri, expiration = data["guid"], data["uri"], int(data["expiration"])
        listing = await self.call(session, "GET", f"/artifacts/{uri}")
        if len(listing) != 1:
            return
        async with session.get(f"{self.base}/artifacts/{uri}/0") as response:
            content = await response.read()
        verdict = EICAR in content
        secret = new_nonce()
        body = {
            "bid": [str(self.params["assertion_bid_minimum"])],
            "mask": [True],
            "commitment": str(commitment(secret, int(verdict), self.address)),
        }
        events = await self.transact(session, f"/bounties/{guid}/assertions", body)
        index = events["assertions"][0]["index"]
        await self.until_block(expiration + 1)
        reveal = {"nonce": str(secret), "verdicts": [verdict], "metadata": ""}
        await self.transact(session, f"/bounties/{guid}/assertions/{index}/reveal", reveal)
        await self.until_block(expiration + self.params["assertion_reveal_window"] + self.params["arbiter_vote_window"])
        await self.transact(session, f"/bounties/{guid}/settle", {})
        self.settled += 1
        if self.settled >= self.wanted:
            self.done.set()

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
            self.params = await self.call(session, "GET", "/bounties/parameters")
            self.nonce = await self.call(session, "GET", "/nonce")
            ws_url = "ws" + self.base[len("http") :] + "/events/?chain=side"
            async with session.ws_connect(ws_url) as socket:
                print("floor ready", flush=True)
                waiter = tasks.create_task(self.done.wait())
                async for message in socket:
                    event = json.loads(message.data)
                    if event["event"] == "block":
                        async with self.blocks:
                            self.head = max(self.head, event["data"]["number"])
                            self.blocks.notify_all()
                    elif event["event"] == "bounty":
                        tasks.create_task(self.bounty(session, event["data"]))
                    if waiter.done():
                        break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="host:port of polyswarmd (plain http)")
    parser.add_argument("--keyfile", required=True, type=Path)
    parser.add_argument("--password", required=True)
    parser.add_argument("--bounties", type=int, required=True)
    args = parser.parse_args()
    key = bytes(Account.decrypt(json.loads(args.keyfile.read_text()), args.password))
    address = Account.from_key(key).address
    asyncio.run(Floor(f"http://{args.addr}", key, address, args.bounties).run())
    print(f"floor settled {args.bounties} bounties", flush=True)


if __name__ == "__main__":
    main()
