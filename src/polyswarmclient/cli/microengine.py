"""``microengine``: scan bounties with a backend and assert on them (commit, reveal, settle).

With ``--devnet`` it runs a whole local marketplace instead (:mod:`polyswarmclient.demo`, printed by
:mod:`polyswarmclient.cli.demo`).

Exit codes: 0 when stopped or when ``--testing N`` is complete, 1 on a fatal error at run time, 2 on a
usage or configuration error (bad option, unknown backend, keyfile or password problem).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import list_backends, load_backend_class
from polyswarmclient.cli import options
from polyswarmclient.cli.common import connect, guard, require_devnet_extra, serve
from polyswarmclient.cli.options import CONNECTION, LOGGING, Option, apply
from polyswarmclient.client import PolyswarmClient
from polyswarmclient.errors import ConfigError
from polyswarmclient.log import setup_logging
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import EngineConfig
from polyswarmclient.services.microengine.bidding import STRATEGIES
from polyswarmclient.services.microengine.build import make_engine
from polyswarmclient.services.microengine.filters import OPERATOR_CHOICES, parse_confidence, parse_filters
from polyswarmclient.services.microengine.state import StateStore

_OPS = click.Choice(OPERATOR_CHOICES, case_sensitive=False)
_OPS_HELP = "OP is one of < <= == >= > (or lt lte eq gte gt), contains, startswith, endswith, regex"

BACKEND = Option(
    "--backend",
    "BACKEND",
    "Scan backend: an installed slug (see --list-backends), an engine package name, or module:Class.",
)
APP_DIR = Option(
    "--app-dir",
    "APP_DIR",
    "Directory searched first for a --backend given as module:Class or as a module name (as if run with "
    "python -m from there); default: the working directory.",
    type=click.Path(file_okay=False),
    default=".",
)
LIST_BACKENDS = Option("--list-backends", None, "Print the installed backend slugs and exit.", is_flag=True)
TESTING = options.TESTING.to(
    EngineConfig,
    help="Handle N bounties, then exit 0 once each is settled (or skipped); transaction errors become fatal. "
    "0 runs until stopped.",
)
CHAINS = options.CHAINS.to(
    EngineConfig,
    help="Chain to take bounties on; repeat for both (in the env var, separate with spaces).",
    convert=options.unique,
)
ARTIFACT_TYPE = Option(
    "--artifact-type",
    "ARTIFACT_TYPE",
    "Artifact type to scan; repeat for both (in the env var, separate with spaces).",
    type=click.Choice(["file", "url"], case_sensitive=False),
    multiple=True,
    target=(EngineConfig, "artifact_types"),
    convert=lambda names: options.unique(ArtifactType.from_string(name) for name in names),
    show=lambda kinds: tuple(ArtifactType.to_string(kind) for kind in kinds),
)
BID_STRATEGY = options.setting(
    EngineConfig,
    "bid_strategy",
    "How to bid per artifact: default (minimum to maximum by confidence), conservative (always the minimum), "
    "aggressive (from 8x the minimum).",
    type=click.Choice(list(STRATEGIES)),
)


def _metadata_rules(path: str, actions: tuple[str, str], help: str, convert: Any, flag: str) -> Option:
    """A repeatable ``ACTION KEY OP VALUE`` rule on bounty metadata; no rules by default."""
    return options.setting(
        EngineConfig,
        path,
        f"{help} {'|'.join(actions)} KEY OP VALUE (repeatable). {_OPS_HELP}.",
        flag=flag,
        type=(click.Choice(list(actions), case_sensitive=False), str, _OPS, str),
        multiple=True,
        metavar="ACTION KEY OP VALUE",
        convert=convert,
        show=lambda _: (),
    )


FILTER = _metadata_rules(
    "bounty_filter",
    ("accept", "reject"),
    "Only scan artifacts whose bounty metadata passes:",
    parse_filters,
    "--filter",
)
CONFIDENCE = _metadata_rules(
    "confidence",
    ("favor", "penalize"),
    "Raise (favor, x1.2) or lower (penalize, x0.8) confidence when bounty metadata matches:",
    parse_confidence,
    "--confidence",
)
_SECONDS = click.FloatRange(min=0, min_open=True)
MAX_CONCURRENT_SCANS = options.setting(
    EngineConfig,
    "max_concurrent_scans",
    "Most artifacts fetched and scanned at the same time, across bounties.",
    type=click.IntRange(min=1),
)
SCAN_TIMEOUT = options.setting(
    EngineConfig,
    "scan_timeout",
    "Cap, in seconds, on one bounty's fetch and scan; the bounty's block deadline usually ends it sooner.",
    type=_SECONDS,
)
BLOCK_TIME = options.setting(
    EngineConfig,
    "block_time",
    "Assumed seconds per sidechain block, to turn blocks left before expiration into a scan timeout.",
    type=_SECONDS,
)
DEVNET = Option(
    "--devnet",
    "DEVNET",
    "Run a whole marketplace in this process: start the embedded devnet with an ambassador and an arbiter, "
    "scan its bounties with --backend using the packaged test keystore, and print each bounty, its outcome "
    "and a summary. Needs the devnet extra (pip install 'polyswarm-kit[devnet]').",
    is_flag=True,
)
# The devnet's own defaults (DevnetConfig), repeated here: this module must not import the devnet.
DEVNET_PORT = Option(
    "--devnet-port",
    "DEVNET_PORT",
    "With --devnet: TCP port of the devnet; when it is in use, a free port is picked (and printed).",
    type=click.IntRange(0, 65535),
    default=31337,
)
DEVNET_BLOCK_TIME = Option(
    "--devnet-block-time",
    "DEVNET_BLOCK_TIME",
    "With --devnet: seconds between blocks; a bounty settles about 12 blocks after it is posted.",
    type=click.FloatRange(min=0.01),
    default=1.0,
)

#: Every microengine option, in --help order. Add new options here and read them in cli().
MICROENGINE_OPTIONS: tuple[Option, ...] = (
    *LOGGING,
    *CONNECTION,
    options.MAX_ARTIFACT_SIZE,
    BACKEND,
    APP_DIR,
    LIST_BACKENDS,
    TESTING,
    CHAINS,
    ARTIFACT_TYPE,
    BID_STRATEGY,
    FILTER,
    CONFIDENCE,
    MAX_CONCURRENT_SCANS,
    SCAN_TIMEOUT,
    BLOCK_TIME,
    DEVNET,
    DEVNET_PORT,
    DEVNET_BLOCK_TIME,
)


def _adopt_backend_logger(module: str) -> None:
    """Give a third-party backend's logger our handler and level, as polyswarm-client 2.x did."""
    root = module.split(".", 1)[0]
    if root == "polyswarmclient":
        return
    ours = logging.getLogger("microengine")
    theirs = logging.getLogger(root)
    theirs.handlers = list(ours.handlers)
    theirs.setLevel(ours.level)
    theirs.propagate = False


