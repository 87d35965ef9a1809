"""``polyswarmd-devnet``: a local polyswarmd-compatible server on two embedded EVM chains.

It deploys the community contracts, funds every keystore in ``--keyfiles-dir`` with ETH and NCT on both
chains, registers the ``arbiter_keyfile`` address as arbiter, prints the addresses, and serves until
SIGTERM/SIGINT (exit 0).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from polyswarmclient.cli.common import guard, require_devnet_extra, run
from polyswarmclient.cli.options import DEVNET_BLOCK_TIME, DEVNET_PORT, LOG, LOG_FORMAT, Option, apply
from polyswarmclient.devnet.deploy import CommunityConfig
from polyswarmclient.errors import PolyswarmError
from polyswarmclient.log import register_secret, setup_logging
from polyswarmclient.services.lifecycle import Shutdown

_DEFAULTS = CommunityConfig()

HOST = Option("--host", "DEVNET_HOST", "Interface to listen on.", default="127.0.0.1")
PORT = replace(DEVNET_PORT, flag="--port")
BLOCK_TIME = replace(
    DEVNET_BLOCK_TIME,
    flag="--block-time",
    help="Seconds between wall-clock blocks on each embedded chain (every transaction is also mined at once).",
)
RELAY_CONFIRMATIONS = Option(
    "--relay-confirmations",
    "DEVNET_RELAY_CONFIRMATIONS",
    "Source-chain blocks the relay waits before paying out a deposit or withdrawal.",
    type=click.IntRange(min=0),
    default=3,
)
API_KEYS = Option(
    "--api-key",
    "DEVNET_API_KEYS",
    "Accept this API key (repeatable; the env var takes a space-separated list). Giving any key turns "
    "enforcement on; without one the server is open.",
    multiple=True,
    secret=True,
)
KEYFILES_DIR = Option(
    "--keyfiles-dir",
    "DEVNET_KEYFILES_DIR",
    "Directory of geth keystores to fund (their 'address' field is read; no password needed). "
    "Default: ./keyfiles-testing when present, else the copy shipped with the package.",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
HOME_RPC = Option(
    "--home-rpc", "DEVNET_HOME_RPC", "Use this JSON-RPC node as the homechain instead of an embedded EVM."
)
SIDE_RPC = Option(
    "--side-rpc", "DEVNET_SIDE_RPC", "Use this JSON-RPC node as the sidechain instead of an embedded EVM."
)
REVEAL_WINDOW = Option(
    "--reveal-window",
    "DEVNET_REVEAL_WINDOW",
    f"Assertion reveal window in blocks [default: {_DEFAULTS.assertion_reveal_window}].",
    type=click.IntRange(min=1),
)
VOTE_WINDOW = Option(
    "--vote-window",
    "DEVNET_VOTE_WINDOW",
    f"Arbiter vote window in blocks [default: {_DEFAULTS.arbiter_vote_window}].",
    type=click.IntRange(min=1),
)
COMMUNITY = Option("--community", "DEVNET_COMMUNITY", "Community name reported by /status.", default="devnet")

OPTIONS: tuple[Option, ...] = (
    HOST,
    PORT,
    BLOCK_TIME,
    RELAY_CONFIRMATIONS,
    API_KEYS,
    KEYFILES_DIR,
    HOME_RPC,
    SIDE_RPC,
    REVEAL_WINDOW,
    VOTE_WINDOW,
    COMMUNITY,
    LOG,
    LOG_FORMAT,
)


def build_config(options: dict[str, Any]) -> Any:
    from polyswarmclient.devnet.node import DevnetConfig

    overrides: dict[str, int] = {}
    if options["reveal_window"] is not None:
        overrides["assertion_reveal_window"] = options["reveal_window"]
    if options["vote_window"] is not None:
        overrides["arbiter_vote_window"] = options["vote_window"]
    return DevnetConfig(
        host=options["host"],
        port=options["port"],
        block_time=options["block_time"],
        relay_confirmations=options["relay_confirmations"],
        api_keys=tuple(options["api_key"]),
        keyfiles_dir=options["keyfiles_dir"],
        home_rpc=options["home_rpc"] or None,
        side_rpc=options["side_rpc"] or None,
        community=options["community"],
        community_overrides=overrides,
    )


async def serve(config: Any, shutdown: Shutdown) -> None:
    """Start the devnet, print the banner, run until ``shutdown`` is requested, stop cleanly."""
    from polyswarmclient.devnet.node import Devnet

    devnet = Devnet(config)
    try:
        try:
            await devnet.start()
        except OSError as exc:
            raise PolyswarmError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}; "
                "pick another --port (DEVNET_PORT) or stop the other server"
            ) from None
        click.echo(devnet.describe())
        sys.stdout.flush()
        await shutdown.wait()
    finally:
        await devnet.stop()


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@apply(OPTIONS)
def main(**options: Any) -> None:
    """Run a local polyswarmd-compatible devnet (home and side chains, contracts, relay, artifacts)."""
    setup_logging(options["log"], options["log_format"])
    for key in options["api_key"]:
        register_secret(key)
    guard(require_devnet_extra)("polyswarmd-devnet")
    config = build_config(options)
    run(lambda shutdown: serve(config, shutdown), grace=5.0)


if __name__ == "__main__":  # pragma: no cover
    main()
