"""`microengine new` writes a package that installs, registers its slug and passes its own devnet test.

The package is built and installed with ``pip install --no-deps --target`` into a directory of its own
(put on PYTHONPATH for the commands below), so the shared environment is never changed: its entry point
is then seen exactly as an installed one is.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.harness import command


def _run(*args: str, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_new_engine_installs_lists_its_slug_and_passes_its_devnet_test(tmp_path: Path) -> None:
    """new acme-scanner, pip install of the result: --list-backends shows acme_scanner, and the generated
    tests (a scan check and a `microengine --devnet --testing 2` run) pass unchanged."""
    env = {k: v for k, v in os.environ.items() if k not in ("BACKEND", "TESTING", "DEVNET", "PYTHONPATH")}
    created = _run(*command("microengine"), "new", "acme-scanner", "--directory", str(tmp_path), cwd=tmp_path, env=env)
    assert created.returncode == 0, created.stderr
    root = tmp_path / "acme-scanner"
    site = tmp_path / "site"
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q", "--no-deps", *isolation]
    installed = _run(*pip, "--target", str(site), str(root), cwd=tmp_path, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    env["PYTHONPATH"] = str(site)
    listed = _run(*command("microengine"), "--list-backends", cwd=tmp_path, env=env, timeout=60)
    assert "acme_scanner" in listed.stdout.split(), listed.stdout + listed.stderr
    tested = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=root, env=env, timeout=400)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "2 passed" in tested.stdout
