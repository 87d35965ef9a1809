"""Devnet throughput: raw EVM transactions/s (EmbeddedChain directly) and transactions/s through the
devnet's ``POST /transactions`` over HTTP. Prints figures; asserts nothing.

    PYTHONPATH=src python benchmarks/bench_devnet.py [--count 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
from eth_account import Account

from polyswarmclient.devnet.deploy import deploy_community, devnet_key, fund_account
from polyswarmclient.devnet.evm import EmbeddedChain
from polyswarmclient.devnet.node import Devnet, DevnetConfig
from polyswarmclient.eth import abi

NCT = 10**18


def _signed_transfers(key: bytes, token: str, to: str, chain_id: int, start_nonce: int, count: int) -> list[bytes]:
    data = abi.TRANSFER.encode(to, 1)
    out = []
    for i in range(count):
        tx = {
            "to": token,
            "data": data,
            "value": 0,
            "gas": 200_000,
            "gasPrice": 0,
            "nonce": start_nonce + i,
            "chainId": chain_id,
        }
        out.append(bytes(Account.sign_transaction(tx, key).raw_transaction))
    return out


def bench_raw(count: int) -> None:
    home, side = EmbeddedChain(1337), EmbeddedChain(1338)
    community = deploy_community(home, side)
    key = devnet_key("bench sender")
    sender = Account.from_key(key).address
    fund_account(home, side, community, sender, eth=10 * NCT, nct_home=0, nct_side=1000 * NCT)
    raws = _signed_transfers(key, community.side.nectar_token, community.side.bounty_registry, 1338, 0, count)
    started = time.perf_counter()
    for raw in raws:
        side.send_raw_transaction(raw)
    elapsed = time.perf_counter() - started
    print(
        f"raw EmbeddedChain.send_raw_transaction: {count} NCT transfers in {elapsed:.2f} s = {count / elapsed:.0f} tx/s"
    )


async def bench_http(count: int, concurrency: int) -> None:
    async with Devnet(DevnetConfig(port=0, block_time=1.0, keyfiles_dir=None)) as devnet:
        key = devnet_key("bench sender")
        sender = Account.from_key(key).address
        await devnet.fund(sender, eth=10 * NCT, nct_side=1000 * NCT)
        side = devnet.side
        start = await side.run(side.chain.get_nonce, sender)
        raws = _signed_transfers(
            key, side.addresses.nectar_token, side.addresses.bounty_registry, side.chain_id, start, count
        )
        url = f"{devnet.url}/transactions?chain=side&account={sender}"
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for raw in raws:
            queue.put_nowait(raw)
        errors = 0

        async def worker(session: aiohttp.ClientSession) -> None:
            nonlocal errors
            while not queue.empty():
                raw = queue.get_nowait()
                body = json.dumps({"transactions": [raw.hex()]})
                async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                    if response.status != 200:
                        errors += 1

        async with aiohttp.ClientSession() as session:
            started = time.perf_counter()
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        print(
            f"devnet POST /transactions ({concurrency} in flight): {count} txs in {elapsed:.2f} s = "
            f"{count / elapsed:.0f} tx/s ({errors} refused)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    bench_raw(args.count)
    asyncio.run(bench_http(args.count, 1))
    asyncio.run(bench_http(args.count, 8))


if __name__ == "__main__":
    main()
