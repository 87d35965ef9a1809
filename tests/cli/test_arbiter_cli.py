"""The ``arbiter`` command line: options, env vars, backend choice and usage errors."""

from __future__ import annotations

import pytest

from polyswarmclient.backends.verbatim import VerbatimArbiter
from polyswarmclient.cli import arbiter as arbiter_cli
from polyswarmclient.cli.arbiter import OPTIONS, cli, make_backend
from polyswarmclient.errors import BackendNotFound
from tests.helpers import KEYFILES, cli_invoker, options_at_connect

KEYFILE = KEYFILES / "arbiter_keyfile"
invoke = cli_invoker(cli, "arbiter", clear=[o.envvar for o in OPTIONS if o.envvar])


def test_default_backend_is_verbatim() -> None:
    """With no --backend the arbiter votes the devnet corpus's ground truth (a backend that exists)."""
    assert "default: verbatim" in " ".join(invoke("--help").output.split())
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
    env = {"BACKEND": "eicar", "CHAINS": "side home", "TESTING": "3"}
    seen = options_at_connect(monkeypatch, arbiter_cli, invoke, env)
    assert (seen["backend"], seen["chains"], seen["testing"]) == ("eicar", ("side", "home"), 3)
