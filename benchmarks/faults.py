"""Fault scenarios at scale: the fault tier's scenarios over 20+ bounties (or deposits) each. Prints one
table; asserts nothing. See docs/reliability.md for what each row does and what the columns mean.

    python benchmarks/faults.py [--bounties 20] [--rounds 20] [--only "reveal posted"]

It starts its own ``polyswarmd-devnet`` and arbiter on free ports of 127.0.0.1 and stops everything at the end
(logs under a temporary directory, printed first). Takes about a quarter of an hour on two cores.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.e2e.harness import ARBITER_READY, Cli, Devnet  # noqa: E402
from tests.faults.harness import (  # noqa: E402
    DEVNET_OPTIONS,
    ENGINE_KEYSTORES,
    ENGINE_KILLS,
    MAINTAIN_KILLS,
    NETWORK_FAULTS,
    Outcome,
    run_drip,
    run_engine,
    run_maintain,
)

COLUMNS = (
    "scenario",
    "posted",
    "seen",
    "asserted",
    "revealed",
    "forfeited",
    "doubled",
    "kills",
    "faults",
    "peak RSS MiB",
    "seconds",
    "problems",
)


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def _row(outcome: Outcome) -> list[str]:
    return [
        outcome.scenario,
        _cell(outcome.posted),
        _cell(outcome.seen),
        _cell(outcome.asserted),
        _cell(outcome.revealed),
        _cell(outcome.forfeited),
        str(outcome.doubled),
        str(outcome.kills),
        str(outcome.faults),
        f"{outcome.peak_rss_kib / 1024:.0f}" if outcome.peak_rss_kib else "-",
        f"{outcome.seconds:.0f}",
        str(len(outcome.problems)) + (f" ({outcome.note})" if outcome.note else ""),
    ]


def print_table(outcomes: list[Outcome]) -> None:
    rows = [list(COLUMNS), *(_row(o) for o in outcomes)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    for n, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("| " + " | ".join("-" * w for w in widths) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounties", type=int, default=20, help="bounties per engine scenario")
    parser.add_argument("--rounds", type=int, default=20, help="deposits per maintain scenario")
    parser.add_argument("--only", action="append", default=[], help="run only scenarios with this name")
    args = parser.parse_args()
    # the proxy drops answers on purpose; aiohttp's server would print a traceback for each
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(prefix="faults-bench-"))
    print(f"logs in {workdir}", flush=True)
    wanted = set(args.only)

    def chosen(name: str) -> bool:
        return not wanted or name in wanted

    outcomes: list[Outcome] = []
    devnet = Devnet.start(workdir / "devnet", DEVNET_OPTIONS)
    shared = Cli(devnet, workdir / "arbiter")
    try:
        arbiter = shared.arbiter(testing=0)
        shared.ready(arbiter, ARBITER_READY)
        engine_runs = [("no fault", {}), *((k.name, {"kill": k}) for k in ENGINE_KILLS)]
        engine_runs += [(f.name, {"fault": f}) for f in NETWORK_FAULTS]
        for n, (name, kwargs) in enumerate(engine_runs):
            if not chosen(name):
                continue
            cli = Cli(devnet, workdir / f"engine-{n}")
            started = time.monotonic()
            try:
                keystore = ENGINE_KEYSTORES[n % len(ENGINE_KEYSTORES)]
                outcome = run_engine(devnet, cli, bounties=args.bounties, keystore=keystore, **kwargs)  # type: ignore[arg-type]
            except AssertionError as exc:
                outcome = Outcome(name, seconds=time.monotonic() - started, problems=[str(exc)])
            finally:
                cli.cleanup()
            outcomes.append(outcome)
            print(f"{name}: {'ok' if not outcome.problems else outcome.problems}", flush=True)
        for m, kill in enumerate(MAINTAIN_KILLS):
            if not chosen(kill.name):
                continue
            cli = Cli(devnet, workdir / f"maintain-{m}")
            started = time.monotonic()
            try:
                outcome = run_maintain(devnet, cli, rounds=args.rounds, kill=kill)
            except AssertionError as exc:
                outcome = Outcome(kill.name, seconds=time.monotonic() - started, problems=[str(exc)])
            finally:
                cli.cleanup()
            outcomes.append(outcome)
            print(f"{kill.name}: {'ok' if not outcome.problems else outcome.problems}", flush=True)
        if chosen("dripping answer"):
            cli = Cli(devnet, workdir / "drip")
            try:
                outcome, process = run_drip(devnet, cli, answers=1000)
                warnings = process.lines_matching("WARNING|ERROR|error")
                outcome.note += f", {len(warnings)} WARNING/error line(s)"
            finally:
                cli.cleanup()
            outcomes.append(outcome)
            print(f"dripping answer: {outcome.note}", flush=True)
        arbiter.stop(timeout=30)
    finally:
        shared.cleanup()
        devnet.process.stop(timeout=20)
        devnet.process.cleanup()
    print()
    print_table(outcomes)
    for outcome in outcomes:
        for problem in outcome.problems:
            print(f"\n{outcome.scenario}: {problem}")


if __name__ == "__main__":
    main()
