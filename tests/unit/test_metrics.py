"""The metrics interface services record through: label checks, no-op without an exporter, health rules."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest

from polyswarmclient import metrics
from polyswarmclient.metrics import Health, Spec


class Recorded:
    """A sink that keeps what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float, tuple[str, ...]]] = []

    def inc(self, spec: Spec, amount: float, values: tuple[str, ...]) -> None:
        self.calls.append(("inc", spec.name, amount, values))

    def set(self, spec: Spec, value: float, values: tuple[str, ...]) -> None:
        self.calls.append(("set", spec.name, value, values))

    def observe(self, spec: Spec, value: float, values: tuple[str, ...]) -> None:
        self.calls.append(("observe", spec.name, value, values))


@pytest.fixture
def sink() -> Iterator[Recorded]:
    recorded = Recorded()
    metrics.install(recorded)
    try:
        yield recorded
    finally:
        metrics.install(None)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def health() -> tuple[Health, Clock]:
    clock = Clock()
    state = Health()
    state.clock = clock
    return state, clock


def test_recording_reaches_the_installed_sink_with_label_values_in_declared_order(sink: Recorded) -> None:
    """What a service records arrives at the exporter, labels ordered as the metric declares them."""
    metrics.BOUNTIES_SKIPPED.inc(reason="funds", chain="side")
    metrics.NCT_BALANCE.set(12.5, chain="home")
    metrics.SCAN_SECONDS.observe(0.2)
    assert sink.calls == [
        ("inc", "polyswarm_bounties_skipped_total", 1, ("side", "funds")),
        ("set", "polyswarm_balance_nct", 12.5, ("home",)),
        ("observe", "polyswarm_scan_duration_seconds", 0.2, ()),
    ]


def test_without_an_exporter_nothing_is_kept_but_labels_are_still_checked() -> None:
    """Metrics off: recording is a no-op, yet a wrong label fails in every test run, not only in production."""
    metrics.install(None)
    metrics.ASSERTIONS.inc(chain="side")  # no sink, no error
    with pytest.raises(ValueError, match="takes labels"):
        metrics.ASSERTIONS.inc(chian="side")
    with pytest.raises(ValueError, match="takes labels"):
        metrics.IN_FLIGHT.set(1, chain="side")


def test_every_metric_follows_the_prometheus_naming_conventions() -> None:
    """polyswarm_ prefix, snake case, counters end in _total, and amounts and times carry their unit."""
    names = [instrument.spec.name for instrument in metrics.INSTRUMENTS]
    assert len(names) == len(set(names))
    for instrument in metrics.INSTRUMENTS:
        spec = instrument.spec
        assert re.fullmatch(r"polyswarm_[a-z0-9_]+", spec.name), spec.name
        assert spec.name.endswith("_total") == (spec.kind == "counter"), spec.name
        if spec.kind == "histogram":
            assert spec.name.endswith("_seconds"), spec.name
            assert list(spec.buckets) == sorted(spec.buckets)
    with pytest.raises(ValueError, match="_total"):
        metrics.Counter("polyswarm_things", "no suffix")


def test_the_issue_s_metrics_are_all_declared() -> None:
    """Bounties seen/skipped/asserted, reveals, forfeits, settles, scan errors and timeouts, NCT paid and bid,
    scan time and latency, balances, in flight, websocket, block age, queue depth."""
    names = {instrument.spec.name for instrument in metrics.INSTRUMENTS}
    assert {
        "polyswarm_bounties_seen_total",
        "polyswarm_bounties_skipped_total",
        "polyswarm_assertions_total",
        "polyswarm_reveals_total",
        "polyswarm_forfeits_total",
        "polyswarm_settles_total",
        "polyswarm_scan_errors_total",
        "polyswarm_scan_timeouts_total",
        "polyswarm_payout_nct_total",
        "polyswarm_bid_nct_total",
        "polyswarm_scan_duration_seconds",
        "polyswarm_assertion_latency_seconds",
        "polyswarm_balance_nct",
        "polyswarm_balance_eth",
        "polyswarm_bounties_in_flight",
        "polyswarm_websocket_connected",
        "polyswarm_last_block_age_seconds",
        "polyswarm_queue_depth",
    } <= names


