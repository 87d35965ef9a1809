"""``balancemanager``: move NCT between the home and side chains, or keep the side balance in bounds.

Every sub-command takes the connection, logging, ``--testing`` and ``--denomination`` options, so they
may follow the sub-command name. Amounts are exact decimals in the chosen denomination.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from polyswarmclient.amounts import DENOMINATIONS, format_amount, parse_amount
from polyswarmclient.cli import options as shared
from polyswarmclient.cli.common import choose_signer, guard, operations, serve, serve_communities
from polyswarmclient.cli.communities import (
    COMMUNITY_OPTIONS,
    Community,
    communities_from,
    community_clients,
    given,
    repeatable_api_key,
    single_api_key,
)
from polyswarmclient.cli.options import CONNECTION, LOGGING, OPERATIONS, Option, apply, build
from polyswarmclient.cli.role_options import connect
from polyswarmclient.client import PolyswarmClient
from polyswarmclient.client.settings import ClientConfig
from polyswarmclient.errors import ConfigError
from polyswarmclient.services.balancemanager.journal import Direction, TransferJournal
from polyswarmclient.services.balancemanager.policy import (
    DEFAULT_CONFIRMATIONS,
    RELAY_LEEWAY,
    UNITS,
    Policy,
    show_nct,
)
from polyswarmclient.services.balancemanager.service import (
    BalanceManager,
    Transfers,
    read_balances,
    transfer,
)
from polyswarmclient.services.lifecycle import Shutdown

T = TypeVar("T")
log = logging.getLogger("balancemanager")

_ETH_UNIT = {"nct": "ETH", "nct-gwei": "gwei", "nct-wei": "wei"}

# --- options, each declared once --------------------------------------------------------------------

TESTING = replace(
    shared.TESTING,
    help="Test mode: deposit/withdraw repeat the transfer N times; maintain exits 0 after N completed "
    "transfers and treats a too-low home balance or a stuck deposit as fatal. 0 = off.",
)
DENOMINATION = Option(
    "--denomination",
    "DENOMINATION",
    "Unit of every amount given and shown: nct (18 decimals), nct-gwei (9) or nct-wei (0).",
    type=click.Choice(list(DENOMINATIONS)),
    default="nct",
)
ALL = Option("--all", None, "Transfer the whole NCT balance of the source chain instead of AMOUNT.", is_flag=True)
AGAIN = Option(
    "--again",
    "AGAIN",
    "Send the transfer even though an interrupted earlier run of this command already sent one (recorded "
    "in --state-dir and mined); without it, that transfer is reported and not repeated.",
    is_flag=True,
)
MAXIMUM = Option(
    "--maximum",
    "MAXIMUM",
    "Withdraw to the home chain when the side balance exceeds this (needs --withdraw-target).",
    metavar="AMOUNT",
)
WITHDRAW_TARGET = Option(
    "--withdraw-target",
    "WITHDRAW_TARGET",
    "Side balance to leave after a withdrawal (needs --maximum; at least MINIMUM, below --maximum).",
    metavar="AMOUNT",
)
CONFIRMATIONS = Option(
    "--confirmations",
    "CONFIRMATIONS",
    f"Home blocks (plus {RELAY_LEEWAY}) to give a deposit before looking for it on the side chain.",
    type=click.IntRange(min=0),
    default=DEFAULT_CONFIRMATIONS,
)

#: The options every sub-command takes.
COMMON: tuple[Option, ...] = (*CONNECTION, *LOGGING, TESTING, DENOMINATION)
#: maintain's: it also serves several communities (--community, --api-key NAME=KEY, see docs/communities.md).
MAINTAIN_OPTIONS: tuple[Option, ...] = (
    MAXIMUM,
    WITHDRAW_TARGET,
    CONFIRMATIONS,
    *(repeatable_api_key(option) if option is shared.API_KEY else option for option in COMMON),
    *COMMUNITY_OPTIONS,
    *OPERATIONS,
)


# --- helpers ----------------------------------------------------------------------------------------


def _amount(text: str, denomination: str, hint: str) -> int:
    try:
        return parse_amount(text, denomination)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from None


def _shower(denomination: str) -> Callable[[int], str]:
    return lambda wei: show_nct(wei, denomination)


class _Command(click.Command):
    """A command that explains a negative amount instead of calling it an unknown option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)  # the parser consumes ``args``
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            for arg in given:
                if arg.startswith(exc.option_name) and _NEGATIVE.match(arg):
                    raise click.UsageError(f"{arg} is negative; amounts must be positive", ctx) from None
            raise


