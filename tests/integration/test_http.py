"""The REST transport against aioresponses: status codes, retries, pauses, bodies and secrecy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from polyswarmclient.errors import (
    ApiError,
    ConnectionFailed,
    ConnectionLost,
    MalformedResponse,
    PolyswarmError,
    RateLimited,
    Unauthorized,
)
from polyswarmclient.transport.address import parse_address
from polyswarmclient.transport.http import HttpSettings, HttpTransport, RateLimitSettings, Upload
from tests.helpers import fail, ok, unused_port, url

BASE = "https://polyswarmd.test/v1/default"
KEY = "0123456789abcdef0123456789abcdef"
FAST = HttpSettings(retry_base=0.001, retry_cap=0.002, rate_limit=RateLimitSettings(0.01, 0.02), max_retries=3)


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport(parse_address(BASE), KEY, FAST) as transport:
        yield transport


def calls(m: aioresponses, method: str, target: Any) -> list[Any]:
    return list(m.requests.get((method, target), []))


async def test_get_uses_the_path_prefix_and_sends_the_key(http: HttpTransport) -> None:
    """Requests go to base + path (prefix kept) with ``Authorization: <key>``."""
    target = url(BASE, "/bounties/parameters", account="0xA", chain="side")
    with aioresponses() as m:
        m.get(target, payload=ok({"x": 1}))
        result = await http.request("GET", "/bounties/parameters", params={"account": "0xA", "chain": "side"})
    assert result == {"x": 1}
    (call,) = calls(m, "GET", target)
    assert call.kwargs["headers"]["Authorization"] == KEY


async def test_no_key_means_no_authorization_header() -> None:
    """Without an API key there is no Authorization header at all (never an empty one)."""
    async with HttpTransport(parse_address(BASE), None, FAST) as transport:
        with aioresponses() as m:
            m.get(url(BASE, "/status"), payload=ok({}))
            await transport.request("GET", "/status")
    (call,) = calls(m, "GET", url(BASE, "/status"))
    assert "Authorization" not in call.kwargs["headers"]


async def test_get_transactions_carries_a_json_body(http: HttpTransport) -> None:
    """GET /transactions sends its hashes as a JSON body."""
    target = url(BASE, "/transactions", chain="side")
    with aioresponses() as m:
        m.get(target, payload=ok({"errors": []}))
        await http.request("GET", "/transactions", params={"chain": "side"}, json={"transactions": ["0x1"]})
    assert calls(m, "GET", target)[0].kwargs["json"] == {"transactions": ["0x1"]}


async def test_401_is_fatal_and_says_how_to_fix_it(http: HttpTransport) -> None:
    """A refused key raises Unauthorized at once, naming --api-key, without retrying."""
    with aioresponses() as m:
        m.get(url(BASE, "/status"), status=401, payload=fail("Unauthorized"))
        with pytest.raises(Unauthorized, match="--api-key") as info:
            await http.request("GET", "/status")
    assert "refused the API key" in str(info.value)
    assert len(calls(m, "GET", url(BASE, "/status"))) == 1


async def test_429_pauses_every_request_then_retries() -> None:
    """After a 429 the request is retried after a pause, and other requests wait for that pause too."""
    settings = HttpSettings(rate_limit=RateLimitSettings(base=0.4, cap=0.4))
    loop = asyncio.get_running_loop()
    arrivals: dict[str, list[float]] = {"a": [], "b": []}
    limited = asyncio.Event()

    def record(name: str, status: int) -> Any:
        def callback(*_: Any, **__: Any) -> CallbackResult:
            arrivals[name].append(loop.time())
            if status == 429:
                limited.set()
            return CallbackResult(status=status, payload=ok(name) if status == 200 else None, body="slow down")

        return callback

    async with HttpTransport(parse_address(BASE), None, settings) as transport:
        with aioresponses() as m:
            m.get(url(BASE, "/a"), callback=record("a", 429))
            m.get(url(BASE, "/a"), callback=record("a", 200))
            m.get(url(BASE, "/b"), callback=record("b", 200))
            first = asyncio.create_task(transport.request("GET", "/a"))
            await asyncio.wait_for(limited.wait(), 5)
            await asyncio.sleep(0.05)  # let the first request record its pause
            await asyncio.sleep(0.01)
            second = await transport.request("GET", "/b")
            assert await first == "a"
    assert second == "b"
    paused_at = arrivals["a"][0]
    assert arrivals["a"][1] - paused_at >= 0.2  # retried after the jittered pause (>= base/2)
    assert arrivals["b"][0] - paused_at >= 0.2  # an unrelated request waited for the same pause


async def test_endless_429_gives_up_with_rate_limited() -> None:
    """A gateway that never stops answering 429 ends in RateLimited after a bounded number of pauses."""
    settings = HttpSettings(rate_limit=RateLimitSettings(base=0.001, cap=0.002, retries=2))
    async with HttpTransport(parse_address(BASE), None, settings) as transport:
        with aioresponses() as m:
            m.get(url(BASE, "/status"), status=429, body="Too Many Requests", repeat=True)
            with pytest.raises(RateLimited, match="429"):
                await transport.request("GET", "/status")
    assert len(calls(m, "GET", url(BASE, "/status"))) == 3


async def test_5xx_on_get_is_retried(http: HttpTransport) -> None:
    """A GET that meets 502 and 503 is retried with backoff and then succeeds."""
    with aioresponses() as m:
        m.get(url(BASE, "/status"), status=502, body="bad gateway")
        m.get(url(BASE, "/status"), status=503, body="unavailable")
        m.get(url(BASE, "/status"), payload=ok({"community": "c"}))
        assert await http.request("GET", "/status") == {"community": "c"}


async def test_5xx_on_get_is_bounded(http: HttpTransport) -> None:
    """A GET that keeps failing with 500 stops after the retry budget with the server's error."""
    with aioresponses() as m:
        m.get(url(BASE, "/x"), status=500, payload=fail("Could not retrieve balance"), repeat=True)
        with pytest.raises(ApiError, match="Could not retrieve balance"):
            await http.request("GET", "/x")
    assert len(calls(m, "GET", url(BASE, "/x"))) == 1 + FAST.max_retries


