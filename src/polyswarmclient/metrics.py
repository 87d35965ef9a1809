"""What the commands count, time and gauge, and how healthy the process is: standard library only.

Services record through the instruments declared here (``metrics.BOUNTIES_SEEN.inc(chain="side")``) and
never see the exporter. Until one is installed (``--metrics-addr``: :mod:`polyswarmclient.telemetry`
installs a prometheus-client sink), recording is a label check and nothing else, so a process without
the option keeps nothing. Every instrument is declared once, below, with its Prometheus name, help and
label names; the exporter, docs/operations.md and the Grafana dashboard's test all read
:data:`INSTRUMENTS`.

:data:`HEALTH` is what ``/healthz`` and ``/readyz`` judge: the event loop's heartbeat, whether the
command is serving (it reached polyswarmd and started its work) or draining, and, per chain, whether the
event stream is connected and how old its newest block is.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

Kind = Literal["counter", "gauge", "histogram"]


@dataclass(frozen=True)
class Spec:
    """One metric: its full Prometheus name, kind, help text, label names and (histograms) buckets."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


class Sink(Protocol):
    """Where recorded values go (the exporter); ``values`` are in the order of ``spec.labels``."""

    def inc(self, spec: Spec, amount: float, values: tuple[str, ...]) -> None: ...

    def set(self, spec: Spec, value: float, values: tuple[str, ...]) -> None: ...

    def observe(self, spec: Spec, value: float, values: tuple[str, ...]) -> None: ...


_sink: Sink | None = None
#: Every instrument, in declaration order.
INSTRUMENTS: list[Instrument] = []


def install(sink: Sink | None) -> None:
    """Send what is recorded from now on to ``sink`` (None: record nothing again)."""
    global _sink
    _sink = sink


def enabled() -> bool:
    return _sink is not None


#: The community whose work records now (one process serving several, see docs/communities.md): set at the
#: top of the community's task, inherited by the tasks it starts. Empty for a single community.
_SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("polyswarm_metrics_scope", default="")


def set_scope(community: str) -> None:
    """Record this task's (and its child tasks') values for ``community``: ``chain`` labels read ``NAME/side``."""
    _SCOPE.set(community)


def scoped(chain: str) -> str:
    """``chain`` as the current community's (``NAME/side``), or as given when one community is served."""
    scope = _SCOPE.get()
    return f"{scope}/{chain}" if scope else chain


class Instrument:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self._label_set = frozenset(spec.labels)
        INSTRUMENTS.append(self)

    def _values(self, labels: dict[str, str]) -> tuple[str, ...]:
        if labels.keys() != self._label_set:
            raise ValueError(f"{self.spec.name} takes labels {self.spec.labels}, not {tuple(labels)}")
        return tuple(scoped(str(labels[name])) if name == "chain" else str(labels[name]) for name in self.spec.labels)


class Counter(Instrument):
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        super().__init__(Spec(name, "counter", help, labels))

    def inc(self, amount: float = 1, **labels: str) -> None:
        values = self._values(labels)
        if _sink is not None and amount:
            _sink.inc(self.spec, amount, values)


class Gauge(Instrument):
    def __init__(self, name: str, help: str, labels: tuple[str, ...] = ()) -> None:
        super().__init__(Spec(name, "gauge", help, labels))
        #: Running totals of :meth:`add`, per label values (as few as the label combinations).
        self._totals: dict[tuple[str, ...], float] = {}

    def add(self, delta: float, **labels: str) -> None:
        """Move the gauge by ``delta``: several services of one process (one per community) each add their
        share of one total, where :meth:`set` would have each overwrite the others'."""
        values = self._values(labels)
        total = self._totals[values] = self._totals.get(values, 0.0) + delta
        if _sink is not None:
            _sink.set(self.spec, total, values)

    def set(self, value: float, **labels: str) -> None:
        values = self._values(labels)
        if _sink is not None:
            _sink.set(self.spec, value, values)


