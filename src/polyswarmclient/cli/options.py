"""Each option declared once: flag, env var, type, default and help.

Commands build their click options from these declarations, ``docs/configuration.md`` is checked
against them by a test, and ``--help`` shows every env var. An option several commands share is declared
here once; a command that needs other help text uses ``dataclasses.replace(OPTION, help=...)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

F = Callable[..., Any]


@dataclass(frozen=True)
class Option:
    """One command-line option and the environment variable that sets it too."""

    flag: str
    envvar: str | None
    help: str
    type: Any = str
    default: Any = None
    is_flag: bool = False
    multiple: bool = False
    nargs: int = 1
    secret: bool = False
    metavar: str | None = None
    show_default: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def decorator(self) -> Callable[[F], F]:
        kwargs: dict[str, Any] = {
            "envvar": self.envvar,
            "show_envvar": self.envvar is not None,
            "help": self.help,
            "default": self.default,
            "show_default": self.show_default and not self.secret and self.default not in (None, (), False),
        }
        if self.is_flag:
            kwargs["is_flag"] = True
        else:
            kwargs["type"] = self.type
        if self.multiple:
            kwargs["multiple"] = True
        if self.nargs != 1:
            kwargs["nargs"] = self.nargs
        if self.metavar:
            kwargs["metavar"] = self.metavar
        kwargs.update(self.extra)
        return click.option(self.flag, self.name, **kwargs)


def apply(options: Sequence[Option]) -> Callable[[F], F]:
    """Decorate a click command with ``options`` (in the order given)."""

    def wrap(func: F) -> F:
        for option in reversed(options):
            func = option.decorator()(func)
        return func

    return wrap


LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False)

LOG = Option("--log", "LOG_LEVEL", "Log level.", type=LOG_LEVELS, default="WARNING")
LOG_FORMAT = Option(
    "--log-format", "LOG_FORMAT", "Log line format.", type=click.Choice(["text", "json"]), default="text"
)
POLYSWARMD_ADDR = Option(
    "--polyswarmd-addr",
    "POLYSWARMD_ADDR",
    "polyswarmd address: host:port or a full URL with an optional path prefix.",
    default="localhost:31337",
)
KEYFILE = Option(
    "--keyfile", "KEYFILE", "Path to the geth v3 keystore that signs transactions.", type=click.Path(path_type=Path)
)
PASSWORD = Option(
    "--password", "PASSWORD", "Keystore password (prefer --password-file or a TTY prompt).", secret=True
)
PASSWORD_FILE = Option(
    "--password-file",
    "PASSWORD_FILE",
    "File whose first line is the keystore password.",
    type=click.Path(path_type=Path),
)
API_KEY = Option("--api-key", "API_KEY", "polyswarmd API key, sent as the Authorization header.", secret=True)
INSECURE_TRANSPORT = Option(
    "--insecure-transport",
    "INSECURE_TRANSPORT",
    "Use http:// and ws:// when the address has no scheme (local devnets only).",
    is_flag=True,
)
ALLOW_KEY_OVER_HTTP = Option(
    "--allow-key-over-http",
    "ALLOW_KEY_OVER_HTTP",
    "Allow sending the API key over plain http (it can be read by anyone on the path).",
    is_flag=True,
)
STATE_DIR = Option(
    "--state-dir",
    "STATE_DIR",
    "Directory for durable state: pending reveals and settles, pinned contract addresses.",
    type=click.Path(path_type=Path),
    default=Path(".polyswarm-state"),
)

TESTING = Option(
    "--testing",
    "TESTING",
    "Test mode: handle N bounties, exit 0 once all are settled; errors become fatal. 0 = run until stopped.",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
)
CHAINS = Option(
    "--chains",
    "CHAINS",
    "Chain to work on; repeat the option (or separate with spaces in CHAINS) for both.",
    type=click.Choice(["home", "side"]),
    multiple=True,
    default=("side",),
)

DEVNET_PORT = Option(
    "--devnet-port",
    "DEVNET_PORT",
    "TCP port of the devnet server; 0 picks a free one.",
    type=click.IntRange(0, 65535),
    default=31337,
)
DEVNET_BLOCK_TIME = Option(
    "--devnet-block-time",
    "DEVNET_BLOCK_TIME",
    "Seconds between the devnet's wall-clock blocks on each embedded chain.",
    type=click.FloatRange(min=0.01),
    default=1.0,
)

MAX_TX_FEE = Option(
    "--max-tx-fee",
    "MAX_TX_FEE",
    "Most ether one transaction may cost in gas (gas x gasPrice, in ETH); polyswarmd's transactions above it "
    "are refused unsigned. Free sidechains cost 0.",
    default="0.05",
)

#: Options every networked command shares, in --help order.
CONNECTION: tuple[Option, ...] = (
    POLYSWARMD_ADDR,
    KEYFILE,
    PASSWORD,
    PASSWORD_FILE,
    API_KEY,
    INSECURE_TRANSPORT,
    ALLOW_KEY_OVER_HTTP,
    STATE_DIR,
    MAX_TX_FEE,
)
LOGGING: tuple[Option, ...] = (LOG, LOG_FORMAT)
