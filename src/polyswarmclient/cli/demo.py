"""``microengine --devnet``: a whole marketplace in one process, for a first run and for backend work.

The run itself is :mod:`polyswarmclient.demo`; this module turns the microengine's options into its
plan and prints what it reports on stdout, one line each: a header; per bounty the engine's verdicts and
bids once they are revealed, then, once the engine has settled it, each artifact judged against the
arbiter's vote (or the corpus ground truth when nobody voted) and the payout; a summary at the end.
Logs stay on stderr.

With ``--testing N`` the ambassador posts N bounties, every role settles them and the command exits 0;
without it, everything runs until SIGINT/SIGTERM (the first one drains, prints the summary, exits 0).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from polyswarmclient.amounts import format_amount
from polyswarmclient.cli.common import open_signer, run
from polyswarmclient.demo.marketplace import packaged_signer, planned, run_marketplace
from polyswarmclient.demo.reports import BountySettled, DevnetStarted, Report, RolesStarted, VerdictsRevealed
from polyswarmclient.demo.scoring import BountyView, Summary
from polyswarmclient.services.microengine import EngineConfig


def verdicts_line(view: BountyView) -> str:
    """``bounty <guid>: verdicts [malicious, benign], bids [0.5, 0.0625] NCT``"""
    verdicts = view.verdicts or ()
    shown = [
        "-" if not asserted else ("malicious" if i < len(verdicts) and verdicts[i] else "benign")
        for i, asserted in enumerate(view.mask or ())
    ]
    bids = ["-" if b is None else format_amount(b) for b in view.bids_per_artifact()]
    return f"bounty {view.guid}: verdicts [{', '.join(shown)}], bids [{', '.join(bids)}] NCT"


def outcome_line(view: BountyView) -> str:
    """``bounty <guid>: settled, [correct, wrong] vs the arbiter's vote, payout 1.5 NCT``"""
    payout = f"payout {format_amount(view.payout or 0)} NCT"
    if view.verdicts is None:
        return f"bounty {view.guid}: settled, verdicts never revealed (bids lost), {payout}"
    reference = view.reference()
    if reference is None:
        return f"bounty {view.guid}: settled, nothing to judge the verdicts against, {payout}"
    marks = ["-" if m is None else ("correct" if m else "wrong") for m in view.judgement()]
    return f"bounty {view.guid}: settled, [{', '.join(marks)}] vs {reference[0]}, {payout}"


def _signed(wei: int) -> str:
    return ("+" if wei >= 0 else "-") + format_amount(abs(wei))


def summary_line(s: Summary) -> str:
    """One line; the change equals payouts - bids - fees once every asserted bounty is settled."""
    return (
        f"summary: bounties seen {s.seen}, asserted {s.asserted}, correct {s.correct}, wrong {s.wrong}; "
        f"NCT before {format_amount(s.before)}, after {format_amount(s.after)} "
        f"(change {_signed(s.after - s.before)}: payouts {_signed(s.payouts)}, bids {_signed(-s.bids)}, "
        f"fees {_signed(-s.fees)})"
    )


def render(report: Report) -> list[str]:
    """The stdout lines of one report."""
    match report:
        case DevnetStarted(url=url, moved_from=moved_from, block_time=block_time, windows=w):
            moved = f" (port {moved_from} is in use, so a free port was picked)" if moved_from else ""
            return [
                f"devnet      {url}{moved}: {block_time:g} s blocks, bounties last {w.duration} "
                f"blocks, reveal window {w.reveal}, vote window {w.vote}"
            ]
        case RolesStarted():
            interval = f"{report.interval:g} s"
            if report.bounties == 1:
                posts = "posts 1 bounty"
            elif report.bounties:
                posts = f"posts {report.bounties} bounties, one every {interval},"
            else:
                posts = f"posts a bounty every {interval},"
            return [
                f"ambassador  {report.ambassador} {posts} each with one EICAR and one benign file",
                f"arbiter     {report.arbiter} staked; votes the ground truth of the demo corpus",
                f"microengine {report.engine} scans with {report.backend}; "
                f"{format_amount(report.balance)} NCT on side; state in {report.state_dir}",
            ]
        case VerdictsRevealed(view=view):
            return [verdicts_line(view)]
        case BountySettled(view=view):
            return [outcome_line(view)]
        case Summary():
            return [summary_line(report)]


def _print(report: Report) -> None:
    for line in render(report):
        click.echo(line)
    sys.stdout.flush()


def run_demo(
    params: dict[str, Any], backend_class: type, config: EngineConfig, *, explicit: Callable[[str], bool]
) -> None:
    """``microengine --devnet`` (the devnet extra is installed): plan, run behind the common error boundary.

    ``explicit(name)`` tells whether option ``name`` was given (command line or environment): the
    keystore, password and state directory are the packaged test ones and a temporary directory unless
    they were.
    """
    block_time = params["devnet_block_time"]
    if explicit("keyfile"):
        signer = open_signer(params["keyfile"], params["password"], params["password_file"])
    else:
        signer = packaged_signer("microengine")
    if not explicit("block_time"):
        config = replace(config, block_time=block_time)
    with planned(
        port=params["devnet_port"],
        block_time=block_time,
        chains_on=params["devnet_chains_on"],
        anvil=params["devnet_anvil"],
        engine_signer=signer,
        backend_name=params["backend"],
        config=config,
        state_dir=Path(params["state_dir"]) if explicit("state_dir") else None,
    ) as plan:
        run(lambda shutdown: run_marketplace(plan, backend_class, shutdown, _print), grace=30.0)


__all__ = ["outcome_line", "render", "run_demo", "summary_line", "verdicts_line"]