_NEGATIVE = re.compile(r"^-\d*\.?\d+([eE][-+]?\d+)?$")


class _Group(click.Group):
    command_class = _Command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
def cli() -> None:
    """Move NCT between the home and side chains, or keep the side-chain balance within bounds."""


# --- deposit / withdraw -----------------------------------------------------------------------------


def _transfer_command(
    direction: Direction, amount_text: str | None, all_: bool, again: bool, options: dict[str, Any]
) -> None:
    if amount_text is None and not all_:
        raise click.UsageError(f"give an AMOUNT to {direction}, or --all for the whole balance")
    if amount_text is not None and all_:
        raise click.UsageError("give either AMOUNT or --all, not both")
    testing = options["testing"]
    if all_ and testing > 1:
        raise click.UsageError("--all moves the whole balance, so it cannot be repeated with --testing N > 1")
    denomination = options["denomination"]
    amount = None if amount_text is None else _amount(amount_text, denomination, "AMOUNT")
    show = _shower(denomination)
    client = connect(options)
    journal = TransferJournal.open(client.config.state_dir, client.address)

    async def body(client: PolyswarmClient, shutdown: Shutdown) -> Transfers:
        return await transfer(
            client,
            direction,
            amount,
            times=max(1, testing),
            show=show,
            shutdown=shutdown,
            journal=journal,
            again=again,
        )

    result = serve(client, body, learn=("relay",))
    for record in result.earlier:
        hashes = ", ".join(record.tx_hashes)
        click.echo(
            f"a {direction} of {show(record.amount)} sent by an interrupted earlier run is already mined "
            f"(tx {hashes}, home block {record.home_block}): "
            + ("sent another as --again asks" if again else "not sending it again (--again sends another)")
        )
    for item in result.sent:
        if direction == "deposit":
            click.echo(
                f"deposited {show(item.amount)} from home to side; the sidechain relay pays it out "
                f"after its confirmations (fee {show(item.fee)})"
            )
        else:
            click.echo(
                f"withdrew {show(item.amount)} from side to home; the homechain relay pays out "
                f"{show(item.amount - item.fee)} after deducting its fee {show(item.fee)}"
            )


@cli.command()
@click.argument("amount", required=False, metavar="[AMOUNT]")
@apply((ALL, AGAIN, *COMMON))
@guard
def deposit(amount: str | None, **options: Any) -> None:
    """Send AMOUNT NCT (or --all) from the home chain to the side chain through the relay.

    The transfer is recorded in --state-dir before it is posted; a rerun after a crash reports a transfer
    that already went out instead of sending it again (--again sends another).
    """
    _transfer_command("deposit", amount, options.pop("all"), options.pop("again"), options)


@cli.command()
@click.argument("amount", required=False, metavar="[AMOUNT]")
@apply((ALL, AGAIN, *COMMON))
@guard
def withdraw(amount: str | None, **options: Any) -> None:
    """Send AMOUNT NCT (or --all) from the side chain back to the home chain through the relay.

    The homechain relay deducts its fee when it pays out; a withdrawal that does not exceed the fee is
    refused, because it would never be paid out. As with deposit, a rerun after a crash does not repeat
    a withdrawal that already went out unless --again is given.
    """
    _transfer_command("withdraw", amount, options.pop("all"), options.pop("again"), options)


# --- maintain ---------------------------------------------------------------------------------------


