"""PolyswarmClient end to end against a scripted polyswarmd (aioresponses)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aioresponses import aioresponses

from polyswarmclient.client import ClientConfig, PolyswarmClient
from polyswarmclient.errors import (
    ConfigError,
    ConnectionFailed,
    InvalidRequest,
    MalformedResponse,
    Unauthorized,
    VerificationError,
)
from polyswarmclient.eth.abi import APPROVE, POST_ASSERTION, POST_BOUNTY, TRANSFER, guid_to_int
from polyswarmclient.eth.bloom import bloom_words
from polyswarmclient.transport.http import HttpSettings
from polyswarmclient.transport.stream import EventStream
from polyswarmclient.wire.events import FeeUpdate, Reconnected, WindowUpdate
from polyswarmclient.wire.models import ArtifactEntry, Assertion, Bloom
from tests.helpers import (
    GUID,
    HOME_CHAIN_ID,
    PARAMETERS,
    REGISTRY,
    RELAY,
    TOKEN,
    URI,
    fail,
    ok,
    scripted_action,
    signer,
    unsigned,
    unused_port,
    url,
)

if TYPE_CHECKING:
    from tests.helpers import Node

BASE = "https://polyswarmd.test/v1/default"
KEY = "fedcba9876543210fedcba9876543210"
ACCOUNT = signer().address
OTHER_GUID = "0f0c1a52-3d7e-4c1b-9a8e-0123456789ab"


def q(**extra: Any) -> dict[str, Any]:
    return {"account": ACCOUNT, "chain": "side", **extra}


def config(tmp_path: Path, **kw: Any) -> ClientConfig:
    defaults: dict[str, Any] = {
        "polyswarmd_addr": BASE,
        "api_key": KEY,
        "state_dir": tmp_path,
        "http": HttpSettings(retry_base=0.001, retry_cap=0.002, max_retries=2),
    }
    return ClientConfig(**{**defaults, **kw})


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[PolyswarmClient]:
    async with PolyswarmClient(config(tmp_path), signer()) as c:
        yield c


def mock_action(
    m: aioresponses, path: str, *txs: dict[str, Any], chain: str = "side", events: dict[str, Any] | None = None
) -> Node:
    """polyswarmd builds ``txs`` at ``path``; nonces from 0, every post accepted (the returned Node records
    them), and ``events`` as the receipts."""
    node = scripted_action(m, BASE, ACCOUNT, path, *txs, chain=chain)
    receipts = ok({**(events or {}), "errors": []})
    m.get(url(BASE, "/transactions", account=ACCOUNT, chain=chain), payload=receipts, repeat=True)
    return node


# --- configuration ---------------------------------------------------------------------------------


def test_config_and_client_never_show_the_api_key(tmp_path: Path) -> None:
    """repr() of the config and the client shows that a key is set, never the key."""
    cfg = config(tmp_path)
    assert KEY not in repr(cfg) and "<set>" in repr(cfg)
    assert KEY not in repr(PolyswarmClient(cfg, signer()))


def test_address_rules_are_checked_at_construction(tmp_path: Path) -> None:
    """A key over plain http is refused when the client is created, before any connection."""
    with pytest.raises(ConfigError, match="--allow-key-over-http"):
        PolyswarmClient(config(tmp_path, polyswarmd_addr="localhost:31337", insecure_transport=True), signer())
    with pytest.raises(ConfigError, match="--insecure-transport"):
        PolyswarmClient(config(tmp_path, polyswarmd_addr="http://localhost:31337"), signer())


def test_events_url_follows_the_address(tmp_path: Path) -> None:
    """client.events(chain) streams from wss://<base>/events/?chain=<chain>."""
    stream = PolyswarmClient(config(tmp_path), signer()).events("home")
    assert isinstance(stream, EventStream)
    assert stream.url == "wss://polyswarmd.test/v1/default/events/?chain=home"


# --- server checks and reads -----------------------------------------------------------------------


async def test_check_server_accepts_classic_polyswarmd(client: PolyswarmClient) -> None:
    """/status answers and OPTIONS /wallets/ is 404: a classic polyswarmd."""
    with aioresponses() as m:
        m.get(url(BASE, "/status"), payload=ok({"community": "gamma", "side": {"reachable": True, "block": 1}}))
        m.options(url(BASE, "/wallets/"), status=404, payload={"message": "Not Found"})
        await client.check_server()


async def test_check_server_refuses_polyswarmd_fast(client: PolyswarmClient) -> None:
    """A 2xx on OPTIONS /wallets/ means polyswarmd-fast, which is refused with an explanation."""
    with aioresponses() as m:
        m.get(url(BASE, "/status"), payload=ok({"community": "gamma"}))
        m.options(url(BASE, "/wallets/"), status=200, body="")
        with pytest.raises(ConfigError, match="(?i)only classic polyswarmd"):
            await client.check_server()


async def test_check_server_unreachable(tmp_path: Path) -> None:
    """An unreachable server gives ConnectionFailed naming the address and --polyswarmd-addr."""
    cfg = config(tmp_path, polyswarmd_addr=f"127.0.0.1:{unused_port()}", insecure_transport=True, api_key=None)
    async with PolyswarmClient(cfg, signer()) as c:
        with pytest.raises(ConnectionFailed, match="--polyswarmd-addr"):
            await c.check_server()


async def test_check_server_with_a_refused_key(client: PolyswarmClient) -> None:
    """A 401 says the API key was refused and does not show it."""
    with aioresponses() as m:
        m.get(url(BASE, "/status"), status=401, payload=fail("Unauthorized"))
        with pytest.raises(Unauthorized) as info:
            await client.check_server()
    assert KEY not in str(info.value)


async def test_parameters_are_cached_patched_and_dropped_on_reconnect(client: PolyswarmClient) -> None:
    """One GET serves repeated calls; fee/window events patch the cache; Reconnected forces a re-fetch."""
    with aioresponses() as m:
        m.get(url(BASE, "/bounties/parameters", **q()), payload=ok(PARAMETERS), repeat=True)
        first = await client.bounty_parameters()
        assert await client.bounty_parameters() is first
        client.apply_event(FeeUpdate(bounty_fee=1, assertion_fee=2, chain="side"))
        client.apply_event(WindowUpdate(assertion_reveal_window=3, arbiter_vote_window=4, chain="side"))
        patched = await client.bounty_parameters()
        assert (patched.bounty_fee, patched.assertion_fee) == (1, 2)
        assert (patched.assertion_reveal_window, patched.arbiter_vote_window) == (3, 4)
        client.apply_event(Reconnected(chain="side"))
        assert (await client.bounty_parameters()).bounty_fee == PARAMETERS["bounty_fee"]
        assert len(m.requests[("GET", url(BASE, "/bounties/parameters", **q()))]) == 2


async def test_block_number_and_balances(client: PolyswarmClient) -> None:
    """Block numbers come from /status; balances are exact ints from decimal strings."""
    big = "1885913075851542181982426285"
    with aioresponses() as m:
        m.get(url(BASE, "/status"), payload=ok({"home": {"reachable": True, "syncing": False, "block": 42}}))
        m.get(url(BASE, f"/balances/{ACCOUNT}/nct", chain="home"), payload=ok(big))
        m.get(url(BASE, f"/balances/{ACCOUNT}/staking/withdrawable", chain="side"), payload=ok("5"))
        m.get(url(BASE, f"/balances/{ACCOUNT}/eth", chain="side"), payload=ok("lots"))
        assert await client.block_number("home") == 42
        assert await client.nct_balance("home") == int(big)
        assert await client.staking_balance(withdrawable=True) == 5
        with pytest.raises(MalformedResponse):
            await client.eth_balance("side")


async def test_the_same_metadata_is_uploaded_once(client: PolyswarmClient) -> None:
    """Metadata is stored under the hash of its content: the same document again (keys in any order) is
    answered from memory; a different one is uploaded."""
    eicar = [{"malware_family": "EICAR", "scanner": {"version": "1"}}]
    with aioresponses() as m:
        m.post(url(BASE, "/bounties/metadata"), payload=ok("QmEicar"))
        m.post(url(BASE, "/bounties/metadata"), payload=ok("QmOther"))
        assert await client.post_metadata(eicar) == "QmEicar"
        assert await client.post_metadata([{"scanner": {"version": "1"}, "malware_family": "EICAR"}]) == "QmEicar"
        assert await client.post_metadata([{"malware_family": "Other"}]) == "QmOther"
        posted = [key for key in m.requests if key[0] == "POST"]
        assert len(m.requests[posted[0]]) == 2


def bounty_pages(m: aioresponses, first: int) -> None:
    """``GET /bounties``: page ``first`` holds GUID, the next OTHER_GUID, the one after is empty."""
    for page, guids in enumerate([[GUID], [OTHER_GUID], []], start=first):
        m.get(url(BASE, "/bounties", **q(page=page)), payload=ok(guids))


