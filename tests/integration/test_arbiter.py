"""The arbiter service against a simulated market (recording fake facade), and over a real websocket."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
from polyswarmclient.amounts import nct
from polyswarmclient.backends.verbatim import VerbatimArbiter
from polyswarmclient.errors import ApiError, InsufficientFunds, PolyswarmError
from polyswarmclient.samples import EICAR, Corpus
from polyswarmclient.services.arbiter import Arbiter, ArbiterReport, ArbiterSettings
from polyswarmclient.services.lifecycle import Shutdown
from tests.integration.fakemarket import AMBASSADOR, ARBITER, FakeClient, Market, Running, failing, running, until

R = 3  # market reveal window
V = 5  # market vote window


def funded_market(stake: int = nct(10)) -> Market:
    return Market(nct={ARBITER: nct(100), AMBASSADOR: nct(100)}, stake={ARBITER: stake})


def post(market: Market, files: list[tuple[str, bytes]], duration: int = 2) -> str:
    uri = market.add_artifacts(files)
    return market.open_bounty(AMBASSADOR, nct("0.125"), uri, duration).guid


@dataclass
class Arbitrating:
    market: Market
    client: FakeClient
    arbiter: Arbiter
    run: Running[ArbiterReport]

    def scanned(self, *guids: str) -> bool:
        """Every one of ``guids`` is taken and its votes are decided."""
        bounties = self.arbiter.bounties
        return all(guid in bounties and bounties[guid].votes is not None for guid in guids)

    async def through_the_vote_window(self, votes: int = 1) -> None:
        """Mine past the reveal window and wait for ``votes`` votes."""
        await self.market.mine(R + 4)
        await until(lambda: len(self.client.called("vote")) >= votes)


@asynccontextmanager
async def arbitrating(
    market: Market | None = None, backend: Any = None, ws_url: str | None = None, **settings: Any
) -> AsyncIterator[Arbitrating]:
    """An arbiter on ``market`` (funded and staked by default), running once it reads events."""
    market = market or funded_market()
    client = FakeClient(market, ARBITER, ws_url=ws_url)
    arbiter = Arbiter(client, backend or VerbatimArbiter(), ArbiterSettings(**settings))
    async with running(arbiter.run, grace=0.1, ready=client.subscribed) as run:
        yield Arbitrating(market, client, arbiter, run)


async def test_full_bounty_votes_ground_truth_in_the_window_then_settles() -> None:
    """--testing 1: the arbiter votes the truth after E+R, settles at E+R+V, then returns."""
    async with arbitrating(testing=1, catch_up=False) as a:
        samples = Corpus().pick(0, 2)  # EICAR, benign
        guid = post(a.market, [(s.name, s.content) for s in samples])
        expiration = a.market.bounties[guid].expiration
        await until(lambda: a.scanned(guid))
        await a.market.mine(expiration + R + V + 1 - a.market.block)
        report = await a.run.ended()

    (vote,) = a.client.called("vote")
    assert vote[0] == guid and vote[1] == [True, False] and vote[2] is True
    assert vote[3] == expiration + R + 1  # the first block after E+R
    (settle,) = a.client.called("settle")
    assert settle[1] >= expiration + R + V
    assert report.voted == [guid] and report.settled == [guid] and not report.declined


async def test_stakes_the_shortfall_before_voting() -> None:
    """An arbiter below minimum_stake deposits exactly the missing amount on start."""
    async with arbitrating(funded_market(stake=nct(4)), catch_up=False) as a:
        await until(lambda: bool(a.client.called("stake_deposit")))
    assert a.client.called("stake_deposit") == [(nct(6),)]
    assert a.market.stake[ARBITER] == nct(10)


async def test_enough_stake_means_no_deposit() -> None:
    """An arbiter already at the minimum stake deposits nothing."""
    async with arbitrating(catch_up=False) as a:
        assert a.client.subscribed()
    assert a.client.called("stake_deposit") == []


async def test_short_of_nct_for_the_stake_is_a_clear_error() -> None:
    """With too little NCT to stake, the arbiter stops with the amounts it needs and holds."""
    market = Market(nct={ARBITER: nct(1)}, stake={})
    arbiter = Arbiter(FakeClient(market, ARBITER), VerbatimArbiter(), ArbiterSettings(testing=1))
    with pytest.raises(InsufficientFunds, match=r"needs 10 NCT .* holds only 1 NCT"):
        await arbiter.run(Shutdown())


async def test_outside_testing_mode_it_waits_for_funds_before_giving_up() -> None:
    """Outside testing mode the arbiter re-checks its balance and stakes once NCT arrives."""
    market = Market(nct={ARBITER: nct(1)}, stake={})
    client = FakeClient(market, ARBITER)
    arbiter = Arbiter(client, VerbatimArbiter(), ArbiterSettings(retry_delay=0.02, stake_retries=50))
    async with running(arbiter.run) as run:
        await asyncio.sleep(0.05)
        assert client.called("stake_deposit") == []
        market.nct[ARBITER] = nct(20)
        await until(lambda: bool(client.called("stake_deposit")))
        await run.kill()


async def test_a_stop_request_ends_the_wait_for_stake_funds() -> None:
    """SIGTERM while the arbiter waits for NCT to stake ends the run with the low-balance error."""
    market = Market(nct={ARBITER: nct(1)}, stake={})
    arbiter = Arbiter(FakeClient(market, ARBITER), VerbatimArbiter(), ArbiterSettings(retry_delay=30))
    async with running(arbiter.run) as run:
        await asyncio.sleep(0.05)
        with pytest.raises(InsufficientFunds):
            await run.stop("test", within=2)


async def test_declines_to_vote_when_an_artifact_cannot_be_fetched(caplog: pytest.LogCaptureFixture) -> None:
    """An unfetchable artifact means no vote and a logged reason; the next bounty still gets a vote."""
    logger = logging.getLogger("arbiter")
    logger.addHandler(caplog.handler)  # works even when setup_logging() turned propagation off
    try:
        async with arbitrating(catch_up=False) as a:
            bad = post(a.market, [("a", b"one"), ("b", b"two")])
            a.market.unfetchable.add((a.market.bounties[bad].uri, 1))
            good = post(a.market, [("c", EICAR)])
            await until(lambda: a.scanned(good))
            await a.through_the_vote_window()
    finally:
        logger.removeHandler(caplog.handler)
    assert [v[0] for v in a.client.called("vote")] == [good]
    assert "could not be fetched" in a.arbiter.report.declined[bad]
    assert "artifact(s) 1 could not be fetched" in caplog.text


async def test_testing_mode_exits_non_zero_after_declining() -> None:
    """--testing: a bounty the arbiter had to decline ends the run with an error naming it."""
    async with arbitrating(testing=1, catch_up=False) as a:
        guid = post(a.market, [("a", b"one")])
        a.market.unfetchable.add((a.market.bounties[guid].uri, 0))
        with pytest.raises(PolyswarmError, match=f"declined 1 bounty.*{guid}"):
            await a.run.ended()


class Exploding(AbstractScanner):
    async def scan_async(self, guid: str, artifact_type: Any, content: Any, metadata: Any, chain: str) -> ScanResult:
        if content == b"boom":
            raise RuntimeError("backend crashed")
        return ScanResult(bit=True, verdict=False)


async def test_a_crashing_backend_costs_one_bounty_not_the_arbiter() -> None:
    """A backend exception on one artifact declines that bounty; the arbiter keeps voting on others."""
    async with arbitrating(backend=Exploding(), catch_up=False) as a:
        bad = post(a.market, [("x", b"boom")])
        good = post(a.market, [("y", b"fine")])
        await until(lambda: a.scanned(good))
        await a.through_the_vote_window()
    assert [v[0] for v in a.client.called("vote")] == [good]
    assert bad in a.arbiter.report.declined


async def test_valid_bloom_is_checked_against_the_onchain_bloom() -> None:
    """With a bloom-reading client, a matching bloom votes valid and a tampered one votes invalid."""
    async with arbitrating(catch_up=False) as a:
        honest = post(a.market, [("a", b"one")])
        tampered = post(a.market, [("b", b"two")])
        a.market.bounties[tampered].bloom = [0] * 8
        await until(lambda: a.scanned(honest, tampered))
        await a.through_the_vote_window(votes=2)
    blooms = {v[0]: v[2] for v in a.client.called("vote")}
    assert blooms == {honest: True, tampered: False}


async def test_an_unreadable_bloom_means_valid_bloom_false() -> None:
    """When the bounty's bloom cannot be read, the arbiter votes valid_bloom=False, never an unchecked True."""
    market = funded_market()
    market.hook = failing("get_bloom", ApiError(500, "GET /bounties/<guid>/bloom: HTTP 500: boom"), times=None)
    async with arbitrating(market, catch_up=False) as a:
        guid = post(a.market, [("a", b"one")])
        await until(lambda: a.scanned(guid))
        await a.through_the_vote_window()
    assert a.client.called("vote")[0][2] is False


