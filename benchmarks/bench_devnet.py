"""Devnet benchmarks: bounty lifecycles through the server against py-evm's own speed, and memory over time.

Prints figures and ratios; asserts nothing.

    PYTHONPATH=src python benchmarks/bench_devnet.py                  # lifecycles (default: 200, 40 in flight)
    PYTHONPATH=src python benchmarks/bench_devnet.py --lifecycles 400 --in-flight 40
    PYTHONPATH=src python benchmarks/bench_devnet.py --chains-on embedded   # py-evm only (no anvil needed)
    PYTHONPATH=src python benchmarks/bench_devnet.py memory --seconds 300

A lifecycle is one bounty from post to settle, 17 transactions: the ambassador's approve and postBounty,
three engines' approve, postAssertion and reveal each, the arbiter's vote, and five settles (ambassador,
engines, arbiter). Each transaction is built by the server's routes, signed by the client, posted with
``POST /transactions`` and confirmed with ``GET /transactions``, as polyswarmd clients do; clients follow
the chain's head on the websocket. The devnet runs in a subprocess (its own core), the clients here.

The floor is the same seventeen transactions per lifecycle, signed beforehand, applied straight to py-evm
in this process (py-evm's ``mine_all`` and its own state classes, without the devnet's cache of storage
slots): the lifecycles go in waves of ``--in-flight``, each step of a wave in as few blocks as py-evm's gas
limit allows (the best batching there can be), with empty blocks to move the windows on.
It is measured in the same run; the ratio is server / floor.

The server runs once per ``--chains-on`` backend, by default on the embedded py-evm chains and then on
two anvil nodes (``polyswarmd-devnet --chains-on anvil``; anvil from npm, see docs/devnet.md), and the
figures are printed side by side. The server's CPU includes its anvil nodes.

``memory`` runs lifecycles at full rate for ``--seconds`` and prints the server's RSS (with its anvil
nodes', on ``--chains-on anvil``) every ``--sample`` seconds, and its growth after the warm-up (the first
fifth of the run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account
from eth_utils import keccak

from polyswarmclient.eth import abi
from polyswarmclient.eth.commitment import commitment

NCT = 10**18
ROOT = Path(__file__).resolve().parents[1]
KEYFILES = ROOT / "keyfiles-testing"
DURATION, REVEAL_WINDOW, VOTE_WINDOW = 20, 10, 10
BLOCK_TIME = 0.1
ENGINES = 3
AMBASSADORS = 4
BID = 62_500_000_000_000_000
TX_PER_LIFECYCLE = 2 + 3 * ENGINES + 1 + (2 + ENGINES)


def _key(label: str) -> bytes:
    return keccak(f"bench devnet {label}".encode())


AMBASSADOR_KEYS = [_key(f"ambassador {i}") for i in range(AMBASSADORS)]
ENGINE_KEYS = [_key(f"engine {i}") for i in range(ENGINES)]


def _address(key: bytes) -> str:
    return str(Account.from_key(key).address)


def _arbiter_key() -> bytes:
    keystore = json.loads((KEYFILES / "arbiter_keyfile").read_text())
    return bytes(Account.decrypt(keystore, "password"))


def _sign(key: bytes, tx: dict[str, Any]) -> bytes:
    fields_ = {k: tx[k] for k in ("to", "data", "value", "gas", "gasPrice", "nonce", "chainId")}
    return bytes(Account.sign_transaction(fields_, key).raw_transaction)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _tree_rss_kib(pid: int) -> int:
    """RSS of ``pid`` and its children (the anvil nodes of ``--chains-on anvil``)."""
    return _rss_kib(pid) + sum(_rss_kib(child) for child in _children(pid))


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (the anvil nodes of ``--chains-on anvil``)."""
    return _cpu_seconds(pid) + sum(_cpu_seconds(child) for child in _children(pid))


def _cpu_seconds(pid: int, task: int | None = None) -> float:
    """CPU seconds of process ``pid``, or of its thread ``task``."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    parts = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _loop_cpu_seconds(pid: int) -> float:
    """CPU seconds of the server's main thread (its event loop: HTTP, JSON, the websocket, decoding)."""
    return _cpu_seconds(pid, pid)