def test_nct_turns_wei_into_nct() -> None:
    assert metrics.nct(3 * 10**18 // 2) == 1.5


def test_not_ready_until_serving_and_every_stream_connected_with_a_block(health: tuple[Health, Clock]) -> None:
    """A command is ready once it serves and each event stream is connected and has delivered a block."""
    state, _ = health
    assert state.ready() == (False, ["starting: not serving yet"])
    state.serving = True
    assert state.ready() == (True, [])
    state.stream_connected("side", True)
    assert state.ready() == (False, ["side event stream has delivered no block yet"])
    state.block("side", 7)
    assert state.ready() == (True, [])
    state.stream_connected("side", False)
    assert state.ready() == (False, ["side event stream disconnected"])
    state.stream_connected("side", True)
    assert state.ready()[0]


def test_a_stream_goes_stale_after_a_few_block_intervals_never_under_the_floor(
    health: tuple[Health, Clock],
) -> None:
    """Fresh within FRESH_BLOCKS block intervals (measured on the stream), at least MIN_STALE_SECONDS."""
    state, clock = health
    state.serving = True
    state.stream_connected("side", True)
    for number in range(10):  # a block every 5 s: stale after 5 x 5 = 25 s
        state.block("side", number)
        clock.now += 5
    clock.now += 25 - 5 - 0.1
    assert state.ready()[0]
    clock.now += 0.2
    ready, problems = state.ready()
    assert not ready and "side event stream stale: newest block 9 is 25 s old" in problems[0]

    fast = Health()
    fast.clock = clock
    fast.serving = True
    fast.stream_connected("home", True)
    for number in range(5):  # a block a second: 5 s would flap, the 15 s floor holds
        fast.block("home", number)
        clock.now += 1
    clock.now += metrics.MIN_STALE_SECONDS - 1 - 0.1
    assert fast.ready()[0]
    clock.now += 0.2
    assert not fast.ready()[0]


def test_an_unreachable_dependency_is_not_ready(health: tuple[Health, Clock]) -> None:
    """A worker whose Redis is down says so on /readyz, and is ready again when it answers."""
    state, _ = health
    state.serving = True
    state.link("redis", False)
    assert state.ready() == (False, ["redis unreachable"])
    state.link("redis", True)
    assert state.ready() == (True, [])


def test_draining_is_not_ready(health: tuple[Health, Clock]) -> None:
    """After the first stop signal an orchestrator must stop sending work: /readyz says draining."""
    state, _ = health
    state.serving, state.draining = True, True
    assert state.ready() == (False, ["draining: a stop was requested"])


def test_a_stalled_event_loop_is_not_alive_and_not_ready(health: tuple[Health, Clock]) -> None:
    """No heartbeat for STALL_SECONDS: /healthz fails (and /readyz with it)."""
    state, clock = health
    state.serving = True
    assert state.alive()[0]  # no loop watched yet
    state.beat = clock.now
    clock.now += metrics.STALL_SECONDS - 0.5
    assert state.alive()[0]
    clock.now += 1
    alive, why = state.alive()
    assert not alive and why.startswith("event loop stalled: no heartbeat for 10.5 s")
    assert not state.ready()[0]


async def test_the_heartbeat_beats_on_the_running_loop() -> None:
    """The heartbeat task keeps ``beat`` fresh while the loop runs."""
    state = Health()
    task = asyncio.create_task(state.heartbeat(interval=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    assert state.beat is not None and state.alive()[0]
    assert state.lag >= 0


def test_refresh_sets_the_time_dependent_gauges(sink: Recorded, health: tuple[Health, Clock]) -> None:
    """Block age, loop lag and readiness are computed when scraped."""
    state, clock = health
    state.serving = True
    state.stream_connected("side", True)
    state.block("side", 42)
    clock.now += 3
    sink.calls.clear()
    state.refresh()
    assert ("set", "polyswarm_last_block_age_seconds", 3.0, ("side",)) in sink.calls
    assert ("set", "polyswarm_ready", 1, ()) in sink.calls


def test_a_gauge_several_services_add_to_shows_their_total(sink: Recorded) -> None:
    """Two communities' engines with bounties in flight: the gauge shows both, not the last one's count."""
    gauge = metrics.IN_FLIGHT
    start = gauge._totals.get((), 0.0)  # what other tests left in this process
    gauge.add(1)  # alpha takes a bounty
    gauge.add(1)  # beta takes one
    gauge.add(1)  # alpha another
    gauge.add(-1)  # beta's is done
    shown = [value - start for _, name, value, _ in sink.calls if name == gauge.spec.name]
    gauge.add(-2)
    assert shown == [1, 2, 3, 2]


def test_a_chain_label_inside_a_community_names_it(sink: Recorded) -> None:
    """A metric recorded in a community's task carries NAME/side; outside one, side as before."""
    import contextvars

    def in_beta() -> None:
        metrics.set_scope("beta")
        metrics.BOUNTIES_SEEN.inc(chain="side")

    contextvars.copy_context().run(in_beta)
    metrics.BOUNTIES_SEEN.inc(chain="side")
    assert [values for _, name, _, values in sink.calls if name == "polyswarm_bounties_seen_total"] == [
        ("beta/side",),
        ("side",),
    ]