async def test_5xx_on_non_idempotent_post_is_not_retried(http: HttpTransport) -> None:
    """POST /transactions meeting a 500 is reported once, never blindly re-sent."""
    with aioresponses() as m:
        m.post(url(BASE, "/transactions"), status=500, payload=fail("boom"), repeat=True)
        with pytest.raises(ApiError):
            await http.request("POST", "/transactions", json={"transactions": ["00"]})
    assert len(calls(m, "POST", url(BASE, "/transactions"))) == 1


async def test_broken_connection_retries_gets_but_not_posts(http: HttpTransport) -> None:
    """A dropped connection is retried for a GET, but a non-idempotent POST raises ConnectionLost."""
    with aioresponses() as m:
        m.get(url(BASE, "/status"), exception=aiohttp.ServerDisconnectedError())
        m.get(url(BASE, "/status"), payload=ok("fine"))
        assert await http.request("GET", "/status") == "fine"
        m.post(url(BASE, "/transactions"), exception=aiohttp.ServerDisconnectedError())
        with pytest.raises(ConnectionLost, match="may or may not"):
            await http.request("POST", "/transactions", json={"transactions": ["00"]})


async def test_tx_building_post_marked_idempotent_is_retried(http: HttpTransport) -> None:
    """A transaction-building POST (nothing signed) may be retried after a 502."""
    with aioresponses() as m:
        m.post(url(BASE, "/bounties"), status=502, body="bad gateway")
        m.post(url(BASE, "/bounties"), payload=ok({"transactions": []}))
        assert await http.request("POST", "/bounties", json={}, idempotent=True) == {"transactions": []}


