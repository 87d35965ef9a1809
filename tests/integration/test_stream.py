"""The event stream against a real websocket server on an ephemeral port (never a mocked connect)."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import subprocess
from pathlib import Path

import pytest
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from polyswarmclient.transport.stream import UNKNOWN_EVENT_NAMES, EventStream, StreamSettings
from polyswarmclient.wire.events import Block, Connected, Event, QuorumReached, Reconnected
from tests.helpers import GUID, message, unused_port, wait_until, ws_server

FAST = StreamSettings(backoff_base=0.01, backoff_cap=0.05, open_timeout=2)


def connected() -> str:
    return message("connected", {"start_time": "1"})


def block(number: int) -> str:
    return message("block", {"number": number})


async def take(stream: EventStream, n: int, within: float = 5) -> list[Event]:
    async def collect() -> list[Event]:
        return [await anext(stream) for _ in range(n)]

    return await asyncio.wait_for(collect(), within)


async def test_reconnect_marker_duplicates_unknown_and_malformed(caplog: pytest.LogCaptureFixture) -> None:
    """Old blocks are dropped, junk is skipped with a log line, and a reconnect yields Reconnected."""
    caplog.set_level(logging.WARNING)
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        if connections == 1:
            for text in (
                connected(),
                block(5),
                block(5),
                block(4),
                message("brand_new_event", {"x": 1}),
                "this is not json",
                json.dumps({"event": "block"}),
                message("quorum", {"bounty_guid": GUID}, block_number=6, txhash="0xab"),
                block(6),
            ):
                await ws.send(text)
            await ws.close()
        else:
            await ws.send(connected())
            await ws.send(block(6))
            await ws.send(block(7))
            await ws.wait_closed()

    async with ws_server(handler) as base:
        async with EventStream(f"{base}/events/?chain=side", "side", FAST) as stream:
            events = await take(stream, 7)

    assert [type(e) for e in events] == [
        Connected,
        Block,
        QuorumReached,
        Block,
        Reconnected,
        Connected,
        Block,
    ]
    assert [e.number for e in events if isinstance(e, Block)] == [5, 6, 7]
    assert events[4] == Reconnected(chain="side")
    assert all(e.chain == "side" for e in events)
    assert "brand_new_event" in caplog.text
    assert "not JSON" in caplog.text
    assert "malformed" in caplog.text


async def test_first_connect_is_retried_and_yields_no_marker() -> None:
    """A server that is not up yet is retried; its first successful connection is not a 'reconnect'."""
    port = unused_port()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(connected())
        await ws.send(block(1))
        await ws.wait_closed()

    stream = EventStream(f"ws://127.0.0.1:{port}/events/?chain=home", "home", FAST)
    pending = asyncio.ensure_future(take(stream, 2))
    await asyncio.sleep(0.2)  # a few refused attempts
    server = await serve(handler, "127.0.0.1", port)
    try:
        events = await pending
    finally:
        await stream.aclose()
        server.close()
        await server.wait_closed()
    assert [type(e) for e in events] == [Connected, Block]


async def test_backoff_resets_after_each_successful_connection() -> None:
    """A server that drops every connection is re-joined quickly each time (the delay does not pile up)."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send(connected())
        await ws.close()

    settings = StreamSettings(backoff_base=0.05, backoff_cap=30, open_timeout=2)
    async with ws_server(handler) as base:
        async with EventStream(f"{base}/events/?chain=side", "side", settings) as stream:
            # Without a reset, eight reconnects would need at least 0.05 * (2**8 - 1) / 2 = 6.4 s.
            events = await take(stream, 17, within=4)
    assert sum(isinstance(e, Reconnected) for e in events) == 8