# --- the server in a subprocess ------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """``bench_devnet.py serve``: run a devnet for the benchmark and print its URL."""
    from polyswarmclient.devnet.node import Devnet, DevnetConfig

    wanted: dict[str, Any] = {
        "port": 0,
        "block_time": BLOCK_TIME,
        "keyfiles_dir": KEYFILES,
        "extra_accounts": tuple(_address(k) for k in AMBASSADOR_KEYS + ENGINE_KEYS),
        "community_overrides": {
            "assertion_reveal_window": REVEAL_WINDOW,
            "arbiter_vote_window": VOTE_WINDOW,
            "max_duration": max(DURATION, 1),  # so that the shortest legal retention is short too
        },
        "poll_interval": 0.5,
        "chains_on": args.chains_on[0],
        "retain_blocks": args.retain_blocks,
    }
    known = {f.name for f in fields(DevnetConfig)}
    config = DevnetConfig(**{k: v for k, v in wanted.items() if k in known})

    async def run() -> None:
        async with Devnet(config) as devnet:
            print(devnet.url, flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:  # how the benchmark stops it
        pass


class Server:
    """The devnet in a subprocess; ``src`` is the source tree it runs (another checkout's, to compare)."""

    def __init__(self, args: argparse.Namespace, chains_on: str = "embedded", profile: str | None = None) -> None:
        env = dict(os.environ, PYTHONPATH=args.server_src or str(ROOT / "src"))
        command = [sys.executable, __file__, "serve", "--chains-on", chains_on, *_window_args(args)]
        command += ["--retain-blocks", str(args.retain_blocks)]
        if profile:  # py-spy (pip install py-spy) samples the server; collapsed stacks, one per line
            spy = Path(sys.executable).with_name("py-spy")
            command = [str(spy), "record", "--format", "raw", "--rate", "50", "-o", profile, "--", *command]
        self._out = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(command, stdout=self._out, env=env, text=True)
        self.url = ""
        deadline = time.monotonic() + 120
        while not self.url:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the devnet did not start")
            time.sleep(0.2)
            self._out.seek(0)
            self.url = next((ln.strip() for ln in self._out if ln.startswith("http")), "")
        self.pid = self._server_pid(profile is not None)

    def _server_pid(self, under_spy: bool) -> int:
        """The devnet's own process (py-spy's child when profiling), for RSS and CPU readings."""
        if not under_spy:
            return self.proc.pid
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return int(children[0])

    def stop(self) -> None:
        self.proc.send_signal(2)  # SIGINT: py-spy, when used, writes its profile and stops the server
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# --- clients -----------------------------------------------------------------------------------------------


@dataclass
class Account_:
    key: bytes
    address: str
    nonce: int = 0

    def take(self, count: int) -> int:
        first = self.nonce
        self.nonce += count
        return first


@dataclass
class Stats:
    done: int = 0
    failed: int = 0
    txs: int = 0
    errors: list[str] = field(default_factory=list)


class Clients:
    """The ambassadors, engines and arbiter of the run, speaking HTTP to the devnet."""

    def __init__(self, session: aiohttp.ClientSession, url: str, arbiter_key: bytes) -> None:
        self.session = session
        self.url = url
        self.ambassadors = [Account_(k, _address(k)) for k in AMBASSADOR_KEYS]
        self.engines = [Account_(k, _address(k)) for k in ENGINE_KEYS]
        self.arbiter = Account_(arbiter_key, _address(arbiter_key))
        self.head = 0
        self.head_changed = asyncio.Condition()
        self.stats = Stats()
        self.uri = ""

    async def _request(self, method: str, path: str, *, params: dict[str, Any], body: Any = None) -> Any:
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        async with self.session.request(
            method, self.url + path, params={k: str(v) for k, v in params.items()}, data=data, headers=headers
        ) as response:
            reply = await response.json(content_type=None)
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status} {reply}")
            return reply["result"]

    async def setup(self) -> None:
        form = aiohttp.FormData()
        form.add_field("file", b"bench devnet artifact", filename="a")
        async with self.session.post(self.url + "/artifacts", data=form) as response:
            self.uri = (await response.json())["result"]
        for account in [*self.ambassadors, *self.engines, self.arbiter]:
            account.nonce = int(await self._request("GET", "/nonce", params=self._scope(account)))
        stake = await self._request("GET", "/staking/parameters", params=self._scope(self.arbiter))
        await self.act(self.arbiter, "/staking/deposit", {"amount": str(stake["minimum_stake"])}, 2)

    def _scope(self, account: Account_, **extra: Any) -> dict[str, Any]:
        return {"chain": "side", "account": account.address, **extra}

    async def follow(self) -> None:
        async with self.session.ws_connect(self.url.replace("http", "ws", 1) + "/events?chain=side") as ws:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(message.data)
                if event["event"] == "block":
                    async with self.head_changed:
                        self.head = max(self.head, int(event["data"]["number"]))
                        self.head_changed.notify_all()

    async def at_least(self, block: int) -> None:
        async with self.head_changed:
            await self.head_changed.wait_for(lambda: self.head >= block)

    async def act(self, account: Account_, path: str, body: Any, count: int) -> dict[str, Any]:
        """Build ``count`` transactions at ``path``, sign, post them and wait for their receipts."""
        params = self._scope(account, base_nonce=account.take(count))
        built = await self._request("POST", path, params=params, body=body)
        raws = [_sign(account.key, tx).hex() for tx in built["transactions"]]
        posted = await self._request("POST", "/transactions", params=self._scope(account), body={"transactions": raws})
        hashes = [item["message"] for item in posted]
        self.stats.txs += len(hashes)
        result: dict[str, Any] = await self._request(
            "GET", "/transactions", params=self._scope(account), body={"transactions": hashes}
        )
        result["_built"] = built
        return result

    async def lifecycle(self, i: int) -> None:
        ambassador = self.ambassadors[i % len(self.ambassadors)]
        body = {"amount": str(2 * NCT), "uri": self.uri, "duration": DURATION, "artifact_type": "file"}
        posted = await self.act(ambassador, "/bounties", body, 2)
        bounty = posted["bounties"][0]
        guid, expiration = bounty["guid"], int(bounty["expiration"])

        async def assert_and_reveal(engine: Account_) -> None:
            body = {"bid": [str(BID)], "mask": [True], "verdicts": [True]}
            result = await self.act(engine, f"/bounties/{guid}/assertions", body, 2)
            index, nonce = result["assertions"][0]["index"], result["_built"]["nonce"]
            await self.at_least(expiration)
            reveal = {"nonce": str(nonce), "verdicts": [True], "metadata": ""}
            await self.act(engine, f"/bounties/{guid}/assertions/{index}/reveal", reveal, 1)

        await asyncio.gather(*(assert_and_reveal(e) for e in self.engines))
        await self.at_least(expiration + REVEAL_WINDOW)
        await self.act(self.arbiter, f"/bounties/{guid}/vote", {"votes": [True], "valid_bloom": True}, 1)
        await self.at_least(expiration + REVEAL_WINDOW + VOTE_WINDOW)
        settlers = [ambassador, *self.engines, self.arbiter]
        await asyncio.gather(*(self.act(s, f"/bounties/{guid}/settle", {}, 1) for s in settlers))


