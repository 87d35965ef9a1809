"""The ``/events`` WebSocket (spec §3): one hub per chain, fed by the chain's watcher, fanned out to sockets.

Every message is rendered once by ``wire.events.to_message`` (the exact ``data`` keys of spec §3.3) and
the same JSON text is queued for every socket. The socket is never authenticated; whatever a client
sends is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from polyswarmclient.devnet.artifacts import ArtifactStore
from polyswarmclient.devnet.chainnode import ChainNode
from polyswarmclient.devnet.http import CTX, Routes, compact_json, fail
from polyswarmclient.devnet.logs import ws_event
from polyswarmclient.wire.events import Block, Connected, to_message

log = logging.getLogger(__name__)

CLIENT_QUEUE_SIZE = 10_000
_CLOSE = None

routes = Routes()


class EventHub:
    """Fans one chain's events out to every connected socket."""

    def __init__(self, node: ChainNode, store: ArtifactStore) -> None:
        self.node = node
        self.store = store
        self._clients: set[asyncio.Queue[str | None]] = set()

    @property
    def client_count(self) -> int:
        return len(self._clients)

    def connect(self) -> asyncio.Queue[str | None]:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=CLIENT_QUEUE_SIZE)
        self._clients.add(queue)
        return queue

    def disconnect(self, queue: asyncio.Queue[str | None]) -> None:
        self._clients.discard(queue)

    def close_all(self) -> None:
        """Ask every socket to close (server shutdown)."""
        for queue in list(self._clients):
            self._drop(queue)

    def _drop(self, queue: asyncio.Queue[str | None]) -> None:
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_CLOSE)
        self._clients.discard(queue)

    def publish(self, messages: list[str]) -> None:
        for queue in list(self._clients):
            try:
                for text in messages:
                    queue.put_nowait(text)
            except asyncio.QueueFull:
                log.warning("%s events: a websocket client is not reading; closing it", self.node.name)
                self._drop(queue)

    async def run(self) -> None:
        """The hub task: turn chain updates into messages until cancelled."""
        updates = self.node.subscribe()
        try:
            while True:
                update = await updates.get()
                messages = [compact_json(to_message(Block(number=update.head, chain=self.node.name)))]
                for entry in update.logs:
                    try:
                        event = ws_event(self.node, entry, self.store)
                    except Exception:
                        log.exception("%s events: cannot render a log; skipped", self.node.name)
                        continue
                    if event is not None:
                        messages.append(compact_json(to_message(event)))
                self.publish(messages)
        finally:
            self.node.unsubscribe(updates)


async def _pump(ws: web.WebSocketResponse, queue: asyncio.Queue[str | None]) -> None:
    while True:
        text = await queue.get()
        if text is None:
            await ws.close()
            return
        await ws.send_str(text)


@routes.get("/events")
async def events(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    chain = request.query.get("chain", "side") or "side"
    if chain not in ("home", "side"):
        return fail("Chain must one of home, side", 400)
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    hub: EventHub = ctx.hubs[chain]
    queue = hub.connect()
    start = Connected(start_time=str(int(ctx.start_time)), chain=chain)
    await ws.send_str(compact_json(to_message(start)))
    pump = asyncio.create_task(_pump(ws, queue), name=f"ws-pump-{chain}")
    try:
        async for message in ws:  # the server ignores what it receives; this loop ends on close
            if message.type == WSMsgType.ERROR:
                break
    finally:
        hub.disconnect(queue)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await pump
    return ws
