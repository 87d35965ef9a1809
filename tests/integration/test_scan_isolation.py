"""A backend that blocks never freezes the engine: scans run off the engine's event loop.

Each test runs the engine against the simulated market with a backend that misbehaves on one bounty
(``time.sleep`` or a CPU-bound loop in ``scan_async``, a CPU-bound ``scan_sync``) while another bounty's
reveal and settle fall due: those happen on time, the misbehaving scan is abandoned at its timeout
with one warning naming the backend and the bounty, and the engine keeps serving.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import replace

import pytest

from polyswarmclient.abstractscanner import AbstractScanner, ScanMode, ScanResult
from polyswarmclient.amounts import nct
from polyswarmclient.backends import Backend, create_backend
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import EngineConfig, Microengine
from polyswarmclient.services.microengine.state import StateStore
from tests.integration.fakemarket import ENGINE, PARAMS, FakeClient, Market, running, until

ENGINE_PARAMS = replace(PARAMS, assertion_reveal_window=10, arbiter_vote_window=20)
MIN = ENGINE_PARAMS.assertion_bid_minimum
AUTHOR = "0xB8978B0D6aBB3D5BAeEaCbAC35d6B24F39AA443A"
E = 120  # expiration of the well-behaved bounty
STUCK_FOR = 5.0  # how long a misbehaving scan holds on (unless the test lets it go earlier)
SCAN_TIMEOUT = 0.5
ON_TIME = 1.0  # a due reveal or settle happens within this many seconds


def blocking_sleep(gate: threading.Event) -> None:
    """``time.sleep(5)``, cut short when the test is over (so the suite does not wait for it)."""
    end = time.monotonic() + STUCK_FOR
    while not gate.is_set() and time.monotonic() < end:
        time.sleep(0.05)


def cpu_bound(gate: threading.Event) -> None:
    """Pure-Python computation that never yields, for up to five seconds."""
    end = time.monotonic() + STUCK_FOR
    n = 0
    while not gate.is_set() and time.monotonic() < end:
        n = (n * 31 + 7) % 1_000_003


class Misbehaving(AbstractScanner):
    """Answers at once, except on content ``b"stuck"``, where it runs ``misbehave`` first."""

    misbehave: Callable[[threading.Event], None] = staticmethod(blocking_sleep)
    mode_used = ScanMode.ASYNC

    def __init__(self) -> None:
        super().__init__(self.mode_used)
        self.gate = threading.Event()
        self.stuck = threading.Event()

    def _verdict(self, content: bytes) -> ScanResult:
        if content == b"stuck":
            self.stuck.set()
            type(self).misbehave(self.gate)
        return ScanResult(bit=True, verdict=False, confidence=1.0, metadata="{}")

    async def scan_async(self, guid, artifact_type, content, metadata, chain):
        return self._verdict(content)

    def scan_sync(self, guid, artifact_type, content, metadata, chain):
        return self._verdict(content)


class SleepingAsync(Misbehaving):
    misbehave = staticmethod(blocking_sleep)


class BusyAsync(Misbehaving):
    misbehave = staticmethod(cpu_bound)


class BusySync(Misbehaving):
    misbehave = staticmethod(cpu_bound)
    mode_used = ScanMode.SYNC


@pytest.fixture
def market() -> Market:
    market = Market(params=ENGINE_PARAMS, nct={ENGINE: nct(100)})
    market.add_artifacts([("fine", b"fine")], uri="QmFine")
    market.add_artifacts([("stuck", b"stuck")], uri="QmStuck")
    return market


@pytest.fixture
def client(market: Market) -> FakeClient:
    return FakeClient(market, ENGINE)


def post(market: Market, uri: str, expiration: int) -> str:
    return market.open_bounty(AUTHOR, MIN, uri, expiration=expiration).guid


@asynccontextmanager
async def engine_with(client: FakeClient, tmp_path, backend: Backend, **config: object):
    store = StateStore(tmp_path / "state", ENGINE).open()
    shutdown = Shutdown(2.0)
    engine = Microengine(client, backend, store, EngineConfig(scan_timeout=SCAN_TIMEOUT, **config), shutdown)  # type: ignore[arg-type]
    try:
        async with running(lambda _: engine.run(), shutdown=shutdown, ready=client.subscribed) as run:
            try:
                yield engine, run
            finally:
                backend.impl.gate.set()  # let a still-stuck scan end, so the backend's teardown runs
    finally:
        store.close()


@pytest.mark.parametrize("cls", [SleepingAsync, BusyAsync, BusySync], ids=["sleep-async", "cpu-async", "cpu-sync"])
async def test_a_stuck_scan_does_not_delay_another_bountys_reveal_and_settle(market, client, tmp_path, caplog, cls):
    """While one bounty's scan blocks, the other bounty reveals and settles on time; the stuck scan times out."""
    caplog.set_level(logging.INFO, logger="microengine")
    backend = create_backend(cls, name="misbehaving")
    async with engine_with(client, tmp_path, backend) as (engine, run):
        fine = post(market, "QmFine", E)
        await until(lambda: fine in market.assertions)
        stuck = post(market, "QmStuck", E + 100)
        await asyncio.wait_for(asyncio.to_thread(backend.impl.stuck.wait, 5), 6)

        market.jump_to(E + 1)  # the fine bounty's reveal is due now, while the other scan blocks
        await until(lambda: market.reveals, within=ON_TIME)
        assert market.reveals[0].guid == fine

        await until(lambda: engine.stats.skipped == 1, within=SCAN_TIMEOUT + ON_TIME)  # the stuck scan gave up
        overran = [r for r in caplog.records if r.levelno == logging.WARNING and "did not finish" in r.getMessage()]
        assert len(overran) == 1
        assert "misbehaving" in overran[0].getMessage() and stuck in overran[0].getMessage()
        assert stuck not in market.assertions

        market.jump_to(E + 30)  # and settles on time too
        await until(lambda: [args[0] for args in client.called("settle")] == [fine], within=ON_TIME)
        assert run.task.done() is False


async def test_a_stuck_scan_holds_its_slot_until_it_really_ends(market, client, tmp_path, caplog):
    """With one scan slot, a scan abandoned at its timeout keeps the slot until its thread returns: stuck scans
    cannot pile up, the wait is explained, and scanning resumes once the backend lets go."""
    caplog.set_level(logging.INFO, logger="microengine")
    backend = create_backend(BusySync, name="misbehaving")
    async with engine_with(client, tmp_path, backend, max_concurrent_scans=1) as (engine, _run):
        post(market, "QmStuck", E + 100)
        await until(lambda: engine.stats.skipped == 1, within=SCAN_TIMEOUT + ON_TIME)
        assert "every scan slot (1) is held by a scan that overran" in caplog.text

        fine = post(market, "QmFine", E + 100)
        await until(lambda: engine.stats.skipped == 2, within=SCAN_TIMEOUT + ON_TIME)  # no slot for it in time
        assert fine not in market.assertions

        backend.impl.gate.set()  # the backend returns at last, and frees its slot
        again = post(market, "QmFine", E + 100)
        await until(lambda: again in market.assertions, within=ON_TIME + SCAN_TIMEOUT)