@cli.command()
@click.argument("minimum", metavar="MINIMUM")
@click.argument("refill_amount", metavar="REFILL_AMOUNT")
@apply(MAINTAIN_OPTIONS)
@guard
def maintain(minimum: str, refill_amount: str, **options: Any) -> None:
    """Keep the side-chain NCT balance at least MINIMUM by depositing REFILL_AMOUNT from the home chain.

    Checked at every home-chain block. A deposit is given --confirmations + 5 home blocks to arrive and is
    never repeated while it is in flight, across restarts too: every transfer is recorded in --state-dir
    before it is posted and checked with the chain on start. If it does not arrive, an ERROR is logged
    and nothing more is deposited until it does (move the journal file away to forget it). With
    --maximum and --withdraw-target, a side balance above the maximum is withdrawn down to the target.
    Stop with SIGTERM or Ctrl-C: the current step finishes and the process exits 0.
    """
    denomination = options["denomination"]
    policy = Policy(
        minimum=_amount(minimum, denomination, "MINIMUM"),
        refill=_amount(refill_amount, denomination, "REFILL_AMOUNT"),
        maximum=None if options["maximum"] is None else _amount(options["maximum"], denomination, "--maximum"),
        withdraw_target=(
            None
            if options["withdraw_target"] is None
            else _amount(options["withdraw_target"], denomination, "--withdraw-target")
        ),
        confirmations=options["confirmations"],
        denomination=denomination,
    )
    testing = options["testing"]
    communities = communities_from(options, given)
    if communities:
        _maintain_communities(options, communities, policy, testing)
        return
    client = connect({**options, "api_key": single_api_key(options["api_key"], options["api_key_file"])})
    journal = TransferJournal.open(client.config.state_dir, client.address)

    async def body(client: PolyswarmClient, shutdown: Shutdown) -> int:
        return await BalanceManager(client, policy, testing=testing, journal=journal).run(shutdown)

    with operations(options):
        transfers = serve(client, body, learn=("relay",), grace=options["shutdown_grace"])
    if testing:
        log.info("testing mode: %d transfer(s) completed", transfers)


def _maintain_communities(
    options: dict[str, Any], communities: tuple[Community, ...], policy: Policy, testing: int
) -> None:
    """One manager per community, one wallet: each sidechain kept between the bounds, deposits decided one at
    a time per homechain (one home balance, never spent twice), --testing N counted across communities."""
    from polyswarmclient.log import setup_logging
    from polyswarmclient.services.balancemanager.service import HomeBudget, TransferTally

    setup_logging(options["log"], options["log_format"], options.get("client_log"))
    state_dir = options["state_dir"]
    left = sorted(Path(state_dir).glob("balancemanager-*.json"))
    if left:
        raise ConfigError(
            f"--state-dir {state_dir} holds the transfer journal of a balancemanager run without --community "
            f"({left[0].name}); move it into {state_dir}/NAME for the community it belongs to, or finish its "
            "deposits with --polyswarmd-addr first"
        )
    base = build(ClientConfig, CONNECTION, {**options, "api_key": None})
    signer = choose_signer(options)
    clients = community_clients(communities, base, signer)
    budget = HomeBudget()
    tally = TransferTally(testing) if testing else None

    async def work(name: str, client: Any, shutdown: Shutdown) -> None:
        journal = TransferJournal.open(client.config.state_dir, client.address)
        home = client.pinned_chain_id("home")
        manager = BalanceManager(
            client, policy, journal=journal, budget=(budget, home if home is not None else "home"), tally=tally
        )
        await manager.run(shutdown)

    def started(runner: Any) -> None:
        if tally is not None:
            tally.subscribe(runner.done)

    with operations(options):
        serve_communities(clients, work, learn=("relay",), grace=options["shutdown_grace"], started=started)
    if tally is not None:
        log.info("testing mode: %d transfer(s) completed across %d communities", tally.count, len(clients))


# --- view-balance -----------------------------------------------------------------------------------


@cli.command("view-balance")
@click.argument("chain", required=False, type=click.Choice(["home", "side"]), metavar="[home|side]")
@apply(COMMON)
@guard
def view_balance(chain: str | None, **options: Any) -> None:
    """Print the account's NCT and ETH balances on the home and side chains (or only CHAIN), exactly."""
    denomination = options["denomination"]
    client = connect(options)

    async def body(client: PolyswarmClient, shutdown: Shutdown) -> Any:
        return await read_balances(client)

    balances = serve(client, body)
    nct, eth = UNITS[denomination], _ETH_UNIT[denomination]
    click.echo(f"address {balances.address}")
    for name in ("home", "side"):
        if chain in (None, name):
            nct_wei, eth_wei = getattr(balances, f"{name}_nct"), getattr(balances, f"{name}_eth")
            nct_text, eth_text = format_amount(nct_wei, denomination), format_amount(eth_wei, denomination)
            click.echo(f"{name}: {nct_text} {nct}, {eth_text} {eth}")


def main() -> None:
    cli(prog_name="balancemanager")


__all__ = ["cli", "main"]


if __name__ == "__main__":
    main()
