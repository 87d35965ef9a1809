"""``polyswarmd-devnet`` as a real subprocess: starts, prints its banner, serves, and exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _command() -> list[str]:
    """The installed console script when there is one, else the same ``main`` via ``-m``."""
    script = shutil.which("polyswarmd-devnet", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "polyswarmclient.cli.devnet"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    for name in list(env):
        if name.startswith("DEVNET_"):
            del env[name]
    return env


def _state_files(pid: int) -> list[str]:
    """The files under a state directory the process holds open (Linux: from /proc)."""
    fds = Path(f"/proc/{pid}/fd")
    targets = []
    for fd in fds.iterdir():
        try:
            targets.append(os.readlink(fd))
        except OSError:
            continue
    return [t for t in targets if "polyswarm-devnet-state-" in t]


def test_devnet_cli_serves_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The CLI prints its address, chain ids and contracts, answers /status, and exits 0 on SIGTERM. Each
    embedded chain's state lives in a file under --state-dir that is unlinked at once, so the directory is
    empty while the devnet runs and after it stops."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    process = subprocess.Popen(
        [
            *_command(),
            *("--port", "0", "--block-time", "0.5", "--keyfiles-dir", str(ROOT / "keyfiles-testing")),
            *("--state-dir", str(state_dir)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=str(ROOT),
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        url = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"listening on (http://\S+)", line)
            if match:
                url = match.group(1)
            if url and "funded" in line:
                break
        assert url, f"no banner; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        with urllib.request.urlopen(url + "/status", timeout=5) as response:
            status = json.loads(response.read())
        assert status["status"] == "OK" and status["result"]["side"]["reachable"] is True
        banner = "".join(lines)
        assert "chain id 1337" in banner and "chain id 1338" in banner and "BountyRegistry" in banner
        if sys.platform.startswith("linux"):
            held = _state_files(process.pid)
            assert len(held) == 2 and all(f.startswith(str(state_dir)) and f.endswith("(deleted)") for f in held), held
        assert list(state_dir.iterdir()) == []

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert list(state_dir.iterdir()) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
