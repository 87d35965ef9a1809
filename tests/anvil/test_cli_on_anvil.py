"""``polyswarmd-devnet`` on anvil as a subprocess: its nodes live and die with it; bad nodes: one line, exit 2."""

from __future__ import annotations

import http.server
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from polyswarmclient.devnet.anvil import AnvilNode
from polyswarmclient.devnet.deploy import devnet_key
from polyswarmclient.devnet.web3chain import Web3Chain
from tests.devnet.test_cli_devnet import ROOT, _command, _env
from tests.helpers import unused_port

KEYFILES = str(ROOT / "keyfiles-testing")


def _anvil_env() -> dict[str, str]:
    env = _env()
    env["DEVNET_ANVIL"] = os.environ["DEVNET_ANVIL"]  # set by the tier's conftest
    return env


def _answers(url: str) -> bool:
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _gone(url: str, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _answers(url):
            return True
        time.sleep(0.1)
    return False


class Served:
    """A ``polyswarmd-devnet`` subprocess read up to the end of its banner."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [*_command(), "--port", "0", "--block-time", "0.5", "--keyfiles-dir", KEYFILES, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env or _anvil_env(),
            cwd=str(ROOT),
        )
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "funded" in line:
                break
        self.banner = "".join(lines)
        assert "funded" in self.banner, f"no banner; stderr: {self._stderr()}"

    def _stderr(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def node_urls(self) -> list[str]:
        return re.findall(r"chain id 133[78], block \d+, on (http://\S+)", self.banner)

    def contracts(self) -> list[str]:
        names = "NectarToken|BountyRegistry|ERC20Relay|ArbiterStaking"
        return re.findall(rf"(?:{names})\s+(0x[0-9a-fA-F]{{40}})", self.banner)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _fails(*args: str, env: dict[str, str] | None = None) -> list[str]:
    """Run the CLI expecting exit 2; its stderr lines."""
    result = subprocess.run(
        [*_command(), "--port", "0", "--keyfiles-dir", KEYFILES, *args],
        capture_output=True,
        text=True,
        env=env or _anvil_env(),
        cwd=str(ROOT),
        timeout=60,
    )
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    return result.stderr.splitlines()


def test_chains_on_anvil_serves_and_sigterm_stops_both_nodes() -> None:
    """``--chains-on anvil`` runs both chains on anvil nodes; SIGTERM exits 0 and leaves no node running."""
    served = Served("--chains-on", "anvil")
    try:
        urls = served.node_urls()
        assert len(urls) == 2 and all(_answers(url) for url in urls), served.banner
        assert "(anvil)" in served.banner
        assert served.terminate() == 0
        assert all(_gone(url, within=2) for url in urls)
    finally:
        served.cleanup()


def test_sigkill_of_the_devnet_takes_its_anvil_nodes_with_it() -> None:
    """Even a SIGKILLed devnet leaves no anvil behind (the nodes die with their parent)."""
    served = Served("--chains-on", "anvil")
    try:
        urls = served.node_urls()
        assert len(urls) == 2 and all(_answers(url) for url in urls)
        served.process.kill()
        served.process.wait()
        assert all(_gone(url) for url in urls)
    finally:
        served.cleanup()


def test_missing_anvil_is_one_line_naming_the_npm_install() -> None:
    """Without anvil, ``--chains-on anvil`` says which npm command installs it, exit 2."""
    env = _anvil_env()
    env["DEVNET_ANVIL"] = str(Path(ROOT) / "no-such-anvil")
    lines = _fails("--chains-on", "anvil", env=env)
    assert len(lines) == 1 and lines[0].startswith("Error: --anvil (DEVNET_ANVIL) "), lines
    assert "npm install --global @foundry-rs/anvil" in lines[0]


@pytest.fixture
def web_server() -> Iterator[str]:
    """A plain HTTP server that is no Ethereum node (it refuses POST)."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("what", ["nothing listening", "a web server"])
def test_an_rpc_url_that_is_not_a_node_is_one_line(what: str, web_server: str) -> None:
    """``--side-rpc`` where no node answers: one line naming the flag and the URL, exit 2."""
    url = web_server if what == "a web server" else f"http://127.0.0.1:{unused_port()}"
    lines = _fails("--side-rpc", url)
    assert len(lines) == 1 and lines[0].startswith(f"Error: --side-rpc {url}: "), lines
    assert "does not answer as an Ethereum JSON-RPC node" in lines[0]


def test_a_node_with_the_wrong_chain_id_is_one_line(anvil_pair: tuple[AnvilNode, AnvilNode]) -> None:
    """The sidechain's node given as the homechain: one line with both chain ids, exit 2."""
    home, side = anvil_pair
    lines = _fails("--home-rpc", side.url, "--side-rpc", home.url)
    assert len(lines) == 1, lines
    assert f"--home-rpc {side.url}: the node's chain id is 1338, the homechain's is 1337" in lines[0]


def test_a_node_keeps_its_deployment_and_different_contracts_are_refused(
    anvil_pair: tuple[AnvilNode, AnvilNode],
) -> None:
    """A devnet restarted on the same nodes finds its contracts again; other settings' contracts: exit 2."""
    home, side = anvil_pair
    nodes = ("--home-rpc", home.url, "--side-rpc", side.url)
    first = Served(*nodes, "--reveal-window", "6")
    try:
        assert first.terminate() == 0
    finally:
        first.cleanup()
    again = Served(*nodes, "--reveal-window", "6")
    try:
        assert again.contracts() == first.contracts() and len(first.contracts()) == 8
        assert again.terminate() == 0
    finally:
        again.cleanup()
    lines = _fails(*nodes, "--reveal-window", "7")
    assert len(lines) == 1 and lines[0].startswith(f"Error: --home-rpc {home.url}: the BountyRegistry at "), lines
    assert "reveal and vote windows of 6 and 10 blocks, not the 7 and 10 asked for" in lines[0]


def test_a_node_with_other_code_where_the_contracts_belong_is_one_line(
    anvil_pair: tuple[AnvilNode, AnvilNode],
) -> None:
    """Other code at the deployer's first contract address (not the pinned NectarToken): one line, exit 2."""
    home, side = anvil_pair
    chain = Web3Chain(home.url)
    try:
        deployer = devnet_key("deployer")
        chain.fund(chain.w3.eth.account.from_key(deployer).address, 10**18)
        one_byte_contract = bytes.fromhex("600160005360016000f3")  # its runtime code is 0x01
        assert chain.transact(deployer, None, one_byte_contract).status == 1
    finally:
        chain.close()
    lines = _fails("--home-rpc", home.url, "--side-rpc", side.url)
    assert len(lines) == 1 and lines[0].startswith(f"Error: --home-rpc {home.url}: the NectarToken at "), lines
    assert "differs from this version's contracts" in lines[0]


def test_a_node_whose_contracts_are_missing_is_one_line(anvil_pair: tuple[AnvilNode, AnvilNode]) -> None:
    """The devnet's deployer has used the node but its contracts are not there: one line, exit 2."""
    home, side = anvil_pair
    chain = Web3Chain(side.url)
    try:
        deployer = devnet_key("deployer")
        chain.fund(chain.w3.eth.account.from_key(deployer).address, 10**18)
        assert chain.transact(deployer, "0x000000000000000000000000000000000000dEaD", b"").status == 1
    finally:
        chain.close()
    lines = _fails("--home-rpc", home.url, "--side-rpc", side.url)
    assert len(lines) == 1 and lines[0].startswith(f"Error: --side-rpc {side.url}: "), lines
    assert "there is no NectarToken at" in lines[0] and "contracts are missing" in lines[0]


def test_a_node_urls_credentials_never_reach_the_message() -> None:
    """A password or an API key in a node's URL is masked in the one-line error."""
    port = unused_port()
    key = "k3yk3yk3yk3yk3yk3yk3yk3y"
    lines = _fails("--home-rpc", f"http://user:s3cret-pass@127.0.0.1:{port}/v3/{key}")
    assert len(lines) == 1 and "does not answer" in lines[0], lines
    assert "s3cret-pass" not in lines[0] and key not in lines[0] and "***" in lines[0]


def test_an_anvil_node_that_dies_stops_the_devnet_with_one_line() -> None:
    """When one of its anvil nodes exits, the devnet says which in one line and exits 1 (no orphan left)."""
    served = Served("--chains-on", "anvil")
    try:
        urls = served.node_urls()
        children = Path(f"/proc/{served.process.pid}/task/{served.process.pid}/children").read_text().split()
        side = next(
            int(pid) for pid in children if urls[1].rsplit(":", 1)[1] in Path(f"/proc/{pid}/cmdline").read_text()
        )
        os.kill(side, signal.SIGKILL)
        assert served.process.wait(timeout=20) == 1
        assert served.process.stderr is not None
        lines = served.process.stderr.read().splitlines()
        assert lines == [f"Error: the sidechain's anvil ({urls[1]}) exited with code -9; the devnet cannot go on"]
        assert _gone(urls[0])
    finally:
        served.cleanup()