async def test_bounty_guids_are_paged_until_empty(client: PolyswarmClient) -> None:
    """iter_bounty_guids walks pages 0, 1, ... and stops at an empty page."""
    with aioresponses() as m:
        bounty_pages(m, first=0)
        assert [g async for g in client.iter_bounty_guids()] == [GUID, OTHER_GUID]


async def test_bounty_pages_can_start_where_a_caller_left_off(client: PolyswarmClient) -> None:
    """iter_bounty_pages(start_page=k) reads pages k, k+1, ... and reports each page's number."""
    with aioresponses() as m:
        bounty_pages(m, first=4)
        pages = [p async for p in client.iter_bounty_pages(start_page=4)]
    assert pages == [(4, [GUID]), (5, [OTHER_GUID])]


async def test_bloom_and_assertions_are_read_and_checked(client: PolyswarmClient) -> None:
    """Blooms come back as 8 big integers; assertions as typed (index, author, commitment); bad shapes fail."""
    words = [0, 2**205 + 2**112, 2**237, 0, 2**71, 2**43, 0, 0]
    assertion = {"author": ACCOUNT, "commitment": str(2**255 + 7), "mask": [True], "bid": ["1"]}
    with aioresponses() as m:
        m.get(url(BASE, f"/bounties/{GUID}/bloom", **q()), payload=ok({"bloom": words}))
        m.get(url(BASE, f"/bounties/{GUID}/assertions", **q()), payload=ok([assertion]))
        assert await client.get_bloom(GUID) == Bloom(tuple(words))
        assert await client.list_assertions(GUID) == [Assertion(0, ACCOUNT, 2**255 + 7)]
    with aioresponses() as m:
        m.get(url(BASE, f"/bounties/{GUID}/bloom", **q()), payload=ok({"bloom": [1, 2]}))
        m.get(url(BASE, f"/bounties/{GUID}/assertions", **q()), payload=ok([{"author": ACCOUNT}]))
        with pytest.raises(MalformedResponse, match="8 uint256"):
            await client.get_bloom(GUID)
        with pytest.raises(MalformedResponse, match="commitment"):
            await client.list_assertions(GUID)


async def test_artifacts_list_fetch_and_upload(client: PolyswarmClient) -> None:
    """Listing gives (name, hash); content is bytes on 200, None otherwise; uploads are one POST."""
    with aioresponses() as m:
        m.get(url(BASE, f"/artifacts/{URI}"), payload=ok([{"name": "000000", "hash": "QmA"}]))
        m.get(url(BASE, f"/artifacts/{URI}/0"), body=b"MZ")
        m.get(url(BASE, f"/artifacts/{URI}/1"), status=404, payload={"message": "Not Found"})
        m.post(url(BASE, "/artifacts"), payload=ok("QmNew"))
        assert await client.list_artifacts(URI) == [ArtifactEntry("000000", "QmA")]
        assert await client.fetch_artifact(URI, 0) == b"MZ"
        assert await client.fetch_artifact(URI, 1) is None
        assert await client.upload_artifacts([("a", b"1"), ("b", b"2")]) == "QmNew"
        assert len(m.requests[("POST", url(BASE, "/artifacts"))]) == 1
    with pytest.raises(InvalidRequest, match="empty"):
        await client.upload_artifacts([("a", b"")])
    with pytest.raises(InvalidRequest):
        await client.list_artifacts("../status")


# --- actions ---------------------------------------------------------------------------------------


def assertion_txs(fee: int, bids: list[int]) -> list[dict[str, Any]]:
    return [
        unsigned(TOKEN, APPROVE.encode(REGISTRY, sum(bids) + fee)),
        unsigned(REGISTRY, POST_ASSERTION.encode(guid_to_int(GUID), bids, 0b101, 77)),
    ]


async def test_post_assertion_happy_path(client: PolyswarmClient) -> None:
    """post_assertion builds, verifies, signs with our key and returns the index from the event."""
    bids = [10**17, 2 * 10**17]
    event = {
        "bounty_guid": GUID,
        "author": ACCOUNT,
        "index": 4,
        "bid": [str(b) for b in bids],
        "mask": [True, False, True],
        "commitment": "77",
    }
    with aioresponses() as m:
        m.get(url(BASE, "/bounties/parameters", **q()), payload=ok(PARAMETERS))
        txs = assertion_txs(PARAMETERS["assertion_fee"], bids)
        node = mock_action(m, f"/bounties/{GUID}/assertions", *txs, events={"assertions": [event]})
        index = await client.post_assertion(GUID, bids, [True, False, True], 77)
        build = m.requests[("POST", url(BASE, f"/bounties/{GUID}/assertions", **q(base_nonce=0)))][0]
    assert index == 4
    assert build.kwargs["json"] == {
        "bid": [str(b) for b in bids],
        "mask": [True, False, True],
        "commitment": "77",
    }
    assert [tx["sender"] for tx in node.posted] == [ACCOUNT, ACCOUNT]
    assert [tx["to"] for tx in node.posted] == [TOKEN, REGISTRY]
    assert [tx["nonce"] for tx in node.posted] == [0, 1]