async def test_connection_refused_names_the_address_and_flags() -> None:
    """An unreachable polyswarmd ends in ConnectionFailed naming the address and the flags to check."""
    address = parse_address(f"127.0.0.1:{unused_port()}", insecure_transport=True)
    async with HttpTransport(address, None, FAST) as transport:
        with pytest.raises(ConnectionFailed) as info:
            await transport.request("GET", "/status")
    text = str(info.value)
    assert address.base in text and "--polyswarmd-addr" in text and "--insecure-transport" in text
    assert "4 attempt" in text
    assert isinstance(info.value.__cause__, aiohttp.ClientError)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"body": "<html>oops</html>"}, MalformedResponse),
        ({"payload": [1, 2, 3]}, MalformedResponse),
        ({"payload": {"result": 1}}, MalformedResponse),
        ({"status": 404, "payload": {"message": "Not Found"}}, ApiError),
    ],
)
async def test_malformed_answers_are_typed_errors(http: HttpTransport, kwargs: dict[str, Any], error: type) -> None:
    """Non-JSON and non-envelope answers raise MalformedResponse, framework 404s ApiError."""
    with aioresponses() as m:
        m.get(url(BASE, "/status"), **kwargs)
        with pytest.raises(error):
            await http.request("GET", "/status")


async def test_raw_bytes_route_returns_bytes_only_on_200(http: HttpTransport) -> None:
    """Artifact content comes back as bytes on 200 and None on anything else."""
    with aioresponses() as m:
        m.get(url(BASE, "/artifacts/Qm/0"), body=b"\x00MZ\xff")
        m.get(url(BASE, "/artifacts/Qm/1"), status=404, payload={"message": "nope"})
        assert await http.fetch_bytes("/artifacts/Qm/0") == b"\x00MZ\xff"
        assert await http.fetch_bytes("/artifacts/Qm/1") is None


async def test_upload_is_one_multipart_post_with_parts_named_file(http: HttpTransport) -> None:
    """Several files go up in ONE POST /artifacts, every part named ``file`` with its filename."""
    with aioresponses() as m:
        m.post(url(BASE, "/artifacts"), payload=ok("QmDir"))
        result = await http.upload("/artifacts", [Upload("a.exe", b"A"), Upload("b.txt", b"B")])
    assert result == "QmDir"
    (call,) = calls(m, "POST", url(BASE, "/artifacts"))
    form = call.kwargs["data"]
    assert isinstance(form, aiohttp.FormData)
    parts = [(opts["name"], opts.get("filename"), value) for opts, _, value in form._fields]
    assert parts == [("file", "a.exe", b"A"), ("file", "b.txt", b"B")]


async def test_api_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    """The key is absent from reprs, debug logs and every error message, including chained causes."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    async with HttpTransport(parse_address(BASE), KEY, FAST) as transport:
        assert KEY not in repr(transport)
        with aioresponses() as m:
            m.get(url(BASE, "/a"), status=401, payload=fail("Unauthorized"))
            m.get(url(BASE, "/b"), status=502, body="x", repeat=True)
            m.post(url(BASE, "/c"), exception=aiohttp.ServerDisconnectedError())
            for method, path in (("GET", "/a"), ("GET", "/b"), ("POST", "/c")):
                try:
                    await transport.request(method, path)
                except PolyswarmError as exc:
                    errors.append(exc)
    refused = parse_address(
        f"127.0.0.1:{unused_port()}", insecure_transport=True, api_key=KEY, allow_key_over_http=True
    )
    async with HttpTransport(refused, KEY, FAST) as transport:
        with pytest.raises(ConnectionFailed) as info:
            await transport.request("GET", "/status")
        errors.append(info.value)
    assert len(errors) == 4
    for exc in errors:
        chain: BaseException | None = exc
        while chain is not None:
            assert KEY not in str(chain) and KEY not in repr(chain)
            chain = chain.__cause__ or chain.__context__
    assert KEY not in caplog.text
