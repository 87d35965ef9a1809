"""``polyswarm-signer``: hold the key, sign for the roles within a spending policy, audit every request.

Run it as another user than the roles (or on another host, reached through an SSH-forwarded socket), so
that whoever takes over a role's host can ask for signatures but gets only what the policy allows. See
docs/security.md.

Exit codes: 0 after a SIGTERM/SIGINT, 2 for a configuration problem (keyfile, password, no chains to sign
for, a socket or port it cannot take), 1 for anything at run time.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from polyswarmclient.amounts import format_amount, format_ether, parse_amount, parse_ether
from polyswarmclient.cli import common
from polyswarmclient.cli.options import (
    ALLOW_KEY_OVER_HTTP,
    API_KEY,
    CONTRACTS,
    INSECURE_TRANSPORT,
    KEYFILE,
    LOGGING,
    PASSWORD,
    PASSWORD_FILE,
    POLYSWARMD_ADDR,
    SIGNER_TOKEN_FILE,
    Option,
    apply,
    build,
    setting,
)
from polyswarmclient.cli.role_options import CONTEXT_SETTINGS
from polyswarmclient.log import register_secret, setup_logging
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.signer.service import SignerConfig, serve


def _nct(text: Any) -> int:
    return parse_amount(str(text), "nct", allow_zero=True)


def _ether(text: Any) -> int:
    return parse_ether(str(text))


OPTIONS: tuple[Option, ...] = (
    replace(KEYFILE, help="Path to the geth v3 keystore the signer holds."),
    PASSWORD,
    PASSWORD_FILE,
    setting(
        SignerConfig,
        "socket",
        "Unix socket to listen on, created mode 0600 [default: STATE_DIR/signer.sock unless --listen is given].",
        envvar="SIGNER_SOCKET",
        type=click.Path(path_type=Path),
        convert=lambda v: Path(v) if v else None,
    ),
    setting(
        SignerConfig,
        "listen",
        "Also (or, without --socket, only) listen on this loopback HOST:PORT, over http with a bearer token.",
        envvar="SIGNER_LISTEN",
        metavar="HOST:PORT",
    ),
    SIGNER_TOKEN_FILE.to(
        SignerConfig,
        "token_file",
        help="The bearer token for --listen: read from this file, or written there (mode 0600) when it is missing "
        "[default: STATE_DIR/signer.token].",
        convert=lambda v: Path(v) if v else None,
    ),
    setting(
        SignerConfig,
        "state_dir",
        "Directory of the signer's pinned contracts, 24-hour spending window, and by default its socket and audit log.",
        envvar="SIGNER_STATE_DIR",
        type=click.Path(path_type=Path),
        convert=Path,
    ),
    setting(
        SignerConfig,
        "audit_log",
        "JSON-lines audit log of every request, appended to [default: STATE_DIR/audit.jsonl].",
        envvar="SIGNER_AUDIT_LOG",
        type=click.Path(path_type=Path),
        convert=lambda v: Path(v) if v else None,
    ),
    POLYSWARMD_ADDR.to(
        SignerConfig,
        help="polyswarmd whose contracts and chain ids are pinned at first contact (host:port or a URL); "
        "without it, --contracts alone says what to sign for.",
    ),
    API_KEY.to(SignerConfig),
    INSECURE_TRANSPORT.to(SignerConfig),
    ALLOW_KEY_OVER_HTTP.to(SignerConfig),
    CONTRACTS.to(SignerConfig, "contracts_file"),
    setting(
        SignerConfig,
        "limits.max_nct_per_tx",
        "Most NCT one transaction may let leave the wallet (an approval's or a relay transfer's value).",
        flag="--max-nct-per-tx",
        envvar="SIGNER_MAX_NCT_PER_TX",
        convert=_nct,
        show=lambda wei: format_amount(wei, "nct"),
    ),
    setting(
        SignerConfig,
        "limits.max_nct_per_day",
        "Most NCT all transactions signed in any 24 hours may let leave the wallet, both chains together.",
        flag="--max-nct-per-day",
        envvar="SIGNER_MAX_NCT_PER_DAY",
        convert=_nct,
        show=lambda wei: format_amount(wei, "nct"),
    ),
    setting(
        SignerConfig,
        "limits.max_gas_per_tx",
        "Most ether one transaction may spend on gas (gas x gasPrice, in ETH).",
        flag="--max-gas-per-tx",
        envvar="SIGNER_MAX_GAS_PER_TX",
        convert=_ether,
        show=format_ether,
    ),
    setting(
        SignerConfig,
        "limits.max_gas_per_day",
        "Most ether all transactions signed in any 24 hours may spend on gas (in ETH).",
        flag="--max-gas-per-day",
        envvar="SIGNER_MAX_GAS_PER_DAY",
        convert=_ether,
        show=format_ether,
    ),
    *LOGGING,
)


@click.command(context_settings=CONTEXT_SETTINGS)
@apply(OPTIONS)
@common.guard
def main(**options: Any) -> None:
    """Hold a keystore and sign the roles' transactions over clef's external API, within a spending policy.

    Every transaction is decoded: only the marketplace functions on the pinned contracts and chain ids are
    signed, NCT leaves only to the pinned contracts and within the caps, and each request is appended to
    the audit log.
    """
    setup_logging(options["log"], options["log_format"], options.get("client_log"))
    register_secret(options["api_key"])
    config = build(SignerConfig, OPTIONS, options)
    key = common.open_signer(options["keyfile"], options["password"], options["password_file"])

    def announce(line: str) -> None:
        click.echo(f"polyswarm-signer: {line}", err=True)

    async def work(shutdown: Shutdown) -> None:
        announce(f"signing for {key.address}")
        await serve(config, key, shutdown.wait, announce)

    common.run(work, grace=5.0)


if __name__ == "__main__":
    main()
