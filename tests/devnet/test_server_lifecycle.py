"""A whole bounty lifecycle through the devnet's HTTP API, with hand-signed transactions and the WS stream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from polyswarmclient.eth.commitment import commitment, new_nonce
from tests.fixtures_devnet import DevnetApi, RunningDevnet, collect_messages, running_devnet
from tests.helpers import signer

pytestmark = pytest.mark.asyncio(loop_scope="module")

NCT = 10**18
EVENT_KEYS = {
    "bounty": {"guid", "artifact_type", "author", "amount", "uri", "expiration", "metadata"},
    "assertion": {"bounty_guid", "author", "index", "bid", "mask", "commitment"},
    "reveal": {"bounty_guid", "author", "index", "nonce", "verdicts", "metadata"},
    "vote": {"bounty_guid", "voter", "votes"},
    "quorum": {"bounty_guid"},
    "settled_bounty": {"bounty_guid", "settler", "payout"},
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    overrides = {"assertion_reveal_window": 6, "arbiter_vote_window": 6}
    async with running_devnet(block_time=0.2, community_overrides=overrides) as running:
        yield running


async def test_full_bounty_lifecycle(net: RunningDevnet, api: DevnetApi) -> None:
    """Upload, post, assert, reveal, vote and settle all succeed over HTTP and pay the correct expert."""
    ambassador, engine, arbiter = signer("ambassador"), signer("microengine"), signer("arbiter")
    received: list[dict[str, Any]] = []
    async with api.session.ws_connect(net.url.replace("http", "ws", 1) + "/events/?chain=side") as ws:
        collector = asyncio.create_task(collect_messages(ws, received))
        try:
            staking = (await api.get("/staking/parameters", chain="side", account=arbiter.address)).result
            await api.transact("/staking/deposit", arbiter, {"amount": str(staking["minimum_stake"])})
            engine_before = await api.nct(engine.address)
            ambassador_before = await api.nct(ambassador.address)

            uri = await api.upload(b"first artifact", b"second artifact")
            amount = 2 * 2 * NCT  # the per-artifact minimum times two artifacts
            events = await api.transact(
                "/bounties",
                ambassador,
                {"amount": str(amount), "uri": uri, "duration": 20, "artifact_type": "file"},
            )
            (bounty,) = events["bounties"]
            guid = bounty["guid"]
            assert uuid.UUID(guid).version == 4
            assert bounty["uri"] == uri and bounty["amount"] == str(amount) and bounty["metadata"] == ""
            assert events["errors"] == []

            nonce, verdicts = new_nonce(), 0b01  # artifact 0 malicious, artifact 1 benign
            bids = [str(NCT // 10), str(NCT // 10)]
            events = await api.transact(
                f"/bounties/{guid}/assertions",
                engine,
                {
                    "bid": bids,
                    "mask": [True, True],
                    "commitment": str(commitment(nonce, verdicts, engine.address)),
                },
            )
            (assertion,) = events["assertions"]
            assert assertion["bid"] == bids and assertion["mask"] == [True, True]

            listed = (await api.get(f"/bounties/{guid}/assertions", chain="side", account=engine.address)).result
            assert listed[0]["verdicts"] == [None, None] and listed[0]["nonce"] == "0"

            details = (await api.get(f"/bounties/{guid}", chain="side", account=engine.address)).result
            expiration = details["expiration"]
            assert isinstance(expiration, int) and details["num_artifacts"] == 2
            params = (await api.get("/bounties/parameters", chain="side", account=engine.address)).result

            await net.mine_to(expiration)
            events = await api.transact(
                f"/bounties/{guid}/assertions/{assertion['index']}/reveal",
                engine,
                {"nonce": str(nonce), "verdicts": [True, False], "metadata": ""},
            )
            assert events["reveals"][0]["verdicts"] == [True, False]

            await net.mine_to(expiration + params["assertion_reveal_window"])
            events = await api.transact(
                f"/bounties/{guid}/vote", arbiter, {"votes": [True, False], "valid_bloom": True}
            )
            assert events["votes"][0]["voter"] == arbiter.address

            votes = (await api.get(f"/bounties/{guid}/votes", chain="side", account=arbiter.address)).result
            assert votes == [{"voter": arbiter.address, "votes": [True, False], "valid_bloom": True}]

            await net.mine_to(expiration + params["assertion_reveal_window"] + params["arbiter_vote_window"])
            for who in (engine, arbiter, ambassador):
                await api.transact(f"/bounties/{guid}/settle", who)

            assert await api.nct(engine.address) > engine_before
            assert await api.nct(ambassador.address) < ambassador_before

            await asyncio.sleep(0.6)  # let the stream deliver the last events
        finally:
            collector.cancel()

    by_event: dict[str, list[dict[str, Any]]] = {}
    for message in received:
        by_event.setdefault(message["event"], []).append(message)
    assert by_event["connected"][0]["data"]["start_time"].isdigit()
    assert set(by_event["block"][0]) == {"event", "data"} and set(by_event["block"][0]["data"]) == {"number"}
    for name, keys in EVENT_KEYS.items():
        assert name in by_event, f"no {name} event on the stream"
        for message in by_event[name]:
            assert set(message["data"]) == keys, name
            assert isinstance(message["block_number"], int) and message["txhash"].startswith("0x")
    assert by_event["bounty"][0]["data"]["expiration"] == str(expiration)
    assert {m["data"]["settler"] for m in by_event["settled_bounty"]} == {
        engine.address,
        arbiter.address,
        ambassador.address,
    }


async def test_server_side_commitment_returns_a_nonce_that_reveals(net: RunningDevnet, api: DevnetApi) -> None:
    """Asserting with ``verdicts`` returns an integer ``nonce`` whose reveal the contract accepts."""
    ambassador, engine = signer("ambassador"), signer("spare1")
    uri = await api.upload(b"one lonely artifact")
    events = await api.transact(
        "/bounties", ambassador, {"amount": str(2 * NCT), "uri": uri, "duration": 10, "artifact_type": "file"}
    )
    guid = events["bounties"][0]["guid"]
    built = (
        await api.build(
            f"/bounties/{guid}/assertions",
            engine,
            {"bid": [str(NCT // 10)], "mask": [True], "verdicts": [True]},
        )
    ).result
    assert isinstance(built["nonce"], int) and built["nonce"] > 0
    hashes = await api.post_signed(engine, built["transactions"])
    index = (await api.confirm(engine, hashes)).result["assertions"][0]["index"]
    expiration = int(events["bounties"][0]["expiration"])
    await net.mine_to(expiration)
    events = await api.transact(
        f"/bounties/{guid}/assertions/{index}/reveal",
        engine,
        {"nonce": str(built["nonce"]), "verdicts": [True], "metadata": ""},
    )
    assert events["reveals"][0]["nonce"] == str(built["nonce"])


async def test_bounty_metadata_hash_is_resolved_in_bounty_reads(net: RunningDevnet, api: DevnetApi) -> None:
    """A bounty posted with a metadata hash shows the stored JSON in ``GET /bounties/<guid>``."""
    ambassador = signer("ambassador")
    uri = await api.upload(b"artifact with metadata")
    metadata = [{"mimetype": "text/plain", "filename": "a.txt"}]
    reply = await api.request("POST", "/bounties/metadata", body=metadata)
    metadata_hash = reply.result
    events = await api.transact(
        "/bounties",
        ambassador,
        {
            "amount": str(2 * NCT),
            "uri": uri,
            "duration": 10,
            "artifact_type": "file",
            "metadata": metadata_hash,
        },
    )
    bounty = events["bounties"][0]
    assert bounty["metadata"] == metadata_hash  # GET /transactions keeps the raw string
    details = (await api.get(f"/bounties/{bounty['guid']}", chain="side", account=ambassador.address)).result
    assert details["metadata"] == metadata


async def test_fee_and_window_updates_reach_the_stream(net: RunningDevnet, api: DevnetApi) -> None:
    """The managers' ``setBountyFee``/``setWindows`` reach the stream as ``fee_update``/``window_update``."""
    from polyswarmclient.devnet.chainnode import contract_abi
    from polyswarmclient.devnet.deploy import devnet_key

    side = net.devnet.side
    registry = contract_abi("BountyRegistry")
    params = (await api.get("/bounties/parameters", account=signer("ambassador").address)).result
    received: list[dict[str, Any]] = []
    async with api.session.ws_connect(net.url.replace("http", "ws", 1) + "/events?chain=side") as ws:
        collector = asyncio.create_task(collect_messages(ws, received))
        try:
            await asyncio.sleep(0.1)
            for data in (
                registry.encode_call("setBountyFee", params["bounty_fee"]),
                registry.encode_call("setWindows", params["assertion_reveal_window"], params["arbiter_vote_window"]),
            ):
                receipt = await side.run(
                    side.chain.transact,
                    devnet_key("deployer"),
                    side.addresses.bounty_registry,
                    data,
                    mutating=True,
                )
                assert receipt.status == 1
            for _ in range(50):
                if {"fee_update", "window_update"} <= {m["event"] for m in received}:
                    break
                await asyncio.sleep(0.05)
        finally:
            collector.cancel()
    fee = next(m for m in received if m["event"] == "fee_update")
    window = next(m for m in received if m["event"] == "window_update")
    assert fee["data"] == {"bounty_fee": params["bounty_fee"], "assertion_fee": params["assertion_fee"]}
    assert window["data"] == {
        "assertion_reveal_window": params["assertion_reveal_window"],
        "arbiter_vote_window": params["arbiter_vote_window"],
    }
