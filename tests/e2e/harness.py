"""The end-to-end harness: real CLIs as subprocesses against a real ``polyswarmd-devnet`` subprocess.

Everything here is synchronous and talks to the devnet only over HTTP, as a user's tools would:

* :class:`Process` runs one CLI with its stdout and stderr in a log file, and stops it by its own pid
  (SIGTERM with the exit code checked, or SIGKILL when a test wants a crash);
* :class:`Devnet` is a started ``polyswarmd-devnet`` plus read-only API helpers (balances, blocks,
  bounties, assertions, votes);
* :class:`Cli` starts ``microengine``, ``ambassador``, ``arbiter`` and ``balancemanager`` against it with a
  given keystore and state directory;
* :class:`TcpProxy` relays TCP between a CLI and the devnet, and can cut every connection and refuse new
  ones for a while (a network outage the CLI must ride out);
* :func:`wait_until` polls a condition with a deadline and fails with a sentence that says what was
  awaited (the conftest hook then attaches every involved process's log to the failure);
* :func:`expected_settlement` is the payout rule of the reference (§5.9, "1.6": the 1.5 rules with the
  bounty amount spread evenly over the artifacts), computed from what the API reports.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import ssl as ssl_module
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Self, TypeVar

from polyswarmclient.services.microengine.state import decode as decode_record

ROOT = Path(__file__).resolve().parents[2]
KEYFILES = ROOT / "keyfiles-testing"
PASSWORD = "password"
NCT = 10**18

T = TypeVar("T")

#: Environment variables our CLIs read; a developer's shell must not leak them into a test run.
_OPTION_ENV = (
    "POLYSWARMD_ADDR", "KEYFILE", "PASSWORD", "PASSWORD_FILE", "API_KEY", "INSECURE_TRANSPORT",
    "ALLOW_KEY_OVER_HTTP", "STATE_DIR", "LOG_LEVEL", "LOG_FORMAT", "BACKEND", "TESTING", "CHAINS",
    "ARTIFACT_TYPE", "BID_STRATEGY", "FILTER", "CONFIDENCE", "MAX_CONCURRENT_SCANS", "SCAN_TIMEOUT",
    "BLOCK_TIME", "BOUNTY_AMOUNT", "DURATION", "ARTIFACTS_PER_BOUNTY", "SUBMISSION_RATE", "MAX_IN_FLIGHT",
    "NO_BOUNTY_METADATA", "MAXIMUM", "WITHDRAW_TARGET", "CONFIRMATIONS", "DENOMINATION",
    "SIGNER", "SIGNER_TOKEN_FILE", "SIGNER_SOCKET", "SIGNER_LISTEN", "SIGNER_STATE_DIR", "SIGNER_AUDIT_LOG",
    "METRICS_ADDR", "SHUTDOWN_GRACE", "CLIENT_LOG_LEVEL", "PROBE_TIMEOUT",
    "COMMUNITIES", "API_KEY_FILE",
    "SCAN_QUEUE", "REDIS_ADDR", "QUEUE", "CONCURRENCY", "CLAIM_TIMEOUT",
)  # fmt: skip

#: Console script -> module under ``polyswarmclient.cli`` (used when the scripts are not installed).
_MODULES = {
    "polyswarmd-devnet": "devnet",
    "microengine": "microengine",
    "ambassador": "ambassador",
    "arbiter": "arbiter",
    "balancemanager": "balancemanager",
    "polyswarm-signer": "signer",
    "polyswarm-probe": "probe",
    "worker": "worker",
}


class ApiError(Exception):
    """The devnet answered something other than ``{"status": "OK", ...}``."""


# --- keystores -----------------------------------------------------------------------------------------


def keyfile(name: str) -> Path:
    path = KEYFILES / name
    assert path.exists(), f"no keystore {path}"
    return path


def address_of(name: str) -> str:
    """The ``0x`` address of ``keyfiles-testing/<name>`` (read from the keystore, no password needed)."""
    data = json.loads(keyfile(name).read_text(encoding="utf-8"))
    return "0x" + str(data["address"]).lower().removeprefix("0x")


# --- processes -----------------------------------------------------------------------------------------


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI: the checkout's ``src`` and root importable, no stray option variables."""
    # DEVNET_ANVIL (where anvil is) is no option of the roles; the anvil tier sets it for its devnets
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _OPTION_ENV and (not k.startswith("DEVNET_") or k == "DEVNET_ANVIL")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def command(tool: str) -> list[str]:
    """How to run ``tool``: its console script next to this interpreter, else ``python -c main()``."""
    script = Path(sys.executable).parent / tool
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-c", f"from polyswarmclient.cli.{_MODULES[tool]} import main; main()"]


