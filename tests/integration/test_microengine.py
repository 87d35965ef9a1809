"""The microengine service end to end against the simulated market (a recording fake of the client facade).

The market behaves like polyswarmd seen through :class:`PolyswarmClient`: it serves parameters, bounties
and artifacts, streams the events a test causes, records every assertion, reveal and settle, and checks
each reveal against its commitment and its window the way the contract does.
"""

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

import pytest

from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
from polyswarmclient.amounts import nct
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import create_backend
from polyswarmclient.backends.eicar import EICAR, EicarScanner
from polyswarmclient.errors import ApiError, ConnectionFailed, ConnectionLost, InsufficientFunds, TransactionFailed
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import EngineConfig, Microengine, catchup
from polyswarmclient.services.microengine.filters import parse_filters
from polyswarmclient.services.microengine.state import FORFEITED, StateStore
from polyswarmclient.wire.events import (
    Connected,
    Deprecated,
    FeeUpdate,
    QuorumReached,
    Reconnected,
    SettledBounty,
)
from tests.integration.fakemarket import ENGINE, PARAMS, FakeClient, Market, Posted, Running, failing, running, until

ENGINE_PARAMS = replace(PARAMS, assertion_reveal_window=10, arbiter_vote_window=20)
MIN = ENGINE_PARAMS.assertion_bid_minimum
E = 120  # expiration of the bounties in these tests; R = 10, V = 20
AUTHOR = "0xB8978B0D6aBB3D5BAeEaCbAC35d6B24F39AA443A"


@pytest.fixture
def market() -> Market:
    market = Market(params=ENGINE_PARAMS, nct={ENGINE: nct(100)})
    market.add_artifacts([("eicar", b"xx" + EICAR + b"yy"), ("text", b"hello world")], uri="QmArtifacts")
    market.add_artifacts([("plain", b"plain")], uri="QmOne")
    return market


@pytest.fixture
def client(market: Market) -> FakeClient:
    return FakeClient(market, ENGINE)


def post(market: Market, uri: str = "QmArtifacts", *, expiration: int = E, **options: object) -> str:
    """Somebody posts a bounty and the engine hears of it; its GUID."""
    return market.open_bounty(AUTHOR, MIN, uri, expiration=expiration, **options).guid  # type: ignore[arg-type]


def listed(market: Market, expiration: int = E) -> str:
    """A bounty on chain whose event the engine never got (posted while it was away); its GUID."""
    return market.open_bounty(AUTHOR, MIN, "QmArtifacts", expiration=expiration, announce=False).guid


def settle_calls(client: FakeClient) -> list[str]:
    return [args[0] for args in client.called("settle")]


@dataclass
class Engine:
    engine: Microengine
    store: StateStore
    run: Running[None]


@asynccontextmanager
async def microengine(
    client: FakeClient, tmp_path, backend=None, grace: float = 2.0, **config: object
) -> AsyncIterator[Engine]:
    """An engine on ``client`` with its state under ``tmp_path``, running (and subscribed) for the block."""
    store = StateStore(tmp_path / "state", ENGINE).open()
    shutdown = Shutdown(grace)
    backend = backend or create_backend(EicarScanner, name="eicar")
    engine = Microengine(client, backend, store, EngineConfig(**config), shutdown)  # type: ignore[arg-type]
    try:
        async with running(lambda _: engine.run(), shutdown=shutdown, ready=client.subscribed) as run:
            yield Engine(engine, store, run)
    finally:
        store.close()


def record_files(store: StateStore) -> list[str]:
    """The GUIDs with a record file in the state directory (read from the names: the writer thread may be
    deleting one meanwhile)."""
    return sorted(path.stem.removeprefix("side-") for path in store.directory.glob("side-*.json"))


def record_gone(tmp_path, guid: str) -> bool:
    """The bounty's record is no longer in the state directory (it was settled or abandoned)."""
    with StateStore(tmp_path / "state", ENGINE) as reopened:
        return not reopened.has("side", guid) and [r.guid for r in reopened.records()] == []


def store_status(tmp_path, guid: str) -> str:
    with StateStore(tmp_path / "state", ENGINE) as reopened:
        record = reopened.load("side", guid)
        assert record is not None
        return record.status


async def test_testing_mode_full_lifecycle(market, client, tmp_path, caplog):
    """--testing 1: assert (EICAR malicious, text benign), reveal after expiration, settle, then exit."""
    caplog.set_level(logging.INFO, logger="microengine")
    async with microengine(client, tmp_path, testing=1) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        posted = market.assertions[guid]
        assert posted.mask == [True, True] and len(posted.bids) == 2
        market.jump_to(E)
        await asyncio.sleep(0.02)
        assert market.reveals == []  # not before the first block after expiration
        market.jump_to(E + 1)
        await until(lambda: market.reveals)
        assert market.reveals[0].verdicts == [True, False]
        market.jump_to(E + 10 + 20)
        await e.run.ended()
    assert settle_calls(client) == [guid]
    text = caplog.text
    assert guid in text and "[malicious, benign]" in text and "settled" in text


