"""``polyswarmd-devnet``: a local polyswarmd-compatible server on two embedded EVM chains.

It deploys the community contracts, funds every keystore in ``--keyfiles-dir`` with ETH and NCT on both
chains, registers the ``arbiter_keyfile`` address as arbiter, prints the addresses, and serves until
SIGTERM/SIGINT (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from polyswarmclient.amounts import format_amount
from polyswarmclient.cli.common import guard, operations, require_devnet_extra, run
from polyswarmclient.cli.options import LOG, LOG_FORMAT, METRICS_ADDR, SHUTDOWN_GRACE, Option, apply, build, setting
from polyswarmclient.cli.role_options import NCT_AMOUNT
from polyswarmclient.devnet.deploy import CommunityConfig
from polyswarmclient.devnet.node import CHAIN_BACKENDS, DevnetConfig
from polyswarmclient.errors import ConfigError, PolyswarmError
from polyswarmclient.log import register_secret, setup_logging
from polyswarmclient.metrics import HEALTH
from polyswarmclient.services.lifecycle import Shutdown

_DEFAULTS = CommunityConfig()


def _devnet(field: str, help: str, **kw: Any) -> Option:
    """An option that sets ``DevnetConfig.<field>``, named ``--<field>`` and ``DEVNET_<FIELD>``."""
    return setting(DevnetConfig, field, help, envvar="DEVNET_" + field.upper(), **kw)


def _optional(value: Any) -> Any:
    return value or None


HOST = _devnet("host", "Interface to listen on.")
PORT = _devnet("port", "TCP port of the devnet server; 0 picks a free one.", type=click.IntRange(0, 65535))
BLOCK_TIME = _devnet(
    "block_time",
    "Seconds between wall-clock blocks on each embedded chain (transactions are also mined at once, see "
    "--batch-window).",
    type=click.FloatRange(min=0.01),
)
BATCH_WINDOW = _devnet(
    "batch_window",
    "Seconds an embedded chain gathers the transactions that arrive together before mining them into one "
    "block; 0 mines as soon as the chain is free.",
    type=click.FloatRange(min=0.0, max=1.0),
)
RETAIN_BLOCKS = _devnet(
    "retain_blocks",
    "Blocks each embedded chain keeps receipts, logs and block headers for (older state is pruned); artifacts "
    "used within that many blocks are never evicted. At least twice a bounty's longest life (max duration plus "
    "the reveal and vote windows, plus relay confirmations).",
    type=click.IntRange(min=1),
)
STATE_DIR = _devnet(
    "state_dir",
    "Directory where each embedded chain keeps its contract state on disk, in a sqlite file (in a private "
    "subdirectory, unlinked at once: nothing stays after exit). Default: the system's temporary directory "
    "($TMPDIR); give one on a disk where that is a tmpfs.",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    metavar="DIR",
)
ARTIFACT_STORE_SIZE = _devnet(
    "artifact_store_size",
    "Bytes of artifact content kept in memory; when an upload does not fit, the least recently used artifacts "
    "older than --retain-blocks are dropped, and if that is not enough the upload is refused (413).",
    type=click.IntRange(min=1024 * 1024),
    metavar="BYTES",
)
RELAY_CONFIRMATIONS = _devnet(
    "relay_confirmations",
    "Source-chain blocks the relay waits before paying out a deposit or withdrawal.",
    type=click.IntRange(min=0),
)
API_KEYS = setting(
    DevnetConfig,
    "api_keys",
    "Accept this API key (repeatable; the env var takes a space-separated list). Giving any key turns "
    "enforcement on; without one the server is open.",
    flag="--api-key",
    envvar="DEVNET_API_KEYS",
    multiple=True,
    secret=True,
    convert=tuple,
)
KEYFILES_DIR = _devnet(
    "keyfiles_dir",
    "Directory of geth keystores to fund (their 'address' field is read; no password needed). "
    "Default: ./keyfiles-testing when present, else the copy shipped with the package.",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
CHAINS_ON = _devnet(
    "chains_on",
    "Where the two chains run: 'embedded' (py-evm in this process) or 'anvil' (two anvil nodes on loopback, "
    "started and stopped with the devnet; anvil from npm: npm install --global @foundry-rs/anvil, or point "
    "DEVNET_ANVIL at the binary).",
    type=click.Choice(CHAIN_BACKENDS),
)
ANVIL = _devnet(
    "anvil",
    "The anvil binary for --chains-on anvil. Default: anvil on PATH, else ./.tools/npm/node_modules/.bin/anvil.",
    type=click.Path(dir_okay=False, path_type=Path),
)
HOME_RPC = _devnet("home_rpc", "Use this JSON-RPC node as the homechain instead of an embedded EVM.", convert=_optional)
SIDE_RPC = _devnet("side_rpc", "Use this JSON-RPC node as the sidechain instead of an embedded EVM.", convert=_optional)
SHARED_HOME = _devnet(
    "shared_home",
    "Share the --home-rpc node with other devnets as communities share the homechain: use the NectarToken, "
    "ArbiterStaking and BountyRegistry deployed there (deploying them if the node has none) and deploy this "
    "community's own ERC20Relay and relay verifier, derived from NAME (letters, digits, - and _; one name "
    "per devnet on the node, the same on every restart). Start the devnets one after another.",
    convert=_optional,
    metavar="NAME",
)
HOME_CHAIN_ID = _devnet(
    "home_chain_id",
    "Chain id of the homechain. Two devnets that should be two separate chains need their own ids (a wallet "
    "serving both keeps one nonce sequence per chain id, see docs/communities.md).",
    type=click.IntRange(min=1),
)
SIDE_CHAIN_ID = _devnet(
    "side_chain_id", "Chain id of the sidechain (give each separate devnet its own).", type=click.IntRange(min=1)
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
COMMUNITY = _devnet("community", "Community name reported by /status.")
MINIMUM_STAKE = _devnet(
    "minimum_stake",
    "ArbiterStaking's MINIMUM_STAKE in NCT, an exact decimal (1.6 uses 10000000; the devnet lowers it so that "
    "its arbiter keystore, funded with 10000 NCT on the sidechain, can stake and vote).",
    type=NCT_AMOUNT,
    metavar="NCT",
    show=format_amount,
)
ETH_ABI_V1 = _devnet(
    "eth_abi_v1",
    "Build transactions as polyswarmd 2.2.0 does with eth-abi 1.x: an empty string or bytes argument gets one "
    "more zero word.",
    is_flag=True,
)
EXPORT_POLYSWARMD_CONFIG = _devnet(
    "export_polyswarmd_config",
    "Write polyswarmd's chain configuration for this devnet into DIR on start: homechain.json, sidechain.json "
    "and one <ContractName>.json ABI per contract (point polyswarmd's eth.directory at it; its chains need "
    "--home-rpc/--side-rpc nodes).",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
)

OPTIONS: tuple[Option, ...] = (
    HOST,
    PORT,
    BLOCK_TIME,
    BATCH_WINDOW,
    RETAIN_BLOCKS,
    STATE_DIR,
    ARTIFACT_STORE_SIZE,
    RELAY_CONFIRMATIONS,
    API_KEYS,
    KEYFILES_DIR,
    CHAINS_ON,
    ANVIL,
    HOME_RPC,
    SIDE_RPC,
    SHARED_HOME,
    HOME_CHAIN_ID,
    SIDE_CHAIN_ID,
    REVEAL_WINDOW,
    VOTE_WINDOW,
    COMMUNITY,
    MINIMUM_STAKE,
    ETH_ABI_V1,
    EXPORT_POLYSWARMD_CONFIG,
    LOG,
    LOG_FORMAT,
    METRICS_ADDR,
    replace(SHUTDOWN_GRACE, default=5.0),
)


def _register_url_secrets(url: str | None) -> None:
    """A node URL's password and a long key-like path segment (``.../v3/<key>``) never reach a message."""
    if not url:
        return
    parts = urlsplit(url)
    if parts.password:
        register_secret(parts.password)
    for segment in parts.path.split("/"):
        if len(segment) >= 20:
            register_secret(segment)


