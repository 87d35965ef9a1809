"""Bounded memory: what the devnet forgets (old receipts, logs, headers, state, artifacts) and what it keeps.

The chain-level tests prune an ``EmbeddedChain`` directly. The server test runs a bounty from post to
settle and a relay withdrawal on a devnet with the shortest retention it accepts, pruning py-evm's
database at every step: nothing an open bounty or the relay still needs may be gone.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import rlp
from eth_account import Account
from eth_utils import keccak

from polyswarmclient.devnet import evm
from polyswarmclient.devnet.artifacts import ArtifactError, ArtifactStore
from polyswarmclient.devnet.deploy import NCT, contract_call, deploy_community, fund_account
from polyswarmclient.devnet.evm import ChainError, EmbeddedChain
from polyswarmclient.devnet.node import DevnetConfig, minimum_retention
from polyswarmclient.eth import abi
from polyswarmclient.eth.commitment import commitment, new_nonce
from tests.fixtures_devnet import DevnetApi, collect_messages, running_devnet
from tests.helpers import signer

KEY = keccak(b"retention sender")
SENDER = Account.from_key(KEY).address


def _entries(chain: EmbeddedChain) -> int:
    """Entries in py-evm's database: hot and cold on disk, or the dict in memory."""
    return len(chain._store) if chain._store is not None else len(chain._kv.kv_store)  # type: ignore[union-attr]


def _has(chain: EmbeddedChain, key: bytes) -> bool:
    return key in chain._store if chain._store is not None else key in chain._kv.kv_store  # type: ignore[union-attr]


