"""The ``--metrics-addr`` server: ``/metrics``, ``/healthz`` and ``/readyz`` on a thread of their own.

The server runs its own event loop in a daemon thread, so a command whose event loop is stalled (a
backend that blocks it) still answers: ``/healthz`` then says how long the loop's heartbeat has been
missing instead of timing out, and ``/metrics`` keeps showing the last values.

* ``/healthz``: 200 while the command's event loop beats (:data:`polyswarmclient.metrics.STALL_SECONDS`),
  else 503. Liveness: restart the process when it fails.
* ``/readyz``: 200 while the command serves: it reached polyswarmd, is not draining, and every event
  stream it reads is connected with a block newer than a few block intervals; else 503 with one reason a
  line. Readiness: it tells an orchestrator (and ``polyswarm-probe``) whether the engine is working.
* ``/metrics``: the Prometheus text exposition of every instrument in :mod:`polyswarmclient.metrics`.

The socket is bound in the caller's thread, so a bad or busy address fails the command before it starts.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import threading

from aiohttp import web

from polyswarmclient import metrics
from polyswarmclient.errors import ConfigError, PolyswarmError
from polyswarmclient.metrics import Health
from polyswarmclient.telemetry.exporter import CONTENT_TYPE, PrometheusSink

OPTION = "--metrics-addr (METRICS_ADDR)"


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for an IPv6 literal) -> (host, port); ConfigError when malformed."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535 or "/" in text:
        raise ConfigError(
            f"{OPTION}: {text!r} is not HOST:PORT; give an address and port such as 0.0.0.0:9100 or 127.0.0.1:9100"
        )
    return host, int(port_text)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``: in use is a runtime error (exit 1), a wrong address exit 2."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(
            f"{OPTION}: cannot resolve host {host!r} ({exc.strerror}); give an address of this machine"
        ) from None
    family, _, _, _, address = infos[0]
    try:
        return socket.create_server(address, family=family)
    except OSError as exc:
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            # A condition of the moment (another process holds the port), not a malformed value: exit 1,
            # like polyswarmd-devnet's busy --port; a restart once the port is free succeeds.
            raise PolyswarmError(
                f"{OPTION}: {where} is already in use; stop the other process or pick another port"
            ) from None
        raise ConfigError(f"{OPTION}: cannot listen on {where}: {exc.strerror or exc}") from None


class MetricsServer:
    """``start()`` binds and serves in a thread; ``stop()`` closes it. One per process."""

    def __init__(self, host: str, port: int, health: Health = metrics.HEALTH) -> None:
        self.host, self.port = host, port
        self.health = health
        self.sink = PrometheusSink()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self.address: tuple[str, int] | None = None

    def start(self) -> None:
        sock = bind(self.host, self.port)
        self.address = sock.getsockname()[:2]
        metrics.install(self.sink)
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="metrics server", daemon=True)
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            metrics.install(None)
            raise PolyswarmError(f"{OPTION}: the metrics server did not start: {self._error}")

    def stop(self) -> None:
        metrics.install(None)
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(5)

    def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main(sock))
        finally:
            loop.close()

    async def _main(self, sock: socket.socket) -> None:
        self._stop = asyncio.Event()
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        try:
            await runner.setup()
            await web.SockSite(runner, sock).start()
        except Exception as exc:
            self._error = exc
            self._started.set()
            sock.close()
            return
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.sink.render(self.health)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        alive, why = self.health.alive()
        return web.Response(status=200 if alive else 503, text=("ok: " if alive else "unhealthy: ") + why + "\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        ready, problems = self.health.ready()
        if ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: " + "; ".join(problems) + "\n")
