"""anvil nodes for ``polyswarmd-devnet --chains-on anvil``: found, started on loopback, and always stopped.

anvil comes from the npm package ``@foundry-rs/anvil`` (it ships the native binary for the platform):

    npm install --prefix .tools/npm @foundry-rs/anvil@1.7.1      # in a checkout (ignored by git)
    npm install --global @foundry-rs/anvil@1.7.1                 # or on PATH

``find_anvil`` looks at ``--anvil``/``$DEVNET_ANVIL``, then ``anvil`` on ``PATH``, then ``.tools/npm`` under the current
directory and under the checkout this package runs from. npm's ``anvil`` is a node wrapper; the native
binary beside it is run instead, so that a signal reaches anvil itself.

Each node is a child in its own process group, killed with the group on ``stop()``. On Linux the child is
also told (``PR_SET_PDEATHSIG``) to die with the devnet, so even a SIGKILLed devnet leaves no anvil behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

ANVIL_ENV = "DEVNET_ANVIL"
ANVIL_PACKAGE = "@foundry-rs/anvil@1.7.1"
INSTALL_HINT = f"npm install --global {ANVIL_PACKAGE} (in a checkout: npm install --prefix .tools/npm {ANVIL_PACKAGE})"
NPM_PREFIX = Path(".tools") / "npm"

_PR_SET_PDEATHSIG = 1
#: What one transaction may use, as on the embedded chain, and how many such a block holds.
TX_GAS = 50_000_000
BLOCK_TXS = 256


class AnvilError(RuntimeError):
    """An anvil node did not start."""


class AnvilMissing(AnvilError):
    """No anvil binary where it is looked for."""


def _native(path: Path) -> Path:
    """The platform binary behind npm's node wrapper (``node_modules/.bin/anvil`` -> ``bin.mjs``), else ``path``."""
    resolved = path.resolve()
    if resolved.suffix != ".mjs":
        return path
    scope = resolved.parent.parent  # node_modules/@foundry-rs
    for candidate in sorted(scope.glob("anvil-*/bin/anvil")):
        if os.access(candidate, os.X_OK):
            return candidate
    return path


def _checkouts() -> list[Path]:
    here = Path(__file__).resolve()
    roots = [Path.cwd()]
    if len(here.parents) > 3 and (here.parents[3] / "pyproject.toml").is_file():  # src/polyswarmclient/devnet
        roots.append(here.parents[3])
    return roots


def find_anvil(given: Path | None = None, env: dict[str, str] | None = None) -> Path:
    """The anvil binary to run: ``given`` (``--anvil``), else the usual places; ``AnvilMissing`` naming the npm
    command when there is none."""
    env = dict(os.environ) if env is None else env
    if given is not None or env.get(ANVIL_ENV):
        path = Path(given if given is not None else env[ANVIL_ENV]).expanduser()
        if path.is_file() and os.access(path, os.X_OK):
            return _native(path)
        raise AnvilMissing(
            f"--anvil ({ANVIL_ENV}) {path} is not an executable file; point it at anvil or install it: {INSTALL_HINT}"
        )
    on_path = shutil.which("anvil", path=env.get("PATH"))
    if on_path:
        return _native(Path(on_path))
    for root in _checkouts():
        local = root / NPM_PREFIX / "node_modules" / ".bin" / "anvil"
        if local.exists() and os.access(local, os.X_OK):
            return _native(local)
    raise AnvilMissing(f"anvil not found (${ANVIL_ENV}, PATH, ./{NPM_PREFIX}); install it: {INSTALL_HINT}")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class AnvilNode:
    """One anvil child on loopback. ``start()`` returns once it answers JSON-RPC.

    Start it from a thread that lives as long as the node should (the event loop's): Linux delivers the
    parent-death signal when the *thread* that forked the child ends.
    """

    def __init__(
        self,
        binary: Path,
        chain_id: int,
        *,
        automine: bool = False,
        retain_blocks: int | None = None,
        host: str = "127.0.0.1",
    ):
        self.binary = binary
        self.chain_id = chain_id
        #: False (the devnet's own nodes): blocks only on evm_mine. True: a block per transaction, as a node
        #: given to --home-rpc/--side-rpc usually is.
        self.automine = automine
        #: Keep the states and the transactions of only the last ``retain_blocks`` blocks (None: all), so a
        #: node that runs for months holds a bounded history, as the embedded chain does (--retain-blocks).
        self.retain_blocks = retain_blocks
        self.host = host
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [str(self.binary), "--host", self.host, "--port", str(self.port), "--chain-id", str(self.chain_id)]
        # As the embedded chain: Cancun, free gas (the devnet builds transactions with gasPrice 0, as
        # polyswarmd's sidechain does), blocks that hold BLOCK_TXS transactions of TX_GAS each, mined by
        # the devnet only (evm_mine: at once for each batch of transactions, and every --block-time), in
        # the order the transactions arrived.
        cmd += ["--accounts", "1", "--quiet", "--hardfork", "cancun", "--gas-limit", str(TX_GAS * BLOCK_TXS)]
        cmd += ["--base-fee", "0", "--gas-price", "0", "--disable-min-priority-fee", "--order", "fifo"]
        if not self.automine:
            cmd.append("--no-mining")
        if self.retain_blocks is not None:
            kept = str(self.retain_blocks)
            cmd += ["--prune-history", kept, "--transaction-block-keeper", kept]
        return cmd

    def start(self, timeout: float = 30.0) -> None:
        for _attempt in range(3):  # a free port can be taken between the probe and anvil's bind
            self.port = free_port(self.host)
            # stderr goes to a file, not a pipe nobody reads while the node runs (a full pipe would stall it);
            # with --quiet anvil writes there only when something is wrong
            self._stderr = tempfile.TemporaryFile()
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - setpgid + PDEATHSIG, nothing else
            )
            if self._wait_ready(timeout):
                return
            err = self._reap()
            if "address already in use" not in err.lower():
                first = next((line.strip() for line in err.splitlines() if line.strip()), "no answer")
                raise AnvilError(f"anvil (chain id {self.chain_id}, {self.binary}) did not start: {first}")
        raise AnvilError(f"anvil (chain id {self.chain_id}) found no free port on {self.host}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=1.0) as response:
                    if response.status == 200:
                        return True
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.05)
        return False

    def _reap(self) -> str:
        process, self.process = self.process, None
        if process is None:
            return ""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        stderr, self._stderr = self._stderr, None
        if stderr is None:
            return ""
        with stderr:
            stderr.seek(0)
            return stderr.read(64 * 1024).decode(errors="replace")

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the node's process group, SIGKILL after ``grace`` seconds; idempotent."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self._reap()


def start_anvils(
    chain_ids: Sequence[int], *, binary: Path | None = None, retain_blocks: int | None = None
) -> list[AnvilNode]:
    """Start one anvil per chain id (all or none: a failure stops the ones already started)."""
    binary = find_anvil(binary)
    nodes: list[AnvilNode] = []
    try:
        for chain_id in chain_ids:
            node = AnvilNode(binary, chain_id, retain_blocks=retain_blocks)
            nodes.append(node)
            node.start()
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes
