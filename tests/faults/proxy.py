"""A fault-injecting HTTP and websocket proxy between our CLIs and ``polyswarmd-devnet``.

:class:`FaultProxy` is an aiohttp server on an ephemeral port of 127.0.0.1, run in a helper thread with
its own event loop, that forwards every REST request and the ``/events/?chain=...`` websocket to the
devnet. On command it can:

* :meth:`~FaultProxy.drop_websockets`: abort every open websocket, both ways, without a close frame;
* :meth:`~FaultProxy.fail`: answer REST requests with a 5xx for a while;
* :meth:`~FaultProxy.rate_limit`: answer REST requests with HTTP 429 and ``Retry-After`` for a while;
* :meth:`~FaultProxy.drip`: forward a request, then send its answer a byte at a time;
* :meth:`~FaultProxy.on_request`: call a hook when a given request goes through, at a given moment:
  ``"before"`` (the hook runs, then the request is forwarded: what it causes happens after the hook, e.g.
  after its sender was SIGKILLed), ``"answered"`` (the devnet has acted and answered; the hook runs
  before the answer is relayed, and the answer is then dropped: its sender never hears it) or
  ``"delivered"`` (the answer has been relayed, then the hook runs).

:func:`calls_in` reads the contract calls a ``POST /transactions`` carries, so a hook can tell an
assertion from its approval, a reveal, a settle or a relay deposit.

This is a test helper, not shipped code: loopback only, every wait bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from aiohttp import web

from polyswarmclient.eth import abi
from tests.e2e.harness import LoopbackServer

Moment = Literal["before", "answered", "delivered"]

#: Hop-by-hop and recomputed headers that must not be copied from one side to the other.
_SKIP_HEADERS = {
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "content-encoding",
    "upgrade",
}

#: The contract calls a hook may want to recognise, by selector.
_CALLS = {
    "approve": abi.APPROVE,
    "transfer": abi.TRANSFER,
    "postAssertion": abi.POST_ASSERTION,
    "revealAssertion": abi.REVEAL_ASSERTION,
    "settleBounty": abi.SETTLE_BOUNTY,
    "voteOnBounty": abi.VOTE_ON_BOUNTY,
    "postBounty": abi.POST_BOUNTY,
}


@dataclass(frozen=True)
class Call:
    """One contract call found in a signed transaction: the function and its first argument's 32 bytes."""

    name: str
    first_word: int

    @property
    def guid(self) -> str:
        """The first argument read as a bounty GUID (``uint128``), in the API's dashed form."""
        text = f"{self.first_word:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:32]}"


def calls_in(body: bytes) -> list[Call]:
    """The calls in a ``POST /transactions`` body (``{"transactions": ["0x<raw signed tx>", ...]}``).

    The call data sits whole inside each RLP-encoded transaction, so the selector is searched for at
    byte boundaries; a selector is 4 bytes, so a chance match in a signature is negligible.
    """
    try:
        raws = json.loads(body)["transactions"]
    except (ValueError, KeyError, TypeError):
        return []
    found: list[Call] = []
    for raw in raws:
        if not isinstance(raw, str):
            continue
        data = bytes.fromhex(raw.removeprefix("0x"))
        for name, fn in _CALLS.items():
            at = data.find(fn.selector)
            if at >= 0 and len(data) >= at + 36:
                found.append(Call(name, int.from_bytes(data[at + 4 : at + 36], "big")))
                break
    return found