def engine_config(params: dict[str, Any]) -> EngineConfig:
    """The service's settings from the validated option values (raises ConfigError)."""
    return options.build(EngineConfig, MICROENGINE_OPTIONS, params)


def explicit(name: str) -> bool:
    """True when option ``name`` of the running command came from the command line or the environment."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@apply(MICROENGINE_OPTIONS)
@guard
def cli(**params: Any) -> None:
    """Run a microengine: scan each new bounty with --backend, assert, reveal and settle.

    Pending reveals and settles are kept in --state-dir, so a restart loses no bid. The first
    SIGINT/SIGTERM stops taking bounties and finishes in-flight work; a second stops at once.

    With --devnet, the whole marketplace runs in this process: a local devnet, an ambassador posting
    bounties (half EICAR, half benign) and an arbiter voting the ground truth, with the packaged test
    keystores. One line per bounty and a summary go to stdout.
    """
    setup_logging(params["log"], params["log_format"])
    if params["list_backends"]:
        for slug in list_backends():
            click.echo(slug)
        return
    if not params["backend"]:
        raise ConfigError(
            f"no backend: pass --backend (BACKEND) with one of {', '.join(list_backends())}, an engine "
            "package, or module:Class"
        )
    backend_class = load_backend_class(params["backend"], app_dir=params["app_dir"])
    _adopt_backend_logger(backend_class.__module__)
    config = engine_config(params)
    if params["devnet"]:
        require_devnet_extra("--devnet")
        from polyswarmclient.cli.demo import run_demo  # needs the devnet extra; imported only here

        run_demo(params, backend_class, config, explicit=explicit)
        return
    client = connect(params, MICROENGINE_OPTIONS)
    store = StateStore(Path(params["state_dir"]), client.address)

    async def work(client: PolyswarmClient, shutdown: Shutdown) -> None:
        await make_engine(client, backend_class, params["backend"], store, config, shutdown).run()

    with store:
        serve(client, work, learn=("assertion",))


def main() -> None:
    cli(prog_name="microengine")


if __name__ == "__main__":
    main()
