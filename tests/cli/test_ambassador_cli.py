"""The ``ambassador`` command line: options, env vars, amount checks and usage errors."""

from __future__ import annotations

import pytest

from polyswarmclient.amounts import nct
from polyswarmclient.cli import ambassador as ambassador_cli
from polyswarmclient.cli.ambassador import OPTIONS, cli, settings_from
from tests.helpers import KEYFILES, cli_invoker, options_at_connect

KEYFILE = KEYFILES / "ambassador_keyfile"
invoke = cli_invoker(cli, "ambassador", clear=[o.envvar for o in OPTIONS if o.envvar])


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "is not a number"),
        ("0", "greater than 0"),
        ("0.0000000000000000001", "more than 18 decimal places"),
        ("nan", "no exponent, NaN or Infinity"),
    ],
)
def test_bad_bounty_amount_is_a_usage_error(amount: str, message: str) -> None:
    """An amount that is not an exact positive NCT decimal exits 2 and says why."""
    result = invoke("--bounty-amount", amount, "--keyfile", str(KEYFILE), "--password", "password")
    assert result.exit_code == 2
    assert message in result.output


def test_bad_bounty_amount_from_the_environment_is_a_usage_error() -> None:
    """BOUNTY_AMOUNT is checked like the flag."""
    result = invoke(env={"BOUNTY_AMOUNT": "-1", "KEYFILE": str(KEYFILE), "PASSWORD": "password"})
    assert result.exit_code == 2
    assert "negative" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["--duration", "0"],
        ["--artifacts-per-bounty", "0"],
        ["--artifacts-per-bounty", "257"],
        ["--submission-rate", "-1"],
        ["--chains", "moon"],
        ["--testing", "-2"],
    ],
)
def test_out_of_range_options_are_usage_errors(args: list[str]) -> None:
    """Durations, artifact counts, rates, chains and --testing are range-checked before anything runs."""
    result = invoke(*args, "--keyfile", str(KEYFILE), "--password", "password")
    assert result.exit_code == 2


def test_env_vars_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ambassador setting can come from the environment, amounts exactly."""
    env = {
        "BOUNTY_AMOUNT": "1.5",
        "DURATION": "7",
        "ARTIFACTS_PER_BOUNTY": "3",
        "SUBMISSION_RATE": "0.5",
        "TESTING": "4",
        "CHAINS": "side home",
        "MAX_IN_FLIGHT": "2",
        "NO_BOUNTY_METADATA": "1",
    }
    settings = settings_from(options_at_connect(monkeypatch, ambassador_cli, invoke, env))
    assert settings.bounty_amount == nct("1.5")
    assert (settings.duration, settings.artifacts_per_bounty, settings.submission_rate) == (7, 3, 0.5)
    assert (settings.testing, settings.chains, settings.max_in_flight) == (4, ("side", "home"), 2)
    assert settings.metadata is False


def test_defaults_post_the_minimum_on_side() -> None:
    """With no options the ambassador posts minimum-amount bounties of 1 artifact on side, 10 blocks."""
    settings = settings_from(
        {
            "chains": ("side",),
            "bounty_amount": None,
            "duration": 10,
            "artifacts_per_bounty": 1,
            "submission_rate": 5.0,
            "testing": 0,
            "max_in_flight": 10,
            "no_metadata": False,
        }
    )
    assert settings.bounty_amount is None and settings.chains == ("side",) and settings.metadata