async def posted_and_revealed(market: Market, uri: str = "QmArtifacts", **options: object) -> str:
    """Post a bounty, wait for the assertion, pass expiration and wait for a reveal; the bounty's GUID."""
    guid = post(market, uri, **options)
    await until(lambda: guid in market.assertions)
    market.jump_to(E + 1)
    await until(lambda: market.reveals)
    return guid


async def reveal_and_finish(market: Market, guid: str, e: Engine) -> None:
    """A --testing 1 run: wait for the assertion, let it reveal and settle, and the run end."""
    await until(lambda: guid in market.assertions)
    market.jump_to(E + 1)
    await until(lambda: market.reveals)
    market.jump_to(E + 30)
    await e.run.ended()


async def test_reveal_metadata_falls_back_to_inline_json(market, client, tmp_path):
    """Reveal metadata is the scanners' verdicts as a JSON array, inline when the upload route is missing."""
    market.hook = failing("post_metadata", ApiError(404, "not here"), times=None)
    async with microengine(client, tmp_path, testing=1) as e:
        await reveal_and_finish(market, post(market), e)
    metadata = json.loads(market.reveals[0].metadata)
    assert [m["malware_family"] for m in metadata] == ["EICAR-Test-File", ""]


async def test_reveal_metadata_uploaded_when_possible(market, client, tmp_path):
    """When polyswarmd stores metadata, the reveal carries its hash instead of the JSON."""
    async with microengine(client, tmp_path, testing=1) as e:
        await reveal_and_finish(market, post(market), e)
    (uploaded,) = client.called("post_metadata")
    assert market.metadata[market.reveals[0].metadata] == uploaded[0] and len(uploaded[0]) == 2


async def test_restart_between_commit_and_reveal_keeps_the_bid(market, client, tmp_path):
    """Stopping after asserting and starting again later still reveals with the original nonce and settles."""
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        await e.run.stop("test restart")
    assert market.reveals == []

    market.block = E + 2  # the new process starts after expiration
    async with microengine(client, tmp_path) as e:
        await until(lambda: market.reveals)  # the market checks the commitment
        market.jump_to(E + 30)
        await until(lambda: settle_calls(client) == [guid])
        await e.run.stop("done")
    assert record_gone(tmp_path, guid)  # settled: nothing left to keep


async def test_testing_run_restarted_mid_bounty_finishes_it_and_exits(market, client, tmp_path):
    """--testing 1 killed after committing, then restarted, reveals and settles that bounty and exits 0."""
    async with microengine(client, tmp_path, testing=1) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        await e.run.kill()  # the process dies without draining

    market.block = E + 2
    async with microengine(client, tmp_path, testing=1) as e:
        await until(lambda: market.reveals)
        post(market)  # a new bounty would exceed N: ignored
        market.jump_to(E + 30)
        await e.run.ended()  # ends by itself once the resumed bounty is settled
    assert settle_calls(client) == [guid]
    assert len(market.assertions) == 1


def mined_but_unanswered(client: FakeClient) -> None:
    """From now on ``client.post_assertion`` puts the assertion on chain, then loses the answer."""
    real_post = client.post_assertion

    async def post_assertion(guid, bids, mask, commitment, chain="side"):
        await real_post(guid, bids, mask, commitment, chain)  # the transaction made it on chain...
        raise ConnectionLost("the connection broke during POST /transactions")  # ...we never heard

    client.post_assertion = post_assertion  # type: ignore[method-assign]


async def test_restart_recovers_an_assertion_whose_receipt_was_lost(market, client, tmp_path):
    """Dying while the assertion was being mined loses nothing: the restart finds its index and reveals."""
    mined_but_unanswered(client)
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        await asyncio.sleep(0.05)
        await e.run.kill()
    assert store_status(tmp_path, guid) == "committing"

    del client.post_assertion  # a new process: its posts are answered again
    market.block = E + 2
    async with microengine(client, tmp_path):
        await until(lambda: market.reveals)  # the market checks the commitment against nonce and verdicts
        assert (guid,) in client.called("list_assertions")


async def test_restart_after_reveal_window_forfeits_but_settles(market, client, tmp_path, caplog):
    """A restart after the reveal window logs the bid as forfeited and still settles at E+R+V."""
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        await e.run.stop("x")

    market.block = E + 15
    async with microengine(client, tmp_path) as e:
        await until(lambda: e.store.load("side", guid).status == FORFEITED)
        assert "forfeited" in caplog.text
        market.jump_to(E + 30)
        await until(lambda: settle_calls(client) == [guid])
    assert market.reveals == []


async def test_redelivered_bounty_is_handled_once(market, client, tmp_path):
    """The same bounty event delivered twice (or after a reconnect) produces one assertion."""
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        market.broadcast(market.announcement(guid))
        await until(lambda: guid in market.assertions)
        market.broadcast(market.announcement(guid))
        await asyncio.sleep(0.05)
        assert e.engine.stats.bounties_handled == 1 and e.engine.stats.assertions == 1