async def drive(clients: Clients, total: int | None, in_flight: int, until: float | None) -> None:
    """Run lifecycles, ``in_flight`` at a time, until ``total`` are done or the clock passes ``until``."""
    started = 0
    loop = asyncio.get_running_loop()

    async def worker(delay: float) -> None:
        nonlocal started
        await asyncio.sleep(delay)  # staggered, so that the lifecycles do not all start in the same block
        while (total is None or started < total) and (until is None or loop.time() < until):
            i = started
            started += 1
            try:
                await clients.lifecycle(i)
                clients.stats.done += 1
            except Exception as exc:  # a lifecycle that failed is counted, not fatal
                clients.stats.failed += 1
                if len(clients.stats.errors) < 5:
                    clients.stats.errors.append(str(exc)[:300])

    await asyncio.gather(*(worker(0.05 * i) for i in range(in_flight)))


async def _with_clients(server: Server, body: Any) -> Any:
    arbiter_key = _arbiter_key()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        clients = Clients(session, server.url, arbiter_key)
        follower = asyncio.create_task(clients.follow())
        await clients.setup()
        try:
            return await body(clients)
        finally:
            follower.cancel()


# --- the floor: the same transactions straight into py-evm -------------------------------------------------


def floor(lifecycles: int, in_flight: int) -> tuple[float, int]:
    """Seconds to apply ``lifecycles`` lifecycles' transactions to py-evm, and the blocks it took."""
    from polyswarmclient.devnet.deploy import CommunityConfig, deploy_community, fund_account, register_arbiter
    from polyswarmclient.devnet.evm import EmbeddedChain
    from polyswarmclient.eth.bloom import bloom_words

    # py-evm's own state classes: the devnet's cache of storage slots across blocks is the devnet's work
    home, side = EmbeddedChain(1337, slot_cache=False), EmbeddedChain(1338, slot_cache=False)
    config = CommunityConfig(
        assertion_reveal_window=REVEAL_WINDOW, arbiter_vote_window=VOTE_WINDOW, minimum_stake=1_000 * NCT
    )
    community = deploy_community(home, side, config)
    arbiter_key = _arbiter_key()
    keys = [*AMBASSADOR_KEYS, *ENGINE_KEYS, arbiter_key]
    for key in keys:
        fund_account(home, side, community, _address(key), eth=100 * NCT, nct_home=0, nct_side=10_000 * NCT)
    c = community.side
    register_arbiter(side, c, _address(arbiter_key), side.block_number())
    side.transact(arbiter_key, c.nectar_token, abi.APPROVE.encode(c.arbiter_staking, config.minimum_stake))
    side.transact(arbiter_key, c.arbiter_staking, abi.STAKE_DEPOSIT.encode(config.minimum_stake))
    nonces = {key: side.get_nonce(_address(key)) for key in keys}
    gas = side.block_gas_limit()

    def tx(key: bytes, to: str, data: bytes) -> bytes:
        nonce = nonces[key]
        nonces[key] += 1
        fields_ = {"to": to, "data": data, "value": 0, "gas": gas, "gasPrice": 0, "nonce": nonce, "chainId": 1338}
        return bytes(Account.sign_transaction(fields_, key).raw_transaction)

    chain = side._chain  # py-evm's MiningChain
    builder = chain.get_vm().get_transaction_builder()
    uri = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
    bloom = bloom_words([uri])
    # sign everything first: wave by wave, step by step
    waves: list[list[list[bytes]]] = []
    for start in range(0, lifecycles, in_flight):
        guids = [uuid.uuid4().int for _ in range(start, min(start + in_flight, lifecycles))]
        ambs = [AMBASSADOR_KEYS[(start + n) % AMBASSADORS] for n in range(len(guids))]
        posts = [
            item
            for amb, guid in zip(ambs, guids, strict=True)
            for item in (
                tx(amb, c.nectar_token, abi.APPROVE.encode(c.bounty_registry, 2 * NCT + config.bounty_fee)),
                tx(amb, c.bounty_registry, abi.POST_BOUNTY.encode(guid, 0, 2 * NCT, uri, 1, DURATION, bloom, "")),
            )
        ]
        asserts = [
            item
            for guid in guids
            for e in ENGINE_KEYS
            for item in (
                tx(e, c.nectar_token, abi.APPROVE.encode(c.bounty_registry, BID + config.assertion_fee)),
                tx(e, c.bounty_registry, abi.POST_ASSERTION.encode(guid, [BID], 1, commitment(7, 1, _address(e)))),
            )
        ]
        reveals = [
            tx(e, c.bounty_registry, abi.REVEAL_ASSERTION.encode(guid, index, 7, 1, ""))
            for guid in guids
            for index, e in enumerate(ENGINE_KEYS)
        ]
        votes = [tx(arbiter_key, c.bounty_registry, abi.VOTE_ON_BOUNTY.encode(guid, 1, True)) for guid in guids]
        settles = [
            tx(s, c.bounty_registry, abi.SETTLE_BOUNTY.encode(guid))
            for amb, guid in zip(ambs, guids, strict=True)
            for s in (amb, *ENGINE_KEYS, arbiter_key)
        ]
        waves.append([posts, asserts, reveals, votes, settles])

    def refresh() -> None:
        parent = chain.get_canonical_head()
        chain.header = chain.header.copy(timestamp=max(parent.timestamp + 1, int(time.time())))

    per_block = int(chain.header.gas_limit) // gas  # as many as py-evm's block gas limit takes

    def block(raws: list[bytes]) -> None:
        for i in range(0, len(raws), per_block):
            refresh()
            txs = [builder.decode(r) for r in raws[i : i + per_block]]
            _result, receipts, computations = chain.mine_all(txs)
            failed = [c for c in computations if c.is_error]
            if failed:
                raise SystemExit(f"floor: a transaction failed: {failed[0].error!r}")

    def empty_until(number: int) -> None:
        while chain.get_canonical_head().block_number < number:
            refresh()
            chain.mine_block()

    first = chain.get_canonical_head().block_number
    cpu0 = time.process_time()
    started = time.perf_counter()
    for posts, asserts, reveals, votes, settles in waves:
        block(posts)
        expiration = chain.get_canonical_head().block_number + DURATION
        block(asserts)
        empty_until(expiration - 1)
        block(reveals)
        empty_until(expiration + REVEAL_WINDOW - 1)
        block(votes)
        empty_until(expiration + REVEAL_WINDOW + VOTE_WINDOW - 1)
        block(settles)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    print(f"floor CPU: {cpu / elapsed * 100:.0f}% of a core, {cpu / lifecycles * 1000:.0f} ms per lifecycle")
    return elapsed, int(chain.get_canonical_head().block_number - first)