#: Every process started in this pytest session, so the report hook can show their logs on a failure.
_STARTED: list[Process] = []
#: Index into ``_STARTED`` where the current test began.
_TEST_START = 0


def begin_test() -> None:
    global _TEST_START
    _TEST_START = len(_STARTED)


def processes_to_report() -> list[Process]:
    """The processes started for the current test, then the shared ones still running (devnet, arbiter)."""
    mine = _STARTED[_TEST_START:]
    shared = [p for p in _STARTED[:_TEST_START] if p.running]
    return mine + shared


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM if pytest itself dies (even by SIGKILL)."""
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl: fixture teardown still applies
        pass


class Process:
    """One CLI run; stdout and stderr go to ``<log_dir>/<name>.log``."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_dir: Path,
        cwd: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 - closed in cleanup()
        self.popen = subprocess.Popen(
            self.argv,
            cwd=cwd,
            env=child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal goes to pytest, not to the children
            preexec_fn=_die_with_parent,
        )
        _STARTED.append(self)

    def __repr__(self) -> str:
        return f"<Process {self.name} pid={self.popen.pid} {self.status()}>"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def status(self) -> str:
        code = self.popen.poll()
        return "running" if code is None else f"exit code {code}"

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 150) -> str:
        text = self.output().splitlines()
        cut = text[-lines:]
        head = [f"[... {len(text) - len(cut)} earlier lines in {self.log_path}]"] if len(text) > len(cut) else []
        return "\n".join(head + cut)

    def lines_matching(self, pattern: str) -> list[str]:
        rx = re.compile(pattern)
        return [line for line in self.output().splitlines() if rx.search(line)]

    def wait(self, timeout: float) -> int:
        """The exit code; an ``AssertionError`` naming the process if it is still running at ``timeout``."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} (pid {self.pid}) did not exit within {timeout:.0f} s") from None

    def expect_exit(self, code: int = 0, timeout: float = 120) -> None:
        rc = self.wait(timeout)
        assert rc == code, f"{self.name} exited with code {rc}, expected {code}; last lines:\n{self.tail(40)}"

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (a clean stop is 0). SIGKILL and fail if it hangs."""
        if self.running:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} (pid {self.pid}) ignored SIGTERM for {timeout:.0f} s and was killed"
            ) from None

    def kill(self) -> None:
        """SIGKILL: the crash a test simulates (no shutdown code runs)."""
        if self.running:
            self.popen.kill()
        self.popen.wait(10)

    def cleanup(self) -> None:
        """Teardown: make sure the process is gone (TERM, then KILL) and close the log."""
        if self.running:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


# --- --metrics-addr --------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nothing listens on right now (for a CLI's --metrics-addr)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 5) -> tuple[int, str]:
    """(status, body) of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def scrape(port: int) -> dict[str, float]:
    """The samples of ``/metrics`` on ``port``: ``'name{label="v"}' -> value`` (no labels: ``name``)."""
    status, text = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, f"GET /metrics answered {status}: {text[:200]}"
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


# --- waiting -------------------------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    watch: Iterable[Process] = (),
    interval: float = 0.1,
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Fails with "timed out after N s waiting for <what>", or at once when a process in ``watch`` (one
    that must keep running meanwhile) has exited. API errors while polling count as "not yet".
    """
    watched = list(watch)
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        for proc in watched:
            if not proc.running:
                raise AssertionError(f"{proc.name} exited ({proc.status()}) while waiting for {what}")
        try:
            value = predicate()
        except (ApiError, OSError) as exc:
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            hint = f" (last API error: {last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{hint}")
        time.sleep(interval)