async def test_testing_counts_bounties_without_assertion(market, client, tmp_path):
    """--testing 2 ends even when a bounty gets no assertion (filtered out) and ignores a third bounty."""
    rules = parse_filters([("reject", "mimetype", "==", "text/plain")])
    async with microengine(client, tmp_path, testing=2, bounty_filter=rules) as e:
        post(market, "QmOne", metadata=[{"mimetype": "text/plain"}])
        asserted = post(market)
        await until(lambda: asserted in market.assertions)
        post(market)
        market.jump_to(E + 1)
        await until(lambda: market.reveals)
        market.jump_to(E + 30)
        await e.run.ended()
    assert list(market.assertions) == [asserted] and settle_calls(client) == [asserted]
    assert e.engine.stats.skipped == 1


async def test_other_artifact_types_and_chains_are_ignored(market, client, tmp_path):
    """URL bounties are ignored unless --artifact-type url; they do not count toward --testing."""
    async with microengine(client, tmp_path, testing=1) as e:
        post(market, artifact_type="url")
        guid = post(market)
        await until(lambda: guid in market.assertions)
        assert len(market.assertions) == 1
        market.jump_to(E + 1)
        await until(lambda: market.reveals)
        market.jump_to(E + 30)
        await e.run.ended()


async def test_url_bounties_when_enabled(market, client, tmp_path):
    """With --artifact-type url, URL artifacts are decoded to text and scanned."""
    market.add_artifacts([("link", ("http://bad.example/" + EICAR.decode()).encode())], uri="QmUrl")
    async with microengine(client, tmp_path, artifact_types=(ArtifactType.URL,)):
        await posted_and_revealed(market, "QmUrl", artifact_type="url")
        assert market.reveals[0].verdicts == [True]


async def test_low_balance_skips_the_bounty(market, client, tmp_path, caplog):
    """Without enough NCT for bids plus the fee the bounty is skipped with a clear log line."""
    market.nct[ENGINE] = MIN
    async with microengine(client, tmp_path) as e:
        post(market)
        await until(lambda: e.engine.stats.skipped == 1)
        assert market.assertions == {} and "balancemanager deposit" in caplog.text


async def test_low_balance_is_fatal_in_testing_mode(market, client, tmp_path):
    """In --testing mode a low balance stops the engine with InsufficientFunds (exit 1)."""
    market.nct[ENGINE] = 0
    async with microengine(client, tmp_path, testing=1) as e:
        post(market)
        with pytest.raises(InsufficientFunds, match="deposit NCT"):
            await e.run.ended()


async def test_one_failing_bounty_does_not_stop_the_engine(market, client, tmp_path):
    """A bounty whose artifacts cannot be listed is logged and the next bounty is still asserted on."""
    market.add_artifacts([], uri="QmBroken")
    market.hook = failing("list_artifacts", ConnectionFailed("polyswarmd went away"), None, ("QmBroken",))
    async with microengine(client, tmp_path) as e:
        post(market, "QmBroken")
        good = post(market)
        await until(lambda: good in market.assertions)
        assert e.engine.stats.failed == 1


async def test_quorum_settles_before_the_vote_window_ends(market, client, tmp_path):
    """A quorum event for our bounty settles it right away; quorums of other bounties are ignored."""
    async with microengine(client, tmp_path):
        guid = await posted_and_revealed(market)
        market.broadcast(QuorumReached(bounty_guid=str(uuid.uuid4())))
        market.jump_to(E + 11)
        market.reach_quorum(guid)
        await until(lambda: settle_calls(client) == [guid])
        market.reach_quorum(guid)
        market.jump_to(E + 31)
        await asyncio.sleep(0.05)
        assert settle_calls(client) == [guid]


async def test_reconnect_catches_up_on_missed_bounties(market, client, tmp_path):
    """After a reconnect, open bounties missed meanwhile are asserted on; expired ones are not."""
    async with microengine(client, tmp_path):
        market.jump_to(101)
        missed, expired = listed(market), listed(market, expiration=90)
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: missed in market.assertions)
        assert expired not in market.assertions
        assert ("side", True) in client.called("bounty_parameters")


async def test_bounties_posted_before_the_first_subscription_are_caught_up(market, client, tmp_path):
    """A bounty posted while the engine was starting (before its socket connected) is still asserted on."""
    early = listed(market)
    async with microengine(client, tmp_path):
        market.broadcast(Connected(chain="side", start_time="0"))
        await until(lambda: early in market.assertions)
        market.broadcast(Connected(chain="side", start_time="0"))  # a later connect does not page again by itself


async def test_payouts_are_counted_and_other_events_ignored(market, client, tmp_path):
    """A payout to us is counted; a fee update (the client's business) does not disturb the engine."""
    async with microengine(client, tmp_path) as e:
        market.broadcast(FeeUpdate(bounty_fee=1, assertion_fee=2))
        market.broadcast(SettledBounty(bounty_guid=str(uuid.uuid4()), settler=ENGINE, payout=5))
        await until(lambda: e.engine.stats.payouts == 5)


async def test_deprecation_settles_finished_bounties(market, client, tmp_path):
    """On Deprecated, a bounty whose vote window has passed is settled at once."""
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        e.engine.schedule.done(guid, "reveal")  # as if revealed
        market.block = e.engine.heads["side"] = E + 40  # the head moved on while no block event reached us
        market.broadcast(Deprecated(rollover=False))
        await until(lambda: settle_calls(client) == [guid])


