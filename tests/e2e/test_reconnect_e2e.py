"""A reconnect must not lose bounties: a real ``microengine`` that missed a bounty's event still takes it.

polyswarmd replays nothing, so a bounty posted while an engine's websocket is down (or before the engine
first connects) has no event for it. The engine must find it by paging ``GET /bounties`` when the stream
comes back, and then assert, reveal, settle and be paid exactly as for a bounty it saw live.

The outage is a :class:`~tests.e2e.harness.TcpProxy` between the engine and the devnet: every
connection through it (websocket and REST) is dropped and new ones are refused while the ambassador,
which talks to the devnet directly, posts the bounty. The last test starts the outage just as the engine
posts its assertion: the transaction is mined, but its answer and its event are lost, and the engine must
still find it on chain and reveal.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import (
    ENGINE_READY,
    NCT,
    Balances,
    Cli,
    Devnet,
    Process,
    TcpProxy,
    assert_asserted_revealed_settled,
    assert_paid_as_the_only_right_expert,
    command,
    free_port,
    http_get,
    posted_guids,
    scrape,
    wait_until,
)

# The devnet runs with the default DevnetOptions: a block every 0.25 s, 12-block reveal and 8-block vote windows.

#: Blocks (~15 s idle) from posting to expiration for the bounty posted during the outage. The engine
#: retries the websocket with jittered, doubling delays (0.5-1 s, 1-2 s, 2-4 s, 4-8 s, ...): after an
#: outage of a few seconds its next attempt can come up to ~8 s after the proxy is back, and it must
#: still scan and commit before expiration.
DURATION_DURING_OUTAGE = 60
#: Blocks (~7 s idle) for the bounty posted before the engine starts: enough for a cold start (~1 s here).
DURATION_BEFORE_START = 28
#: Blocks (~12 s idle) for the bounty whose assertion's answer is lost: the engine gives up posting
#: within a few seconds of the cut, and REST must be back before expiration, when the reveal is due.
DURATION_RECEIPT_LOST = 48
CATCH_UP_FOUND_ONE = "catch-up on side done: 1 open bounty(ies) had been missed"


@pytest.fixture
def proxy(devnet: Devnet) -> Iterator[TcpProxy]:
    with TcpProxy(devnet.port) as relay:
        yield relay


def _first_guid(ambassador: Process) -> str | None:
    guids = posted_guids(ambassador)
    return guids[0] if guids else None


def _line_index(process: Process, text: str) -> int:
    for number, line in enumerate(process.output().splitlines()):
        if text in line:
            return number
    raise AssertionError(f"{process.name} never logged {text!r}")


def _engine_behind(proxy: TcpProxy, cli: Cli, keystore: str, name: str, *extra: str, **kw: Any) -> Process:
    """A microengine with ``keystore`` that reaches the devnet only through ``proxy``, caught up and ready."""
    engine = cli.engine(keystore, *extra, addr=proxy.addr, name=name, **kw)
    cli.ready(engine, ENGINE_READY)
    return engine


def _worked_and_paid(devnet: Devnet, engine: Process, guid: str, keystore: str, before: Balances) -> None:
    assert_asserted_revealed_settled(engine, guid)
    assert_paid_as_the_only_right_expert(devnet, guid, keystore, before)


def _probe(port: int) -> subprocess.CompletedProcess[str]:
    """polyswarm-probe as the image's HEALTHCHECK runs it (METRICS_ADDR, no URL)."""
    env = {**os.environ, "METRICS_ADDR": f"0.0.0.0:{port}"}
    return subprocess.run(command("polyswarm-probe"), capture_output=True, text=True, env=env, timeout=30)


