"""The arbiter service against a simulated market (recording fake facade), and over a real websocket."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
from polyswarmclient.amounts import nct
from polyswarmclient.backends.verbatim import VerbatimArbiter
from polyswarmclient.errors import ApiError, InsufficientFunds, PolyswarmError
from polyswarmclient.samples import EICAR, Corpus
from polyswarmclient.services.arbiter import Arbiter, ArbiterReport, ArbiterSettings
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.wire.models import Bloom
from tests.integration.fakemarket import AMBASSADOR, ARBITER, FakeClient, Market, until

R = 3  # market reveal window
V = 5  # market vote window


def funded_market(stake: int = nct(10)) -> Market:
    return Market(nct={ARBITER: nct(100), AMBASSADOR: nct(100)}, stake={ARBITER: stake})


def post(market: Market, files: list[tuple[str, bytes]], duration: int = 2) -> str:
    uri = market.add_artifacts(files)
    return market.open_bounty(AMBASSADOR, nct("0.125"), uri, duration).guid


class Harness:
    """Runs an arbiter in the background and stops it at the end of the test."""

    def __init__(self, arbiter: Arbiter) -> None:
        self.arbiter = arbiter
        self.shutdown = Shutdown(grace=0.1)
        self.task: asyncio.Task[ArbiterReport] | None = None

    async def __aenter__(self) -> Harness:
        self.task = asyncio.create_task(self.arbiter.run(self.shutdown))
        await until(lambda: self.arbiter._supervisor is not None or self.task is not None and self.task.done())
        await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if not self.task.done():
            self.shutdown.request("test over")
            try:
                await asyncio.wait_for(self.task, 5)
            except PolyswarmError:
                pass


async def test_full_bounty_votes_ground_truth_in_the_window_then_settles() -> None:
    """--testing 1: the arbiter votes the truth after E+R, settles at E+R+V, then returns."""
    market = funded_market()
    client = FakeClient(market, ARBITER)
    arbiter = Arbiter(client, VerbatimArbiter(), ArbiterSettings(testing=1, catch_up=False))
    task = asyncio.create_task(arbiter.run(Shutdown()))
    await until(lambda: bool(market.queues))
    samples = Corpus().pick(0, 2)  # EICAR, benign
    guid = post(market, [(s.name, s.content) for s in samples])
    expiration = market.bounties[guid].expiration
    await until(lambda: arbiter.bounties.get(guid) is not None and arbiter.bounties[guid].votes is not None)
    await market.mine(expiration + R + V + 1 - market.block)
    report = await asyncio.wait_for(task, 5)

    (vote,) = client.called("vote")
    assert vote[0] == guid and vote[1] == [True, False] and vote[2] is True
    assert vote[3] == expiration + R + 1  # the first block after E+R
    (settle,) = client.called("settle")
    assert settle[1] >= expiration + R + V
    assert report.voted == [guid] and report.settled == [guid] and not report.declined


async def test_stakes_the_shortfall_before_voting() -> None:
    """An arbiter below minimum_stake deposits exactly the missing amount on start."""
    market = funded_market(stake=nct(4))
    client = FakeClient(market, ARBITER)
    async with Harness(Arbiter(client, VerbatimArbiter(), ArbiterSettings(catch_up=False))):
        await until(lambda: bool(client.called("stake_deposit")))
    assert client.called("stake_deposit") == [(nct(6),)]
    assert market.stake[ARBITER] == nct(10)


async def test_enough_stake_means_no_deposit() -> None:
    """An arbiter already at the minimum stake deposits nothing."""
    market = funded_market()
    client = FakeClient(market, ARBITER)
    async with Harness(Arbiter(client, VerbatimArbiter(), ArbiterSettings(catch_up=False))):
        await until(lambda: bool(market.queues))
    assert client.called("stake_deposit") == []


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
    task = asyncio.create_task(arbiter.run(Shutdown()))
    await asyncio.sleep(0.05)
    assert client.called("stake_deposit") == []
    market.nct[ARBITER] = nct(20)
    await until(lambda: bool(client.called("stake_deposit")))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_stop_request_ends_the_wait_for_stake_funds() -> None:
    """SIGTERM while the arbiter waits for NCT to stake ends the run with the low-balance error."""
    market = Market(nct={ARBITER: nct(1)}, stake={})
    arbiter = Arbiter(FakeClient(market, ARBITER), VerbatimArbiter(), ArbiterSettings(retry_delay=30))
    shutdown = Shutdown()
    task = asyncio.create_task(arbiter.run(shutdown))
    await asyncio.sleep(0.05)
    shutdown.request("test")
    with pytest.raises(InsufficientFunds):
        await asyncio.wait_for(task, 2)


async def test_declines_to_vote_when_an_artifact_cannot_be_fetched(caplog: pytest.LogCaptureFixture) -> None:
    """An unfetchable artifact means no vote and a logged reason; the next bounty still gets a vote."""
    market = funded_market()
    client = FakeClient(market, ARBITER)
    arbiter = Arbiter(client, VerbatimArbiter(), ArbiterSettings(catch_up=False))
    logger = logging.getLogger("arbiter")
    logger.addHandler(caplog.handler)  # works even when setup_logging() turned propagation off
    try:
        async with Harness(arbiter):
            bad = post(market, [("a", b"one"), ("b", b"two")])
            market.unfetchable.add((market.bounties[bad].uri, 1))
            good = post(market, [("c", EICAR)])
            await until(lambda: good in arbiter.bounties and arbiter.bounties[good].votes is not None)
            await market.mine(R + 4)
            await until(lambda: bool(client.called("vote")))
    finally:
        logger.removeHandler(caplog.handler)
    assert [v[0] for v in client.called("vote")] == [good]
    assert "could not be fetched" in arbiter.report.declined[bad]
    assert "artifact(s) 1 could not be fetched" in caplog.text


async def test_testing_mode_exits_non_zero_after_declining() -> None:
    """--testing: a bounty the arbiter had to decline ends the run with an error naming it."""
    market = funded_market()
    arbiter = Arbiter(
        FakeClient(market, ARBITER), VerbatimArbiter(), ArbiterSettings(testing=1, catch_up=False)
    )
    task = asyncio.create_task(arbiter.run(Shutdown()))
    await until(lambda: bool(market.queues))
    guid = post(market, [("a", b"one")])
    market.unfetchable.add((market.bounties[guid].uri, 0))
    with pytest.raises(PolyswarmError, match=f"declined 1 bounty.*{guid}"):
        await asyncio.wait_for(task, 5)


class Exploding(AbstractScanner):
    async def scan_async(
        self, guid: str, artifact_type: Any, content: Any, metadata: Any, chain: str
    ) -> ScanResult:
        if content == b"boom":
            raise RuntimeError("backend crashed")
        return ScanResult(bit=True, verdict=False)


async def test_a_crashing_backend_costs_one_bounty_not_the_arbiter() -> None:
    """A backend exception on one artifact declines that bounty; the arbiter keeps voting on others."""
    market = funded_market()
    client = FakeClient(market, ARBITER)
    arbiter = Arbiter(client, Exploding(), ArbiterSettings(catch_up=False))
    async with Harness(arbiter):
        bad = post(market, [("x", b"boom")])
        good = post(market, [("y", b"fine")])
        await until(lambda: good in arbiter.bounties and arbiter.bounties[good].votes is not None)
        await market.mine(R + 4)
        await until(lambda: bool(client.called("vote")))
    assert [v[0] for v in client.called("vote")] == [good]
    assert bad in arbiter.report.declined


async def test_valid_bloom_is_checked_against_the_onchain_bloom() -> None:
    """With a bloom-reading client, a matching bloom votes valid and a tampered one votes invalid."""
    market = funded_market()
    client = FakeClient(market, ARBITER)
    arbiter = Arbiter(client, VerbatimArbiter(), ArbiterSettings(catch_up=False))
    async with Harness(arbiter):
        honest = post(market, [("a", b"one")])
        tampered = post(market, [("b", b"two")])
        market.bounties[tampered].bloom = [0] * 8
        await until(
            lambda: all(g in arbiter.bounties and arbiter.bounties[g].votes for g in (honest, tampered))
        )
        await market.mine(R + 4)
        await until(lambda: len(client.called("vote")) == 2)
    blooms = {v[0]: v[2] for v in client.called("vote")}
    assert blooms == {honest: True, tampered: False}


async def test_an_unreadable_bloom_means_valid_bloom_false() -> None:
    """When the bounty's bloom cannot be read, the arbiter votes valid_bloom=False, never an unchecked True."""
    market = funded_market()
    client = FakeClient(market, ARBITER)

    async def broken_bloom(guid: str, chain: str = "side") -> Bloom:
        raise ApiError(500, "GET /bounties/<guid>/bloom: HTTP 500: boom")

    client.get_bloom = broken_bloom  # type: ignore[method-assign]
    arbiter = Arbiter(client, VerbatimArbiter(), ArbiterSettings(catch_up=False))
    async with Harness(arbiter):
        post(market, [("a", b"one")])
        await until(lambda: any(s.votes for s in arbiter.bounties.values()))
        await market.mine(R + 4)
        await until(lambda: bool(client.called("vote")))
    assert client.called("vote")[0][2] is False


