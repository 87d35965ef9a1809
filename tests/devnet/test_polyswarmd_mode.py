"""The devnet as polyswarmd 2.2.0 meets it: eth-abi 1.x call data, the lowered minimum stake, and the
chain directory ``--export-polyswarmd-config`` writes for a real polyswarmd."""

from __future__ import annotations

import json
from pathlib import Path

from eth_utils import keccak

from polyswarmclient.devnet.contracts import CONTRACT_NAMES
from polyswarmclient.devnet.contracts.compile import load_interface
from polyswarmclient.devnet.deploy import NCT
from polyswarmclient.devnet.polyswarmd_config import ChainConfig, config_files, snake_case
from polyswarmclient.eth import abi
from polyswarmclient.eth.bloom import bloom_words
from polyswarmclient.eth.verify import expect_post_bounty, verify
from polyswarmclient.wire.models import UnsignedTransaction
from tests.fixtures_devnet import DevnetApi, running_devnet
from tests.helpers import signer

ZERO = "0x" + "0" * 40


async def test_eth_abi_v1_mode_builds_empty_metadata_with_the_extra_word_and_the_chain_takes_it() -> None:
    """With eth_abi_v1 a bounty without metadata gets one more zero word; our client verifies it, the chain takes it."""
    import aiohttp

    ambassador = signer("ambassador")
    async with running_devnet(eth_abi_v1=True) as net, aiohttp.ClientSession() as session:
        api = DevnetApi(session, net.url)
        uri = await api.upload(b"one artifact")
        body = {"amount": str(2 * NCT), "uri": uri, "duration": 10, "artifact_type": "file"}
        built = (await api.build("/bounties", ambassador, body)).result["transactions"]
        txs = [UnsignedTransaction.from_json(tx) for tx in built]
        decoded = abi.POST_BOUNTY.decode(txs[1].data)
        canonical = abi.POST_BOUNTY.encode(*(decoded[name] for name in abi.POST_BOUNTY.arg_names))
        assert txs[1].data == canonical + bytes(32)
        params = (await api.get("/bounties/parameters", chain="side", account=ambassador.address)).result
        listing = (await api.get(f"/artifacts/{uri}")).result
        expected = expect_post_bounty(
            amount=2 * NCT,
            bounty_fee=params["bounty_fee"],
            artifact_type="file",
            uri=uri,
            num_artifacts=1,
            duration=10,
            bloom=bloom_words([entry["hash"] for entry in listing]),
            metadata="",
        )
        verify(txs, expected, action="post bounty")
        hashes = await api.post_signed(ambassador, built)
        events = (await api.confirm(ambassador, hashes)).result
        assert events["bounties"][0]["metadata"] == "" and events["bounties"][0]["uri"] == uri


async def test_minimum_stake_is_the_devnets_setting(tmp_path: Path) -> None:
    """The devnet lowers MINIMUM_STAKE to its setting (1000 NCT by default), and /staking/parameters says so."""
    import aiohttp

    async with running_devnet(minimum_stake=1234 * NCT) as net, aiohttp.ClientSession() as session:
        api = DevnetApi(session, net.url)
        params = (await api.get("/staking/parameters", chain="side", account=signer("arbiter").address)).result
    assert params["minimum_stake"] == 1234 * NCT
    assert params["maximum_stake"] == 100_000_000 * NCT


async def test_export_writes_polyswarmds_chain_directory(tmp_path: Path) -> None:
    """--export-polyswarmd-config writes homechain.json, sidechain.json and one ABI file per bound contract."""
    target = tmp_path / "polyswarmd-chain"
    async with running_devnet(export_polyswarmd_config=target) as net:
        devnet = net.devnet
        names = sorted(p.name for p in target.iterdir())
        assert names == sorted(
            [
                "homechain.json",
                "sidechain.json",
                *(f"{n}.json" for n in CONTRACT_NAMES),
                "OfferRegistry.json",
                "OfferMultiSig.json",
            ]
        )
        for node, filename in ((devnet.home, "homechain.json"), (devnet.side, "sidechain.json")):
            chain = json.loads((target / filename).read_text())
            assert chain == {
                "nectar_token_address": node.addresses.nectar_token,
                "bounty_registry_address": node.addresses.bounty_registry,
                "erc20_relay_address": node.addresses.erc20_relay,
                "arbiter_staking_address": node.addresses.arbiter_staking,
                "offer_registry_address": ZERO,
                "eth_uri": None,  # embedded chains have no JSON-RPC URL
                "chain_id": node.chain_id,
                "free": True,
            }
        registry = json.loads((target / "BountyRegistry.json").read_text())
        assert {item["name"] for item in registry["abi"] if item["type"] == "function"} >= {"VERSION", "postBounty"}
        assert "polyswarmd     configuration in" in devnet.describe()


def test_export_names_the_rpc_nodes_and_builds_offer_abis_from_the_interface() -> None:
    """With external nodes eth_uri is each node's URL; the offer ABIs carry the 1.6 interface's selectors."""
    addresses = {snake_case(n): "0x" + "12" * 20 for n in CONTRACT_NAMES}
    home = ChainConfig("home", "http://127.0.0.1:8545", 1337, free=True, addresses=addresses)
    side = ChainConfig("side", "http://127.0.0.1:8546", 1338, free=True, addresses=addresses)
    files = config_files(home, side)
    assert files["homechain.json"]["eth_uri"] == "http://127.0.0.1:8545"
    assert files["sidechain.json"]["chain_id"] == 1338
    assert set(addresses) == {"nectar_token", "bounty_registry", "erc20_relay", "arbiter_staking"}
    for name in ("OfferRegistry", "OfferMultiSig"):
        abi_items = files[f"{name}.json"]["abi"]
        signatures = {f"{i['name']}({','.join(p['type'] for p in i['inputs'])})" for i in abi_items}
        interface = load_interface()["contracts"][name]
        assert signatures == {e["signature"] for e in interface["functions"] + interface["events"]}
        version = next(i for i in abi_items if i["name"] == "VERSION")
        assert version["outputs"] == [{"name": "", "type": "string"}] and version["constant"] is True
        assert keccak(text="VERSION()")[:4].hex() == "ffa1ad74"