def test_bounty_posted_while_the_engine_is_cut_off_is_caught_up_and_paid(
    devnet: Devnet, arbiter: Process, cli: Cli, proxy: TcpProxy
) -> None:
    """Every connection dropped and refused while a bounty is posted: on reconnect the engine takes it.

    With --metrics-addr, /readyz (and polyswarm-probe) say unready while polyswarmd is out of reach and
    ready once the stream is back, and /metrics counts what the chain shows the engine did.
    """
    keystore = "spare1_keyfile"
    before = devnet.balances(keystore)
    port = free_port()
    ready_url = f"http://127.0.0.1:{port}/readyz"
    engine = _engine_behind(
        proxy, cli, keystore, "engine-behind-proxy", "--metrics-addr", f"127.0.0.1:{port}", testing=None
    )
    assert proxy.websocket_connections() == 1, proxy.requests
    wait_until(lambda: http_get(ready_url)[0] == 200, timeout=10, what="/readyz to answer ready", watch=[engine])
    assert _probe(port).returncode == 0

    proxy.cut()
    wait_until(
        lambda: engine.lines_matching(r"event stream \S+ closed"),
        timeout=10,
        what="the engine to notice its event stream was dropped",
        watch=[engine],
    )
    assert http_get(ready_url) == (503, "not ready: side event stream disconnected\n")
    unready = _probe(port)
    assert unready.returncode == 1 and "side event stream disconnected" in unready.stderr, unready
    assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # alive all along: no restart wanted
    ambassador = cli.ambassador(bounties=1, duration=DURATION_DURING_OUTAGE)
    guid = wait_until(
        lambda: _first_guid(ambassador),
        timeout=30,
        what="the ambassador to post a bounty during the outage",
        watch=[ambassador, engine],
    )
    wait_until(
        lambda: engine.lines_matching(r"cannot open event stream"),
        timeout=10,
        what="the engine to fail at least one reconnect attempt while the proxy refuses connections",
        watch=[engine],
    )
    assert proxy.websocket_connections() == 1, "the engine got a websocket through during the outage"
    expiration = int(devnet.bounty(guid)["expiration"])
    assert devnet.block() < expiration - 20, "the outage ran so long that the bounty is nearly closed"
    proxy.restore()

    wait_until(
        lambda: proxy.websocket_connections() >= 2,
        timeout=20,
        what="the engine's websocket to come back through the proxy",
        watch=[engine],
    )
    wait_until(lambda: http_get(ready_url)[0] == 200, timeout=20, what="/readyz to answer ready again", watch=[engine])
    wait_until(
        lambda: f"bounty {guid}: asserting" in engine.output(),
        timeout=30,
        what=f"the engine to assert on bounty {guid}, posted while it was cut off",
        watch=[engine],
    )
    wait_until(
        lambda: f"bounty {guid}: settled" in engine.output() and f"bounty {guid}: payout" in engine.output(),
        timeout=90,
        what=f"the engine to settle bounty {guid} and see its payout",
        watch=[engine],
    )
    ambassador.expect_exit(0, timeout=60)
    _counted_as_on_chain(devnet, scrape(port), guid, keystore)
    assert _probe(port).returncode == 0
    assert engine.stop() == 0

    assert posted_guids(ambassador) == [guid]
    # the order a user reads in the log: the drop, the reconnect, the catch-up that found the bounty, the work
    dropped = _line_index(engine, "reconnecting")
    reconnected = _line_index(engine, "event stream for side reconnected; catching up")
    caught_up = _line_index(engine, CATCH_UP_FOUND_ONE)
    asserted = _line_index(engine, f"bounty {guid}: asserting")
    assert dropped < reconnected < asserted, (dropped, reconnected, asserted)
    assert reconnected < caught_up
    _worked_and_paid(devnet, engine, guid, keystore, before)