async def test_lost_assertion_receipt_recovered_from_event(market, client, tmp_path):
    """If posting fails after the tx went out, our NewAssertion event gives the index and we still reveal."""
    market.hook = failing("post_assertion", ConnectionFailed("receipt lost"), times=None)
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: e.engine.stats.failed == 1)
        record = e.store.load("side", guid)
        market.mine_assertion(guid, Posted(ENGINE, 4, list(record.bids), list(record.mask), record.commitment))
        await until(lambda: e.store.load("side", guid).index == 4)
        market.jump_to(E + 1)
        await until(lambda: market.reveals)
        assert market.reveals[0].index == 4


async def test_reveal_that_keeps_reverting_is_forfeited_and_fatal_in_testing_mode(market, client, tmp_path):
    """A reveal reverting for no known reason is tried on each block; given up, --testing ends with an error."""
    market.hook = failing("reveal_assertion", TransactionFailed("transaction failed, check parameters"), None)
    async with microengine(client, tmp_path, testing=1) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        for attempt in range(1, 6):
            market.jump_to(E + attempt)
            await until(lambda n=attempt: len(client.called("reveal_assertion")) >= n)
        with pytest.raises(TransactionFailed):
            await e.run.ended()
    assert store_status(tmp_path, guid) == FORFEITED


async def test_reveal_reverted_for_another_reason_is_retried_next_block(market, client, tmp_path, caplog):
    """A revert that is neither "already revealed" nor a closed window is tried again, and the bid is kept."""
    market.hook = failing("reveal_assertion", TransactionFailed("transaction failed at block 121, check parameters"))
    async with microengine(client, tmp_path, testing=1) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        market.jump_to(E + 1)
        await until(lambda: client.called("reveal_assertion"))
        market.jump_to(E + 2)
        await until(lambda: market.reveals)
        market.jump_to(E + 30)
        await e.run.ended()
    assert settle_calls(client) == [guid] and record_gone(tmp_path, guid) and "forfeited" not in caplog.text


async def test_reveal_reverted_because_the_window_closed_is_forfeited_at_once(market, client, tmp_path, caplog):
    """ "Reveal window closed" is final: no retry on later blocks, the bid is forfeited, the bounty still settles."""
    closed = TransactionFailed("transaction failed at block 130, error: Reveal window closed")
    market.hook = failing("reveal_assertion", closed, None)
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        market.jump_to(E + 1)
        await until(lambda: e.store.load("side", guid).status == FORFEITED)
        market.jump_to(E + 2)
        market.jump_to(E + 30)
        await until(lambda: settle_calls(client) == [guid])
    assert len(client.called("reveal_assertion")) == 1 and "reveal forfeited" in caplog.text


async def test_reveal_mined_whose_answer_was_lost_is_done_not_forfeited(market, client, tmp_path, caplog):
    """The retry of a reveal that was mined unheard reverts "already revealed": revealed, settled, --testing exits 0."""
    market.answer_lost = {"reveal_assertion"}
    async with microengine(client, tmp_path, testing=1) as e:
        guid = await posted_and_revealed(market)
        market.jump_to(E + 2)
        await until(lambda: len(client.called("reveal_assertion")) == 2)
        market.jump_to(E + 30)
        await e.run.ended()  # no TransactionFailed: nothing was lost
    assert settle_calls(client) == [guid] and len(market.reveals) == 1
    assert e.engine.stats.forfeits == 0 and "forfeited" not in caplog.text


async def test_restart_after_the_reveal_was_sent_settles_without_revealing_again(market, client, tmp_path, caplog):
    """Killed after posting its reveal, before reading the receipt: the restart reads the reveal on chain and
    settles (--testing exits 0) instead of revealing again into "Assertion already revealed" and forfeiting."""
    market.answer_lost = {"reveal_assertion"}
    async with microengine(client, tmp_path, testing=1) as e:
        guid = await posted_and_revealed(market)
        await e.run.kill()
    assert store_status(tmp_path, guid) == "asserted"  # the process never learned its reveal went through

    market.answer_lost = set()
    market.block = E + 3  # still inside the reveal window
    reveals_before = len(client.called("reveal_assertion"))
    async with microengine(client, tmp_path, testing=1) as e:
        await until(lambda: e.store.load("side", guid).status == "revealed")
        market.jump_to(E + 4)
        market.jump_to(E + 30)
        await e.run.ended()
    assert len(client.called("reveal_assertion")) == reveals_before  # not revealed a second time
    assert settle_calls(client) == [guid] and record_gone(tmp_path, guid)
    assert "forfeited" not in caplog.text


async def test_restart_lists_open_bounties_before_its_due_settle(market, client, tmp_path, monkeypatch):
    """A restart with a settle already due first lists the bounties posted while it was down (even when the
    listing is slow), so an engine killed again at its settle still learned of them."""
    async with microengine(client, tmp_path) as e:
        guid = await posted_and_revealed(market)
        await e.run.kill()
    market.block = E + 30  # the settle is due
    late = market.open_bounty(AUTHOR, MIN, "QmArtifacts", expiration=E + 60, announce=False).guid
    pages = client.iter_bounty_pages

    async def slow_pages(*args: object, **options: object) -> AsyncIterator[tuple[int, list[str]]]:
        await asyncio.sleep(0.3)
        async for page in pages(*args, **options):
            yield page

    monkeypatch.setattr(client, "iter_bounty_pages", slow_pages)
    before = len(client.calls)
    async with microengine(client, tmp_path):
        await until(lambda: settle_calls(client) == [guid] and late in market.assertions)
    after = [name for name, _ in client.calls[before:]]
    assert after.index("iter_bounty_pages") < after.index("settle")