async def test_catches_up_on_bounties_posted_before_it_started() -> None:
    """A bounty posted while the arbiter was not running is still voted on if its window is open."""
    market = funded_market()
    early = post(market, [("a", EICAR)])
    stale = post(market, [("b", b"old")], duration=1)
    market.block = market.bounties[stale].expiration + R + V  # stale's window is over; early's not
    market.bounties[early].expiration = market.block - R + 1
    async with arbitrating(market) as a:
        await until(lambda: a.scanned(early))
        await a.market.mine(2)
        await until(lambda: bool(a.client.called("vote")))
    assert [v[0] for v in a.client.called("vote")] == [early]
    assert stale not in a.arbiter.bounties


async def test_testing_mode_ignores_bounties_beyond_n() -> None:
    """--testing 1 takes part in exactly one bounty, even when more arrive."""
    async with arbitrating(testing=1, catch_up=False) as a:
        first = post(a.market, [("a", b"one")])
        post(a.market, [("b", b"two")])
        await until(lambda: a.scanned(first))
        await a.market.mine(a.market.bounties[first].expiration + R + V + 1 - a.market.block)
        report = await a.run.ended()
    assert list(a.arbiter.bounties) == [first]
    assert report.settled == [first]


async def test_shutdown_stops_the_arbiter_promptly() -> None:
    """A stop request with nothing in flight returns at once."""
    async with arbitrating(catch_up=False) as a:
        report = await a.run.stop("test", within=1)
    assert report.voted == []


