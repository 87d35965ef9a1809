"""Bad configuration is one line on stderr with exit 2 and no traceback, before anything connects."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers import KEYFILES, run_module

KEYFILE = KEYFILES / "microengine_keyfile"

CLEAR = ("POLYSWARMD_ADDR", "KEYFILE", "PASSWORD", "PASSWORD_FILE", "API_KEY", "STATE_DIR")


def _connection(tmp_path: Path, **overrides: str) -> list[str]:
    options = {
        "--keyfile": str(KEYFILE),
        "--password": "password",
        "--polyswarmd-addr": "127.0.0.1:9",
        "--state-dir": str(tmp_path / "state"),
        **overrides,
    }
    return [item for pair in options.items() for item in pair] + ["--insecure-transport"]


def _one_line_usage_error(result, *fragments: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("module", "head"),
    [
        ("polyswarmclient.cli.microengine", ["--backend", "eicar"]),
        ("polyswarmclient.cli.balancemanager", ["view-balance"]),
    ],
)
def test_a_state_dir_that_cannot_be_created(tmp_path: Path, module: str, head: list[str]) -> None:
    """--state-dir under a regular file: exit 2, one line naming --state-dir."""
    (tmp_path / "file").write_text("")
    args = _connection(tmp_path, **{"--state-dir": str(tmp_path / "file" / "state")})
    _one_line_usage_error(run_module(module, *head, *args, clear=CLEAR), "--state-dir")


def test_a_damaged_pin_file_is_noticed_at_start(tmp_path: Path) -> None:
    """A pin file that is not JSON stops the engine before it connects, saying which file to delete."""
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "known_contracts.json").write_text("{oops")
    result = run_module("polyswarmclient.cli.microengine", "--backend", "eicar", *_connection(tmp_path), clear=CLEAR)
    _one_line_usage_error(result, "known_contracts.json", "not valid JSON")


@pytest.mark.parametrize("addr", ["local host:31337", "localhost:31337\nx"])
def test_an_address_with_a_space_or_newline(tmp_path: Path, addr: str) -> None:
    """--polyswarmd-addr with a space or a newline inside is refused at once."""
    args = _connection(tmp_path, **{"--polyswarmd-addr": addr})
    result = run_module("polyswarmclient.cli.microengine", "--backend", "eicar", *args, clear=CLEAR)
    _one_line_usage_error(result, "--polyswarmd-addr")


@pytest.mark.parametrize(("amount", "why"), [("1e999", "no exponent"), ("1" * 120, "out of range")])
def test_an_amount_with_an_exponent_or_out_of_range(tmp_path: Path, amount: str, why: str) -> None:
    """balancemanager deposit 1e999 (or a 120-digit amount) is a usage error, never a number."""
    result = run_module("polyswarmclient.cli.balancemanager", "deposit", amount, *_connection(tmp_path), clear=CLEAR)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert why in " ".join(result.stderr.split())


def test_a_malformed_metrics_address_is_exit_2_before_anything_connects(tmp_path: Path) -> None:
    """--metrics-addr 9100 (no host): one line naming the option and the form it takes."""
    args = _connection(tmp_path, **{"--metrics-addr": "9100"})
    result = run_module("polyswarmclient.cli.microengine", "--backend", "eicar", *args, clear=CLEAR)
    _one_line_usage_error(result, "--metrics-addr (METRICS_ADDR)", "HOST:PORT", "0.0.0.0:9100")


def test_a_metrics_port_in_use_is_exit_1_in_one_line(tmp_path: Path) -> None:
    """Another process holds the metrics port: one line saying so, exit 1 (runtime), before polyswarmd is asked."""

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        args = _connection(tmp_path, **{"--metrics-addr": f"127.0.0.1:{port}"})
        result = run_module("polyswarmclient.cli.microengine", "--backend", "eicar", *args, clear=CLEAR)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1, result.stderr
    assert lines == [
        f"Error: --metrics-addr (METRICS_ADDR): 127.0.0.1:{port} is already in use; stop the other "
        "process or pick another port"
    ]


def test_metrics_with_the_devnet_demo_is_refused() -> None:
    """microengine --devnet is a demo that ends: --metrics-addr with it says to run the two commands instead."""
    result = run_module(
        "polyswarmclient.cli.microengine",
        "--devnet",
        "--backend",
        "eicar",
        "--metrics-addr",
        "127.0.0.1:0",
        clear=CLEAR,
    )
    _one_line_usage_error(result, "--metrics-addr (METRICS_ADDR)", "polyswarmd-devnet")