@pytest.mark.parametrize("on_disk", [True, False], ids=["state-on-disk", "state-in-memory"])
def test_old_receipts_logs_headers_and_state_are_forgotten_and_the_live_state_is_intact(
    on_disk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After 150 blocks of transfers with a 100-block retention: the first transfer's receipt, logs and
    header are gone, the recent ones answer, a sweep drops the state tries no retained block uses, and balances,
    calls and new transactions are exactly as without pruning (the state on disk or in memory). On disk,
    the state read back from the file after sweeps and compactions is the same, and a compaction drops the
    old states the sweeps left in the file."""
    home, side = EmbeddedChain(1337), EmbeddedChain(1338, retain_blocks=100, state_on_disk=on_disk)
    assert (side._store is not None) is on_disk
    community = deploy_community(home, side)
    fund_account(home, side, community, SENDER, eth=NCT, nct_home=0, nct_side=1000 * NCT)
    token, registry = community.side.nectar_token, community.side.bounty_registry
    code = side.get_code(token)

    def transfer(amount: int) -> bytes:
        tx = {
            "to": token,
            "data": abi.TRANSFER.encode(registry, amount),
            "value": 0,
            "gas": 200_000,
            "gasPrice": 0,
            "nonce": side.get_nonce(SENDER),
            "chainId": side.chain_id,
        }
        return side.send_raw_transaction(bytes(Account.sign_transaction(tx, KEY).raw_transaction))

    def balance(block: int | None = None) -> int:
        return int(contract_call(side, token, "NectarToken", "balanceOf", registry, block=block))

    first = transfer(1)
    first_block = side.get_receipt(first).block_number
    for _ in range(150):
        transfer(0)
    last = transfer(2)
    head = side.block_number()
    assert side.get_receipt(first) is None and side.get_receipt(last) is not None
    assert side.get_logs(0, first_block) == [] and len(side.get_logs(head, head)) == 1
    with pytest.raises(ChainError, match="older than the 100 blocks"):
        side.block_hash(first_block)
    assert len(side.block_hash(head - 99)) == 32

    assert balance() == 3
    old_root = bytes(side._chain.get_canonical_block_header_by_number(head - 80).state_root)
    entries = _entries(side)
    dropped = side.prune()
    # each transfer left old trie nodes (the token's storage, the sender's account) behind
    assert dropped > 150 and _entries(side) == entries - dropped
    assert not _has(side, old_root)
    assert balance() == 3
    with pytest.raises(ChainError, match="pruned"):
        balance(block=head - 80)
    assert balance(block=head - 1) == 1
    again = transfer(4)
    assert side.get_receipt(again).status == 1
    assert balance() == 7
    side.prune()
    assert side.get_receipt(transfer(8)).status == 1  # a sweep right before still leaves a minable chain
    if not on_disk:
        return

    store = side._store
    assert store is not None and store.compactions == 0
    for _ in range(70):  # the swept states fall out of the 64 blocks kept, but stay in the file
        transfer(1)
    side.prune()
    rows = store.cold_rows()
    side.prune(compact=True)  # from here on reads go through sqlite: a compaction empties the read cache
    assert store.compactions == 1 and store.cold_rows() < rows - 200 and not store.hot
    assert balance() == 85 and side.get_code(token) == code and side.eth_balance(SENDER) == NCT
    assert balance(block=side.block_number() - 1) == 84
    for _ in range(3):  # and again: sweeps and compactions in turn keep a working chain
        assert side.get_receipt(transfer(1)).status == 1
        side.prune(compact=True)
    assert balance() == 88 and side.get_code(token) == code
    # a compaction as the devnet runs one, a slice of 300 nodes per sweep, blocks mined in between
    monkeypatch.setattr(evm, "_COMPACT_STEP", 300)
    monkeypatch.setattr(evm, "_COMPACT_ROWS", 1)
    store.cold_compacted = 0
    for _ in range(8):
        assert side.get_receipt(transfer(1)).status == 1
        side.prune()
    assert store.compactions == 5 and store.last_compaction[0] > 3 and not store.compacting
    assert balance() == 96 and side.get_code(token) == code and balance(block=side.block_number() - 1) == 95
    side.close()


def test_the_artifact_store_evicts_only_what_is_old_enough() -> None:
    """A full store refuses uploads while everything in it is younger than the retention, then drops the
    least recently used old uploads (keeping files a kept upload still links) to make room."""
    heads = [100, 100]
    store = ArtifactStore(max_store_size=3000, clock=lambda: tuple(heads), min_age_blocks=50)
    old = store.upload([b"a" * 1000])
    shared = store.upload([b"s" * 1000])
    with pytest.raises(ArtifactError, match="Artifact store full"):
        store.upload([b"c" * 1500])
    heads[:] = [160, 160]
    reused = store.upload([b"s" * 1000, b"n" * 10])  # touches the shared file: it is recent again
    newer = store.upload([b"c" * 1500])
    assert not store.exists(old) and store.exists(reused) and store.exists(newer)
    assert store.cat(store.ls(reused)[0][1]) == b"s" * 1000
    assert not store.exists(shared)  # the old directory went; the file it shared stayed for the new one
    assert store.stored_bytes <= 3000


def test_the_cli_refuses_a_retention_shorter_than_a_bounty_can_live() -> None:
    """``--retain-blocks`` below twice a bounty's longest life is one line and exit 2, before anything starts."""
    config = DevnetConfig(community_overrides={"max_duration": 10, "assertion_reveal_window": 3})
    # (10 + 3 + 10 windows + 3 relay confirmations) * 2
    assert minimum_retention(config) == 52
    script = shutil.which("polyswarmd-devnet", path=str(Path(sys.executable).parent))
    assert script is not None
    done = subprocess.run(
        [script, "--retain-blocks", "200", "--vote-window", "20"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--retain-blocks 200" in lines[0] and "at least 266" in lines[0], done.stderr


NCT_BID = NCT // 10


@pytest.mark.asyncio
async def test_a_bounty_and_a_withdrawal_survive_pruning_at_every_step() -> None:
    """Shortest accepted retention, old state swept after every step: the bounty is posted, asserted,
    revealed, voted on and settled, each settle pays, every event arrives once, and a withdrawal the relay
    handles after a sweep is paid on the homechain."""
    overrides = {"max_duration": 10, "assertion_reveal_window": 3, "arbiter_vote_window": 3}
    base = DevnetConfig(community_overrides=overrides, relay_confirmations=2)
    retain = minimum_retention(base)
    async with (
        running_devnet(block_time=0.2, retain_blocks=retain, community_overrides=overrides) as net,
        aiohttp.ClientSession() as session,
    ):
        api = DevnetApi(session, net.url)
        devnet = net.devnet

        sweeps = 0

        async def sweep() -> None:
            """Sweep both chains; every other time, compact the side chain's state file too."""
            nonlocal sweeps
            sweeps += 1
            for node in (devnet.home, devnet.side):
                compact = node is devnet.side and sweeps % 2 == 0
                await node.run(node.chain.prune, compact=compact)

        ambassador, engine, arbiter, spare = (
            signer("ambassador"),
            signer("microengine"),
            signer("arbiter"),
            signer("spare3"),
        )
        received: list[dict[str, Any]] = []
        ws = await session.ws_connect(net.url.replace("http", "ws", 1) + "/events?chain=side")
        collector = asyncio.create_task(collect_messages(ws, received))
        staking = (await api.get("/staking/parameters", chain="side", account=arbiter.address)).result
        await api.transact("/staking/deposit", arbiter, {"amount": str(staking["minimum_stake"])})
        await net.mine_to(devnet.side.head + retain + 5)  # the setup's blocks fall out of the retention
        await sweep()
        home_before = await api.nct(spare.address, chain="home")
        await api.transact("/relay/withdrawal", spare, {"amount": str(10 * NCT)})

        uri = await api.upload(b"retained artifact")
        body = {"amount": str(2 * NCT), "uri": uri, "duration": 10, "artifact_type": "file"}
        guid = (await api.transact("/bounties", ambassador, body))["bounties"][0]["guid"]
        await sweep()
        nonce = new_nonce()
        assertion = {"bid": [str(NCT_BID)], "mask": [True], "commitment": str(commitment(nonce, 1, engine.address))}
        index = (await api.transact(f"/bounties/{guid}/assertions", engine, assertion))["assertions"][0]["index"]
        expiration = (await api.get(f"/bounties/{guid}", chain="side", account=engine.address)).result["expiration"]
        await net.mine_to(expiration)
        await sweep()
        assert (await api.request("GET", f"/artifacts/{uri}/0")).status == 200
        reveal = {"nonce": str(nonce), "verdicts": [True], "metadata": ""}
        assert (await api.transact(f"/bounties/{guid}/assertions/{index}/reveal", engine, reveal))["reveals"]
        await net.mine_to(expiration + 3)
        await sweep()
        await api.transact(f"/bounties/{guid}/vote", arbiter, {"votes": [True], "valid_bloom": True})
        await net.mine_to(expiration + 6)
        await sweep()
        engine_before = await api.nct(engine.address)
        for who in (engine, arbiter, ambassador):
            events = await api.transact(f"/bounties/{guid}/settle", who)
            assert events["errors"] == []
        assert await api.nct(engine.address) > engine_before
        fee = int((await api.get("/relay/fees", chain="home", account=spare.address)).result["fees"])
        for _ in range(50):
            if await api.nct(spare.address, chain="home") == home_before + 10 * NCT - fee:
                break
            await asyncio.sleep(0.1)
        assert await api.nct(spare.address, chain="home") == home_before + 10 * NCT - fee
        assert devnet.side.chain.prunes >= 5 and devnet.side.chain._store.compactions >= 2
        await asyncio.sleep(0.5)
        await ws.close()
        await collector
    names = [m["event"] for m in received if m["event"] not in ("block", "connected")]
    assert names.count("bounty") == 1 and names.count("reveal") == 1 and names.count("vote") == 1
    assert names.count("settled_bounty") == 3


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS and malloc_trim are read on Linux")
def test_memory_freed_by_a_sweep_goes_back_to_the_system() -> None:
    """A sweep frees trie nodes scattered through the C heap, pinned by survivors: glibc keeps those pages
    until ``release_freed_memory`` (run after every sweep) hands them back, so RSS falls instead of
    staying at its highest point."""
    from polyswarmclient.heap import release_freed_memory

    # 40 MiB of 1 KiB values (malloc's, not Python's small-object allocator), every 64th kept alive
    blobs = [bytes([i % 251]) * 1024 for i in range(40 * 1024)]
    survivors = blobs[::64]
    del blobs
    before = _rss_bytes()
    assert release_freed_memory()
    after = _rss_bytes()
    assert before - after > 20 * 1024 * 1024, f"RSS {before >> 20} MiB -> {after >> 20} MiB"
    assert all(len(s) == 1024 for s in survivors)


def test_the_chain_hashes_with_safe_pysha3_and_its_hashes_do_not_change() -> None:
    """eth-hash takes pycryptodome first; the devnet switches py-evm and the trie to safe-pysha3 (several
    times faster) when it is installed, and every hash (transactions, blocks, state) is the same."""
    from eth_hash.auto import keccak as auto_keccak
    from eth_hash.backends import pycryptodome, pysha3

    chain = EmbeddedChain(1399)
    assert chain.keccak_backend == "pysha3"
    assert auto_keccak.hasher is pysha3.keccak256
    tx = {"to": SENDER, "value": 1, "gas": 21_000, "gasPrice": 0, "nonce": 0, "chainId": 1399}
    raw = bytes(Account.sign_transaction(tx, KEY).raw_transaction)
    chain.fund(SENDER, 10**18)
    tx_hash = chain.send_raw_transaction(raw)
    assert tx_hash == pycryptodome.keccak256(raw)
    block = chain._chain.get_canonical_block_by_number(chain.block_number())
    assert bytes(block.hash) == pycryptodome.keccak256(rlp.encode(block.header))
    assert chain.eth_balance(SENDER) == 10**18  # a 0-price self-transfer: the state root checked out on mining
