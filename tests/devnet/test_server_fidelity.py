"""Fine points where the devnet must answer exactly like polyswarmd HEAD (``pd@b732d60``).

Each test names what a polyswarmd client would notice if the devnet answered differently.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from polyswarmclient.eth.commitment import commitment
from tests.fixtures_devnet import DevnetApi, RunningDevnet, collect_messages, running_devnet
from tests.helpers import signer

pytestmark = pytest.mark.asyncio(loop_scope="module")

NCT = 10**18
ACCOUNT = signer("microengine").address


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    overrides = {"assertion_reveal_window": 6, "arbiter_vote_window": 6}
    async with running_devnet(block_time=0.2, community_overrides=overrides) as running:
        yield running


async def _post_bounty(api: DevnetApi, content: bytes, duration: int = 10) -> dict[str, Any]:
    uri = await api.upload(content)
    body = {"amount": str(2 * NCT), "uri": uri, "duration": duration, "artifact_type": "file"}
    events = await api.transact("/bounties", signer("ambassador"), body)
    bounty: dict[str, Any] = events["bounties"][0]
    return bounty


# --- POST /bounties (spec §2.5) -----------------------------------------------------------------------


async def test_non_base58_bounty_uri_is_500_failed_to_check(api: DevnetApi) -> None:
    """HEAD answers a non-IPFS ``uri`` with 500 ``Failed to check artifact uri``, not the seed-era 400."""
    reply = await api.request(
        "POST",
        "/bounties",
        params={"account": ACCOUNT},
        body={"amount": str(2 * NCT), "uri": "0OIl-not-base58", "duration": 5, "artifact_type": "file"},
    )
    assert reply == (500, {"status": "FAIL", "errors": "Failed to check artifact uri"})


async def test_bounty_amount_is_checked_before_metadata(api: DevnetApi) -> None:
    """Like polyswarmd, a too-small amount is reported before a bad metadata URI."""
    uri = await api.upload(b"order of checks")
    reply = await api.request(
        "POST",
        "/bounties",
        params={"account": ACCOUNT},
        body={"amount": "1", "uri": uri, "duration": 5, "artifact_type": "file", "metadata": "0OIl"},
    )
    assert reply == (400, {"status": "FAIL", "errors": "Invalid bounty amount"})


# --- POST /bounties/<g>/assertions (spec §2.5) ---------------------------------------------------------


async def test_assertion_without_commitment_or_verdicts_uses_polyswarmds_message(api: DevnetApi) -> None:
    """No ``commitment`` and no ``verdicts`` is 400 ``Require verdicts and bid_portions or a commitment``,
    checked before the bid count."""
    for body in ({"bid": [str(NCT)], "mask": [True]}, {"bid": [], "mask": [True]}):
        reply = await api.request(
            "POST", f"/bounties/{uuid.uuid4()}/assertions", params={"account": ACCOUNT}, body=body
        )
        assert reply == (
            400,
            {"status": "FAIL", "errors": "Require verdicts and bid_portions or a commitment"},
        ), body


async def test_empty_bid_list_is_refused(api: DevnetApi) -> None:
    """An empty ``bid`` list (even with an all-false mask) is 400 ``bid_portions must be equal …``."""
    reply = await api.request(
        "POST",
        f"/bounties/{uuid.uuid4()}/assertions",
        params={"account": ACCOUNT},
        body={"bid": [], "mask": [False], "commitment": "1"},
    )
    assert reply == (
        400,
        {
            "status": "FAIL",
            "errors": "bid_portions must be equal in length to the number of true mask values",
        },
    )


# --- GET /bounties paging (spec §2.5, pitfall 23) ------------------------------------------------------


async def test_count_zero_is_a_multiple_and_gives_an_empty_page(api: DevnetApi) -> None:
    """``count=0`` is a multiple of ``PAGE_SIZE``: polyswarmd answers 200 ``[]``, not 400."""
    reply = await api.get("/bounties", account=ACCOUNT, count=0)
    assert reply == (200, {"status": "OK", "result": []})


async def test_default_page_size_serves_2_13_3s_count_of_75(api: DevnetApi) -> None:
    """The default ``PAGE_SIZE`` divides 75 into at most 3 pages, so 2.13.3's settle-everything scan works."""
    await _post_bounty(api, b"page of 75")
    reply = await api.get("/bounties", account=ACCOUNT, count=75)
    assert reply.status == 200 and len(reply.body["result"]) >= 1