def test_readyz_goes_stale_while_the_devnet_is_frozen_and_ready_when_it_runs_again(
    devnet: Devnet, arbiter: Process, cli: Cli
) -> None:
    """The devnet stopped (SIGSTOP: the socket stays open, no block comes): /readyz turns unready on its
    own clock, /healthz stays 200 (the engine is fine), and both are ready again once the devnet runs."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    engine = cli.engine("spare4_keyfile", "--metrics-addr", f"127.0.0.1:{port}", testing=None, name="engine-frozen")
    cli.ready(engine, ENGINE_READY)
    wait_until(lambda: http_get(base + "/readyz")[0] == 200, timeout=10, what="/readyz to answer ready", watch=[engine])
    devnet.process.popen.send_signal(signal.SIGSTOP)
    try:
        status, reason = wait_until(
            lambda: (answer := http_get(base + "/readyz"))[0] != 200 and answer,
            timeout=40,
            what="/readyz to notice that no block came",
            watch=[engine],
        )
        assert (status, reason.split(": newest block")[0]) == (503, "not ready: side event stream stale"), reason
        assert http_get(base + "/healthz")[0] == 200
    finally:
        devnet.process.popen.send_signal(signal.SIGCONT)
    wait_until(
        lambda: http_get(base + "/readyz")[0] == 200,
        timeout=45,
        what="/readyz to answer ready once the devnet runs again",
        watch=[engine],
    )
    assert engine.stop() == 0


def test_engine_started_after_a_bounty_was_posted_takes_it_on_its_first_connect(
    devnet: Devnet, arbiter: Process, cli: Cli
) -> None:
    """A bounty posted before the engine starts (still open) is found by the first catch-up and paid."""
    keystore = "spare2_keyfile"
    before = devnet.balances(keystore)
    ambassador = cli.ambassador(bounties=1, duration=DURATION_BEFORE_START)
    guid = wait_until(
        lambda: _first_guid(ambassador),
        timeout=30,
        what="the ambassador to post a bounty",
        watch=[ambassador],
    )
    expiration = int(devnet.bounty(guid)["expiration"])
    assert devnet.block() < expiration

    engine = cli.engine(keystore, name="engine-started-late")
    engine.expect_exit(0, timeout=90)
    ambassador.expect_exit(0, timeout=60)

    assert posted_guids(ambassador) == [guid]
    # Posted before the engine started, so only its first catch-up can have found it. (The assertion runs
    # in its own task while the catch-up finishes, so the two log lines may come in either order.)
    assert CATCH_UP_FOUND_ONE in engine.output()
    assert f"bounty {guid}: asserting" in engine.output()
    assert "reconnected" not in engine.output()
    _worked_and_paid(devnet, engine, guid, keystore, before)


def test_assertion_mined_while_its_receipt_and_event_were_lost_is_still_revealed_and_paid(
    devnet: Devnet, arbiter: Process, cli: Cli, proxy: TcpProxy
) -> None:
    """The outage starts once the assertion is mined: no receipt, no event, yet the engine reveals and is paid."""
    keystore = "spare3_keyfile"
    before = devnet.balances(keystore)
    # armed before the engine starts: its first action is its assertion (approve, then postAssertion, one
    # POST /transactions each), and the cut comes right after the second
    proxy.cut_after("POST /transactions", occurrence=2)
    engine = _engine_behind(proxy, cli, keystore, "engine-receipt-lost")
    ambassador = cli.ambassador(bounties=1, duration=DURATION_RECEIPT_LOST)
    wait_until(
        lambda: proxy.triggered,
        timeout=30,
        what="the engine to post its assertion transaction",
        watch=[engine, ambassador],
    )
    guid = _first_guid(ambassador)
    assert guid is not None
    wait_until(
        lambda: devnet.assertion_by(guid, keystore),
        timeout=10,
        what=f"the engine's assertion on bounty {guid} to be on chain (it was sent before the cut)",
    )
    # the websocket may come back at once (the assertion's event is gone by then); REST stays down until
    # the engine has given up on posting
    proxy.restore(rest=False)
    wait_until(
        lambda: f"bounty {guid} failed" in engine.output(),
        timeout=40,
        what=f"the engine to give up on its assertion on {guid} (no answer, no receipt)",
        watch=[engine],
    )
    expiration = int(devnet.bounty(guid)["expiration"])
    assert devnet.block() < expiration - 4, "REST came back too late for this test to mean anything"
    proxy.restore()

    engine.expect_exit(0, timeout=90)
    ambassador.expect_exit(0, timeout=60)
    assert "was never confirmed" not in engine.output()
    _worked_and_paid(devnet, engine, guid, keystore, before)


def _counted_as_on_chain(devnet: Devnet, samples: dict[str, float], guid: str, keystore: str) -> None:
    """The engine's /metrics agree with the chain: one bounty seen, asserted, revealed and settled, the bids
    it escrowed and the payout settling paid it; nothing skipped, no scan failed; connected and ready."""
    mine = devnet.assertion_of(guid, keystore)
    settlement = devnet.settlement(guid)
    side = '{chain="side"}'
    assert mine["nonce"] != "0"  # revealed on chain
    assert samples[f"polyswarm_bounties_seen_total{side}"] == 1
    assert samples[f"polyswarm_assertions_total{side}"] == 1
    assert samples[f"polyswarm_reveals_total{side}"] == 1
    assert samples[f"polyswarm_settles_total{side}"] == 1
    assert samples[f"polyswarm_bid_nct_total{side}"] == sum(int(b) for b in mine["bid"]) / NCT
    assert samples[f"polyswarm_payout_nct_total{side}"] == settlement.payout(keystore) / NCT
    assert samples[f"polyswarm_balance_nct{side}"] > 0
    assert not any(
        name.startswith(("polyswarm_bounties_skipped_total", "polyswarm_scan_errors_total", "polyswarm_forfeits_total"))
        for name in samples
    )
    assert samples["polyswarm_scan_duration_seconds_count"] == 1
    assert samples[f"polyswarm_assertion_latency_seconds_count{side}"] == 1
    assert samples["polyswarm_bounties_in_flight"] == 0
    assert samples[f"polyswarm_websocket_connected{side}"] == 1
    assert samples[f"polyswarm_last_block_number{side}"] >= int(devnet.bounty(guid)["expiration"])
    assert samples["polyswarm_ready"] == 1