async def test_restart_reveal_waits_for_the_listing_only_while_half_its_window_is_left(
    market, client, tmp_path, monkeypatch
):
    """A reveal due at a restart waits for the start-up listing of open bounties while more than half of
    its reveal window is left, and goes out at once, however slow the listing, when less is left."""
    async with microengine(client, tmp_path) as e:
        early, late = post(market), post(market)
        await until(lambda: early in market.assertions and late in market.assertions)
        await e.run.kill()
    pages = client.iter_bounty_pages
    listing = asyncio.Event()

    async def stuck_pages(*args: object, **options: object) -> AsyncIterator[tuple[int, list[str]]]:
        await listing.wait()
        async for page in pages(*args, **options):
            yield page

    monkeypatch.setattr(client, "iter_bounty_pages", stuck_pages)
    market.block = E + 1  # both reveals are due, the whole window (10 blocks) ahead
    async with microengine(client, tmp_path, grace=0.1):
        await asyncio.sleep(0.2)
        assert market.reveals == []  # held for the listing
        market.jump_to(E + 5)  # half the window left: no more waiting
        await until(lambda: len(market.reveals) == 2)
        assert not listing.is_set()
        listing.set()


async def test_restart_asserts_on_new_bounties_before_a_reveal_with_time_to_spare(market, client, tmp_path):
    """A restart posts its assertion on a bounty posted while it was down before a reveal that has most of
    its window left: the bounty's deadline is nearer, and a kill in between would lose the bounty."""
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        await e.run.kill()
    market.block = E + 1  # the reveal is due, its whole window ahead
    late = market.open_bounty(AUTHOR, MIN, "QmArtifacts", expiration=E + 20, announce=False).guid
    before = len(client.calls)
    async with microengine(client, tmp_path):
        await until(lambda: bool(market.reveals) and late in market.assertions)
    after = [name for name, _ in client.calls[before:]]
    assert after.index("post_assertion") < after.index("reveal_assertion")


async def test_catch_up_learns_a_reveal_mined_unheard(market, client, tmp_path):
    """A reveal whose answer was lost is taken as done by the next catch-up (no second reveal needed)."""
    market.answer_lost = {"reveal_assertion"}
    async with microengine(client, tmp_path) as e:
        guid = await posted_and_revealed(market)
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: e.store.load("side", guid).status == "revealed")
        market.jump_to(E + 30)
        await until(lambda: settle_calls(client) == [guid])
    assert len(client.called("reveal_assertion")) == 1


async def test_restart_of_an_engine_killed_before_its_assertion_went_out_posts_it(market, client, tmp_path):
    """Killed after writing its record but before sending the assertion: restarted while the bounty is open,
    it posts the stored commitment, then reveals (the market checks the nonce) and settles."""
    market.never_sent = {"post_assertion"}
    async with microengine(client, tmp_path, testing=1) as e:
        guid = post(market)
        await until(lambda: e.store.has("side", guid) and bool(client.called("post_assertion")))
        await e.run.kill()
    record = StateStore(tmp_path / "state", ENGINE).load("side", guid)
    assert record is not None and record.status == "committing" and guid not in market.assertions

    market.never_sent = set()
    market.block = E - 10
    async with microengine(client, tmp_path, testing=1) as e:
        await until(lambda: guid in market.assertions)
        assert market.assertions[guid].commitment == record.commitment
        assert market.assertions[guid].bids == list(record.bids)
        await until(lambda: e.store.load("side", guid).status == "asserted")
        market.jump_to(E + 1)
        await until(lambda: market.reveals)
        market.jump_to(E + 30)
        await e.run.ended()
    assert settle_calls(client) == [guid] and record_gone(tmp_path, guid)


async def test_restart_of_an_engine_killed_before_its_assertion_went_out_abandons_after_expiration(
    market, client, tmp_path
):
    """The same record found only after the bounty expired is not posted (it would revert): abandoned."""
    market.never_sent = {"post_assertion"}
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: e.store.has("side", guid) and bool(client.called("post_assertion")))
        await e.run.kill()

    market.never_sent = set()
    market.block = E
    posts_before = len(client.called("post_assertion"))
    async with microengine(client, tmp_path) as e:
        market.jump_to(E + 1)
        await until(lambda: e.engine.book.get(guid) is None)
    assert len(client.called("post_assertion")) == posts_before and guid not in market.assertions
    assert record_gone(tmp_path, guid)  # abandoned: nothing to reveal or settle


class SlowScanner(AbstractScanner):
    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.started = threading.Event()  # set on the backend's own thread

    async def scan_async(self, guid, artifact_type, content, metadata, chain):
        self.started.set()
        await asyncio.sleep(self.delay)
        return ScanResult(bit=True, verdict=True, confidence=0.5, metadata="slow")


