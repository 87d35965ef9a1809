"""A production install (no ``[devnet]`` extra) imports and runs without the devnet, the demo or an EVM.

Each test runs a fresh interpreter whose import system refuses the devnet side of the package and the
devnet extra's packages (``eth_tester``; py-evm, imported as ``eth``; ``evm``; ``web3``), the way they are
missing from a plain ``pip install polyswarm-kit``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "polyswarmclient"

#: What only the devnet extra brings: the EVM packages and web3 (external nodes).
EXTRA = ("eth_tester", "eth", "evm", "web3")
#: The package's own devnet side: the local community and the demo that runs one.
DEVNET_SIDE = ("polyswarmclient.devnet", "polyswarmclient.demo")
#: The command-line front ends of the devnet side; they may import it (after require_devnet_extra).
DEVNET_FRONT_ENDS = {"polyswarmclient.cli.demo", "polyswarmclient.cli.devnet"}

_REFUSE = """
import importlib.abc
import sys

REFUSED = {refused!r}


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == r or name.startswith(r + ".") for r in REFUSED):
            raise ModuleNotFoundError(f"No module named {{name!r}} (not in a production install)", name=name)
        return None


sys.meta_path.insert(0, Refuse())
"""


def _run(refused: tuple[str, ...], body: str) -> subprocess.CompletedProcess[str]:
    script = _REFUSE.format(refused=refused) + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items() if k not in {"DEVNET", "BACKEND", "LOG_LEVEL"}}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", script],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def _production_modules() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = ("polyswarmclient", *path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if name in DEVNET_FRONT_ENDS or any(name == d or name.startswith(d + ".") for d in DEVNET_SIDE):
            continue
        names.append(name)
    return names


def test_every_production_module_imports_without_the_devnet() -> None:
    """Every module outside devnet/, demo/ and their two CLI front ends imports with both refused."""
    modules = _production_modules()
    assert "polyswarmclient.cli.microengine" in modules and "polyswarmclient.backends.verbatim" in modules
    result = _run(
        DEVNET_SIDE + EXTRA,
        f"""
        import importlib

        for name in {modules!r}:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in {EXTRA!r} or m.startswith({DEVNET_SIDE!r}))
        assert not leaked, leaked
        print("imported", len({modules!r}))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {len(modules)}"


def test_every_command_answers_help_without_the_devnet() -> None:
    """``--help`` of microengine, balancemanager, ambassador and arbiter runs with the devnet refused."""
    result = _run(
        DEVNET_SIDE + EXTRA,
        """
        from polyswarmclient.cli import ambassador, arbiter, balancemanager, microengine

        commands = {
            "microengine": microengine.cli,
            "balancemanager": balancemanager.cli,
            "ambassador": ambassador.cli,
            "arbiter": arbiter.cli,
        }
        for prog, command in commands.items():
            assert command.main(["--help"], prog_name=prog, standalone_mode=False) == 0, prog
        """,
    )
    assert result.returncode == 0, result.stderr
    for prog in ("microengine", "balancemanager", "ambassador", "arbiter"):
        assert f"Usage: {prog} " in result.stdout
    assert "--devnet" in result.stdout and "--backend" in result.stdout


def test_microengine_devnet_without_the_extra_is_the_one_line_hint() -> None:
    """``microengine --devnet`` without the EVM packages says which pip install fixes it, exit 2."""
    result = _run(
        EXTRA,
        """
        from polyswarmclient.cli.microengine import cli

        cli(["--devnet", "--backend", "eicar"], prog_name="microengine")
        """,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: --devnet needs the devnet extra (eth is not installed): pip install 'polyswarm-kit[devnet]'"
    ]


#: What answering ``--help`` or a usage error must not import: the signing and network stacks, and the
#: entry-point machinery (importlib.metadata pulls in email and zipfile) that only a backend lookup needs.
HEAVY = ("eth_account", "eth_keyfile", "aiohttp", "websockets", "importlib.metadata")


def test_microengine_help_and_usage_errors_import_no_signing_or_network_stack() -> None:
    """``microengine --help`` and a bad option answer without importing eth-account, aiohttp, websockets or
    importlib.metadata (importing eth-account alone took 0.4 s), so they answer at once."""
    result = _run(
        HEAVY,
        """
        import sys

        from polyswarmclient.cli.microengine import cli

        assert cli.main(["--help"], prog_name="microengine", standalone_mode=False) == 0
        try:
            cli.main(["--testing", "-1"], prog_name="microengine")
        except SystemExit as exit:
            print("usage error exit", exit.code)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: microengine " in result.stdout and "usage error exit 2" in result.stdout


def test_without_the_redis_extra_the_scan_queue_is_one_line_and_exit_2() -> None:
    """``worker`` and ``microengine --scan-queue`` without the redis package say which extra to install
    (exit 2), and ``worker --help`` works without it."""
    done = _run(
        ("redis",),
        """
        import sys
        from click.testing import CliRunner
        from polyswarmclient.cli import microengine, worker

        help = CliRunner().invoke(worker.cli, ["--help"])
        assert help.exit_code == 0, help.output
        for command, args in (
            (worker.cli, ["--backend", "eicar", "--scan-queue", "redis://127.0.0.1:1/0"]),
            (microengine.cli, ["--backend", "eicar", "--scan-queue", "redis://127.0.0.1:1/0"]),
        ):
            result = CliRunner().invoke(command, args)
            print(result.exit_code, result.output.strip())
        """,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout
    for line in lines:
        assert line.startswith("2 Error: --scan-queue needs the redis extra"), line
        assert "pip install 'polyswarm-kit[redis]'" in line
