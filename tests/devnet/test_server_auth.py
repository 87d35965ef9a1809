"""Optional API keys (``--api-key``): 401s, the whitelist, anonymous withdrawals, and the open WebSocket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from polyswarmclient.wire.models import UnsignedTransaction
from tests.fixtures_devnet import DevnetApi, RunningDevnet, running_devnet
from tests.helpers import signer

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY = "devnet-test-key"
UNAUTHORIZED = (401, {"status": "FAIL", "errors": "Unauthorized"})


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    async with running_devnet(block_time=0.2, api_keys=(KEY, "second-key")) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def anon(net: RunningDevnet) -> AsyncIterator[DevnetApi]:
    async with aiohttp.ClientSession() as session:
        yield DevnetApi(session, net.url)


@pytest_asyncio.fixture(loop_scope="module")
async def keyed(net: RunningDevnet) -> AsyncIterator[DevnetApi]:
    async with aiohttp.ClientSession() as session:
        yield DevnetApi(session, net.url, api_key=KEY)


ACCOUNT = signer("spare1").address


async def test_missing_or_wrong_key_is_401(anon: DevnetApi) -> None:
    """Without a valid key a protected route answers 401 ``Unauthorized``."""
    assert await anon.get("/bounties/parameters", account=ACCOUNT) == UNAUTHORIZED
    wrong = await anon.request("GET", "/nonce", params={"account": ACCOUNT}, headers={"Authorization": "nope"})
    assert wrong == UNAUTHORIZED


async def test_bare_and_bearer_keys_are_accepted(anon: DevnetApi) -> None:
    """``Authorization: <key>`` and ``Authorization: Bearer <key>`` both work (last token counts)."""
    for header in (KEY, f"Bearer {KEY}", "Bearer second-key"):
        reply = await anon.request(
            "GET", "/bounties/parameters", params={"account": ACCOUNT}, headers={"Authorization": header}
        )
        assert reply.status == 200, header


async def test_whitelisted_routes_work_without_a_key(anon: DevnetApi) -> None:
    """``/status`` (with an ``auth`` section), ``/relay/withdrawal`` and ``/transactions`` need no key."""
    status = (await anon.get("/status/")).result
    assert status["auth"] == {"reachable": True}
    withdrawal = await anon.request("POST", "/relay/withdrawal", params={"account": ACCOUNT}, body={"amount": "5"})
    assert withdrawal.status == 200
    confirm = await anon.request("GET", "/transactions", params={"account": ACCOUNT}, body={"transactions": []})
    assert confirm == (200, {"status": "OK", "result": {"errors": []}})


async def test_options_wallets_follows_polyswarmd_auth_order(anon: DevnetApi, keyed: DevnetApi) -> None:
    """``OPTIONS /wallets/`` is 401 without a key (auth runs before routing) and exactly 404 with one."""
    assert (await anon.request("OPTIONS", "/wallets/")).status == 401
    assert (await keyed.request("OPTIONS", "/wallets/")).status == 404


async def _signed_withdrawal(api: DevnetApi, who: str, amount: int) -> str:
    s = signer(who)
    nonce = (await api.request("GET", "/nonce", params={"account": s.address}, headers={"Authorization": KEY})).result
    built = await api.request(
        "POST",
        "/relay/withdrawal",
        params={"account": s.address, "base_nonce": nonce},
        body={"amount": str(amount)},
    )
    raw, _ = s.sign(UnsignedTransaction.from_json(built.result["transactions"][0]))
    return raw.hex()


async def _post(api: DevnetApi, account: str, raws: list[str]) -> Any:
    return await api.request("POST", "/transactions", params={"account": account}, body={"transactions": raws})


async def test_anonymous_post_takes_exactly_one_transaction(anon: DevnetApi) -> None:
    """Two transactions without a key give 403 ``Posting multiple transactions requires an API key``."""
    raw = await _signed_withdrawal(anon, "spare1", 10**18)
    reply = await _post(anon, ACCOUNT, [raw, raw])
    assert reply == (403, {"status": "FAIL", "errors": "Posting multiple transactions requires an API key"})


async def test_anonymous_withdrawal_is_accepted(anon: DevnetApi) -> None:
    """One NCT transfer to the sidechain relay is accepted without a key."""
    raw = await _signed_withdrawal(anon, "spare1", 10**18)
    reply = await _post(anon, ACCOUNT, [raw])
    assert reply.status == 200 and reply.body["result"][0]["is_error"] is False


async def test_anonymous_non_withdrawal_is_refused(anon: DevnetApi, keyed: DevnetApi) -> None:
    """Without a key any other transaction (here a staking approve+deposit) is refused per entry."""
    s = signer("spare1")
    built = await keyed.request("POST", "/staking/deposit", params={"account": s.address}, body={"amount": "5"})
    raw, _ = s.sign(UnsignedTransaction.from_json(built.result["transactions"][0]))
    reply = await _post(anon, s.address, [raw.hex()])
    assert reply.status == 400 and reply.body["errors"][0]["is_error"] is True
    assert "invalid transaction error" not in reply.body["errors"][0]["message"].lower()


async def test_anonymous_non_withdrawal_uses_polyswarmds_wording_before_the_sender_check(
    anon: DevnetApi, keyed: DevnetApi
) -> None:
    """Without a key a non-withdrawal is refused as ``Invalid transaction for tx <h>: only withdrawals
    allowed without an API key``, checked before the sender (as polyswarmd does)."""
    s = signer("spare1")
    built = await keyed.request("POST", "/staking/deposit", params={"account": s.address}, body={"amount": "5"})
    raw, tx_hash = s.sign(UnsignedTransaction.from_json(built.result["transactions"][0]))
    other = signer("spare2").address  # a wrong sender too: the withdrawal check still comes first
    reply = await _post(anon, other, [raw.hex()])
    expected = f"Invalid transaction for tx {tx_hash}: only withdrawals allowed without an API key"
    assert reply == (400, {"status": "FAIL", "errors": [{"is_error": True, "message": expected}]})


async def test_websocket_needs_no_key(anon: DevnetApi, net: RunningDevnet) -> None:
    """The ``/events`` socket connects without any Authorization header and says ``connected``."""
    async with anon.session.ws_connect(net.url.replace("http", "ws", 1) + "/events?chain=home") as ws:
        first = json.loads((await ws.receive(timeout=5)).data)
    assert first["event"] == "connected" and set(first["data"]) == {"start_time"}
