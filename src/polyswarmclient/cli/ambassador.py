"""``ambassador``: post bounties on the devnet's demo corpus (half EICAR, half benign) and settle them."""

from __future__ import annotations

import logging
import operator
from typing import Any

import click

from polyswarmclient.cli.common import guard, operations, serve
from polyswarmclient.cli.options import (
    CHAINS,
    CONNECTION,
    LOGGING,
    OPERATIONS,
    TESTING,
    Option,
    apply,
    build,
    setting,
    unique,
)
from polyswarmclient.cli.role_options import CONTEXT_SETTINGS, NCT_AMOUNT, connect
from polyswarmclient.samples import Corpus
from polyswarmclient.services.ambassador import Ambassador, AmbassadorReport, AmbassadorSettings
from polyswarmclient.wire.bits import MAX_ARTIFACTS

log = logging.getLogger("ambassador")

BOUNTY_AMOUNT = setting(
    AmbassadorSettings,
    "bounty_amount",
    "NCT offered per bounty, an exact decimal. Default: the contract minimum per artifact x --artifacts-per-bounty.",
    type=NCT_AMOUNT,
    metavar="NCT",
)
DURATION = setting(
    AmbassadorSettings,
    "duration",
    "Blocks until each bounty expires; at most polyswarmd's max_duration.",
    type=click.IntRange(min=1),
    metavar="BLOCKS",
)
ARTIFACTS_PER_BOUNTY = setting(
    AmbassadorSettings,
    "artifacts_per_bounty",
    "Artifacts in each bounty, uploaded together in one request.",
    type=click.IntRange(min=1, max=MAX_ARTIFACTS),
)
SUBMISSION_RATE = setting(
    AmbassadorSettings,
    "submission_rate",
    "Seconds to wait after posting a bounty before posting the next (0 = as fast as --max-in-flight allows).",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
)
MAX_IN_FLIGHT = setting(
    AmbassadorSettings,
    "max_in_flight",
    "Bounties posted but not yet settled, at most; posting pauses at the limit.",
    type=click.IntRange(min=1),
)
NO_METADATA = setting(
    AmbassadorSettings,
    "metadata",
    "Do not post bounty metadata (file names, sizes, mimetypes, hashes) with each bounty.",
    flag="--no-metadata",
    envvar="NO_BOUNTY_METADATA",
    is_flag=True,
    convert=operator.not_,
    show=operator.not_,
)

OPTIONS: tuple[Option, ...] = (
    *CONNECTION,
    *LOGGING,
    CHAINS.to(AmbassadorSettings, convert=unique),
    TESTING.to(AmbassadorSettings),
    BOUNTY_AMOUNT,
    DURATION,
    ARTIFACTS_PER_BOUNTY,
    SUBMISSION_RATE,
    MAX_IN_FLIGHT,
    NO_METADATA,
    *OPERATIONS,
)


def settings_from(options: dict[str, Any]) -> AmbassadorSettings:
    return build(AmbassadorSettings, OPTIONS, options)


@click.command("ambassador", context_settings=CONTEXT_SETTINGS)
@apply(OPTIONS)
@guard
def cli(**options: Any) -> None:
    """Post bounties on the demo corpus (half EICAR test files, half benign text) and settle them.

    Each bounty is settled on quorum, when somebody else settles it, or once its vote window is over.
    With --testing N the ambassador posts N bounties per chain and exits 0 when all are settled; a low
    balance, a failed upload or a failed transaction then exits 1. Without it, those are logged and
    retried. Stop with SIGTERM or Ctrl-C: posting stops and open bounties get a grace period to settle.
    """
    settings = settings_from(options)
    corpus = Corpus.for_bounties(settings.artifacts_per_bounty)
    client = connect(options)
    with operations(options):
        report: AmbassadorReport = serve(
            client,
            lambda client, shutdown: Ambassador(client, corpus, settings).run(shutdown),
            learn=("assertion",),
            grace=options["shutdown_grace"],
        )
    counts = map(len, (report.posted, report.settled, report.failed))
    log.info("ambassador done: %d posted, %d settled, %d failed", *counts)


def main() -> None:
    cli(prog_name="ambassador", auto_envvar_prefix=None)


__all__ = ["OPTIONS", "cli", "main"]
