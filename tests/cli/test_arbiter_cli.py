"""The ``arbiter`` command line: options, env vars, backend choice and usage errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from polyswarmclient.backends.verbatim import VerbatimArbiter
from polyswarmclient.cli import arbiter as arbiter_cli
from polyswarmclient.cli.arbiter import OPTIONS, cli, make_backend
from polyswarmclient.errors import BackendNotFound

KEYFILE = Path(__file__).resolve().parents[2] / "keyfiles-testing" / "arbiter_keyfile"


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="arbiter")


def test_help_shows_every_option_with_its_env_var() -> None:
    """``arbiter --help`` lists every option next to the environment variable that also sets it."""
    result = invoke("--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for option in OPTIONS:
        assert option.flag in text
        assert option.envvar is not None, option.flag
        assert f"env var: {option.envvar}" in text, option.flag
    for env in ("BACKEND", "TESTING", "CHAINS", "POLYSWARMD_ADDR", "KEYFILE", "LOG_LEVEL"):
        assert f"env var: {env}" in text
    assert "default: verbatim" in text


def test_default_backend_is_verbatim() -> None:
    """With no --backend the arbiter votes the devnet corpus's ground truth (a backend that exists)."""
    assert isinstance(make_backend("verbatim"), VerbatimArbiter)
    assert type(make_backend("eicar")).__name__ == "EicarScanner"
    backend = make_backend("polyswarmclient.backends.verbatim:VerbatimArbiter")
    assert isinstance(backend, VerbatimArbiter)


def test_unknown_backend_is_a_usage_error_with_a_suggestion() -> None:
    """A misspelt backend exits 2 and suggests the closest installed one."""
    result = invoke("--backend", "verbatin", "--keyfile", str(KEYFILE), "--password", "password")
    assert result.exit_code == 2
    assert "Did you mean 'verbatim'?" in result.output
    with pytest.raises(BackendNotFound, match="no module named"):
        make_backend("no_such_module:Thing")


def test_missing_keyfile_is_a_usage_error() -> None:
    """No keyfile, or a path that does not exist, exits 2 with a hint at --keyfile / KEYFILE."""
    result = invoke("--password", "password")
    assert result.exit_code == 2
    assert "KEYFILE" in result.output
    result = invoke(env={"KEYFILE": "/nonexistent/keyfile", "PASSWORD": "password"})
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_wrong_password_is_a_usage_error() -> None:
    """A password that does not open the keystore exits 2 without echoing the password."""
    result = invoke("--keyfile", str(KEYFILE), "--password", "not-the-password")
    assert result.exit_code == 2
    assert "wrong password" in result.output
    assert "not-the-password" not in result.output


@pytest.mark.parametrize("args", [["--chains", "moon"], ["--testing", "-1"], ["--testing", "x"]])
def test_bad_chains_and_testing_are_usage_errors(args: list[str]) -> None:
    """Only side/home are chains and --testing is a count; anything else exits 2 before connecting."""
    result = invoke(*args, "--keyfile", str(KEYFILE), "--password", "password")
    assert result.exit_code == 2


def test_env_vars_reach_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """BACKEND, CHAINS and TESTING from the environment configure the arbiter."""
    seen: dict[str, Any] = {}

    def fake_connect(options: dict[str, Any]) -> None:
        seen.update(options)
        raise SystemExit(0)

    monkeypatch.setattr(arbiter_cli, "connect", fake_connect)
    result = invoke(env={"BACKEND": "eicar", "CHAINS": "side home", "TESTING": "3"})
    assert result.exit_code == 0, result.output
    assert (seen["backend"], seen["chains"], seen["testing"]) == ("eicar", ("side", "home"), 3)
