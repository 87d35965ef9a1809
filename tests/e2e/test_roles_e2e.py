"""``ambassador`` and ``arbiter`` as real processes against ``polyswarmd-devnet`` (slow; run with -m e2e)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
KEYFILES = ROOT / "keyfiles-testing"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")]))
    for name in ("POLYSWARMD_ADDR", "KEYFILE", "PASSWORD", "API_KEY", "TESTING", "BACKEND", "CHAINS"):
        env.pop(name, None)
    return env


def _command(module: str) -> list[str]:
    return [sys.executable, "-c", f"from polyswarmclient.cli.{module} import main; main()"]


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [*_command("devnet"), "--port", str(port), "--block-time", "0.2", "--reveal-window", "3"]
        + ["--vote-window", "4", "--keyfiles-dir", str(KEYFILES)],
        env=_env(),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                stderr = proc.stderr.read() if proc.stderr else b""
                raise AssertionError(f"the devnet did not start: {stderr!r}") from None
            time.sleep(0.2)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_ambassador_and_arbiter_settle_two_bounties_and_exit_0(devnet: str, tmp_path: Path) -> None:
    """--testing 2 on both: two bounties posted, voted, settled; both processes exit 0."""
    common = ["--polyswarmd-addr", devnet, "--insecure-transport", "--password", "password", "--testing", "2"]
    arbiter = subprocess.Popen(
        [*_command("arbiter"), *common, "--keyfile", str(KEYFILES / "arbiter_keyfile")]
        + ["--state-dir", str(tmp_path / "arbiter"), "--log", "INFO"],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    ambassador = subprocess.Popen(
        [*_command("ambassador"), *common, "--keyfile", str(KEYFILES / "ambassador_keyfile")]
        + ["--state-dir", str(tmp_path / "ambassador"), "--duration", "3", "--submission-rate", "0.2"]
        + ["--artifacts-per-bounty", "2", "--log", "INFO"],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, amb_log = ambassador.communicate(timeout=120)
        _, arb_log = arbiter.communicate(timeout=120)
    finally:
        for proc in (ambassador, arbiter):
            if proc.poll() is None:
                proc.kill()
    assert ambassador.returncode == 0, amb_log
    assert arbiter.returncode == 0, arb_log
    assert amb_log.count("posted bounty") == 2
    assert arb_log.count("voting on bounty") == 2
    assert "2 settled" in arb_log and "2 settled" in amb_log