def build_config(options: dict[str, Any]) -> DevnetConfig:
    """The devnet's settings from the declared options; the two windows override the community's."""
    windows = {"assertion_reveal_window": options["reveal_window"], "arbiter_vote_window": options["vote_window"]}
    overrides = {name: value for name, value in windows.items() if value is not None}
    config = replace(build(DevnetConfig, OPTIONS, options), community_overrides=overrides)
    if config.shared_home is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", config.shared_home):
        raise ConfigError(f"--shared-home {config.shared_home!r}: a name is 1 to 64 letters, digits, '-' and '_'")
    if config.home_chain_id == config.side_chain_id:
        raise ConfigError(
            f"--home-chain-id and --side-chain-id are both {config.home_chain_id}; give the two chains different ids"
        )
    return config


def check_retention(config: DevnetConfig) -> None:
    """``--retain-blocks`` must outlive every bounty twice over (see ``minimum_retention``)."""
    from polyswarmclient.devnet.node import minimum_retention

    least = minimum_retention(config)
    if config.retain_blocks < least:
        raise ConfigError(
            f"--retain-blocks {config.retain_blocks} is shorter than twice a bounty's longest life on this devnet; "
            f"give at least {least} (DEVNET_RETAIN_BLOCKS)"
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
        HEALTH.serving = True
        stopping = asyncio.create_task(shutdown.wait())
        failing = asyncio.create_task(devnet.failed())
        try:
            await asyncio.wait({stopping, failing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            failing.cancel()
        if failing.done() and not failing.cancelled():
            reason = failing.result()
            if isinstance(reason, PolyswarmError):
                raise reason
            raise PolyswarmError(f"the devnet stopped: {reason}")
    finally:
        await devnet.stop()


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@apply(OPTIONS)
def main(**options: Any) -> None:
    """Run a local polyswarmd-compatible devnet (home and side chains, contracts, relay, artifacts)."""
    setup_logging(options["log"], options["log_format"], options.get("client_log"))
    for key in options["api_key"]:
        register_secret(key)
    for url in (options["home_rpc"], options["side_rpc"]):
        _register_url_secrets(url)
    guard(require_devnet_extra)("polyswarmd-devnet")
    config = guard(build_config)(options)
    guard(check_retention)(config)
    with contextlib.ExitStack() as stack:
        guard(stack.enter_context)(operations(options))  # a bad or busy --metrics-addr: one line, exit 2 or 1
        run(lambda shutdown: serve(config, shutdown), grace=options["shutdown_grace"])


if __name__ == "__main__":  # pragma: no cover
    main()