# --- modes -------------------------------------------------------------------------------------------------


def run_server(args: argparse.Namespace, chains_on: str) -> dict[str, Any]:
    """One server run of ``args.lifecycles`` lifecycles with the devnet's chains on ``chains_on``."""
    server = Server(args, chains_on, args.profile)
    out: dict[str, Any] = {}

    async def body(clients: Clients) -> None:
        head0 = clients.head
        cpu0 = _tree_cpu_seconds(server.pid)
        main0 = _cpu_seconds(server.pid)
        loop0 = _loop_cpu_seconds(server.pid)
        own0 = time.process_time()
        t0 = time.perf_counter()
        await drive(clients, args.lifecycles, args.in_flight, None)
        out["elapsed"] = time.perf_counter() - t0
        out["cpu"] = (_tree_cpu_seconds(server.pid) - cpu0) / out["elapsed"]
        out["cpu_main"] = (_cpu_seconds(server.pid) - main0) / out["elapsed"]
        out["cpu_loop"] = (_loop_cpu_seconds(server.pid) - loop0) / out["elapsed"]
        out["blocks"] = clients.head - head0
        out["own"] = (time.process_time() - own0) / out["elapsed"]
        out["stats"] = clients.stats

    try:
        asyncio.run(_with_clients(server, body))
    finally:
        server.stop()
    stats: Stats = out["stats"]
    elapsed, blocks = out["elapsed"], out["blocks"]
    out["lps"], out["tps"] = stats.done / elapsed, stats.txs / elapsed
    print(
        f"server on {chains_on}: {stats.done} lifecycles ({stats.failed} failed) in {elapsed:.1f} s = "
        f"{out['lps']:.2f} lifecycles/s, {out['tps']:.0f} tx/s; {blocks} blocks "
        f"({stats.txs / max(1, blocks):.1f} tx/block); "
        f"CPU: server {out['cpu'] * 100:.0f}% (its own process {out['cpu_main'] * 100:.0f}%, its children "
        f"{(out['cpu'] - out['cpu_main']) * 100:.0f}%), clients {out['own'] * 100:.0f}% of a core; "
        f"server CPU per lifecycle {out['cpu'] * elapsed / max(1, stats.done) * 1000:.0f} ms, of which its event "
        f"loop's thread {out['cpu_loop'] * elapsed / max(1, stats.done) * 1000:.0f} ms"
    )
    for error in stats.errors:
        print(f"  failure: {error}")
    return out