async def test_votes_over_a_real_websocket_event_stream() -> None:
    """Events read by the real EventStream from a websocket server drive the vote and the settle."""
    market = funded_market()
    url = await market.serve_websocket()
    try:
        async with arbitrating(market, ws_url=url, testing=1, catch_up=False) as a:
            guid = post(market, [("e", EICAR), ("b", b"benign")])
            await until(lambda: a.scanned(guid))
            await market.mine(market.bounties[guid].expiration + R + V + 1 - market.block, pause=0.02)
            report = await a.run.ended()
    finally:
        await market.close()
    assert a.client.called("vote")[0][1:3] == ([True, False], True)
    assert report.settled == [guid]


class Sleepy(VerbatimArbiter):
    """A backend that blocks its thread (time.sleep) on the first scan, then answers as the verbatim one."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    async def scan_async(self, guid: str, artifact_type: Any, content: Any, metadata: Any, chain: str) -> Any:
        import threading
        import time

        self.threads.append(threading.current_thread().name)
        if len(self.threads) == 1:
            time.sleep(0.5)  # noqa: ASYNC251 - on purpose: it blocks whatever loop runs it
        return await super().scan_async(guid, artifact_type, content, metadata, chain)


async def test_a_blocking_backend_runs_off_the_arbiters_loop() -> None:
    """Scans run in the backend's own thread: a backend that blocks cannot stop the arbiter's event loop."""
    backend = Sleepy()
    async with arbitrating(backend=backend, testing=1, catch_up=False) as a:
        samples = Corpus().pick(0, 1)
        guid = post(a.market, [(s.name, s.content) for s in samples])
        loop = asyncio.get_running_loop()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = loop.create_task(tick())
        await until(lambda: a.scanned(guid))
        ticker.cancel()
        expiration = a.market.bounties[guid].expiration
        await a.market.mine(expiration + R + V + 1 - a.market.block)
        await a.run.ended()
    assert backend.threads and all(name != threading.main_thread().name for name in backend.threads)
    assert ticks >= 10  # the loop kept running while the scan slept half a second