async def test_server_that_closes_before_saying_anything_is_backed_off() -> None:
    """An endpoint that accepts the socket but closes it at once, silent, is retried ever more slowly."""

    async def handler(ws: ServerConnection) -> None:
        await ws.close()

    settings = StreamSettings(backoff_base=0.05, backoff_cap=1.6, open_timeout=2)
    loop = asyncio.get_running_loop()
    async with ws_server(handler) as base:
        async with EventStream(f"{base}/events/?chain=side", "side", settings) as stream:
            started = loop.time()
            events = await take(stream, 6, within=10)
            elapsed = loop.time() - started
    assert all(isinstance(e, Reconnected) for e in events)
    # Growing delays are at least 0.025 + 0.05 + 0.1 + 0.2 + 0.4 + 0.8 s; resetting ones at most 6 * 0.05 s.
    assert elapsed >= 1.5


async def test_cancelling_the_consumer_closes_the_socket_cleanly() -> None:
    """A consumer task cancelled inside ``async with`` closes the socket with a normal close frame."""
    closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(connected())
        try:
            await ws.wait_closed()
        finally:
            closed.set_result(ws.close_code)

    async def consume(stream: EventStream, seen: asyncio.Event) -> None:
        async with stream:
            async for _ in stream:
                seen.set()

    async with ws_server(handler) as base:
        stream = EventStream(f"{base}/events/?chain=side", "side", FAST)
        seen = asyncio.Event()
        task = asyncio.create_task(consume(stream, seen))
        await asyncio.wait_for(seen.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(closed, 5) == 1000
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_aclose_from_another_task_ends_iteration() -> None:
    """aclose() while a consumer waits for the next event ends its ``async for`` normally."""

    async def handler(ws: ServerConnection) -> None:
        try:
            await ws.send(connected())
            await ws.wait_closed()
        except ConnectionClosed:
            pass

    async with ws_server(handler) as base:
        stream = EventStream(f"{base}/events/?chain=side", "side", FAST)
        received: list[Event] = []
        first = asyncio.Event()

        async def consume() -> None:
            async for event in stream:
                received.append(event)
                first.set()

        task = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 5)
        await stream.aclose()
        await asyncio.wait_for(task, 5)
    assert [type(e) for e in received] == [Connected]


async def test_aclose_interrupts_the_reconnect_wait() -> None:
    """Closing a stream that is waiting to reconnect returns promptly instead of sleeping out the backoff."""
    stream = EventStream(
        f"ws://127.0.0.1:{unused_port()}/events/?chain=side",
        "side",
        StreamSettings(backoff_base=30, backoff_cap=30),
    )
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.2)
    await stream.aclose()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(pending, 2)


async def test_a_socket_that_goes_silent_is_reopened(caplog: pytest.LogCaptureFixture) -> None:
    """A connection that stays open but delivers nothing is dropped after the idle timeout and re-opened;
    a consumer that is busy elsewhere meanwhile does not count as silence."""
    caplog.set_level(logging.WARNING)
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await ws.send(connected())
        if connections == 1:
            await ws.wait_closed()  # alive (pings are answered) but silent, until the client gives up
            return
        await ws.send(block(5))
        await ws.send(block(6))
        await ws.wait_closed()

    settings = StreamSettings(backoff_base=0.01, backoff_cap=0.05, open_timeout=2, idle_timeout=0.3)
    async with ws_server(handler) as base:
        async with EventStream(f"{base}/events/?chain=side", "side", settings) as stream:
            events = await take(stream, 4, within=5)
            await asyncio.sleep(0.6)  # busy for twice the idle timeout, with block 6 waiting unread
            events += await take(stream, 1)
    assert [type(e) for e in events] == [Connected, Reconnected, Connected, Block, Block]
    assert connections == 2
    assert caplog.text.count("sent nothing for") == 1