# --- the devnet ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevnetOptions:
    """``polyswarmd-devnet`` settings for a module.

    Windows are counted in blocks, and the devnet mines a block for every transaction as well as every
    ``block_time`` seconds: with several roles transacting, a 4-block reveal window can close within a
    fraction of a second, before an engine's reveal lands. Hence windows of 12 and 8 blocks.
    """

    block_time: float = 0.25
    reveal_window: int = 12
    vote_window: int = 8
    relay_confirmations: int = 2
    #: build transactions as polyswarmd 2.2.0 does (eth-abi 1.x: an empty string gets one more zero word)
    eth_abi_v1: bool = False
    #: ``--chains-on``: ``embedded`` py-evm, or ``anvil`` nodes (the anvil tier)
    chains_on: str = "embedded"
    #: ``(home, side)`` chain ids, for a second devnet that must be separate chains (default: the devnet's)
    chain_ids: tuple[int, int] | None = None
    #: API keys the devnet accepts (any turns enforcement on)
    api_keys: tuple[str, ...] = ()
    #: further ``polyswarmd-devnet`` arguments (``--home-rpc URL --shared-home NAME``)
    extra: tuple[str, ...] = ()

    def argv(self) -> list[str]:
        return [
            "--block-time", str(self.block_time),
            "--reveal-window", str(self.reveal_window),
            "--vote-window", str(self.vote_window),
            "--relay-confirmations", str(self.relay_confirmations),
            *(["--eth-abi-v1"] if self.eth_abi_v1 else []),
            "--chains-on", self.chains_on,
            *(["--home-chain-id", str(self.chain_ids[0]), "--side-chain-id", str(self.chain_ids[1])]
              if self.chain_ids else []),
            *(arg for key in self.api_keys for arg in ("--api-key", key)),
            *self.extra,
        ]  # fmt: skip


#: For the tests that kill an engine and restart it: a reveal window of 40 blocks (~10 s idle) leaves room
#: for a cold restart (~1-2 s) inside it.
RESTART_OPTIONS = DevnetOptions(reveal_window=40)


_BANNER = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


