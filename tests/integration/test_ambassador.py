"""The ambassador service against a simulated market (recording fake facade), alone and with an arbiter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from polyswarmclient.amounts import nct
from polyswarmclient.backends.verbatim import VerbatimArbiter
from polyswarmclient.errors import ConfigError, InsufficientFunds, TransportError
from polyswarmclient.samples import Corpus
from polyswarmclient.services.ambassador import Ambassador, AmbassadorReport, AmbassadorSettings
from polyswarmclient.services.arbiter import Arbiter, ArbiterSettings
from polyswarmclient.services.lifecycle import Shutdown
from tests.integration.fakemarket import (
    AMBASSADOR,
    ARBITER,
    PARAMS,
    STAKING,
    Failing,
    FakeClient,
    Market,
    Running,
    failing,
    running,
    until,
)

R, V = PARAMS.assertion_reveal_window, PARAMS.arbiter_vote_window
FAST = {"submission_rate": 0.0, "retry_delay": 0.01}


def ambassador(market: Market, **settings: Any) -> tuple[Ambassador, FakeClient]:
    client = FakeClient(market, AMBASSADOR)
    merged: dict[str, Any] = {**FAST, **settings}
    corpus = Corpus.for_bounties(merged.get("artifacts_per_bounty", 1))
    return Ambassador(client, corpus, AmbassadorSettings(**merged)), client


@dataclass
class Posting:
    market: Market
    ambassador: Ambassador
    client: FakeClient
    run: Running[AmbassadorReport]


@asynccontextmanager
async def posting(
    posted: int = 1, funds: int = nct(10), hook: Failing | None = None, **settings: Any
) -> AsyncIterator[Posting]:
    """An ambassador with ``funds`` NCT on a new market (``hook`` scripts failures), running once it posted
    ``posted`` bounties (or ended)."""
    market = Market(nct={AMBASSADOR: funds}, hook=hook)
    amb, client = ambassador(market, **settings)
    async with running(amb.run, grace=0.2, ready=lambda: len(amb.report.posted) >= posted) as run:
        yield Posting(market, amb, client, run)


async def test_testing_mode_posts_n_then_exits_once_settled() -> None:
    """--testing 2: two bounties at the minimum amount, settled after E+R+V, then the run returns."""
    async with posting(2, testing=2, duration=4) as p:
        assert [args[0] for args in p.client.called("post_bounty")] == [PARAMS.bounty_amount_minimum] * 2
        assert all(args[2] == 4 for args in p.client.called("post_bounty"))
        last = max(b.expiration for b in p.market.bounties.values())
        await p.market.mine(last + R + V - p.market.block)
        report = await p.run.ended()
    assert sorted(report.settled) == sorted(report.posted) and len(report.posted) == 2
    for guid, block in p.client.called("settle"):
        assert block >= p.market.bounties[guid].expiration + R + V
    assert p.market.nct[AMBASSADOR] == nct(10) - 2 * (PARAMS.bounty_amount_minimum + PARAMS.bounty_fee)


async def test_artifacts_go_up_in_one_upload_with_metadata() -> None:
    """Three artifacts per bounty: one multipart upload, metadata for all three, amount = 3 x minimum."""
    async with posting(testing=1, artifacts_per_bounty=3) as p:
        (upload,) = p.client.called("upload_artifacts")
        assert len(upload[0]) == 3
        (meta,) = p.client.called("post_metadata")
        assert [m["filename"] for m in meta[0]] == upload[0]
        (post,) = p.client.called("post_bounty")
        assert post[0] == 3 * PARAMS.bounty_amount_minimum
        assert post[3] != ""  # the metadata hash went with the bounty


async def test_settles_as_soon_as_quorum_is_reached() -> None:
    """A QuorumReached event for our bounty triggers the settle before the vote window ends."""
    async with posting(testing=1) as p:
        (guid,) = p.ambassador.report.posted
        p.market.reach_quorum(guid)
        report = await p.run.ended()
    assert report.settled == [guid]
    assert p.client.called("settle")[0][1] < p.market.bounties[guid].expiration + R + V


async def test_explicit_bounty_amount_is_posted_exactly() -> None:
    """--bounty-amount is offered to the wei."""
    async with posting(testing=1, bounty_amount=nct("0.123456789012345678")) as p:
        assert p.client.called("post_bounty")[0][0] == nct("0.123456789012345678")


async def test_amount_below_minimum_and_long_duration_are_refused_before_posting() -> None:
    """A too-small amount or a duration above max_duration is a config error; nothing is uploaded."""
    market = Market(nct={AMBASSADOR: nct(10)})
    amb, client = ambassador(market, bounty_amount=nct("0.01"))
    with pytest.raises(ConfigError, match="below the minimum"):
        await amb.run(Shutdown())
    amb, client2 = ambassador(market, duration=PARAMS.max_duration + 1)
    with pytest.raises(ConfigError, match="--duration"):
        await amb.run(Shutdown())
    assert client.called("upload_artifacts") == client2.called("upload_artifacts") == []


async def test_low_balance_is_fatal_in_testing_mode() -> None:
    """--testing with too little NCT stops with a message naming the balance and the cost."""
    async with posting(funds=nct("0.1"), testing=1) as p:
        with pytest.raises(InsufficientFunds, match=r"holds 0\.1 NCT .* needs 0\.125 NCT"):
            await p.run.ended()
    assert p.client.called("upload_artifacts") == []


async def test_low_balance_outside_testing_waits_for_funds() -> None:
    """Without --testing a low balance is reported and retried; posting resumes once funded."""
    async with posting(0, funds=nct("0.1")) as p:
        await asyncio.sleep(0.05)
        assert p.client.called("post_bounty") == []
        p.market.nct[AMBASSADOR] = nct(10)
        await until(lambda: bool(p.ambassador.report.posted))


async def test_upload_failure_is_fatal_in_testing_mode() -> None:
    """--testing: a failed artifact upload ends the run with an error (polyswarm-client defect #30)."""
    async with posting(testing=1, hook=failing("upload_artifacts", TransportError("polyswarmd unreachable"))) as p:
        with pytest.raises(TransportError, match="uploading 1 artifact"):
            await p.run.ended()


async def test_upload_failure_outside_testing_is_retried() -> None:
    """Without --testing a failed upload is logged and retried, then the bounty is posted."""
    hook = failing("upload_artifacts", TransportError("polyswarmd unreachable"), times=2)
    async with posting(submission_rate=10.0, hook=hook) as p:
        assert len(p.client.called("upload_artifacts")) == 3


async def test_metadata_failure_still_posts_the_bounty() -> None:
    """If bounty metadata cannot be stored, the bounty goes out without it."""
    async with posting(testing=1, hook=failing("post_metadata", TransportError("metadata route down"))) as p:
        assert p.client.called("post_bounty")[0][3] == ""


async def test_never_more_than_max_in_flight_unsettled_bounties() -> None:
    """Posting pauses at --max-in-flight unsettled bounties and resumes when one settles."""
    async with posting(2, max_in_flight=2) as p:
        await asyncio.sleep(0.05)
        assert len(p.ambassador.report.posted) == 2
        p.market.reach_quorum(p.ambassador.report.posted[0])
        await until(lambda: len(p.ambassador.report.posted) == 3)


async def test_submission_rate_spaces_bounties() -> None:
    """--submission-rate N waits N seconds between bounties."""
    async with posting(submission_rate=10.0) as p:
        await asyncio.sleep(0.1)
        assert len(p.ambassador.report.posted) == 1


async def test_shutdown_stops_posting_and_returns_after_the_grace_period() -> None:
    """A stop request stops posting; unsettled bounties get the grace period, then the run returns."""
    async with posting(submission_rate=10.0) as p:
        report = await p.run.stop("done")
    assert len(report.posted) == 1 and report.settled == []


async def test_ambassador_and_arbiter_complete_bounties_together() -> None:
    """Both roles on one market: the arbiter votes the corpus truth, quorum lets the ambassador settle."""
    market = Market(nct={AMBASSADOR: nct(10), ARBITER: nct(100)}, stake={})
    amb, amb_client = ambassador(market, testing=2, artifacts_per_bounty=2, duration=2)
    arb_client = FakeClient(market, ARBITER)
    arbiter = Arbiter(arb_client, VerbatimArbiter(), ArbiterSettings(testing=2))
    async with running(arbiter.run, ready=arb_client.subscribed) as arbitrating:
        async with running(amb.run, ready=lambda: len(amb.report.posted) == 2) as posting_run:
            await until(
                lambda: all(s.votes is not None for s in arbiter.bounties.values()) and len(arbiter.bounties) == 2
            )
            for _ in range(40):
                if arbitrating.task.done():
                    break
                await market.mine()
            amb_report = await posting_run.ended()
        arb_report = await arbitrating.ended()
    assert sorted(amb_report.settled) == sorted(amb_report.posted)
    assert sorted(arb_report.settled) == sorted(amb_report.posted)
    votes = {args[0]: args[1] for args in arb_client.called("vote")}
    assert all(v == [True, False] for v in votes.values())  # corpus order: EICAR, benign
    assert market.stake[ARBITER] == STAKING.minimum_stake