@dataclass(frozen=True)
class Seen:
    """A request as a hook sees it (and the answer's status once there is one)."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes
    status: int | None = None
    #: when the request reached the proxy (``time.monotonic()``): tells which engine process sent it
    arrived: float = field(default_factory=time.monotonic)

    @property
    def chain(self) -> str:
        return self.query.get("chain", "")

    def calls(self) -> list[Call]:
        return calls_in(self.body) if self.method == "POST" and self.path == "/transactions" else []


Matcher = Callable[[Seen], bool]
Hook = Callable[[Seen], None]


@dataclass
class _Window:
    """A fault that applies to matching REST requests until ``until`` (monotonic)."""

    until: float
    status: int
    headers: dict[str, str]
    match: Matcher


@dataclass
class _Drip:
    match: Matcher
    count: int
    interval: float


@dataclass
class _HookRule:
    match: Matcher
    hook: Hook
    moment: Moment
    times: int


@dataclass
class Stats:
    """What the proxy did so far (read from the test's thread)."""

    requests: int = 0
    faulted: dict[int, int] = field(default_factory=dict)
    dripped: int = 0
    websockets_opened: int = 0
    websockets_dropped: int = 0
    hooks_fired: int = 0
    #: what polyswarmd answered to each request forwarded after a "before" hook: (path, status, body start)
    after_hooks: list[tuple[str, int, str]] = field(default_factory=list)


class FaultProxy(LoopbackServer):
    """The proxy; ``start()`` it, point a CLI's ``--polyswarmd-addr`` at :attr:`addr`, ``close()`` it."""

    shutdown_timeout = 20

    def __init__(self, target_port: int) -> None:
        super().__init__("fault-proxy")
        self.target = f"http://127.0.0.1:{target_port}"
        self.stats = Stats()
        self._lock = threading.Lock()
        self._windows: list[_Window] = []
        self._drips: list[_Drip] = []
        self._hooks: list[_HookRule] = []
        #: id of the client-side websocket -> (it, its upstream, its request)
        self._sockets: dict[int, tuple[web.WebSocketResponse, aiohttp.ClientWebSocketResponse, web.Request]] = {}
        self._in_flight = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"<FaultProxy :{self.port} -> {self.target} {self.stats}>"

    # -- faults (test thread) -----------------------------------------------------------------------

    def drop_websockets(self) -> int:
        """Abort every open websocket (no close frame); returns how many were dropped."""
        result: int = self._call(self._drop_all())
        return result

    def fail(self, seconds: float, status: int = 503, *, match: Matcher | None = None) -> None:
        """Answer matching REST requests (default: all) with ``status`` for ``seconds``."""
        self._add_window(_Window(time.monotonic() + seconds, status, {}, match or _any))

    def rate_limit(self, seconds: float, retry_after: int = 1, *, match: Matcher | None = None) -> None:
        """Answer matching REST requests (default: all) with HTTP 429 and ``Retry-After`` for ``seconds``."""
        self._add_window(_Window(time.monotonic() + seconds, 429, {"Retry-After": str(retry_after)}, match or _any))

    def drip(self, *, match: Matcher | None = None, count: int = 1, interval: float = 0.5) -> None:
        """Forward the next ``count`` matching requests, and send each answer one byte per ``interval`` s."""
        with self._lock:
            self._drips.append(_Drip(match or _any, count, interval))

    def on_request(self, match: Matcher, hook: Hook, *, moment: Moment = "answered", times: int = 1) -> None:
        """Call ``hook(seen)`` (in the proxy's thread) when a matching request reaches ``moment``, ``times`` times.

        With ``"answered"`` the answer is then dropped (the connection is aborted): its sender never
        hears it. A hook must be quick (killing a process is); while it runs, the proxy waits.
        """
        with self._lock:
            self._hooks.append(_HookRule(match, hook, moment, times))

    def clear(self) -> None:
        """Forget every armed fault and hook."""
        with self._lock:
            self._windows.clear()
            self._drips.clear()
            self._hooks.clear()

    def quiet(self) -> bool:
        """No request is being forwarded right now."""
        with self._lock:
            return self._in_flight == 0

    def websockets_open(self) -> int:
        with self._lock:
            return len(self._sockets)

    # -- in the helper thread -----------------------------------------------------------------------

    def _add_window(self, window: _Window) -> None:
        with self._lock:
            self._windows.append(window)

    async def _listen(self) -> None:
        self._session = aiohttp.ClientSession(
            auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None, sock_connect=5)
        )
        app = web.Application(client_max_size=256 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        await self._drop_all()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _drop_all(self) -> int:
        with self._lock:
            pairs = list(self._sockets.values())
            self._sockets.clear()
            self.stats.websockets_dropped += len(pairs)
        for _ws, upstream, request in pairs:
            if request.transport is not None:
                request.transport.abort()
            await upstream.close()
        return len(pairs)

    def _take_window(self, seen: Seen) -> _Window | None:
        now = time.monotonic()
        with self._lock:
            self._windows = [w for w in self._windows if w.until > now]
            for window in self._windows:
                if window.match(seen):
                    self.stats.faulted[window.status] = self.stats.faulted.get(window.status, 0) + 1
                    return window
        return None

    def _take_drip(self, seen: Seen) -> _Drip | None:
        with self._lock:
            for drip in self._drips:
                if drip.count > 0 and drip.match(seen):
                    drip.count -= 1
                    self.stats.dripped += 1
                    return drip
        return None

    def _take_hook(self, seen: Seen, moment: Moment) -> _HookRule | None:
        with self._lock:
            for rule in self._hooks:
                if rule.moment == moment and rule.times > 0 and rule.match(seen):
                    rule.times -= 1
                    self.stats.hooks_fired += 1
                    return rule
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/events") and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        body = await request.read()
        seen = Seen(request.method, request.path, dict(request.query), body)
        with self._lock:
            self.stats.requests += 1
        window = self._take_window(seen)
        if window is not None:
            envelope = {"status": "FAIL", "errors": f"fault proxy: HTTP {window.status}"}
            return web.json_response(envelope, status=window.status, headers=window.headers)
        before = self._take_hook(seen, "before")
        if before is not None:
            before.hook(seen)
        with self._lock:
            self._in_flight += 1
        try:
            status, headers, payload = await self._forward(request, body)
        finally:
            with self._lock:
                self._in_flight -= 1
        if before is not None:
            with self._lock:
                self.stats.after_hooks.append((seen.path, status, payload[:300].decode("utf-8", "replace")))
        seen = dataclasses.replace(seen, status=status)
        rule = self._take_hook(seen, "answered")
        if rule is not None:
            rule.hook(seen)
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("fault proxy: the answer was dropped on purpose")
        drip = self._take_drip(seen)
        if drip is not None:
            reply = web.StreamResponse(status=status, headers=headers)
            reply.content_length = len(payload)
            await reply.prepare(request)
            for i in range(len(payload)):
                await reply.write(payload[i : i + 1])
                await asyncio.sleep(drip.interval)
            await reply.write_eof()
        else:
            reply = web.Response(status=status, headers=headers, body=payload)
            await reply.prepare(request)
            await reply.write_eof()
        rule = self._take_hook(seen, "delivered")
        if rule is not None:
            rule.hook(seen)
        return reply

    async def _forward(self, request: web.Request, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _SKIP_HEADERS}
        async with self._session.request(
            request.method,
            self.target + request.rel_url.path_qs,
            headers=headers,
            data=body if body else None,
            timeout=aiohttp.ClientTimeout(total=300),
        ) as upstream:
            payload = await upstream.read()
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in _SKIP_HEADERS}
            if "Content-Encoding" in upstream.headers:
                out["Content-Encoding"] = upstream.headers["Content-Encoding"]
            return upstream.status, out, payload

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        try:
            upstream = await self._session.ws_connect(
                self.target.replace("http", "ws", 1) + request.rel_url.path_qs, autoping=True, heartbeat=None
            )
        except (aiohttp.ClientError, OSError):
            return web.Response(status=502, text="fault proxy: the devnet refused the websocket")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        pair = (ws, upstream, request)
        with self._lock:
            self._sockets[id(ws)] = pair
            self.stats.websockets_opened += 1

        pumps = [asyncio.ensure_future(_pump(upstream, ws)), asyncio.ensure_future(_pump(ws, upstream))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except (ConnectionError, aiohttp.ClientError):
            pass
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            with self._lock:
                self._sockets.pop(id(ws), None)
            await upstream.close()
            if not ws.closed:
                await ws.close()
        return ws


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    sink: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
) -> None:
    """Relay text and binary messages from one websocket to the other until anything else comes."""
    async for message in source:
        if message.type == aiohttp.WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif message.type == aiohttp.WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        else:
            break


def _any(seen: Seen) -> bool:
    return True


# -- matchers a harness combines ---------------------------------------------------------------------


def rest(seen: Seen) -> bool:
    """Every REST request."""
    return True


def carrying(name: str, chain: str | None = None) -> Matcher:
    """``POST /transactions`` whose transactions include a call to ``name`` (on ``chain``, when given)."""

    def match(seen: Seen) -> bool:
        if chain is not None and seen.chain != chain:
            return False
        return any(call.name == name for call in seen.calls())

    return match


def route(method: str, prefix: str, suffix: str = "") -> Matcher:
    """``METHOD <prefix>...<suffix>`` (e.g. ``route("POST", "/bounties/", "/assertions")``)."""

    def match(seen: Seen) -> bool:
        return seen.method == method and seen.path.startswith(prefix) and seen.path.endswith(suffix)

    return match
