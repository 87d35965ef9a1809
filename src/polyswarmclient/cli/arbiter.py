"""``arbiter``: stake, vote ground truth on every bounty, and settle, with a pluggable backend."""

from __future__ import annotations

import logging
from typing import Any

import click

from polyswarmclient.backends.arbiter_loader import DEFAULT, list_arbiter_backends, load_arbiter_backend_class
from polyswarmclient.cli.common import guard, operations, serve
from polyswarmclient.cli.options import (
    CHAINS,
    CONNECTION,
    LOGGING,
    MAX_ARTIFACT_SIZE,
    OPERATIONS,
    TESTING,
    Option,
    apply,
    build,
    unique,
)
from polyswarmclient.cli.role_options import CONTEXT_SETTINGS, connect
from polyswarmclient.errors import ConfigError
from polyswarmclient.services.arbiter import Arbiter, ArbiterReport, ArbiterSettings

log = logging.getLogger("arbiter")

BACKEND = Option(
    "--backend",
    "BACKEND",
    f"Arbiter backend: a registered name ({', '.join(list_arbiter_backends())}) or module:Class.",
    default=DEFAULT,
)
OPTIONS: tuple[Option, ...] = (
    *CONNECTION,
    MAX_ARTIFACT_SIZE,
    *LOGGING,
    BACKEND,
    CHAINS.to(ArbiterSettings, convert=unique),
    TESTING.to(ArbiterSettings),
    *OPERATIONS,
)


def make_backend(slug: str) -> Any:
    """Load and instantiate the backend; every failure is a usage error (exit 2)."""
    cls = load_arbiter_backend_class(slug)
    try:
        return cls()
    except Exception as exc:
        raise ConfigError(f"arbiter backend {slug!r} could not be created: {exc.__class__.__name__}: {exc}") from None


@click.command("arbiter", context_settings=CONTEXT_SETTINGS)
@apply(OPTIONS)
@guard
def cli(**options: Any) -> None:
    """Stake up to the minimum, vote the backend's verdicts on every bounty, and settle.

    On start the arbiter deposits the shortfall up to the minimum stake (exit 1 with the amounts when
    the wallet cannot pay it). For each bounty it fetches and scans every artifact, checks the bounty's
    bloom, votes in the first block after the reveal window and settles once the vote window is over.
    It declines to vote, and logs why, when an artifact cannot be fetched or scanned. With --testing N
    it exits 0 after N bounties are settled (1 if it had to decline any).
    """
    backend = make_backend(options["backend"])
    settings = build(ArbiterSettings, OPTIONS, options)
    client = connect(options, OPTIONS)
    with operations(options):
        report: ArbiterReport = serve(
            client,
            lambda client, shutdown: Arbiter(client, backend, settings).run(shutdown),
            learn=("assertion", "staking"),
            grace=options["shutdown_grace"],
        )
    counts = map(len, (report.voted, report.settled, report.declined))
    log.info("arbiter done: %d voted, %d settled, %d declined", *counts)


def main() -> None:
    cli(prog_name="arbiter", auto_envvar_prefix=None)


__all__ = ["OPTIONS", "cli", "main"]
