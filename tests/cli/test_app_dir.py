"""``--backend module:Class`` from where the engine is written: the console script looks in --app-dir (default
the working directory), which a console script otherwise never puts on sys.path."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from polyswarmclient.cli.microengine import MICROENGINE_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "microengine"

ENGINE = textwrap.dedent(
    """
    from polyswarmclient.abstractscanner import AbstractScanner, ScanResult

    class Scanner(AbstractScanner):
        async def scan_async(self, guid, artifact_type, content, metadata, chain):
            return ScanResult(bit=True, verdict=b"EICAR-STANDARD" in content, confidence=1.0)
    """
)
# Found, then refuses to import: proves where the loader looked without starting any network.
FOUND = 'raise RuntimeError("loaded from the app dir")\n'


def _run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.fail(f"the microengine console script is not installed next to {sys.executable}: pip install -e .")
    environ = {k: v for k, v in os.environ.items() if k not in {o.envvar for o in MICROENGINE_OPTIONS if o.envvar}}
    environ.pop("PYTHONPATH", None)  # as a user runs it: only what is installed
    environ.update(env or {})
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def test_module_in_the_working_directory_is_found(tmp_path: Path) -> None:
    """`microengine --backend my_engine:Scanner` run from the engine's directory imports ./my_engine.py."""
    (tmp_path / "my_engine.py").write_text(FOUND)
    result = _run(tmp_path, "--backend", "my_engine:Scanner")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: backend 'my_engine:Scanner': importing module 'my_engine' failed with RuntimeError: "
        "loaded from the app dir"
    ]


def test_app_dir_option_and_env_point_elsewhere(tmp_path: Path) -> None:
    """--app-dir DIR (or APP_DIR) finds an engine package by name from any working directory."""
    engines = tmp_path / "engines"
    (engines / "acme_engine").mkdir(parents=True)
    (engines / "acme_engine" / "__init__.py").write_text(FOUND)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missing = _run(elsewhere, "--backend", "acme_engine")
    assert missing.returncode == 2 and "unknown backend 'acme_engine'" in missing.stderr
    for result in (
        _run(elsewhere, "--backend", "acme_engine", "--app-dir", str(engines)),
        _run(elsewhere, "--backend", "acme_engine", env={"APP_DIR": "../engines"}),
    ):
        assert result.returncode == 2
        assert "RuntimeError: loaded from the app dir" in result.stderr


def test_help_says_the_working_directory_is_searched(tmp_path: Path) -> None:
    """--help documents --app-dir and its default, the working directory."""
    result = _run(tmp_path, "--help")
    text = " ".join(result.stdout.split())
    assert "--app-dir" in text and "default: the working directory" in text


def test_documented_devnet_command_runs_an_engine_from_its_directory(tmp_path: Path) -> None:
    """docs/backends.md's `microengine --devnet --backend my_engine:Scanner --testing 1`, run from the
    directory holding my_engine.py, scans the bounty and exits 0."""
    (tmp_path / "my_engine.py").write_text(ENGINE)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _run(
        tmp_path, "--devnet", "--backend", "my_engine:Scanner", "--testing", "1", env={"DEVNET_PORT": str(port)}
    )
    assert result.returncode == 0, result.stderr
    assert "summary: bounties seen 1, asserted 1, correct 1, wrong 0" in result.stdout