def slow_backend(delay):
    class Slow(SlowScanner):
        def __init__(self):
            super().__init__(delay)

    return create_backend(Slow, name="slow")


async def test_scan_slower_than_the_deadline_gets_no_assertion(market, client, tmp_path, caplog):
    """A scan that outlasts the blocks left before expiration is cut off and no assertion is posted."""
    async with microengine(client, tmp_path, backend=slow_backend(5.0), block_time=0.01) as e:
        post(market, "QmOne", expiration=110)  # 7 usable blocks x 0.01 s
        await until(lambda: e.engine.stats.skipped == 1)
        assert market.assertions == {} and "timed out" in caplog.text


async def test_shutdown_drains_an_in_flight_scan(market, client, tmp_path):
    """SIGTERM during a scan: no new bounties are taken, the running one still gets its assertion, exit 0."""
    backend = slow_backend(0.2)
    async with microengine(client, tmp_path, backend=backend, grace=5.0) as e:
        guid = post(market, "QmOne")
        assert await asyncio.to_thread(backend.impl.started.wait, 5)
        e.run.shutdown.request("SIGTERM received")
        post(market, "QmOne")  # too late
        await e.run.ended()
    assert list(market.assertions) == [guid]
    assert market.assertions[guid].bids == [MIN + (nct("1") - MIN) // 2]  # confidence 0.5


def test_real_client_offers_everything_the_engine_uses():
    """The real PolyswarmClient has every method the engine calls, with matching parameter names."""
    import inspect

    from polyswarmclient.client import PolyswarmClient
    from polyswarmclient.services.microengine import EngineClient

    for name, member in vars(EngineClient).items():
        if name.startswith("_") or not callable(member):
            continue
        real = getattr(PolyswarmClient, name, None)
        assert real is not None, f"PolyswarmClient lacks {name}"
        wanted = list(inspect.signature(member).parameters)
        assert list(inspect.signature(real).parameters)[: len(wanted)] == wanted, name
        assert callable(getattr(FakeClient, name)), f"the fake lacks {name}"


async def test_shutdown_gives_up_after_the_grace_period(market, client, tmp_path, caplog):
    """A scan that outlives the grace period is stopped, so a stop request never hangs the process."""
    backend = slow_backend(30.0)
    async with microengine(client, tmp_path, backend=backend, grace=0.2) as e:
        post(market, "QmOne")
        assert await asyncio.to_thread(backend.impl.started.wait, 5)
        await e.run.stop("SIGTERM received", within=3)
    assert market.assertions == {} and "grace period" in caplog.text


# --- outages: a reconnect must not lose bounties (or assertions) ---------------------------------------


async def test_assertion_mined_without_receipt_or_event_is_found_at_expiration_and_revealed(market, client, tmp_path):
    """Post answer and NewAssertion event both lost in an outage: at expiration the chain is asked, not abandoned."""
    mined_but_unanswered(client)
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: e.engine.stats.failed == 1)
        assert e.store.load("side", guid).index is None  # no receipt, and no event ever comes
        market.jump_to(E + 1)
        await until(lambda: market.reveals)  # the market checks the commitment against nonce and verdicts
        assert (guid,) in client.called("list_assertions")
        await until(lambda: e.store.load("side", guid).status == "revealed")
        market.jump_to(E + 31)
        await until(lambda: settle_calls(client) == [guid])


async def test_unconfirmed_assertion_not_on_chain_is_still_abandoned_at_expiration(market, client, tmp_path, caplog):
    """A post that never reached the chain is abandoned after expiration, once the chain confirms it is not there."""
    market.hook = failing("post_assertion", ConnectionLost("the connection broke during POST /transactions"), None)
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: e.engine.stats.failed == 1)
        with caplog.at_level(logging.ERROR, logger="microengine"):
            market.jump_to(E + 1)
            await until(lambda: not e.store.has("side", guid))
        assert "was never confirmed" in caplog.text
        assert market.reveals == []


async def test_testing_run_waits_for_an_assertion_whose_post_failed_ambiguously(market, client, tmp_path):
    """--testing 1 does not exit while an assertion that may have been mined is unresolved; it reveals it."""
    mined_but_unanswered(client)
    async with microengine(client, tmp_path, testing=1) as e:
        guid = post(market)
        await until(lambda: e.engine.stats.failed == 1)
        await asyncio.sleep(0.05)
        assert not e.run.task.done(), "the testing run exited with its assertion on chain and unrevealed"
        market.jump_to(E + 1)
        await until(lambda: market.reveals)
        market.jump_to(E + 31)
        await e.run.ended()  # ends by itself once the bounty is settled
    assert settle_calls(client) == [guid]


async def test_reconnect_catch_up_learns_the_index_of_an_assertion_mined_meanwhile(market, client, tmp_path):
    """The catch-up after a reconnect finds our own assertion whose answer and event were lost, before expiration."""
    mined_but_unanswered(client)
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: e.engine.stats.failed == 1)
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: e.store.load("side", guid).index == 0)
        assert e.store.load("side", guid).status == "asserted"


