"""Signal policy shared by every command: the first SIGTERM drains, a second one stops at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A service that reports when it runs, and on a stop request "drains" for DRAIN seconds.
SERVICE = """
import asyncio, sys
from polyswarmclient.cli.common import run

async def main(shutdown):
    print("running", flush=True)
    await shutdown.wait()
    print("draining", flush=True)
    await asyncio.sleep(float(sys.argv[1]))
    print("drained", flush=True)

run(main)
"""


def _start(drain: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVICE, str(drain)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    return proc


def test_first_signal_drains_then_exits_0() -> None:
    """SIGTERM lets in-flight work finish, then the process exits 0."""
    proc = _start(drain=0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert out.split() == ["draining", "drained"]


def test_second_signal_stops_at_once_with_exit_1() -> None:
    """A second SIGINT during a long drain stops now: exit 1, one error line, no traceback."""
    proc = _start(drain=60)
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "draining"
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert proc.returncode == 1
    assert "drained" not in out
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: stopped before in-flight work finished"], err
    assert "Traceback" not in err
