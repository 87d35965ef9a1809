"""``microengine``: scan bounties with a backend and assert on them (commit, reveal, settle).

With ``--devnet`` it runs a whole local marketplace instead (:mod:`polyswarmclient.demo`, printed by
:mod:`polyswarmclient.cli.demo`).

Exit codes: 0 when stopped or when ``--testing N`` is complete, 1 on a fatal error at run time, 2 on a
usage or configuration error (bad option, unknown backend, keyfile or password problem).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import Backend, list_backends, load_backend_class
from polyswarmclient.cli import options
from polyswarmclient.cli.common import (
    choose_signer,
    guard,
    operations,
    require_devnet_extra,
    run,
    serve,
    serve_communities,
)
from polyswarmclient.cli.communities import (
    COMMUNITY_OPTIONS,
    Community,
    communities_from,
    community_clients,
    repeatable_api_key,
    single_api_key,
)
from polyswarmclient.cli.options import CONNECTION, LOGGING, OPERATIONS, QUEUE, SCAN_QUEUE, Option, apply
from polyswarmclient.client.settings import ClientConfig
from polyswarmclient.errors import ConfigError
from polyswarmclient.log import register_secret, setup_logging
from polyswarmclient.services.microengine.bidding import STRATEGIES
from polyswarmclient.services.microengine.config import EngineConfig
from polyswarmclient.services.microengine.filters import OPERATOR_CHOICES, parse_confidence, parse_filters

if TYPE_CHECKING:  # the engine, the client stack and the tools are imported where used, so --help is quick
    from polyswarmclient.client.facade import PolyswarmClient
    from polyswarmclient.services.evaluation import Outcome
    from polyswarmclient.services.lifecycle import Shutdown

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
DEVNET_CHAINS_ON = Option(
    "--devnet-chains-on",
    "DEVNET_CHAINS_ON",
    "With --devnet: where its two chains run, 'embedded' (py-evm in this process) or 'anvil' (two anvil nodes "
    "it starts and stops; see polyswarmd-devnet --chains-on).",
    type=click.Choice(["embedded", "anvil"]),
    default="embedded",
)
DEVNET_ANVIL = Option(
    "--devnet-anvil",
    "DEVNET_ANVIL",
    "With --devnet-chains-on anvil: the anvil binary. Default: anvil on PATH, else "
    "./.tools/npm/node_modules/.bin/anvil.",
    type=click.Path(dir_okay=False, path_type=Path),
)

#: Every microengine option, in --help order. Add new options here and read them in cli().
MICROENGINE_OPTIONS: tuple[Option, ...] = (
    *LOGGING,
    *(repeatable_api_key(option) if option is options.API_KEY else option for option in CONNECTION),
    *COMMUNITY_OPTIONS,
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
    SCAN_QUEUE,
    QUEUE,
    DEVNET,
    DEVNET_PORT,
    DEVNET_BLOCK_TIME,
    DEVNET_CHAINS_ON,
    DEVNET_ANVIL,
    *OPERATIONS,
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


def explicit(name: str, *, environment: bool = True) -> bool:
    """True when option ``name`` of the running command came from the command line (or, with
    ``environment``, from the environment)."""
    source = click.get_current_context().get_parameter_source(name)
    sources = [click.core.ParameterSource.COMMANDLINE]
    if environment:
        sources.append(click.core.ParameterSource.ENVIRONMENT)
    return source in sources


class EngineGroup(click.Group):
    """``microengine`` runs the engine when given no subcommand, exactly as before it had any."""

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "[OPTIONS]\n" + " " * 7 + f"{ctx.command_path} COMMAND [ARGS]...")


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 120}


@click.group(cls=EngineGroup, invoke_without_command=True, context_settings=CONTEXT)
@apply(MICROENGINE_OPTIONS)
@guard
def cli(**params: Any) -> None:
    """Run a microengine: scan each new bounty with --backend, assert, reveal and settle.

    Pending reveals and settles are kept in --state-dir, so a restart loses no bid. The first
    SIGINT/SIGTERM stops taking bounties and finishes in-flight work; a second stops at once.

    With --devnet, the whole marketplace runs in this process: a local devnet, an ambassador posting
    bounties (half EICAR, half benign) and an arbiter voting the ground truth, with the packaged test
    keystores. One line per bounty and a summary go to stdout.

    The commands below are tools for engine authors; the options above are for running the engine.
    """
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is not None:
        given = [f"--{name.replace('_', '-')}" for name in params if explicit(name, environment=False)]
        if given:
            raise ConfigError(
                f"{', '.join(given)} before '{ctx.invoked_subcommand}' would be ignored: give the options of "
                f"'microengine {ctx.invoked_subcommand}' after it (see microengine {ctx.invoked_subcommand} --help)"
            )
        return
    setup_logging(params["log"], params["log_format"], params["client_log"])
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
    config = replace(engine_config(params), package_bid_strategy=not explicit("bid_strategy"))
    communities = communities_from(params, explicit)
    if params["devnet"] and communities:
        raise ConfigError("--devnet runs a community of its own; it cannot go with --community (COMMUNITIES)")
    if params["devnet"]:
        if params["metrics_addr"]:
            raise ConfigError(
                "--metrics-addr (METRICS_ADDR) watches a long-running engine, not --devnet's demo: run "
                "polyswarmd-devnet and microengine as two commands to serve metrics"
            )
        if params["scan_queue"]:
            raise ConfigError(
                "--scan-queue (SCAN_QUEUE) hands scans to worker processes, which --devnet's demo does not run: "
                "run polyswarmd-devnet, microengine --scan-queue and worker as separate commands (docs/scaling.md)"
            )
        require_devnet_extra("--devnet")
        from polyswarmclient.cli.demo import run_demo  # needs the devnet extra; imported only here

        run_demo(params, backend_class, config, explicit=explicit)
        return
    if communities:
        if params["scan_queue"] or params["queue"]:
            raise ConfigError(
                "--scan-queue (SCAN_QUEUE) serves one community; with --community (COMMUNITIES) the engine scans "
                "in its own process: run one engine per community to use a scan queue"
            )
        _serve_communities(params, communities, backend_class, config)
        return
    from polyswarmclient.client.facade import PolyswarmClient
    from polyswarmclient.services.microengine.build import make_backend
    from polyswarmclient.services.microengine.engine import Microengine
    from polyswarmclient.services.microengine.state import StateStore

    queue_url = _scan_queue(params)
    api_key = single_api_key(params["api_key"], params["api_key_file"])
    register_secret(api_key)
    base = dataclasses.replace(options.build(ClientConfig, MICROENGINE_OPTIONS, params), api_key=api_key)
    client = PolyswarmClient(base, choose_signer(params))
    store = StateStore(Path(params["state_dir"]), client.address)
    backend = make_backend(client, backend_class, params["backend"], config)

    async def work(client: PolyswarmClient, shutdown: Shutdown) -> None:
        if queue_url is None:
            await Microengine(client, backend, store, config, shutdown).run()
            return
        from polyswarmclient.scanqueue.connection import connect as connect_redis
        from polyswarmclient.scanqueue.jobs import default_queue
        from polyswarmclient.scanqueue.producer import QueueScanner

        redis = await connect_redis(queue_url)
        queue = params["queue"] or default_queue(params["backend"])
        async with QueueScanner(
            client, redis, url=queue_url, queue=queue, bounty_filter=config.bounty_filter
        ) as producer:
            await Microengine(client, backend, store, config, shutdown, producer).run()

    with store, operations(params):
        # Before polyswarmd is contacted: a backend's configuration error (no clamd, a bad rule) is exit 2 now.
        # With a scan queue the workers scan: the backend here only bids, and is not set up.
        if queue_url is None:
            run(lambda _: backend.setup())
        try:
            serve(client, work, learn=("assertion",), grace=params["shutdown_grace"])
        finally:
            run(lambda _: _tear_down(backend))


def _scan_queue(params: dict[str, Any]) -> str | None:
    """The checked Redis address of --scan-queue, reached once now (exit 2 when it cannot be), or None."""
    if not params["scan_queue"]:
        if params["queue"]:
            raise ConfigError("--queue (QUEUE) names a scan queue: give --scan-queue (SCAN_QUEUE) with it")
        return None
    from polyswarmclient.scanqueue.connection import require_redis

    require_redis()
    from polyswarmclient.scanqueue.connection import connect as connect_redis
    from polyswarmclient.scanqueue.jobs import redis_password, redis_url

    url = redis_url(params["scan_queue"])
    register_secret(redis_password(url))

    async def probe(_: Shutdown) -> None:
        await (await connect_redis(url)).aclose()

    run(probe)
    return url


def _serve_communities(
    params: dict[str, Any], communities: tuple[Community, ...], backend_class: type, config: EngineConfig
) -> None:
    """One engine per community, in this process: one backend, one wallet (signer and nonce book), and per
    community a client, pins, state directory (--state-dir/NAME) and event streams; --testing N counts
    the bounties of all of them."""
    from polyswarmclient.services.microengine.build import make_backend
    from polyswarmclient.services.microengine.engine import Microengine
    from polyswarmclient.services.microengine.quota import TestingQuota
    from polyswarmclient.services.microengine.state import StateStore

    base = options.build(ClientConfig, MICROENGINE_OPTIONS, params)
    _check_no_single_community_state(Path(params["state_dir"]), communities)
    signer = choose_signer(params)
    clients = community_clients(communities, base, signer)
    stores = {name: StateStore(Path(params["state_dir"]) / name, signer.address) for name in clients}
    # One backend for every community; an AbstractMicroengine's own client calls reach the first community.
    backend = make_backend(next(iter(clients.values())), backend_class, params["backend"], config)
    quota = TestingQuota(config.testing)

    async def work(name: str, client: Any, shutdown: Shutdown) -> None:
        await Microengine(client, backend, stores[name], config, shutdown, quota=quota).run()

    with contextlib.ExitStack() as stack:
        for store in stores.values():
            stack.enter_context(store)
        stack.enter_context(operations(params))
        run(lambda _: backend.setup())
        try:
            grace = params["shutdown_grace"]
            # A --testing run complete across communities also stops waiting for one that never came up.
            serve_communities(
                clients, work, learn=("assertion",), grace=grace, started=lambda runner: quota.subscribe(runner.done)
            )
        finally:
            run(lambda _: _tear_down(backend))


def _check_no_single_community_state(state_dir: Path, communities: tuple[Community, ...]) -> None:
    """Pending work a single-community engine left in --state-dir itself would never be revealed or settled
    by the engines of --state-dir/NAME: refuse to start until it is moved where it belongs."""
    left = sorted(state_dir.glob("microengine/*/*.json"))
    if left:
        names = " or ".join(c.name for c in communities)
        raise ConfigError(
            f"--state-dir {state_dir} holds {len(left)} bounty record(s) of an engine run without --community; "
            f"move {state_dir / 'microengine'} (and known_contracts.json) into {state_dir}/NAME for the community "
            f"they belong to ({names}), or finish them with --polyswarmd-addr first"
        )


async def _tear_down(backend: Backend) -> None:
    try:
        await backend.teardown()
    except Exception:
        logging.getLogger("microengine").warning("backend %s: teardown failed", backend.name, exc_info=True)


JSON_OUTPUT = Option("--json", None, "Print one JSON object instead of text lines.", is_flag=True)
EVALUATE_OPTIONS: tuple[Option, ...] = (*LOGGING, BACKEND, APP_DIR, BID_STRATEGY, SCAN_TIMEOUT, JSON_OUTPUT)
NEW_DIRECTORY = Option(
    "--directory",
    None,
    "Directory to create the engine package in (as NAME/ there).",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
)


@cli.command(context_settings=CONTEXT)
@click.argument("name")
@apply((NEW_DIRECTORY,))
@guard
def new(name: str, directory: Path) -> None:
    """Write a ready engine package NAME/: pyproject.toml registering the scanner as backend NAME (with _
    for -), the scanner module, a test that runs it on the devnet, and a README."""
    from polyswarmclient.services.scaffold import write_engine

    names, root = write_engine(name, directory)
    click.echo(f"created {root}: backend {names.module} ({names.module}/__init__.py)")
    click.echo(f"next: cd {root} && pip install -e '.[test]' && pytest")


@cli.command(context_settings=CONTEXT)
@click.argument("corpus", required=False, type=click.Path(path_type=Path))
@apply(EVALUATE_OPTIONS)
@guard
def evaluate(corpus: Path | None, **params: Any) -> None:
    """Scan a labelled CORPUS offline with --backend and print precision, recall, mean and p99 scan time,
    and the NCT the engine would have won or lost under --bid-strategy.

    CORPUS is a directory with the samples and a labels.csv, one line per sample: PATH,malicious or
    PATH,benign (PATH relative to CORPUS; # starts a comment). Without CORPUS, the built-in demo corpus
    (8 EICAR files, 8 benign texts) is used. Each sample counts as a one-file bounty of the minimum amount
    that the engine alone asserts on and whose arbiter votes the label, under the devnet's bounty
    parameters.
    """
    setup_logging(params["log"], params["log_format"], params["client_log"])
    if not params["backend"]:
        raise ConfigError(f"no backend: pass --backend (BACKEND) with one of {', '.join(list_backends())}")
    from polyswarmclient.services.evaluation import (
        DEVNET_PARAMETERS,
        EvaluationReport,
        demo_samples,
        read_corpus,
        score,
    )
    from polyswarmclient.services.evaluation import evaluate as evaluate_corpus
    from polyswarmclient.services.microengine.build import make_backend

    samples = demo_samples() if corpus is None else read_corpus(corpus)
    backend_class = load_backend_class(params["backend"], app_dir=params["app_dir"])
    _adopt_backend_logger(backend_class.__module__)
    config = replace(
        options.build(EngineConfig, EVALUATE_OPTIONS, params), package_bid_strategy=not explicit("bid_strategy")
    )
    backend = make_backend(None, backend_class, params["backend"], config)
    strategy = STRATEGIES[config.bid_strategy]
    parameters = DEVNET_PARAMETERS

    async def work(_: Shutdown) -> list[Outcome]:
        await backend.setup()
        try:
            return await evaluate_corpus(backend, samples, parameters, strategy, scan_timeout=params["scan_timeout"])
        finally:
            await _tear_down(backend)

    outcomes = run(work)
    figures = score(outcomes, parameters)
    if backend.has_own_bid:
        bidder = "its own bid()"
    elif backend.bid_strategy is not None:
        bidder = f"its package's {type(backend.bid_strategy).__qualname__}"
    else:
        bidder = f"--bid-strategy {config.bid_strategy}"
    where = "the built-in demo corpus" if corpus is None else str(corpus)
    report = EvaluationReport(where, params["backend"], bidder, "devnet defaults (offline)", parameters, figures)
    click.echo(report.json() if params["json"] else "\n".join(report.lines()))


def main() -> None:
    cli(prog_name="microengine")


if __name__ == "__main__":
    main()