async def test_a_peer_that_stops_answering_pings_is_dropped_before_the_idle_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A socket whose peer stops answering (no pong to our ping) is re-opened within the ping interval
    and a half, long before the idle timeout would notice."""
    caplog.set_level(logging.WARNING)
    connections = 0
    stop = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        nonlocal connections
        connections += 1
        ws = web.WebSocketResponse(autoping=False)  # pings are left unread and unanswered
        await ws.prepare(request)
        await ws.send_str(connected())
        if connections > 1:
            await ws.send_str(block(5))
        await stop.wait()
        return ws

    app = web.Application()
    app.router.add_get("/events/", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = StreamSettings(backoff_base=0.01, backoff_cap=0.05, open_timeout=2, ping_interval=0.2, idle_timeout=60)
    try:
        async with EventStream(f"ws://127.0.0.1:{port}/events/?chain=side", "side", settings) as stream:
            events = await take(stream, 4, within=3)
    finally:
        stop.set()
        await runner.cleanup()
    assert [type(e) for e in events] == [Connected, Reconnected, Connected, Block]
    assert "PONG" in caplog.text


async def test_a_message_over_the_cap_drops_the_connection_unread(caplog: pytest.LogCaptureFixture) -> None:
    """A message larger than max_message_bytes is never delivered: the socket is dropped and re-opened."""
    caplog.set_level(logging.WARNING)
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await ws.send(connected())
        if connections == 1:
            await ws.send(message("block", {"number": 1, "padding": "x" * 5000}))
        else:
            await ws.send(block(2))
        await ws.wait_closed()

    settings = StreamSettings(backoff_base=0.01, backoff_cap=0.05, open_timeout=2, max_message_bytes=1024)
    async with ws_server(handler) as base:
        async with EventStream(f"{base}/events/?chain=side", "side", settings) as stream:
            events = await take(stream, 4)
    assert [type(e) for e in events] == [Connected, Reconnected, Connected, Block]
    assert [e.number for e in events if isinstance(e, Block)] == [2]
    assert "exceeds limit 1024" in caplog.text


async def test_the_handshake_asks_for_no_compression_and_ignores_proxy_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No per-message deflate is offered, and a proxy named in the environment is not used."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{unused_port()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{unused_port()}")
    offered: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        offered.append(ws.request.headers.get("Sec-WebSocket-Extensions"))
        await ws.send(connected())
        await ws.wait_closed()

    async with ws_server(handler) as base:
        async with EventStream(f"{base}/events/?chain=side", "side", FAST) as stream:
            assert [type(e) for e in await take(stream, 1)] == [Connected]
    assert offered == [None]


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made by the openssl CLI."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_an_untrusted_certificate_is_refused_and_retried(
    self_signed: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    """wss:// verifies the server's certificate: a self-signed one is refused with one line, and retried."""
    caplog.set_level(logging.WARNING)
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handled = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal handled
        handled += 1
        await ws.send(connected())

    server = await serve(handler, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    stream = EventStream(f"wss://127.0.0.1:{port}/events/?chain=side", "side", FAST)
    pending = asyncio.ensure_future(anext(stream))
    try:
        await wait_until(lambda: caplog.text.count("cannot open event stream") >= 2, what="two refused attempts")
    finally:
        pending.cancel()
        await stream.aclose()
        server.close()
        await server.wait_closed()
    assert handled == 0
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    assert all("\n" not in r.getMessage() for r in caplog.records if "cannot open" in r.getMessage())


async def test_unknown_event_types_are_warned_about_once_each_up_to_a_bound(caplog: pytest.LogCaptureFixture) -> None:
    """Each new unknown event type is warned about once; a server sending endless new ones is not remembered past
    the bound (the rest are logged at debug level), and the stream goes on."""
    caplog.set_level(logging.WARNING)
    names = [f"invented_{n}" for n in range(UNKNOWN_EVENT_NAMES + 8)]

    async def handler(ws: ServerConnection) -> None:
        await ws.send(connected())
        for name in [*names, names[0]]:
            await ws.send(message(name, {"x": 1}))
        await ws.send(block(1))
        await ws.wait_closed()

    async with ws_server(handler) as base:
        async with EventStream(f"{base}/events/?chain=side", "side", FAST) as stream:
            events = await take(stream, 2)
            assert len(stream._unknown_seen) == UNKNOWN_EVENT_NAMES
    assert [type(e) for e in events] == [Connected, Block]
    warned = [r.getMessage() for r in caplog.records if "unknown" in r.getMessage()]
    assert len(warned) == UNKNOWN_EVENT_NAMES and repr(names[0]) in warned[0]
