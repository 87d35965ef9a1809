"""Every answer is read with a cap on its decompressed size, against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from polyswarmclient.errors import ConnectionFailed, MalformedResponse, ReplyTooLarge
from polyswarmclient.transport.address import parse_address
from polyswarmclient.transport.http import HttpSettings, HttpTransport

MiB = 2**20


def _gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzipped: about a thousandth of ``size`` on the wire."""
    out = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MiB)
    parts = [out.compress(block) for _ in range(size // MiB)]
    return b"".join(parts) + out.flush()


@asynccontextmanager
async def serving(routes: dict[str, Callable[[web.Request], web.StreamResponse]]) -> AsyncIterator[HttpTransport]:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = HttpSettings(max_retries=0, max_reply_bytes=1 * MiB, max_artifact_bytes=2 * MiB)
    http = HttpTransport(parse_address(f"127.0.0.1:{port}", insecure_transport=True), None, settings)
    try:
        async with http:
            yield http
    finally:
        await runner.cleanup()


async def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    """A 1 GiB answer gzipped to ~1 MiB stops at the cap: memory stays small and the error says why."""
    bomb = _gzip_bomb(1024 * MiB)

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    async with serving({"/status": handler}) as http:
        tracemalloc.start()
        try:
            with pytest.raises(ReplyTooLarge, match="larger than 1048576 bytes"):
                await http.request("GET", "/status")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 32 * MiB


async def test_an_oversized_plain_answer_is_refused() -> None:
    """A JSON answer over the cap is a clear error, whatever its declared length."""
    huge = json.dumps({"status": "OK", "result": "x" * (3 * MiB)}).encode()

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=huge, content_type="application/json")

    async with serving({"/status": handler}) as http:
        with pytest.raises(ReplyTooLarge):
            await http.request("GET", "/status")


async def test_compressed_answers_within_the_cap_still_work() -> None:
    """gzip and deflate answers are decompressed as before when they fit."""
    payload = json.dumps({"status": "OK", "result": {"community": "gamma"}}).encode()

    async def gz(_: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(payload), headers={"Content-Encoding": "gzip"})

    async def deflate(_: web.Request) -> web.Response:
        return web.Response(body=zlib.compress(payload), headers={"Content-Encoding": "deflate"})

    async with serving({"/gz": gz, "/deflate": deflate}) as http:
        assert await http.request("GET", "/gz") == {"community": "gamma"}
        assert await http.request("GET", "/deflate") == {"community": "gamma"}


async def test_artifacts_have_their_own_cap_naming_the_option() -> None:
    """An artifact may be bigger than a JSON answer, up to --max-artifact-size, and no bigger."""
    fits, too_big = bytes(int(1.5 * MiB)), bytes(3 * MiB)

    async def small(_: web.Request) -> web.Response:
        return web.Response(body=fits)

    async def large(_: web.Request) -> web.Response:
        return web.Response(body=too_big)

    async with serving({"/artifacts/ok/0": small, "/artifacts/big/0": large}) as http:
        assert await http.fetch_bytes("/artifacts/ok/0") == fits
        with pytest.raises(ReplyTooLarge, match="--max-artifact-size"):
            await http.fetch_bytes("/artifacts/big/0")


async def test_an_encoding_we_did_not_ask_for_is_refused() -> None:
    """An answer in an unrequested encoding (br) is a protocol error, not garbage handed on."""

    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=b"\x00\x01", headers={"Content-Encoding": "br"})

    async with serving({"/status": handler}) as http:
        with pytest.raises(MalformedResponse, match="'br'"):
            await http.request("GET", "/status")


async def test_a_server_that_drips_its_answer_is_bounded_in_all_and_said_aloud(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An answer sent a byte at a time ends the request within the total budget, retries included, with a
    WARNING on the way (visible at the default log level) and one error naming the address."""

    attempts = 0

    async def drip(request: web.Request) -> web.StreamResponse:
        nonlocal attempts
        attempts += 1
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(100):
            await response.write(b" ")
            await asyncio.sleep(0.05)
        return response

    app = web.Application()
    app.router.add_get("/status", drip)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = HttpSettings(request_timeout=0.3, total_timeout=1.0, max_retries=10, retry_base=0.01, retry_cap=0.02)
    http = HttpTransport(parse_address(f"127.0.0.1:{port}", insecure_transport=True), None, settings)
    try:
        async with http:
            with caplog.at_level(logging.WARNING), pytest.raises(ConnectionFailed, match="did not answer GET /status"):
                await http.request("GET", "/status")
    finally:
        await runner.cleanup()
    assert any(r.levelno == logging.WARNING and "retrying" in r.getMessage() for r in caplog.records)
    assert attempts <= 5  # the 1 s budget ends it, not the 11 attempts max_retries would allow