async def test_catches_up_on_bounties_posted_before_it_started() -> None:
    """A bounty posted while the arbiter was not running is still voted on if its window is open."""
    market = funded_market()
    client = FakeClient(market, ARBITER)
    early = post(market, [("a", EICAR)])
    stale = post(market, [("b", b"old")], duration=1)
    market.block = market.bounties[stale].expiration + R + V  # stale's window is over; early's not
    market.bounties[early].expiration = market.block - R + 1
    arbiter = Arbiter(client, VerbatimArbiter(), ArbiterSettings())
    async with Harness(arbiter):
        await until(lambda: early in arbiter.bounties and arbiter.bounties[early].votes is not None)
        await market.mine(2)
        await until(lambda: bool(client.called("vote")))
    assert [v[0] for v in client.called("vote")] == [early]
    assert stale not in arbiter.bounties


async def test_testing_mode_ignores_bounties_beyond_n() -> None:
    """--testing 1 takes part in exactly one bounty, even when more arrive."""
    market = funded_market()
    client = FakeClient(market, ARBITER)
    arbiter = Arbiter(client, VerbatimArbiter(), ArbiterSettings(testing=1, catch_up=False))
    task = asyncio.create_task(arbiter.run(Shutdown()))
    await until(lambda: bool(market.queues))
    first = post(market, [("a", b"one")])
    post(market, [("b", b"two")])
    await until(lambda: first in arbiter.bounties and arbiter.bounties[first].votes is not None)
    await market.mine(market.bounties[first].expiration + R + V + 1 - market.block)
    report = await asyncio.wait_for(task, 5)
    assert list(arbiter.bounties) == [first]
    assert report.settled == [first]