async def test_catch_up_that_fails_is_retried_until_it_finds_the_missed_bounty(market, client, tmp_path, monkeypatch):
    """REST still failing when the stream comes back: the catch-up runs again later instead of giving up."""
    monkeypatch.setattr(catchup, "CATCH_UP_RETRY_BASE", 0.01)
    missed = listed(market)
    market.hook = outage = failing("iter_bounty_pages", ConnectionFailed("cannot reach polyswarmd"), times=2)
    async with microengine(client, tmp_path):
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: missed in market.assertions)
        assert outage.left == 0


async def test_catch_up_retries_a_bounty_it_could_not_read(market, client, tmp_path, monkeypatch):
    """A missed bounty whose GET /bounties/<guid> failed once is read again, not silently dropped."""
    monkeypatch.setattr(catchup, "CATCH_UP_RETRY_BASE", 0.01)
    missed = listed(market)
    market.hook = failing("get_bounty", ConnectionFailed("cannot reach polyswarmd"))
    async with microengine(client, tmp_path):
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: missed in market.assertions)


async def test_failing_catch_up_does_not_hold_up_shutdown(market, client, tmp_path):
    """A catch-up waiting to try again stops at once on shutdown (no wait for the grace period)."""
    market.hook = failing("iter_bounty_pages", ConnectionFailed("cannot reach polyswarmd"), times=None)
    async with microengine(client, tmp_path, grace=30.0) as e:
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: e.engine.catch_up.running == {"side"})
        await asyncio.sleep(0.05)
        await e.run.stop("done", within=2)


async def test_later_catch_ups_start_at_the_last_page_read(market, client, tmp_path):
    """After one full catch-up, a reconnect pages from where the last one ended, not the whole history."""
    for _ in range(7):  # three pages of closed history: 3 + 3 + 1
        listed(market, expiration=90)
    async with microengine(client, tmp_path):
        market.jump_to(101)
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: ("side", 0) in client.called("iter_bounty_pages"))
        missed = listed(market)  # lands on the last page
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: missed in market.assertions)
        starts = [args[1] for args in client.called("iter_bounty_pages")]
        assert starts[0] == 0 and starts[-1] == 2, starts


async def test_finished_records_are_deleted_while_running(market, client, tmp_path):
    """A running engine deletes each settled bounty's record: the state directory holds only bounties in play."""
    async with microengine(client, tmp_path) as e:
        guids = [post(market) for _ in range(3)]
        await until(lambda: all(g in market.assertions for g in guids) and len(record_files(e.store)) == 3)
        market.jump_to(E + 1)
        await until(lambda: len(market.reveals) == 3)
        market.jump_to(E + 30)
        await until(lambda: sorted(settle_calls(client)) == sorted(guids))
        await until(lambda: record_files(e.store) == [])
        assert not e.run.task.done()
    left = [p.name for p in (tmp_path / "state").glob("microengine/*/*") if p.name != ".lock"]
    assert not [name for name in left if name.endswith((".json", ".tmp"))], left


async def test_restart_after_pruning_reveals_and_settles_what_is_left(market, client, tmp_path):
    """One bounty settled (its record deleted), another asserted when the engine stops: the restart reveals and
    settles the second and does not take the first again."""
    async with microengine(client, tmp_path) as e:
        first = post(market)
        await until(lambda: first in market.assertions)
        market.jump_to(E + 1)
        await until(lambda: len(market.reveals) == 1)
        second = post(market, expiration=E + 40)
        market.jump_to(E + 30)
        await until(lambda: settle_calls(client) == [first] and second in market.assertions)
        await until(lambda: record_files(e.store) == [second])
        await e.run.stop("restart")

    async with microengine(client, tmp_path) as e:
        market.jump_to(E + 41)
        await until(lambda: len(market.reveals) == 2)
        market.jump_to(E + 70)
        await until(lambda: settle_calls(client) == [first, second])
        await until(lambda: record_files(e.store) == [])
    assert len(client.called("post_assertion")) == 2  # the settled bounty was not taken again


async def test_restart_starts_the_catch_up_at_the_stored_page(market, client, tmp_path):
    """The catch-up cursor is kept in the state directory: a restart pages on from there, not the whole history."""
    for _ in range(7):  # three pages of closed history: 3 + 3 + 1
        listed(market, expiration=90)
    market.block = 101
    async with microengine(client, tmp_path):
        await until(lambda: ("side", 0) in client.called("iter_bounty_pages"))
        await until(lambda: (tmp_path / "state" / "microengine" / ENGINE.lower() / "catch-up-side.page").exists())
    missed = listed(market)  # lands on the last page, posted while the engine was down
    client.calls.clear()
    async with microengine(client, tmp_path):
        await until(lambda: missed in market.assertions)
        starts = [args[1] for args in client.called("iter_bounty_pages")]
    assert starts == [2], starts


