"""``microengine --scan-queue`` and ``worker`` at start: bad or unreachable Redis is one line and exit 2."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import unused_port
from tests.redis.conftest import ROOT


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"from polyswarmclient.cli.{module} import main; main()", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src")},
    )


def test_worker_with_unreachable_redis_exits_2_with_one_line() -> None:
    port = unused_port()
    done = run("worker", "--backend", "eicar", "--scan-queue", f"redis://127.0.0.1:{port}/0")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert f"cannot reach Redis at redis://127.0.0.1:{port}/0" in done.stderr
    assert "Traceback" not in done.stderr


def test_microengine_with_unreachable_redis_exits_2_before_polyswarmd_is_contacted(tmp_path: object) -> None:
    port = unused_port()
    done = run(
        "microengine",
        "--backend", "eicar", "--keyfile", str(ROOT / "keyfiles-testing" / "microengine_keyfile"),
        "--password", "password", "--scan-queue", f"redis://:hunter2@127.0.0.1:{port}/0",
        "--polyswarmd-addr", f"127.0.0.1:{unused_port()}", "--insecure-transport",
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "cannot reach Redis at redis://:***@127.0.0.1" in done.stderr
    assert "hunter2" not in done.stderr


def test_a_bad_scan_queue_address_says_what_a_good_one_looks_like() -> None:
    done = run("worker", "--backend", "eicar", "--scan-queue", "http://localhost:6379")
    assert done.returncode == 2
    assert "use redis://HOST:PORT/DB" in done.stderr


def test_the_devnet_demo_refuses_a_scan_queue_rather_than_ignoring_it() -> None:
    done = run("microengine", "--devnet", "--backend", "eicar", "--scan-queue", "redis://127.0.0.1:6379/0")
    assert done.returncode == 2
    assert "--scan-queue (SCAN_QUEUE) hands scans to worker processes" in done.stderr
