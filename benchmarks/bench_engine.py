"""Microengine figures against their floors, measured in one run. Prints figures and ratios; asserts nothing.

    python benchmarks/bench_engine.py [--bounties 40] [--soak SECONDS] [--count-requests]

* ``--help``: wall time of ``microengine --help`` against ``python -c pass`` (median of several runs).
* CPU per bounty: the engine (``microengine --backend eicar --testing N``) and the floor
  (``benchmarks/engine_floor.py``: eth-account and aiohttp, no verification, no state) each handle N
  one-artifact EICAR bounties from the same devnet, ambassador and arbiter, one after the other. CPU is
  the process's user + system time from its "ready" log line to its exit (start-up excluded), over N.
* Latency: from the ``bounty`` event to the ``assertion`` event of the process's own assertion, both
  seen by one observer on the devnet's event stream; p50 and p99 over the N bounties.
* ``--count-requests``: both run behind a TCP proxy that counts request lines (requests per bounty).
* ``--profile FILE``: the engine runs under cProfile (its CPU figure then includes the profiler's cost).
* ``--py-spy FILE``: py-spy (installed beside this Python) samples the engine from its ready line to its
  exit and writes the collapsed stacks to FILE.
* ``--soak SECONDS``: afterwards, the engine without ``--testing`` against a continuous ambassador;
  every ``--every`` seconds a line with its RSS and its state directory (files, bytes).

It starts its own ``polyswarmd-devnet`` and arbiter on free ports of 127.0.0.1 (logs under a temporary
directory, printed first) and stops everything at the end. Other load on the machine skews both sides,
so read the ratios, and the load average printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.e2e.harness import (  # noqa: E402
    ARBITER_READY,
    ENGINE_READY,
    PASSWORD,
    Cli,
    Devnet,
    DevnetOptions,
    Process,
    TcpProxy,
    address_of,
    command,
    keyfile,
    posted_guids,
)

OPTIONS = DevnetOptions()  # 0.25 s blocks, reveal window 12, vote window 8
DURATION = 20  # blocks from posting to expiration
CLOCK_TICK = os.sysconf("SC_CLK_TCK")
#: GUIDs, hashes and numbers in request paths, replaced to group requests by route.
ROUTE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|Qm[1-9A-Za-z]{44}|0x[0-9a-fA-F]{40}|/\d+(?=/|$| )")
#: Seconds an engine logging at WARNING (no ready line) is given to connect before bounties are posted.
STARTUP_SECONDS = 8.0


class Observer:
    """Arrival times of bounty events and of each author's assertion events, on its own thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.bounties: dict[str, float] = {}
        self.assertions: dict[tuple[str, str], float] = {}
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(30)

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(self.url) as socket:
            self._ready.set()
            async for message in socket:
                now = time.monotonic()
                event = json.loads(message.data)
                if event["event"] == "bounty":
                    self.bounties.setdefault(event["data"]["guid"], now)
                elif event["event"] == "assertion":
                    key = (event["data"]["bounty_guid"], event["data"]["author"].lower())
                    self.assertions.setdefault(key, now)

    def latencies(self, author: str, guids: list[str]) -> list[float]:
        author = author.lower()
        return [
            self.assertions[(guid, author)] - self.bounties[guid]
            for guid in guids
            if (guid, author) in self.assertions and guid in self.bounties
        ]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def reap(process: Process, timeout: float) -> float:
    """Wait for ``process`` to exit 0 and return its total CPU seconds (from the kernel's rusage)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.popen.returncode = os.waitstatus_to_exitcode(status)
            if process.popen.returncode != 0:
                raise SystemExit(f"{process.name} exited {process.popen.returncode}:\n{process.tail(30)}")
            return float(usage.ru_utime + usage.ru_stime)
        if time.monotonic() > deadline:
            raise SystemExit(f"{process.name} did not finish within {timeout:.0f} s:\n{process.tail(30)}")
        time.sleep(0.05)


# every round's latencies by label, for the pooled percentiles printed at the end
all_latencies: dict[str, list[float]] = {"floor": [], "engine": []}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_one(
    label: str,
    devnet: Devnet,
    cli: Cli,
    observer: Observer,
    keystore: str,
    bounties: int,
    count_requests: bool,
    log: str,
    profile: str | None = None,
    spy_to: str | None = None,
) -> dict[str, float]:
    proxy = TcpProxy(devnet.port).start() if count_requests else None
    addr = proxy.addr if proxy else devnet.addr
    try:
        if label == "floor":
            argv = [
                sys.executable, str(ROOT / "benchmarks" / "engine_floor.py"),
                "--addr", addr, "--keyfile", str(keyfile(keystore)), "--password", PASSWORD,
                "--bounties", str(bounties),
            ]  # fmt: skip
            process = cli.spawn("floor", argv)
            cli.ready(process, "floor ready")
        else:
            args = ["--backend", "eicar", "--block-time", str(OPTIONS.block_time), "--testing", str(bounties)]
            if profile:  # the same command under cProfile (CPU figures then include its overhead)
                argv = [
                    sys.executable, "-m", "cProfile", "-o", profile, "-m", "polyswarmclient.cli.microengine", *args,
                    "--polyswarmd-addr", addr, "--insecure-transport", "--keyfile", str(keyfile(keystore)),
                    "--password", PASSWORD, "--state-dir", str(cli.workdir / "state" / "engine"), "--log", log,
                ]  # fmt: skip
                process = cli.spawn("engine", argv)
            else:
                process = cli.start("microengine", *args, keystore=keystore, name="engine", addr=addr, log_level=log)
            if log.lower() in ("info", "debug"):
                cli.ready(process, ENGINE_READY)
            else:  # nothing is logged at the default level: give it time to connect (catch-up takes late ones)
                time.sleep(STARTUP_SECONDS)
                if not process.running:
                    raise SystemExit(f"engine exited at start:\n{process.tail(30)}")
        time.sleep(0.5)
        spy = None
        if spy_to and label == "engine":  # sampled from here (start-up excluded) until the engine exits
            py_spy = str(Path(sys.executable).with_name("py-spy"))
            argv = [py_spy, "record", "--rate", "250", "--format", "raw", "--output", spy_to, "--pid", str(process.pid)]
            spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = cpu_seconds(process.pid)
        requests_before = len(proxy.requests) if proxy else 0
        started = time.monotonic()
        ambassador = cli.ambassador(bounties=bounties, duration=DURATION)
        total = reap(process, timeout=120 + 5 * bounties)
        if spy is not None:
            spy.wait(30)
        seconds = time.monotonic() - started
        ambassador.expect_exit(0, timeout=120)
        latencies = observer.latencies(address_of(keystore), posted_guids(ambassador))
        if len(latencies) < bounties:
            raise SystemExit(f"{label}: only {len(latencies)} of {bounties} assertions seen")
        result = {
            "cpu_ms": (total - before) * 1000 / bounties,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "seconds": seconds,
        }
        all_latencies[label].extend(latencies)
        print(f"{label} slowest five, ms: {', '.join(f'{v * 1000:.0f}' for v in sorted(latencies)[-5:])}", flush=True)
        if proxy:
            lines = proxy.requests[requests_before:]
            result["requests"] = len(lines) / bounties
            kinds = Counter(ROUTE.sub("<id>", line.split("?")[0]) for line in lines)
            print(f"{label} requests per bounty, by route:", flush=True)
            for kind, count in kinds.most_common():
                print(f"  {count / bounties:5.2f}  {kind}", flush=True)
        return result
    finally:
        if proxy:
            proxy.close()


def time_help(runs: int) -> tuple[float, float]:
    def median(argv: list[str]) -> float:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # writes bytecode
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    return median([sys.executable, "-c", "pass"]), median([*command("microengine"), "--help"])


def soak(devnet: Devnet, cli: Cli, seconds: float, every: float) -> None:
    state = cli.workdir / "soak-state"
    engine = cli.engine("spare3_keyfile", testing=None, state_dir=state, name="engine-soak")
    cli.ready(engine, ENGINE_READY)
    ambassador = cli.start(
        "ambassador",
        "--testing", "0",
        "--duration", str(DURATION),
        "--submission-rate", "0.5",
        keystore="ambassador_keyfile",
        name="ambassador-soak",
        log_level="warning",
    )  # fmt: skip
    print(f"\nsoak: {seconds:.0f} s, a bounty every 0.5 s; RSS and state directory every {every:.0f} s")
    print("| elapsed s | RSS MiB | state files | state KiB | settled |")
    print("| --- | --- | --- | --- | --- |")
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    while time.monotonic() - started < seconds:
        time.sleep(every)
        elapsed = time.monotonic() - started
        files = [p for p in state.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        rss = rss_kib(engine.pid)
        settled = len(engine.lines_matching(r": settled"))
        samples.append((elapsed, rss))
        print(f"| {elapsed:.0f} | {rss / 1024:.1f} | {len(files)} | {size / 1024:.1f} | {settled} |", flush=True)
    ambassador.stop(timeout=30)
    engine.stop(timeout=60)
    warm = [rss for t, rss in samples if t >= min(120.0, seconds / 3)]
    if len(warm) >= 2:
        print(f"RSS after warm-up: {warm[0] / 1024:.1f} -> {warm[-1] / 1024:.1f} MiB ({(warm[-1] / warm[0] - 1):+.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounties", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1, help="floor/engine pairs, medians reported (0: soak only)")
    parser.add_argument("--help-runs", type=int, default=7)
    parser.add_argument("--engine-log", default="warning", help="the engine's --log (its default: warning)")
    parser.add_argument("--count-requests", action="store_true", help="count requests through a TCP proxy")
    parser.add_argument("--profile", metavar="FILE", help="run the engine under cProfile, stats to FILE")
    parser.add_argument("--py-spy", metavar="FILE", help="sample the engine with py-spy (raw stacks to FILE)")
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS", help="then soak this long")
    parser.add_argument("--every", type=float, default=30.0, metavar="SECONDS", help="soak sample interval")
    args = parser.parse_args()
    # Measure the programs as installed: pip compiles the bytecode of what it installs, so the processes
    # started here may write theirs; with PYTHONDONTWRITEBYTECODE every run would compile every module it
    # imports, the lazily imported ones inside the measured CPU.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    floor_s, help_s = time_help(args.help_runs)
    print(f"microengine --help: {help_s * 1000:.0f} ms; python -c pass: {floor_s * 1000:.0f} ms", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="engine-bench-"))
    print(f"logs in {workdir}", flush=True)
    devnet = Devnet.start(workdir / "devnet", OPTIONS)
    shared = Cli(devnet, workdir / "arbiter")
    observer = Observer(f"ws://127.0.0.1:{devnet.port}/events/?chain=side")
    observer.start()
    results: dict[str, dict[str, float]] = {}
    load = os.getloadavg()[0]
    try:
        arbiter = shared.arbiter(testing=0)
        shared.ready(arbiter, ARBITER_READY)
        runs: dict[str, list[dict[str, float]]] = {"floor": [], "engine": []}
        for round_ in range(args.rounds):  # floor and engine alternate, so both see the same background load
            for label, keystore in (("floor", "spare1_keyfile"), ("engine", "spare2_keyfile")):
                cli = Cli(devnet, workdir / f"{label}-{round_}")
                try:
                    result = run_one(
                        label,
                        devnet,
                        cli,
                        observer,
                        keystore,
                        args.bounties,
                        args.count_requests,
                        args.engine_log,
                        args.profile,
                        args.py_spy,
                    )
                finally:
                    cli.cleanup()
                runs[label].append(result)
                print(f"round {round_ + 1} {label}: {result}", flush=True)
                load = max(load, os.getloadavg()[0])
        if args.rounds:
            results = {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in runs.items()}
            load = max(load, os.getloadavg()[0])
            floor, engine = results["floor"], results["engine"]
            print(f"\n{args.bounties} one-artifact EICAR bounties each, median of {args.rounds} round(s); load average "
                  f"up to {load:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
            print("| figure | floor | microengine | ratio | goal |")
            print("| --- | --- | --- | --- | --- |")
            rows = [("CPU per bounty, ms", "cpu_ms", "<= 1.3x"), ("event -> assertion mined p50, ms", "p50_ms", ""),
                    ("event -> assertion mined p99, ms", "p99_ms", "<= 1.1x")]  # fmt: skip
            if args.count_requests:
                rows.append(("requests per bounty", "requests", ""))
            for name, key, goal in rows:
                print(f"| {name} | {floor[key]:.1f} | {engine[key]:.1f} | {engine[key] / floor[key]:.2f}x | {goal} |")
            if args.rounds > 1:  # one p99 over every round's bounties: less at the mercy of one slow bounty
                for q in (0.95, 0.99):
                    f, e = (percentile(all_latencies[label], q) * 1000 for label in ("floor", "engine"))
                    print(f"| event -> assertion mined p{q * 100:.0f}, all {args.rounds} rounds pooled, ms | {f:.1f} | "
                          f"{e:.1f} | {e / f:.2f}x | {'<= 1.1x' if q == 0.99 else ''} |")  # fmt: skip
            print(f"| `microengine --help`, ms | {floor_s * 1000:.0f} (python -c pass) | {help_s * 1000:.0f} | "
                  f"{help_s / floor_s:.2f}x | < 250 ms |")  # fmt: skip
        if args.soak:
            cli = Cli(devnet, workdir / "soak")
            try:
                soak(devnet, cli, args.soak, args.every)
            finally:
                cli.cleanup()
        arbiter.stop(timeout=30)
    finally:
        shared.cleanup()
        devnet.process.stop(timeout=20)
        devnet.process.cleanup()


if __name__ == "__main__":
    main()