class Histogram(Instrument):
    def __init__(self, name: str, help: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> None:
        super().__init__(Spec(name, "histogram", help, labels, buckets))

    def observe(self, value: float, **labels: str) -> None:
        values = self._values(labels)
        if _sink is not None:
            _sink.observe(self.spec, value, values)


_NCT_WEI = 10**18


def nct(wei: int) -> float:
    """An NCT-wei amount as NCT for a metric (a float: fine for a graph, never for arithmetic)."""
    return wei / _NCT_WEI


# --- the microengine ------------------------------------------------------------------------------

BOUNTIES_SEEN = Counter("polyswarm_bounties_seen_total", "Bounties announced on the chains we work on.", ("chain",))
BOUNTIES_SKIPPED = Counter(
    "polyswarm_bounties_skipped_total",
    "Bounties seen but not asserted on, by reason: artifact_type, stopping, testing_quota, too_late, "
    "no_artifacts, no_verdict, funds, queue_down.",
    ("chain", "reason"),
)
ASSERTIONS = Counter("polyswarm_assertions_total", "Our assertions mined.", ("chain",))
REVEALS = Counter("polyswarm_reveals_total", "Our assertions revealed.", ("chain",))
FORFEITS = Counter("polyswarm_forfeits_total", "Reveals forfeited (the window closed first).", ("chain",))
SETTLES = Counter("polyswarm_settles_total", "Bounties this process settled (transaction mined).", ("chain",))
SCAN_ERRORS = Counter("polyswarm_scan_errors_total", "Artifacts whose fetch or scan failed.", ("chain",))
SCAN_TIMEOUTS = Counter(
    "polyswarm_scan_timeouts_total", "Artifacts whose scan was abandoned at the bounty's deadline.", ("chain",)
)
NCT_BID = Counter("polyswarm_bid_nct_total", "NCT bid on our mined assertions.", ("chain",))
NCT_PAID_OUT = Counter(
    "polyswarm_payout_nct_total", "NCT paid out to us, as the bounty settled events report it.", ("chain",)
)
SCAN_SECONDS = Histogram(
    "polyswarm_scan_duration_seconds",
    "Time to fetch and scan one artifact (successful scans).",
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ASSERTION_LATENCY = Histogram(
    "polyswarm_assertion_latency_seconds",
    "From taking a bounty (its event, or a catch-up) to our assertion being mined.",
    (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
    ("chain",),
)
IN_FLIGHT = Gauge("polyswarm_bounties_in_flight", "Bounties being scanned or asserted on right now.")
QUEUE_DEPTH = Gauge(
    "polyswarm_queue_depth", "Work waiting for a free slot: artifacts waiting for a scan slot, or queued scan jobs."
)

# --- the scan queue (microengine --scan-queue, worker; docs/scaling.md) ---------------------------------

SCAN_JOBS = Counter(
    "polyswarm_scan_jobs_total",
    "Scan jobs by outcome. The engine counts published, answered, unanswered (its deadline came first) and "
    "late (a result after the deadline, or a second one); a worker counts scanned, failed, expired (dropped "
    "unscanned) and taken_over (claimed from a worker that stopped answering).",
    ("outcome",),
)
SCAN_JOB_LATENCY = Histogram(
    "polyswarm_scan_job_latency_seconds",
    "From publishing a scan job to its result reaching the engine.",
    (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
SCAN_QUEUE_OVERHEAD = Histogram(
    "polyswarm_scan_queue_overhead_seconds",
    "What the queue adds to a scan job: its latency at the engine minus the worker's scan time.",
    (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
SCAN_JOBS_AT_WORKERS = Gauge(
    "polyswarm_scan_jobs_at_workers",
    "Scan jobs taken by a worker and not acknowledged yet (polyswarm_queue_depth counts those no worker has taken).",
)
SCAN_QUEUE_UP = Gauge("polyswarm_scan_queue_up", "1 while the scan queue's Redis answers, 0 while it is unreachable.")

# --- balances (balancemanager maintain, and what the roles read) ----------------------------------

NCT_BALANCE = Gauge("polyswarm_balance_nct", "NCT balance of our account, per chain (when last read).", ("chain",))
ETH_BALANCE = Gauge("polyswarm_balance_eth", "ETH balance of our account, per chain (when last read).", ("chain",))
TRANSFERS = Counter(
    "polyswarm_relay_transfers_total",
    "Relay transfers balancemanager maintain sent, by direction (deposit, withdraw).",
    ("direction",),
)

# --- the ambassador and the arbiter ---------------------------------------------------------------

BOUNTIES_POSTED = Counter("polyswarm_bounties_posted_total", "Bounties the ambassador posted.", ("chain",))
VOTES = Counter("polyswarm_votes_total", "Bounties the arbiter voted on.", ("chain",))

# --- the event stream and the process ------------------------------------------------------------

STREAM_CONNECTED = Gauge(
    "polyswarm_websocket_connected", "1 while the chain's event stream is connected, else 0.", ("chain",)
)
LAST_BLOCK = Gauge("polyswarm_last_block_number", "Newest block number the event stream delivered.", ("chain",))
LAST_BLOCK_AGE = Gauge(
    "polyswarm_last_block_age_seconds", "Seconds since the event stream delivered its newest block.", ("chain",)
)
LOOP_LAG = Gauge(
    "polyswarm_event_loop_lag_seconds", "How late the event loop's last one-second heartbeat ran (0 when on time)."
)
READY = Gauge("polyswarm_ready", "1 while /readyz answers ready, else 0.")


# --- health ---------------------------------------------------------------------------------------

#: A chain's stream is stale when its newest block is older than this many block intervals ...
FRESH_BLOCKS = 5
#: ... and never sooner than this many seconds (a slow or irregular chain must not flap).
MIN_STALE_SECONDS = 15.0
#: The event loop counts as stalled when its heartbeat is this late.
STALL_SECONDS = 10.0
HEARTBEAT_SECONDS = 1.0


@dataclass
class StreamHealth:
    connected: bool = False
    block: int | None = None
    block_at: float | None = None
    #: The gaps between the last blocks (seconds), to judge what "a few blocks" is on this chain.
    gaps: deque[float] = field(default_factory=lambda: deque(maxlen=16))

    def stale_after(self) -> float:
        interval = sum(self.gaps) / len(self.gaps) if self.gaps else 0.0
        return max(MIN_STALE_SECONDS, FRESH_BLOCKS * interval)


class Health:
    """The process's own view of itself; written on the event loop, read by the metrics server's thread."""

    def __init__(self) -> None:
        self.clock = time.monotonic
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new command in the same process, or a test)."""
        self.beat: float | None = None
        self.lag = 0.0
        self.serving = False
        self.draining = False
        self.streams: dict[str, StreamHealth] = {}
        #: Other services the command needs (``redis``): reachable or not.
        self.links: dict[str, bool] = {}

    def stream_connected(self, chain: str, connected: bool) -> None:
        self.streams.setdefault(scoped(chain), StreamHealth()).connected = connected
        STREAM_CONNECTED.set(1 if connected else 0, chain=chain)

    def link(self, name: str, reachable: bool) -> None:
        """Whether ``name`` (a service the command depends on, such as Redis) is reachable."""
        self.links[name] = reachable

    def block(self, chain: str, number: int) -> None:
        now = self.clock()
        stream = self.streams.setdefault(scoped(chain), StreamHealth())
        if stream.block_at is not None:
            stream.gaps.append(now - stream.block_at)
        stream.block, stream.block_at = number, now
        LAST_BLOCK.set(number, chain=chain)

    def alive(self) -> tuple[bool, str]:
        """Whether the event loop is running (its heartbeat is recent), and why not."""
        if self.beat is None:
            return True, "no event loop watched yet"
        late = self.clock() - self.beat
        if late > STALL_SECONDS:
            return False, f"event loop stalled: no heartbeat for {late:.1f} s"
        return True, f"event loop heartbeat {late:.1f} s ago"

    def ready(self) -> tuple[bool, list[str]]:
        """Whether the command serves (reached polyswarmd, streams connected and fresh), and why not."""
        problems: list[str] = []
        alive, why = self.alive()
        if not alive:
            problems.append(why)
        if self.draining:
            problems.append("draining: a stop was requested")
        elif not self.serving:
            problems.append("starting: not serving yet")
        problems += [f"{name} unreachable" for name, reachable in sorted(self.links.items()) if not reachable]
        now = self.clock()
        for chain, stream in sorted(self.streams.items()):
            if not stream.connected:
                problems.append(f"{chain} event stream disconnected")
            elif stream.block_at is None:
                problems.append(f"{chain} event stream has delivered no block yet")
            elif (age := now - stream.block_at) > stream.stale_after():
                problems.append(f"{chain} event stream stale: newest block {stream.block} is {age:.0f} s old")
        return not problems, problems

    def refresh(self) -> None:
        """Set the gauges that depend on the time of reading (called before each scrape)."""
        now = self.clock()
        for chain, stream in list(self.streams.items()):
            if stream.block_at is not None:
                LAST_BLOCK_AGE.set(now - stream.block_at, chain=chain)
        LOOP_LAG.set(self.lag)
        READY.set(1 if self.ready()[0] else 0)

    async def heartbeat(self, interval: float = HEARTBEAT_SECONDS) -> None:
        """Beat every ``interval`` seconds on the running loop, recording how late each beat was."""
        loop = asyncio.get_running_loop()
        self.beat = self.clock()
        while True:
            expected = loop.time() + interval
            await asyncio.sleep(interval)
            self.lag = max(0.0, loop.time() - expected)
            self.beat = self.clock()


HEALTH = Health()
