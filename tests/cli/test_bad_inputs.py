"""Bad configuration is one line on stderr with exit 2 and no traceback, before anything connects."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers import KEYFILES, run_module

KEYFILE = KEYFILES / "microengine_keyfile"

CLEAR = (
    "POLYSWARMD_ADDR",
    "KEYFILE",
    "PASSWORD",
    "PASSWORD_FILE",
    "API_KEY",
    "STATE_DIR",
    "COMMUNITIES",
    "API_KEY_FILE",
)


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


def _communities(tmp_path: Path, *entries: str) -> list[str]:
    args = _connection(tmp_path)
    at = args.index("--polyswarmd-addr")
    del args[at : at + 2]
    return [*args, *(item for entry in entries for item in ("--community", entry))]


@pytest.mark.parametrize(
    ("extra", "env", "fragments"),
    [
        (["--community", "a=127.0.0.1:9"], {}, ("--community", "given twice")),
        (["--api-key", "b=s3cr3t"], {}, ("--api-key (API_KEY)", "no --community of that name")),
        (["--polyswarmd-addr", "127.0.0.1:9"], {}, ("--polyswarmd-addr", "--community", "not both")),
        ([], {"POLYSWARMD_ADDR": "127.0.0.1:9"}, ("--polyswarmd-addr", "not both")),
        (["--community", "bad"], {}, ("--community (COMMUNITIES)", "NAME=URL")),
        (["--scan-queue", "redis://127.0.0.1:9"], {}, ("--scan-queue", "one engine per community")),
        (["--contracts", "c.json"], {}, ("--contracts", "--community")),
        (["--signer", "unix:///nonexistent.sock"], {}, ("--signer (SIGNER)", "--keyfile")),
    ],
)
def test_a_bad_community_option_is_one_line_before_anything_connects(
    tmp_path: Path, extra: list[str], env: dict[str, str], fragments: tuple[str, ...]
) -> None:
    """microengine --community mistakes: a repeated name, a key for no community, --polyswarmd-addr too..."""
    args = [*_communities(tmp_path, "a=127.0.0.1:9"), *extra]
    result = run_module("polyswarmclient.cli.microengine", "--backend", "eicar", *args, clear=CLEAR, env=env)
    _one_line_usage_error(result, *fragments)
    assert "s3cr3t" not in result.stderr  # a key is never echoed


def test_communities_from_the_environment_are_checked_too(tmp_path: Path) -> None:
    """COMMUNITIES is a space-separated list of NAME=URL; a malformed entry there is one line too."""
    result = run_module(
        "polyswarmclient.cli.microengine",
        "--backend",
        "eicar",
        *[a for a in _connection(tmp_path) if a not in ("--polyswarmd-addr", "127.0.0.1:9")],
        clear=CLEAR,
        env={"COMMUNITIES": "a=127.0.0.1:9 b"},
    )
    _one_line_usage_error(result, "--community (COMMUNITIES)", "'b'")


def test_a_devnet_whose_two_chains_share_a_chain_id_is_refused() -> None:
    """polyswarmd-devnet --home-chain-id 7 --side-chain-id 7: one line, exit 2."""
    result = run_module("polyswarmclient.cli.devnet", "--home-chain-id", "7", "--side-chain-id", "7", "--port", "0")
    _one_line_usage_error(result, "--home-chain-id", "different")


def test_state_of_a_single_community_engine_is_not_left_behind(tmp_path: Path) -> None:
    """Pending records in --state-dir itself would never be revealed by the engines of --state-dir/NAME."""
    records = tmp_path / "state" / "microengine" / "0xd595c0c90498619daead4fb67886a1f06c1b3c17"
    records.mkdir(parents=True)
    (records / "side-7f3c0c6e-0000-4000-8000-000000000000.json").write_text("{}")
    args = _communities(tmp_path, "a=127.0.0.1:9", "b=127.0.0.1:10")
    result = run_module("polyswarmclient.cli.microengine", "--backend", "eicar", *args, clear=CLEAR)
    _one_line_usage_error(result, "1 bounty record(s)", "state/NAME", "a or b")


def test_maintain_checks_its_communities_and_an_old_journal(tmp_path: Path) -> None:
    """balancemanager maintain --community: a repeated name is one line; so is a journal left in --state-dir."""
    args = _communities(tmp_path, "a=127.0.0.1:9", "a=127.0.0.1:10")
    result = run_module("polyswarmclient.cli.balancemanager", "maintain", "1", "1", *args, clear=CLEAR)
    _one_line_usage_error(result, "--community", "given twice")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "balancemanager-0x5702046d922a4c7381aebf6ea4c021e8bb468704.json").write_text("{}")
    args = _communities(tmp_path, "a=127.0.0.1:9", "b=127.0.0.1:10")
    result = run_module("polyswarmclient.cli.balancemanager", "maintain", "1", "1", *args, clear=CLEAR)
    _one_line_usage_error(result, "transfer journal", "state/NAME")