async def test_post_assertion_uses_fees_patched_by_events(client: PolyswarmClient) -> None:
    """After a fee_update, the approve amount expected is Σbid + the new fee (the old one is refused)."""
    bids = [10**17, 10**17]
    with aioresponses() as m:
        m.get(url(BASE, "/bounties/parameters", **q()), payload=ok(PARAMETERS))
        await client.bounty_parameters()
        client.apply_event(FeeUpdate(bounty_fee=1, assertion_fee=5, chain="side"))
        mock_action(m, f"/bounties/{GUID}/assertions", *assertion_txs(PARAMETERS["assertion_fee"], bids))
        with pytest.raises(VerificationError, match="value"):
            await client.post_assertion(GUID, bids, [True, False, True], 77)


@pytest.mark.parametrize(
    ("bids", "mask", "needle"),
    [
        ([10**17], [True, False, True], "one bid per true mask entry"),
        ([10**17, 10**17, 10**17], [True, False, True], "one bid per true mask entry"),
        ([10**17, 2 * 10**18], [True, False, True], "outside the allowed range"),
        ([10**17, 10**10], [True, False, True], "outside the allowed range"),
        ([], [False, False], "no artifact"),
    ],
)
async def test_post_assertion_validates_bids_locally(
    client: PolyswarmClient, bids: list[int], mask: list[bool], needle: str
) -> None:
    """Bid count must equal popcount(mask) and each bid must lie in [min, max]; nothing is built otherwise."""
    with aioresponses() as m:
        m.get(url(BASE, "/bounties/parameters", **q()), payload=ok(PARAMETERS), repeat=True)
        with pytest.raises(InvalidRequest, match=needle):
            await client.post_assertion(GUID, bids, mask, 77)
        assert not any(method == "POST" for method, _ in m.requests)


async def test_post_bounty_returns_the_verified_guid(client: PolyswarmClient) -> None:
    """post_bounty checks count and bloom from our own listing and returns the server-chosen v4 GUID."""
    amount = 3 * 10**18
    listing = [{"name": "000000", "hash": "QmA"}, {"name": "000001", "hash": "QmB"}]
    bloom = bloom_words(["QmA", "QmB"])
    bounty_event = {"guid": GUID, "author": ACCOUNT, "amount": str(amount), "uri": URI, "expiration": "120"}
    with aioresponses() as m:
        m.get(
            url(BASE, "/bounties/parameters", **q()),
            payload=ok({**PARAMETERS, "bounty_amount_minimum": 10**18}),
        )
        m.get(url(BASE, f"/artifacts/{URI}"), payload=ok(listing))
        node = mock_action(
            m,
            "/bounties",
            unsigned(TOKEN, APPROVE.encode(REGISTRY, amount + PARAMETERS["bounty_fee"])),
            unsigned(REGISTRY, POST_BOUNTY.encode(guid_to_int(GUID), 0, amount, URI, 2, 20, bloom, "")),
            events={"bounties": [bounty_event]},
        )
        assert await client.post_bounty(amount, URI, 20) == GUID
    assert len(node.posted) == 2


async def test_post_bounty_with_a_foreign_bloom_is_refused(client: PolyswarmClient) -> None:
    """A bloom that does not match our own listing is refused before signing."""
    amount = 3 * 10**18
    with aioresponses() as m:
        m.get(url(BASE, "/bounties/parameters", **q()), payload=ok(PARAMETERS))
        m.get(url(BASE, f"/artifacts/{URI}"), payload=ok([{"name": "", "hash": URI}]))
        mock_action(
            m,
            "/bounties",
            unsigned(TOKEN, APPROVE.encode(REGISTRY, amount + PARAMETERS["bounty_fee"])),
            unsigned(REGISTRY, POST_BOUNTY.encode(guid_to_int(GUID), 0, amount, URI, 1, 20, bloom_words(["QmX"]), "")),
        )
        with pytest.raises(VerificationError, match="bloom"):
            await client.post_bounty(amount, URI, 20)
        assert ("POST", url(BASE, "/transactions", **q())) not in m.requests


