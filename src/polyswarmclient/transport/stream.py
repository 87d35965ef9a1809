"""The websocket event stream of one chain: an async iterator of typed events that never gives up.

* Messages become :mod:`polyswarmclient.wire.events` values. Unknown event types and malformed
  messages are logged and skipped; neither ends the stream.
* ``block`` events are yielded only when their number is greater than every number seen before
  (the server repeats and skips numbers; spec §3.4), across reconnects too.
* When the socket closes or cannot be opened, the stream reconnects forever with capped, jittered
  backoff; the backoff resets once a new connection delivers its first message (an endpoint that
  accepts the socket and closes it at once, silent, is backed off up to the cap). After every successful
  *re*-connect (not the first connect) it yields :class:`Reconnected`, because polyswarmd replays
  nothing: whatever happened in between is lost, so consumers re-fetch parameters and catch up.
* A dead connection is found two ways: after ``ping_interval`` seconds without a frame the client pings,
  and a pong that does not come within half that time drops the socket (aiohttp's heartbeat); a socket
  that answers pings but delivers no message for ``idle_timeout`` seconds is dropped too. Either way the
  stream reconnects.
* A message over ``max_message_bytes`` drops the connection (read no further) and the stream reconnects.
* ``aclose()`` (or leaving ``async with``) closes the socket cleanly. Cancelling a pending
  ``__anext__`` is safe (a message is never half taken) and leaves the stream usable; a consumer task
  that is cancelled inside ``async with stream:`` therefore closes it cleanly.

The socket is aiohttp's websocket client (the REST transport's library, with its C frame reader), in a
session of the stream's own: no proxy from the environment, certificates verified, no per-message
deflate, and no API key (polyswarmd's websocket is not authenticated).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from typing import Final

import aiohttp

from polyswarmclient.errors import MalformedResponse
from polyswarmclient.metrics import HEALTH
from polyswarmclient.transport.backoff import Backoff
from polyswarmclient.transport.settings import StreamSettings as StreamSettings  # re-exported
from polyswarmclient.wire.events import Block, Event, Reconnected, UnknownEvent, parse_event

log = logging.getLogger(__name__)

#: Unknown event types warned about once each; a server inventing more (the protocol has a dozen) gets the
#: rest logged at debug level, so a long-lived stream does not keep every name it was ever sent.
UNKNOWN_EVENT_NAMES = 32


class EventStream:
    """``async with EventStream(url, "side") as stream: async for event in stream: ...``"""

    def __init__(
        self,
        url: str,
        chain: str,
        settings: StreamSettings | None = None,
        *,
        rng: random.Random | None = None,
        observe: Callable[[Event], None] | None = None,
    ) -> None:
        """``observe`` sees every event before the consumer does (the client keeps its caches with it)."""
        self.url = url
        self._observe = observe
        self.chain = chain
        self.settings = settings or StreamSettings()
        self._backoff = Backoff(self.settings.backoff_base, self.settings.backoff_cap, rng=rng)
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connected_before = False
        self._last_block: int | None = None
        self._unproven = False
        self._closed = False
        self._closing = asyncio.Event()
        self._unknown_seen: set[str] = set()
        # The idle timeout: one timer per connection instead of a timeout context per message. While the
        # consumer waits for a message, _waiting_since says since when; the timer closes the socket once
        # that wait reaches idle_timeout, and _went_idle tells _next why the socket ended.
        self._waiting_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._went_idle = False
        self._idle_close: asyncio.Task[bool] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._ws is not None else "connecting")
        return f"EventStream({self.url}, {state})"

    @property
    def last_block(self) -> int | None:
        return self._last_block

    def __aiter__(self) -> EventStream:
        return self

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the socket; iteration then ends. Safe to call more than once."""
        self._closed = True
        self._closing.set()
        self._stop_watchdog()
        HEALTH.stream_connected(self.chain, False)
        ws, self._ws = self._ws, None
        session, self._session = self._session, None
        try:
            if ws is not None:
                await ws.close()
        finally:
            if session is not None:
                await session.close()

    async def __anext__(self) -> Event:
        event = await self._next()
        if self._observe is not None:
            self._observe(event)
        return event

    async def _next(self) -> Event:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._ws is None:
                await self._connect()
                if self._closed:
                    raise StopAsyncIteration
                if self._connected_before:
                    return Reconnected(chain=self.chain)
                self._connected_before = True
            ws = self._ws
            assert ws is not None
            self._waiting_since = ws_loop_time = asyncio.get_running_loop().time()
            try:
                message = await ws.receive()
            finally:
                self._waiting_since = None
            kind = message.type
            if kind is _TEXT or kind is _BINARY:
                raw = message.data
            else:
                # CLOSE, CLOSING, CLOSED or ERROR: this connection is over.
                if self._closed:
                    raise StopAsyncIteration
                if self._went_idle:
                    log.warning(
                        "event stream %s sent nothing for %.0f s; reconnecting",
                        self.url,
                        asyncio.get_running_loop().time() - ws_loop_time,
                    )
                else:
                    log.warning("event stream %s closed (%s); reconnecting", self.url, _why(ws, message))
                await self._drop(ws)
                continue
            if self._unproven:
                # Only a connection that delivered something counts as a success: an endpoint that
                # accepts the socket and drops it at once must not be re-joined at the base delay forever.
                self._unproven = False
                self._backoff.reset()
            event = self._parse(raw)
            if event is not None:
                return event

    async def _connect(self) -> None:
        """Open the socket, retrying forever with backoff (a delay precedes every re-connect)."""
        first_attempt = not self._connected_before
        while not self._closed:
            if not first_attempt:
                delay = self._backoff.delay()
                log.info("reconnecting to %s in %.1f s", self.url, delay)
                try:
                    await asyncio.wait_for(self._closing.wait(), delay)
                except TimeoutError:
                    pass
                if self._closed:
                    return
            first_attempt = False
            try:
                ws = await self._open()
            except (OSError, TimeoutError, aiohttp.ClientError) as exc:
                if self._closed:
                    return
                log.warning("cannot open event stream %s: %s", self.url, _describe(exc))
                continue
            if self._closed:  # aclose() ran while we were connecting
                await ws.close()
                return
            self._ws = ws
            self._unproven = True
            self._went_idle = False
            self._arm_watchdog(asyncio.get_running_loop().time())
            HEALTH.stream_connected(self.chain, True)
            log.info("event stream %s connected", self.url)
            return

    async def _open(self) -> aiohttp.ClientWebSocketResponse:
        settings = self.settings
        if self._session is None:
            # The handshake's own time limit is open_timeout (below); an open socket has none.
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        async with asyncio.timeout(settings.open_timeout):
            ws = await self._session.ws_connect(
                self.url,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=settings.close_timeout),
                heartbeat=settings.ping_interval,
                max_msg_size=settings.max_message_bytes,
                # Events are small JSON objects: per-message deflate would cost more CPU than it saves.
                compress=0,
            )
        return ws

    async def _drop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._stop_watchdog()
        HEALTH.stream_connected(self.chain, False)
        self._ws = None
        await ws.close()

    def _arm_watchdog(self, since: float) -> None:
        idle = self.settings.idle_timeout
        if idle is not None:
            self._watchdog = asyncio.get_running_loop().call_at(since + idle, self._watch)

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _watch(self) -> None:
        """The timer: close the socket if the current wait for a message reached idle_timeout, else re-arm."""
        self._watchdog = None
        idle, ws = self.settings.idle_timeout, self._ws
        if ws is None or idle is None or self._closed:
            return
        now = asyncio.get_running_loop().time()
        since = self._waiting_since
        if since is None or now - since < idle:
            self._arm_watchdog(now if since is None else since)
            return
        # Closing makes the pending receive() return at once; the close handshake finishes on its own.
        self._went_idle = True
        self._idle_close = asyncio.get_running_loop().create_task(ws.close())

    def _parse(self, raw: str | bytes) -> Event | None:
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            log.warning("skipping a %s event message that is not JSON: %r", self.chain, raw[:120])
            return None
        try:
            event = parse_event(message, self.chain)
        except MalformedResponse as exc:
            log.warning("skipping a malformed %s event: %s", self.chain, exc)
            return None
        if isinstance(event, UnknownEvent):
            level = logging.DEBUG
            if event.name not in self._unknown_seen and len(self._unknown_seen) < UNKNOWN_EVENT_NAMES:
                self._unknown_seen.add(event.name)
                level = logging.WARNING
            log.log(level, "ignoring unknown %s event type %r", self.chain, event.name)
            return None
        if isinstance(event, Block):
            if self._last_block is not None and event.number <= self._last_block:
                log.debug("dropping %s block %d (already at %d)", self.chain, event.number, self._last_block)
                return None
            self._last_block = event.number
            HEALTH.block(self.chain, event.number)
        return event


_TEXT: Final = aiohttp.WSMsgType.TEXT
_BINARY: Final = aiohttp.WSMsgType.BINARY


def _why(ws: aiohttp.ClientWebSocketResponse, message: aiohttp.WSMessage) -> str:
    """Why a connection ended, in a few words, from the message that ended it."""
    exc = message.data if message.type is aiohttp.WSMsgType.ERROR else None
    if not isinstance(exc, BaseException):
        exc = ws.exception()
    if isinstance(exc, aiohttp.ServerTimeoutError):
        # The heartbeat's: older aiohttp releases do not say so in the exception's text.
        return f"no PONG answered our ping; {_describe(exc)}"
    if exc is not None:
        return _describe(exc)
    if message.type is aiohttp.WSMsgType.CLOSE:
        reason = f" {message.extra}" if message.extra else ""
        return f"the server closed it: code {message.data}{reason}"
    return "the connection was lost without a close frame"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