def lifecycles_mode(args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print(
        f"{args.lifecycles} lifecycles, {args.in_flight} in flight; bounties of {DURATION} blocks, reveal window "
        f"{REVEAL_WINDOW}, vote window {VOTE_WINDOW}; {BLOCK_TIME} s blocks"
    )
    runs = {chains_on: run_server(args, chains_on) for chains_on in args.chains_on}
    floor_seconds, floor_blocks = floor(args.lifecycles, args.in_flight)
    floor_lps = args.lifecycles / floor_seconds
    floor_tps = floor_lps * TX_PER_LIFECYCLE
    print(
        f"floor (py-evm in-process): {args.lifecycles} lifecycles in {floor_seconds:.1f} s = {floor_lps:.2f} "
        f"lifecycles/s, {floor_tps:.0f} tx/s; {floor_blocks} blocks"
    )
    print(f"{'chains on':<12} {'lifecycles/s':>12} {'tx/s':>8} {'failed':>7} {'server CPU':>11} {'vs floor':>9}")
    for chains_on, out in runs.items():
        print(
            f"{chains_on:<12} {out['lps']:>12.2f} {out['tps']:>8.0f} {out['stats'].failed:>7} "
            f"{out['cpu'] * 100:>10.0f}% {out['lps'] / floor_lps:>8.2f}x"
        )
    print(f"{'floor':<12} {floor_lps:>12.2f} {floor_tps:>8.0f}")
    if {"embedded", "anvil"} <= runs.keys():
        print(f"ratio anvil/embedded: {runs['anvil']['lps'] / max(runs['embedded']['lps'], 1e-9):.2f}x lifecycles/s")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


def memory_mode(args: argparse.Namespace) -> None:
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    server = Server(args, args.chains_on[0])
    samples: list[tuple[float, int, int]] = []
    try:

        async def body(clients: Clients) -> None:
            loop = asyncio.get_running_loop()
            t0 = loop.time()

            async def sample() -> None:
                while True:
                    samples.append((loop.time() - t0, _tree_rss_kib(server.pid), clients.stats.done))
                    s = samples[-1]
                    print(f"  {s[0]:6.0f} s  RSS {s[1] / 1024:7.1f} MiB  lifecycles {s[2]}", flush=True)
                    await asyncio.sleep(args.sample)

            sampler = asyncio.create_task(sample())
            await drive(clients, None, args.in_flight, t0 + args.seconds)
            sampler.cancel()
            samples.append((loop.time() - t0, _tree_rss_kib(server.pid), clients.stats.done))
            print(f"  failed lifecycles: {clients.stats.failed}")

        asyncio.run(_with_clients(server, body))
    finally:
        server.stop()
    warm = next(s for s in samples if s[0] >= args.seconds / 5)
    last = samples[-1]
    growth = (last[1] - warm[1]) / warm[1] * 100
    per = (last[1] - warm[1]) / max(1, last[2] - warm[2])
    rate_early = warm[2] / max(warm[0], 1e-9)
    rate_late = (last[2] - warm[2]) / max(last[0] - warm[0], 1e-9)
    print(
        f"RSS after warm-up ({warm[0]:.0f} s): {warm[1] / 1024:.1f} MiB -> {last[1] / 1024:.1f} MiB "
        f"at {last[0]:.0f} s: "
        f"{growth:+.1f}% ({per:.1f} KiB per lifecycle); lifecycles/s {rate_early:.2f} during warm-up, "
        f"{rate_late:.2f} after"
    )


def _window_args(args: argparse.Namespace) -> list[str]:
    return [
        "--duration",
        str(args.duration),
        "--reveal-window",
        str(args.reveal_window),
        "--vote-window",
        str(args.vote_window),
    ]


def main() -> None:
    global DURATION, REVEAL_WINDOW, VOTE_WINDOW
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="lifecycles", choices=["lifecycles", "memory", "serve"])
    parser.add_argument("--lifecycles", type=int, default=200)
    parser.add_argument(
        "--chains-on",
        type=lambda text: text.split(","),
        default=["embedded", "anvil"],
        help="the devnet's chains for each server run, side by side: embedded, anvil or embedded,anvil (default)",
    )
    parser.add_argument("--in-flight", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=1500.0, help="memory mode: how long to run")
    parser.add_argument("--sample", type=float, default=30.0, help="memory mode: seconds between RSS samples")
    parser.add_argument("--profile", help="record the server with py-spy into this file (collapsed stacks)")
    parser.add_argument(
        "--server-src", help="run the devnet from this source tree (an older checkout's src/, to compare)"
    )
    parser.add_argument("--duration", type=int, default=DURATION, help="bounty duration in blocks")
    parser.add_argument("--reveal-window", type=int, default=REVEAL_WINDOW, help="reveal window in blocks")
    parser.add_argument("--vote-window", type=int, default=VOTE_WINDOW, help="vote window in blocks")
    parser.add_argument(
        "--retain-blocks",
        type=int,
        default=1000,
        help="the server's --retain-blocks (at least 2 x (duration + windows + 3))",
    )
    args = parser.parse_args()
    # The server as installed: it may write the bytecode of what it imports (see bench_engine.py)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    DURATION, REVEAL_WINDOW, VOTE_WINDOW = args.duration, args.reveal_window, args.vote_window
    if args.mode == "serve":
        serve(args)
    elif args.mode == "memory":
        memory_mode(args)
    else:
        lifecycles_mode(args)


if __name__ == "__main__":
    main()
