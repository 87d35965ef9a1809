"""polyswarm-keyfile and polyswarm-signer as a user runs them, and the roles' --signer bad inputs: one line, exit 2."""

from __future__ import annotations

import json
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from polyswarmclient.eth.keystore import STANDARD_SCRYPT_N
from tests.helpers import KEYFILES, REGISTRY, RELAY, ROOT, STAKING, TOKEN, run_module

CLEAR = (
    "POLYSWARMD_ADDR", "KEYFILE", "PASSWORD", "PASSWORD_FILE", "API_KEY", "STATE_DIR", "SIGNER", "SIGNER_TOKEN_FILE",
    "SIGNER_SOCKET", "SIGNER_LISTEN", "SIGNER_STATE_DIR", "SIGNER_AUDIT_LOG", "CONTRACTS",
)  # fmt: skip
KEYFILE_TOOL = "polyswarmclient.cli.keyfile"
VIEW = ("polyswarmclient.cli.balancemanager", "view-balance")


def one_line_exit_2(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory (a unix socket path must stay under ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sgc-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- polyswarm-keyfile -----------------------------------------------------------------------------------


def test_new_writes_a_standard_geth_keystore_that_eth_account_opens(tmp_path: Path) -> None:
    """``new OUT --password-file F``: prints the address, writes mode 0600 with geth's standard scrypt
    (N=2^18, r=8, p=1), and eth-account decrypts it to that address; ``address`` agrees."""
    (tmp_path / "pw").write_text("a long password\n")
    out = tmp_path / "wallet.json"
    result = run_module(KEYFILE_TOOL, "new", str(out), "--password-file", str(tmp_path / "pw"), clear=CLEAR)
    assert result.returncode == 0, result.stderr
    address = result.stdout.strip()
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", address)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    keystore = json.loads(out.read_text())
    assert keystore["crypto"]["kdfparams"] | {"salt": ""} == {
        "n": STANDARD_SCRYPT_N,
        "r": 8,
        "p": 1,
        "dklen": 32,
        "salt": "",
    }
    assert Account.from_key(Account.decrypt(keystore, "a long password")).address == address
    shown = run_module(KEYFILE_TOOL, "address", str(out), clear=CLEAR)
    assert shown.stdout.strip() == address


def test_new_never_overwrites_and_wants_a_password(tmp_path: Path) -> None:
    """An existing OUT is refused and left as it was; no password file and no terminal is refused too."""
    (tmp_path / "pw").write_text("pw\n")
    existing = tmp_path / "wallet.json"
    existing.write_text("precious")
    result = run_module(KEYFILE_TOOL, "new", str(existing), "--password-file", str(tmp_path / "pw"), clear=CLEAR)
    one_line_exit_2(result, "already exists", "never overwritten")
    assert existing.read_text() == "precious"
    one_line_exit_2(run_module(KEYFILE_TOOL, "new", str(tmp_path / "new.json"), clear=CLEAR), "--password-file")
    assert not (tmp_path / "new.json").exists()


def test_inspect_shows_kdf_cipher_and_address_but_never_the_key() -> None:
    """``inspect`` on a test keystore: its address, scrypt and aes-128-ctr; not its ciphertext or MAC."""
    path = KEYFILES / "microengine_keyfile"
    keystore = json.loads(path.read_text())
    result = run_module(KEYFILE_TOOL, "inspect", str(path), clear=CLEAR)
    assert result.returncode == 0, result.stderr
    assert keystore["address"].lower() in result.stdout.lower() and "aes-128-ctr" in result.stdout
    assert keystore["crypto"]["ciphertext"] not in result.stdout and keystore["crypto"]["mac"] not in result.stdout
    one_line_exit_2(run_module(KEYFILE_TOOL, "inspect", str(ROOT / "README.md"), clear=CLEAR), "not JSON")


# --- the roles' --signer ---------------------------------------------------------------------------------


def role(tmp_path: Path, *signer_args: str) -> subprocess.CompletedProcess[str]:
    args = ["--polyswarmd-addr", "127.0.0.1:9", "--insecure-transport", "--state-dir", str(tmp_path / "state")]
    return run_module(*VIEW, *args, *signer_args, clear=CLEAR)


def test_an_unreachable_signer_stops_a_role_at_start(tmp_path: Path, short_dir: Path) -> None:
    """No socket there, or nobody on the port: one line, exit 2, saying to start the signer."""
    one_line_exit_2(role(tmp_path, "--signer", str(short_dir / "gone.sock")), "no signer socket", "polyswarm-signer")
    one_line_exit_2(role(tmp_path, "--signer", "http://127.0.0.1:9"), "cannot reach the signer")


def test_exactly_one_of_signer_and_keyfile(tmp_path: Path) -> None:
    """Both, or neither: one line, exit 2."""
    keyfile = ["--keyfile", str(KEYFILES / "microengine_keyfile"), "--password", "password"]
    one_line_exit_2(role(tmp_path, *keyfile, "--signer", "/nowhere.sock"), "either --keyfile", "not both")
    one_line_exit_2(role(tmp_path), "--keyfile", "--signer")


def test_plain_http_to_another_host_is_refused(tmp_path: Path) -> None:
    """A bearer token would cross the network in clear: exit 2, pointing at a tunnel."""
    one_line_exit_2(role(tmp_path, "--signer", "http://192.0.2.7:8550"), "loopback", "SSH tunnel")


def test_a_socket_with_loose_permissions_is_refused(tmp_path: Path, short_dir: Path) -> None:
    """A live socket that its group and others may open: exit 2 naming the mode, before any request."""
    path = short_dir / "loose.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(1)
        path.chmod(0o666)
        one_line_exit_2(role(tmp_path, "--signer", str(path)), "mode 0666", "0600")


@pytest.fixture
def signer_on_a_port(short_dir: Path) -> Iterator[tuple[str, Path]]:
    """polyswarm-signer with --contracts only (no polyswarmd), on a loopback port; (its URL, its token file)."""
    contracts = short_dir / "contracts.json"
    side = {"nectar_token": TOKEN, "bounty_registry": REGISTRY, "erc20_relay": RELAY, "arbiter_staking": STAKING}
    contracts.write_text(json.dumps({"side": {"chain_id": 1338, "contracts": side}}))
    argv = [
        sys.executable, "-m", "polyswarmclient.cli.signer",
        "--keyfile", str(KEYFILES / "spare2_keyfile"), "--password", "password",
        "--contracts", str(contracts), "--state-dir", str(short_dir / "signer"), "--listen", "127.0.0.1:0",
    ]  # fmt: skip
    log = short_dir / "signer.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield found.group(1), short_dir / "signer" / "signer.token"
    finally:
        process.terminate()
        assert process.wait(10) == 0, log.read_text()


def test_a_wrong_token_stops_a_role_at_start(tmp_path: Path, signer_on_a_port: tuple[str, Path]) -> None:
    """The signer's own token file works; another token, or a token file others can read, is exit 2."""
    url, token_file = signer_on_a_port
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    good = role(tmp_path, "--signer", url, "--signer-token-file", str(token_file))
    assert good.returncode == 1 and "127.0.0.1:9" in good.stderr, good.stderr  # past the signer, to polyswarmd
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-right-token-at-all\n")
    wrong.chmod(0o600)
    one_line_exit_2(role(tmp_path, "--signer", url, "--signer-token-file", str(wrong)), "refused our token")
    wrong.chmod(0o644)
    one_line_exit_2(role(tmp_path, "--signer", url, "--signer-token-file", str(wrong)), "mode 0644")


def test_a_signer_with_nothing_to_sign_for_does_not_start(short_dir: Path) -> None:
    """Neither --polyswarmd-addr nor --contracts: one line, exit 2."""
    result = run_module(
        "polyswarmclient.cli.signer",
        *("--keyfile", str(KEYFILES / "spare2_keyfile"), "--password", "password", "--state-dir", str(short_dir)),
        clear=CLEAR,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1 and "--contracts" in lines[0]