async def test_stored_catch_up_page_waits_for_open_bounties_without_a_record(market, client, tmp_path):
    """A bounty still open that we did not assert on (here a URL bounty) keeps its page in the stored cursor, so a
    restart that could take it (here with --artifact-type url) reads it again."""
    market.add_artifacts([("link", ("http://bad.example/" + EICAR.decode()).encode())], uri="QmUrl")
    open_url = market.open_bounty(AUTHOR, MIN, "QmUrl", expiration=E, artifact_type="url", announce=False)
    for _ in range(6):
        listed(market, expiration=90)
    market.block = 101
    async with microengine(client, tmp_path):
        await until(lambda: ("side", 0) in client.called("iter_bounty_pages"))
        await asyncio.sleep(0.05)
    assert open_url.guid not in market.assertions
    client.calls.clear()
    async with microengine(client, tmp_path, artifact_types=(ArtifactType.URL,)):
        await until(lambda: open_url.guid in market.assertions)
    assert [args[1] for args in client.called("iter_bounty_pages")][0] == 0


async def test_one_balance_read_serves_the_next_assertions_and_a_shortfall_reads_again(market, client, tmp_path):
    """Three bounties at once cost one balance read (each assertion is counted against it); once the estimate
    no longer covers an assertion the balance is read again, so a deposit meanwhile is seen at once."""
    async with microengine(client, tmp_path) as e:
        guids = [post(market) for _ in range(3)]
        await until(lambda: all(g in market.assertions for g in guids))
        assert len(client.called("nct_balance")) == 1
        market.nct[ENGINE] = MIN  # spent elsewhere: the estimate still covers one more, the chain does not
        e.engine.asserting.funds._known.clear()  # as if BALANCE_REUSE had passed
        post(market)
        await until(lambda: e.engine.stats.skipped == 1)
        market.nct[ENGINE] = nct(100)  # a deposit: the low estimate is read again, not trusted
        guid = post(market)
        await until(lambda: guid in market.assertions)
        assert len(client.called("nct_balance")) == 3


async def test_a_bounty_delivered_again_after_it_was_forgotten_is_not_taken_again(market, client, tmp_path):
    """Once the head passes the point where a bounty could be asserted on, the engine forgets its GUID (its record
    still stands for it while in play); the same event delivered again then, or after the settle, is refused by
    its expiration: one assertion, counted once."""
    async with microengine(client, tmp_path) as e:
        guid = post(market)
        await until(lambda: guid in market.assertions)
        market.jump_to(E + 1)
        await until(lambda: len(market.reveals) == 1)
        assert e.engine.book.remembered == 0 and guid in e.engine.book
        market.broadcast(market.announcement(guid))
        market.jump_to(E + 30)
        await until(lambda: settle_calls(client) == [guid] and record_files(e.store) == [])
        market.broadcast(market.announcement(guid))
        await asyncio.sleep(0.05)
        assert e.engine.stats.bounties_seen == 1 and e.engine.stats.skipped == 0
        assert len(client.called("post_assertion")) == 1 and len(market.reveals) == 1


async def test_a_bounty_seen_is_forgotten_when_it_expires_and_a_live_one_is_kept(market, client, tmp_path):
    """Two bounties the engine does not take (URL bounties): the one the head has passed is forgotten, the one still
    open is remembered, so delivering both again counts neither a second time."""
    async with microengine(client, tmp_path) as e:
        expiring, live = post(market, artifact_type="url"), post(market, expiration=E + 50, artifact_type="url")
        await until(lambda: e.engine.stats.bounties_seen == 2)
        market.jump_to(E - 3)  # one block left to scan for the first: still remembered
        await asyncio.sleep(0.02)
        assert e.engine.book.known("side", expiring)
        market.jump_to(E - 2)
        await until(lambda: not e.engine.book.known("side", expiring))
        assert e.engine.book.known("side", live) and e.engine.book.remembered == 1
        market.broadcast(market.announcement(expiring))
        market.broadcast(market.announcement(live))
        await asyncio.sleep(0.05)
        assert e.engine.stats.bounties_seen == 2


async def test_catch_ups_after_forgetting_take_nothing_expired_and_keep_only_the_pages_read_again(
    market, client, tmp_path
):
    """A bounty settled and forgotten is read again by a reconnect's catch-up (its page is the last one), found
    expired and not taken; the expired GUIDs remembered for the next catch-up are those of the pages it reads."""
    for _ in range(7):  # three pages of closed history: 3 + 3 + 1
        listed(market, expiration=90)
    async with microengine(client, tmp_path) as e:
        market.jump_to(101)
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: ("side", 0) in client.called("iter_bounty_pages") and not e.engine.catch_up.running)
        assert e.engine.catch_up.remembered_closed == 1  # page 2's; pages 0 and 1 are never read again
        guid = post(market)  # page 2 too
        await until(lambda: guid in market.assertions)
        market.jump_to(E + 1)
        await until(lambda: len(market.reveals) == 1)
        market.jump_to(E + 30)
        await until(lambda: settle_calls(client) == [guid] and e.engine.book.remembered == 0)
        reads = len(client.called("get_bounty"))
        market.broadcast(Reconnected(chain="side"))
        await until(lambda: len(client.called("iter_bounty_pages")) == 2 and not e.engine.catch_up.running)
        await asyncio.sleep(0.05)
        assert len(client.called("get_bounty")) > reads  # it was read again: nothing in memory knew it
        assert len(client.called("post_assertion")) == 1 and e.engine.stats.bounties_seen == 1
        assert e.engine.catch_up.remembered_closed <= market.page_size