async def test_shutdown_stops_the_arbiter_promptly() -> None:
    """A stop request with nothing in flight returns at once."""
    market = funded_market()
    arbiter = Arbiter(FakeClient(market, ARBITER), VerbatimArbiter(), ArbiterSettings(catch_up=False))
    shutdown = Shutdown(grace=5)
    task = asyncio.create_task(arbiter.run(shutdown))
    await until(lambda: bool(market.queues))
    shutdown.request("test")
    report = await asyncio.wait_for(task, 1)
    assert report.voted == []


async def test_votes_over_a_real_websocket_event_stream() -> None:
    """Events read by the real EventStream from a websocket server drive the vote and the settle."""
    market = funded_market()
    url = await market.serve_websocket()
    try:
        client = FakeClient(market, ARBITER, ws_url=url)
        arbiter = Arbiter(client, VerbatimArbiter(), ArbiterSettings(testing=1, catch_up=False))
        task = asyncio.create_task(arbiter.run(Shutdown()))
        await until(lambda: bool(market.sockets))
        guid = post(market, [("e", EICAR), ("b", b"benign")])
        await until(lambda: guid in arbiter.bounties and arbiter.bounties[guid].votes is not None)
        await market.mine(market.bounties[guid].expiration + R + V + 1 - market.block, pause=0.02)
        report = await asyncio.wait_for(task, 5)
    finally:
        await market.close()
    assert client.called("vote")[0][1:3] == ([True, False], True)
    assert report.settled == [guid]