async def test_relay_deposit_goes_to_the_home_relay(client: PolyswarmClient, tmp_path: Path) -> None:
    """A deposit is a verified transfer to the home relay, signed for the home chain id, and pinned."""
    with aioresponses() as m:
        m.get(url(BASE, "/relay/fees", **q()), payload=ok({"fees": 0}))
        node = mock_action(
            m,
            "/relay/deposit",
            unsigned(TOKEN, TRANSFER.encode(RELAY, 10**18), chain_id=HOME_CHAIN_ID),
            chain="home",
            events={"transfers": [{"from": ACCOUNT, "to": RELAY, "value": str(10**18)}]},
        )
        await client.relay_deposit(10**18)
    assert node.posted[0]["chain_id"] == HOME_CHAIN_ID and node.posted[0]["to"] == TOKEN
    assert "erc20_relay" in (tmp_path / "known_contracts.json").read_text()


async def test_withdrawal_at_or_below_the_relay_fee_is_refused(client: PolyswarmClient) -> None:
    """A withdrawal the home relay would never pay out is refused before anything is built."""
    with aioresponses() as m:
        m.get(url(BASE, "/relay/fees", account=ACCOUNT, chain="home"), payload=ok({"fees": 314 * 10**18}))
        with pytest.raises(InvalidRequest, match="never be paid out"):
            await client.relay_withdraw(314 * 10**18)
        assert not any(method == "POST" for method, _ in m.requests)


async def test_reveal_and_vote_with_too_many_entries_are_invalid_requests(client: PolyswarmClient) -> None:
    """Verdict or vote lists over 256 entries are refused as InvalidRequest before anything is sent."""
    with aioresponses() as m:
        with pytest.raises(InvalidRequest, match="256"):
            await client.reveal_assertion(GUID, 0, 5, [True] * 257, "")
        with pytest.raises(InvalidRequest, match="256"):
            await client.vote(GUID, [False] * 257, True)
        with pytest.raises(InvalidRequest, match="boolean"):
            await client.vote(GUID, [1, 0], True)  # type: ignore[list-item]
        assert not m.requests


async def test_check_server_with_401_on_the_probe_names_the_key(tmp_path: Path) -> None:
    """An auth-enforcing polyswarmd answers 401 to OPTIONS /wallets/ (status is whitelisted): a key error."""
    for key, needle in ((None, "requires an API key"), (KEY, "refused the API key")):
        async with PolyswarmClient(config(tmp_path, api_key=key), signer()) as c:
            with aioresponses() as m:
                m.get(url(BASE, "/status"), payload=ok({"community": "x"}))
                m.options(url(BASE, "/wallets/"), status=401, payload=fail("Unauthorized"))
                with pytest.raises(Unauthorized, match=needle) as info:
                    await c.check_server()
        assert KEY not in str(info.value)


async def test_the_event_stream_keeps_cached_parameters_current(tmp_path: Path) -> None:
    """Fee and window updates read from the socket patch the client's parameters; a reconnect drops them."""
    from websockets.asyncio.server import ServerConnection

    from tests.helpers import message, ws_server

    async def handler(ws: ServerConnection) -> None:
        await ws.send(message("fee_update", {"bounty_fee": 1, "assertion_fee": 2}))
        await ws.send(message("window_update", {"assertion_reveal_window": 3, "arbiter_vote_window": 4}))
        await ws.close()

    async with ws_server(handler) as base:
        cfg = config(tmp_path, polyswarmd_addr=base.replace("ws://", "http://"), api_key=None, insecure_transport=True)
        rest = url(cfg.polyswarmd_addr, "/bounties/parameters", **q())
        with aioresponses(passthrough=["ws://"]) as m:
            m.get(rest, payload=ok(PARAMETERS), repeat=True)
            async with PolyswarmClient(cfg, signer()) as c:
                await c.bounty_parameters()
                seen = []
                async with c.events("side") as stream:
                    async for event in stream:
                        seen.append(type(event).__name__)
                        if len(seen) == 2:
                            patched = await c.bounty_parameters()
                            assert (patched.bounty_fee, patched.assertion_fee) == (1, 2)
                            assert (patched.assertion_reveal_window, patched.arbiter_vote_window) == (3, 4)
                        if isinstance(event, Reconnected):
                            break
                assert (await c.bounty_parameters()).bounty_fee == PARAMETERS["bounty_fee"]
                assert len(m.requests[("GET", rest)]) == 2
