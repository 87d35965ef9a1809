"""What the ``ambassador`` and ``arbiter`` command lines share (``cli/role_options.py``): every option shown
with its env var, and a missing keyfile is a usage error whichever way it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import click
import pytest
from click.testing import Result

from polyswarmclient.cli import ambassador, arbiter
from polyswarmclient.cli.options import Option
from tests.helpers import cli_invoker


@dataclass(frozen=True)
class Role:
    name: str
    command: click.Command
    options: tuple[Option, ...]
    env_vars: tuple[str, ...]  # the ones a user of polyswarm-client looks for, named again on purpose
    invoke: Callable[..., Result] = field(init=False)

    def __post_init__(self) -> None:
        clear = [o.envvar for o in self.options if o.envvar]
        object.__setattr__(self, "invoke", cli_invoker(self.command, self.name, clear=clear))


ROLES = [
    Role(
        "ambassador",
        ambassador.cli,
        ambassador.OPTIONS,
        ("BOUNTY_AMOUNT", "DURATION", "ARTIFACTS_PER_BOUNTY", "SUBMISSION_RATE", "TESTING", "CHAINS"),
    ),
    Role(
        "arbiter",
        arbiter.cli,
        arbiter.OPTIONS,
        ("BACKEND", "TESTING", "CHAINS", "POLYSWARMD_ADDR", "KEYFILE", "LOG_LEVEL"),
    ),
]
roles = pytest.mark.parametrize("role", ROLES, ids=[role.name for role in ROLES])


@roles
def test_help_shows_every_option_with_its_env_var(role: Role) -> None:
    """``--help`` lists every option next to the environment variable that also sets it."""
    result = role.invoke("--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for option in role.options:
        assert option.flag in text
        assert option.envvar is not None, option.flag
        assert f"env var: {option.envvar}" in text, option.flag
    for env in role.env_vars:
        assert f"env var: {env}" in text


@roles
def test_missing_keyfile_is_a_usage_error(role: Role) -> None:
    """No keyfile, or a path that does not exist (flag or KEYFILE), exits 2 with a hint at --keyfile / KEYFILE."""
    result = role.invoke("--password", "password")
    assert result.exit_code == 2
    assert "KEYFILE" in result.output
    for result in (
        role.invoke("--keyfile", "/nonexistent/keyfile", "--password", "password"),
        role.invoke(env={"KEYFILE": "/nonexistent/keyfile", "PASSWORD": "password"}),
    ):
        assert result.exit_code == 2
        assert "does not exist" in result.output