class Devnet:
    """A running ``polyswarmd-devnet`` subprocess and read-only HTTP helpers for its API."""

    def __init__(self, process: Process, port: int, options: DevnetOptions) -> None:
        self.process = process
        self.port = port
        self.options = options
        self.url = f"http://127.0.0.1:{port}"
        #: polyswarmd wants an ``account`` on chain-scoped reads; any address does for a view
        self.reader = address_of("ambassador_keyfile")

    @classmethod
    def start(cls, workdir: Path, options: DevnetOptions, *, timeout: float = 60) -> Devnet:
        """Start on a free port (``--port 0``, read from the banner) and wait until ``/status`` answers."""
        process = Process(
            "polyswarmd-devnet",
            [*command("polyswarmd-devnet"), "--port", "0", "--keyfiles-dir", str(KEYFILES), *options.argv()],
            log_dir=workdir,
            cwd=workdir,
        )

        def port() -> int | None:
            found = _BANNER.search(process.output())
            return int(found.group(1)) if found else None

        try:
            number = wait_until(port, timeout=timeout, what="the devnet's banner", watch=[process])
            devnet = cls(process, number, options)
            wait_until(devnet.status, timeout=timeout, what="GET /status on the devnet", watch=[process])
        except BaseException:
            process.cleanup()
            raise
        return devnet

    @property
    def addr(self) -> str:
        """``host:port`` as users pass it to ``--polyswarmd-addr`` (with ``--insecure-transport``)."""
        return f"localhost:{self.port}"

    def stop(self) -> int:
        return self.process.stop(timeout=20)

    # -- HTTP ---------------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` and the ``result`` of the polyswarmd envelope; :class:`ApiError` otherwise."""
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        try:
            with urllib.request.urlopen(self.url + path + query, timeout=10) as reply:
                body = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(f"GET {path}{query}: HTTP {exc.code} {exc.read()[:300]!r}") from None
        if not isinstance(body, dict) or body.get("status") != "OK":
            raise ApiError(f"GET {path}{query}: {body!r}")
        return body.get("result")

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/status")
        return result

    def block(self, chain: str = "side") -> int:
        return int(self.status()[chain]["block"])

    def nct(self, who: str, chain: str = "side") -> int:
        """NCT-wei of a keystore name (``spare1_keyfile``) or an address on ``chain``."""
        address = who if who.startswith("0x") else address_of(who)
        return int(self.get(f"/balances/{address}/nct", chain=chain))

    def balances(self, who: str) -> Balances:
        return Balances(home=self.nct(who, "home"), side=self.nct(who, "side"))

    def parameters(self, chain: str = "side") -> dict[str, int]:
        result: dict[str, int] = self.get("/bounties/parameters", chain=chain, account=self.reader)
        return result

    def relay_fee(self, chain: str) -> int:
        return int(self.get("/relay/fees", chain=chain, account=self.reader)["fees"])

    def bounty(self, guid: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/bounties/{guid}", chain="side", account=self.reader)
        return result

    def assertions(self, guid: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get(f"/bounties/{guid}/assertions", chain="side", account=self.reader)
        return result

    def votes(self, guid: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.get(f"/bounties/{guid}/votes", chain="side", account=self.reader)
        return result

    def assertion_by(self, guid: str, who: str) -> dict[str, Any] | None:
        address = (who if who.startswith("0x") else address_of(who)).lower()
        for item in self.assertions(guid):
            if str(item["author"]).lower() == address:
                return item
        return None

    def assertion_of(self, guid: str, who: str) -> dict[str, Any]:
        """``who``'s assertion on ``guid``; fails the test, listing the assertions there are, if it has none."""
        found = self.assertion_by(guid, who)
        assert found is not None, f"{who} has no assertion on bounty {guid}: {self.assertions(guid)}"
        return found

    def settlement(self, guid: str) -> Settlement:
        """What settling ``guid`` pays each party, by the reference's rules, from the API's data."""
        params = self.parameters()
        return expected_settlement(
            self.bounty(guid),
            self.assertions(guid),
            self.votes(guid),
            bounty_fee=int(params["bounty_fee"]),
            assertion_fee=int(params["assertion_fee"]),
        )


@dataclass(frozen=True)
class Balances:
    home: int
    side: int

    @property
    def total(self) -> int:
        return self.home + self.side

    def __sub__(self, other: Balances) -> Balances:
        return Balances(self.home - other.home, self.side - other.side)


# --- a network outage on demand ------------------------------------------------------------------------


class LoopbackServer:
    """A server on an ephemeral port of 127.0.0.1 whose asyncio event loop runs in a daemon helper thread.

    A subclass implements ``_listen()`` (bind, set :attr:`port`) and ``_shutdown()`` (drop every
    connection, stop serving); :meth:`start` and :meth:`close` run them in the loop from the test's
    thread, and a ``with`` block does both.
    """

    #: Seconds :meth:`close` gives ``_shutdown()``.
    shutdown_timeout: float = 10

    def __init__(self, thread_name: str) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=thread_name, daemon=True)

    @property
    def addr(self) -> str:
        """``host:port`` for ``--polyswarmd-addr`` (with ``--insecure-transport``)."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        self._call(self._listen())
        return self

    def close(self) -> None:
        """Drop everything and stop the helper thread. Safe to call more than once."""
        if not self._thread.is_alive():
            return
        try:
            self._call(self._shutdown(), timeout=self.shutdown_timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    async def _listen(self) -> None:
        raise NotImplementedError

    async def _shutdown(self) -> None:
        raise NotImplementedError


class TcpProxy(LoopbackServer):
    """A TCP relay on an ephemeral port of 127.0.0.1 to ``127.0.0.1:<target_port>``, in a helper thread.

    Point a CLI's ``--polyswarmd-addr`` at :attr:`addr`: its REST requests and its websockets then pass
    through here, and a test can stage a network outage:

    * :meth:`cut` drops every open connection at once, both ways, without a websocket close frame, and
      refuses new ones (the listening socket is closed); :meth:`restore` listens again on the same port.
    * ``cut(websockets=False)`` / ``restore(rest=False)`` cut or restore one kind only: connections are
      then accepted, and those of a cut kind are dropped as soon as their request line shows the kind
      (``GET /events…`` is a websocket, anything else REST), like a proxy whose backend is down.
    * :meth:`cut_after` arms a cut for the moment the n-th request starting with a prefix has been relayed
      (e.g. the second ``POST /transactions``): websockets are dropped before the server even reads the
      request, so the events it causes are lost too; the server acts on the request, the client never
      hears the answer; then every connection is dropped.

    :attr:`requests` keeps the request line of every request relayed so far. With ``ssl`` (a server
    context) the proxy speaks TLS to its clients and plain TCP to the target, as a TLS-terminating front
    of polyswarmd does.
    """

    def __init__(self, target_port: int, ssl: ssl_module.SSLContext | None = None) -> None:
        super().__init__("e2e-tcp-proxy")
        self.target_port = target_port
        self.ssl = ssl
        self.requests: list[str] = []
        self._cut_kinds: set[str] = set()
        self._trigger: bytes | None = None
        self._trigger_countdown = 0
        self._triggered = threading.Event()
        self._server: asyncio.Server | None = None
        #: open client-side writer -> (its upstream writer, its kind once known)
        self._open: dict[asyncio.StreamWriter, tuple[asyncio.StreamWriter, list[str]]] = {}
        #: client-side writers whose answers are swallowed (the request that arms the cut)
        self._muted: set[asyncio.StreamWriter] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        cut = ",".join(sorted(self._cut_kinds)) or "nothing"
        return f"<TcpProxy :{self.port} -> :{self.target_port}, cut: {cut}, {len(self._open)} open>"

    def cut(self, *, websockets: bool = True, rest: bool = True) -> None:
        """Drop the open connections of the given kinds and refuse new ones."""
        self._call(self._cut({k for k, on in (("websocket", websockets), ("rest", rest)) if on}))

    def restore(self, *, websockets: bool = True, rest: bool = True) -> None:
        """Relay the given kinds again (on the same port)."""
        self._call(self._restore({k for k, on in (("websocket", websockets), ("rest", rest)) if on}))

    def cut_after(self, prefix: str, occurrence: int = 1) -> None:
        """Cut everything (as :meth:`cut`) once the ``occurrence``-th request starting with ``prefix`` is relayed."""
        self._trigger = prefix.encode("ascii")
        self._trigger_countdown = occurrence
        self._triggered.clear()

    @property
    def triggered(self) -> bool:
        """Whether the cut armed by :meth:`cut_after` has happened."""
        return self._triggered.is_set()

    def websocket_connections(self, chain: str = "side") -> int:
        """How many ``/events`` websockets of ``chain`` were relayed so far."""
        with self._lock:
            return sum(1 for line in self.requests if line.startswith("GET /events") and f"chain={chain}" in line)

    # -- in the helper thread -------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        await self._cut({"websocket", "rest"})

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True, ssl=self.ssl
            )
            self.port = self._server.sockets[0].getsockname()[1]

    async def _cut(self, kinds: set[str]) -> None:
        self._cut_kinds |= kinds
        if self._cut_kinds == {"websocket", "rest"} and self._server is not None:
            self._server.close()  # refuse: nothing would be relayed anyway
            self._server = None
        for writer, (upstream, kind) in list(self._open.items()):
            if not kind or kind[0] in kinds:
                self._drop(writer, upstream)

    async def _restore(self, kinds: set[str]) -> None:
        self._cut_kinds -= kinds
        await self._listen()

    def _drop(self, writer: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self._open.pop(writer, None)
        self._muted.discard(writer)
        writer.transport.abort()
        upstream.transport.abort()

    async def _fire(self) -> None:
        await self._cut({"websocket", "rest"})
        self._triggered.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut_kinds == {"websocket", "rest"}:  # accepted just before the listener closed
            writer.transport.abort()
            return
        try:
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        kind: list[str] = []
        self._open[writer] = (upstream, kind)
        pumps = [
            asyncio.create_task(self._pump(reader, upstream, (writer, upstream, kind))),
            asyncio.create_task(self._pump(up_reader, writer, None)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            self._drop(writer, upstream)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        requests_of: tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[str]] | None,
    ) -> None:
        """Copy bytes one way; on the client side, note each request line and apply cuts and triggers."""
        try:
            while data := await reader.read(65536):
                if requests_of is None:  # an answer: swallowed when its request armed the cut
                    if writer not in self._muted:
                        writer.write(data)
                        await writer.drain()
                    continue
                client, upstream, kind = requests_of
                line = data.split(b"\r\n", 1)[0]
                if b" HTTP/1." not in line:  # a request body, or websocket frames
                    writer.write(data)
                    await writer.drain()
                    continue
                with self._lock:
                    self.requests.append(line.decode("latin-1"))
                if not kind:
                    kind.append("websocket" if line.startswith(b"GET /events") else "rest")
                if kind[0] in self._cut_kinds:
                    self._drop(client, upstream)
                    return
                armed = False
                if self._trigger is not None and line.startswith(self._trigger):
                    self._trigger_countdown -= 1
                    armed = self._trigger_countdown == 0
                if armed:
                    self._trigger = None
                    self._muted.add(client)
                    await self._cut({"websocket"})
                writer.write(data)
                await writer.drain()
                if armed:  # cut once the request's body has followed it upstream
                    self._loop.call_later(0.1, lambda: self._loop.create_task(self._fire()))
        except (OSError, asyncio.IncompleteReadError):
            pass


# --- the CLIs ------------------------------------------------------------------------------------------


@dataclass
class Cli:
    """Starts our CLIs against one devnet; each process logs into ``workdir`` and is cleaned up later."""

    devnet: Devnet
    workdir: Path
    started: list[Process] = field(default_factory=list)

    def start(
        self,
        tool: str,
        *args: str,
        keystore: str,
        name: str | None = None,
        state_dir: Path | None = None,
        log_level: str = "info",
        env: dict[str, str] | None = None,
        addr: str | None = None,
    ) -> Process:
        """``tool ARGS --polyswarmd-addr … --keyfile keyfiles-testing/<keystore> --state-dir …``.

        The connection options go after ``args``, so ``args`` may start with a sub-command
        (``balancemanager deposit 10``). ``addr`` replaces the devnet's own (e.g. a :class:`TcpProxy`).
        """
        name = self._unique(name or f"{tool}-{keystore.removesuffix('_keyfile')}")
        state = state_dir if state_dir is not None else self.workdir / "state" / name
        argv = [
            *command(tool),
            *args,
            "--polyswarmd-addr", addr or self.devnet.addr,
            "--insecure-transport",
            "--keyfile", str(keyfile(keystore)),
            "--password", PASSWORD,
            "--state-dir", str(state),
            "--log", log_level,
        ]  # fmt: skip
        return self.spawn(name, argv, env=env)

    def spawn(
        self, name: str, argv: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> Process:
        """Run ``argv`` as given (logs in ``<workdir>/logs``); it is stopped in :meth:`cleanup`."""
        process = Process(self._unique(name), argv, log_dir=self.workdir / "logs", cwd=cwd or self.workdir, env=env)
        self.started.append(process)
        return process

    def _unique(self, name: str) -> str:
        taken = {p.name for p in self.started}
        if name not in taken:
            return name
        n = 2
        while f"{name}-{n}" in taken:
            n += 1
        return f"{name}-{n}"

    def cleanup(self) -> None:
        """Stop every process, then let the bounties they posted expire.

        After a failure a bounty may still be open; a later test's ``--testing 1`` engine would take it
        instead of its own. Waiting for its expiration (a few seconds at most) keeps the failure local.
        """
        for process in self.started:
            process.cleanup()
        expirations = []
        for process in self.started:
            if process.name.startswith("ambassador"):
                for guid in posted_guids(process):
                    try:
                        expirations.append(int(self.devnet.bounty(guid)["expiration"]))
                    except (ApiError, OSError):
                        continue
        if expirations and self.devnet.process.running:
            last = max(expirations)
            wait_until(
                lambda: self.devnet.block() >= last,
                timeout=60,
                what=f"block {last}, when the bounties this test posted have expired",
                watch=[self.devnet.process],
            )

    # -- roles, with the settings the e2e tier uses -------------------------------------------------

    def engine(
        self,
        keystore: str,
        *extra: str,
        backend: str = "eicar",
        testing: int | None = 1,
        name: str | None = None,
        state_dir: Path | None = None,
        addr: str | None = None,
    ) -> Process:
        """A ``microengine``; call :meth:`ready` before posting bounties so it sees them live."""
        args = ["--backend", backend, "--block-time", str(self.devnet.options.block_time), *extra]
        if testing is not None:
            args += ["--testing", str(testing)]
        return self.start("microengine", *args, keystore=keystore, name=name, state_dir=state_dir, addr=addr)

    def ambassador(
        self, *, bounties: int, duration: int, artifacts: int = 1, keystore: str = "ambassador_keyfile"
    ) -> Process:
        return self.start(
            "ambassador",
            "--testing", str(bounties),
            "--duration", str(duration),
            "--artifacts-per-bounty", str(artifacts),
            "--submission-rate", "0.5",
            keystore=keystore,
        )  # fmt: skip

    def arbiter(self, *, testing: int = 0) -> Process:
        return self.start("arbiter", "--testing", str(testing), keystore="arbiter_keyfile")

    def ready(self, process: Process, marker: str, timeout: float = 60) -> None:
        """Wait until ``process`` logs ``marker`` (e.g. the engine's first catch-up being done)."""
        wait_until(
            lambda: marker in process.output(),
            timeout=timeout,
            what=f"{process.name} to log {marker!r}",
            watch=[process, self.devnet.process],
        )


#: Log lines that say a role is connected and listening.
ENGINE_READY = "catch-up on side done"
ARBITER_READY = "event stream ws://"
MAINTAIN_READY = "maintaining the side balance"

_POSTED = re.compile(r"posted bounty ([0-9a-f-]{36})")


def posted_guids(ambassador: Process) -> list[str]:
    """The GUIDs the ambassador logged as posted, in order."""
    return [m.group(1) for m in _POSTED.finditer(ambassador.output())]


def assert_paid_as_the_only_right_expert(devnet: Devnet, guid: str, keystore: str, before: Balances) -> None:
    """``keystore`` revealed "malicious" on the one-artifact EICAR bounty ``guid``, was its only expert, and
    so was paid its bid back plus the whole amount: its side balance rose by exactly that, less what it
    paid."""
    mine = devnet.assertion_of(guid, keystore)
    assert mine["nonce"] != "0" and mine["verdicts"] == [True], f"not revealed as malicious: {mine}"
    settlement = devnet.settlement(guid)
    assert settlement.payout(keystore) == int(mine["bid"][0]) + int(devnet.bounty(guid)["amount"])
    gained = devnet.nct(keystore) - before.side
    assert gained == settlement.net(keystore) > 0, f"{keystore} gained {nct_text(gained)}"


def assert_asserted_revealed_settled(engine: Process, guid: str) -> None:
    """The engine's log shows each step of its work on the EICAR bounty ``guid``."""
    log = engine.output()
    for step in ("asserting verdicts=[malicious]", "revealed verdicts=[malicious]", "settled"):
        assert f"bounty {guid}: {step}" in log, f"{engine.name} never logged {step!r} for {guid}"


def state_records(state_dir: Path) -> list[dict[str, Any]]:
    """The microengine's durable records (``<state>/microengine/<address>/<chain>-<guid>.json``)."""
    records = []
    for path in sorted((state_dir / "microengine").glob("*/*.json")):
        try:  # the newest version: updates are lines appended to the record's file
            records.append(decode_record(path.read_text(encoding="utf-8")).to_json())
        except (OSError, ValueError, TypeError, KeyError):
            continue  # being written right now; the next poll reads it
    return records


# --- the payout rule (reference §5.9) ------------------------------------------------------------------


@dataclass(frozen=True)
class Settlement:
    poster_refund: int
    #: address (lower case) -> what settling pays that expert
    experts: dict[str, int]
    arbiter_reward: int
    #: address (lower case) -> what that expert escrowed: Σ bids + assertion fee
    escrowed: dict[str, int]

    def payout(self, who: str) -> int:
        address = (who if who.startswith("0x") else address_of(who)).lower()
        return self.experts[address]

    def net(self, who: str) -> int:
        """An expert's balance change over the bounty: payout − bids − assertion fee."""
        address = (who if who.startswith("0x") else address_of(who)).lower()
        return self.experts[address] - self.escrowed[address]


def _bits(values: Sequence[Any]) -> int:
    return sum(1 << i for i, v in enumerate(values) if v)


def expected_settlement(
    bounty: dict[str, Any],
    assertions: Sequence[dict[str, Any]],
    votes: Sequence[dict[str, Any]],
    *,
    bounty_fee: int,
    assertion_fee: int,
) -> Settlement:
    """Reference §5.9, "[assumed] 1.6": the 1.5 rules with ``amount[i] = amount / n``.

    Per artifact, with votes: a correct expert gets ``bid + bid·loserPool/winnerPool +
    bid·amount[i]/winnerPool``; a wrong or unrevealed one gets 0; an artifact nobody asserted on refunds
    ``amount[i]`` to the poster. Without votes every expert gets its fee, bids and ``amount[i]/len(A)`` back
    per bid. The arbiter gets the rest of the pot. Each fraction is rounded down on its own.
    """
    n = int(bounty["num_artifacts"])
    amount = int(bounty["amount"])
    per_artifact = amount // n
    experts: dict[str, int] = {}
    escrowed: dict[str, int] = {}
    bids_by_expert: list[tuple[str, int, list[int], int, bool]] = []  # author, mask, bids, verdicts, revealed
    for item in assertions:
        author = str(item["author"]).lower()
        bids = [int(b) for b in item["bid"]]
        revealed = str(item["nonce"]) != "0"
        verdicts = _bits(item["verdicts"]) if revealed else 0
        bids_by_expert.append((author, _bits(item["mask"]), bids, verdicts, revealed))
        escrowed[author] = sum(bids) + assertion_fee
    pot = bounty_fee + amount + sum(escrowed.values())
    refund = 0
    if not assertions:
        refund = amount + (bounty_fee if not votes else 0)
    elif not votes:
        refund = bounty_fee
        share = per_artifact // len(assertions)
        for author, _mask, bids, _v, _r in bids_by_expert:
            experts[author] = assertion_fee + sum(share + b for b in bids)
    else:
        malicious_votes = [0] * n
        for vote in votes:
            for i, v in enumerate(vote["votes"][:n]):
                malicious_votes[i] += 1 if v else 0
        consensus = _bits([2 * q >= len(votes) for q in malicious_votes])
        winner_pool = [0] * n
        loser_pool = [0] * n
        correct_masks = []
        asserted = 0
        for _author, mask, bids, verdicts, revealed in bids_by_expert:
            correct = (mask & ~((verdicts & mask) ^ consensus)) if revealed else 0
            correct_masks.append(correct)
            asserted |= mask
            for k, i in enumerate(i for i in range(n) if mask >> i & 1):
                if correct >> i & 1:
                    winner_pool[i] += bids[k]
                else:
                    loser_pool[i] += bids[k]
        for (author, mask, bids, _v, _r), correct in zip(bids_by_expert, correct_masks, strict=True):
            paid = 0
            for k, i in enumerate(i for i in range(n) if mask >> i & 1):
                if correct >> i & 1:
                    b = bids[k]
                    paid += b + b * loser_pool[i] // winner_pool[i] + b * per_artifact // winner_pool[i]
            experts[author] = paid
        refund = sum(per_artifact for i in range(n) if not asserted >> i & 1)
    return Settlement(
        poster_refund=refund,
        experts=experts,
        arbiter_reward=pot - refund - sum(experts.values()),
        escrowed=escrowed,
    )


def nct_text(wei: int) -> str:
    """``1.96875 NCT`` for messages."""
    whole, frac = divmod(abs(wei), NCT)
    text = f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
    return f"{'-' if wei < 0 else ''}{text} NCT"