# --- reads of a bounty that does not exist --------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/assertions", "/assertions/0", "/votes", "/votes/0", "/bloom"])
async def test_sub_routes_of_a_missing_bounty_are_404_bounty_not_found(api: DevnetApi, suffix: str) -> None:
    """polyswarmd answers 404 ``Bounty not found`` (not ``[]`` or zero blooms) for a bounty that does not exist."""
    reply = await api.get(f"/bounties/{uuid.uuid4()}{suffix}", account=ACCOUNT)
    assert reply == (404, {"status": "FAIL", "errors": "Bounty not found"})


async def test_bad_index_of_an_existing_bounty_is_404_not_found(api: DevnetApi) -> None:
    """On an existing bounty a bad index gives 404 ``Assertion not found`` / ``Vote not found``."""
    bounty = await _post_bounty(api, b"no assertions yet")
    guid = bounty["guid"]
    assertion = await api.get(f"/bounties/{guid}/assertions/0", account=ACCOUNT)
    assert assertion == (404, {"status": "FAIL", "errors": "Assertion not found"})
    vote = await api.get(f"/bounties/{guid}/votes/0", account=ACCOUNT)
    assert vote == (404, {"status": "FAIL", "errors": "Vote not found"})
    assert (await api.get(f"/bounties/{guid}/assertions", account=ACCOUNT)).result == []
    assert (await api.get(f"/bounties/{guid}/votes", account=ACCOUNT)).result == []


# --- reveals: bool-list padding and metadata (spec §3.3) -----------------------------------------------


async def test_reveal_keeps_verdict_bits_beyond_num_artifacts_and_checks_metadata_schema(
    net: RunningDevnet, api: DevnetApi
) -> None:
    """Bool lists are padded to ``num_artifacts``, never cut: a reveal's extra set bits stay visible, so
    2.13.3's ``verdicts == request`` check passes; reveal metadata is swapped for the JSON it points at
    only when that JSON is *assertion* metadata (here it is bounty metadata, so the hash stays)."""
    engine = signer("spare2")
    bounty = await _post_bounty(api, b"one artifact, two verdict bits")
    guid, expiration = bounty["guid"], int(bounty["expiration"])
    nonce, verdicts = 12345, [True, True]  # bit 1 is beyond num_artifacts = 1
    body = {
        "bid": [str(NCT // 10)],
        "mask": [True],
        "commitment": str(commitment(nonce, 0b11, engine.address)),
    }
    index = (await api.transact(f"/bounties/{guid}/assertions", engine, body))["assertions"][0]["index"]
    bounty_shaped = [{"mimetype": "text/plain"}]
    metadata_hash = (await api.request("POST", "/bounties/metadata", body=bounty_shaped)).result
    await net.mine_to(expiration)
    received: list[dict[str, Any]] = []
    async with api.session.ws_connect(net.url.replace("http", "ws", 1) + "/events?chain=side") as ws:
        collector = asyncio.create_task(collect_messages(ws, received))
        try:
            await asyncio.sleep(0.1)
            events = await api.transact(
                f"/bounties/{guid}/assertions/{index}/reveal",
                engine,
                {"nonce": str(nonce), "verdicts": verdicts, "metadata": metadata_hash},
            )
            for _ in range(50):
                if any(m["event"] == "reveal" for m in received):
                    break
                await asyncio.sleep(0.05)
        finally:
            collector.cancel()
    assert events["reveals"][0]["verdicts"] == verdicts
    assert events["reveals"][0]["metadata"] == metadata_hash
    reveal = next(m for m in received if m["event"] == "reveal")
    assert reveal["data"]["verdicts"] == verdicts
    assert reveal["data"]["metadata"] == metadata_hash
    one = (await api.get(f"/bounties/{guid}/assertions/{index}", account=ACCOUNT)).result
    assert one["verdicts"] == verdicts and one["metadata"] == metadata_hash
    listed = (await api.get(f"/bounties/{guid}/assertions", account=ACCOUNT)).result
    assert listed[index]["verdicts"] == verdicts and listed[index]["metadata"] == metadata_hash
