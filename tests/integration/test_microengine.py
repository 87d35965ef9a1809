"""The microengine service end to end against a recording fake of the client facade.

The fake behaves like polyswarmd seen through :class:`PolyswarmClient`: it serves parameters, bounties
and artifacts, streams the events a test pushes, records every assertion, reveal and settle, and checks
each reveal against its commitment the way the contract does.
"""

import asyncio
import json
import logging
import uuid

import pytest

from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
from polyswarmclient.amounts import nct
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import create_backend
from polyswarmclient.backends.eicar import EICAR, EicarScanner
from polyswarmclient.wire.events import Reconnected
from polyswarmclient.errors import ApiError, ConnectionFailed, ConnectionLost, InsufficientFunds, TransactionFailed
from polyswarmclient.eth.commitment import commitment
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import EngineConfig, Microengine
from polyswarmclient.services.microengine import catchup as engine_module
from polyswarmclient.services.microengine.filters import parse_filters
from polyswarmclient.services.microengine.state import FORFEITED, SETTLED, StateStore
from polyswarmclient.wire.bits import bools_to_int
from polyswarmclient.wire.events import (
    Block,
    Connected,
    Deprecated,
    FeeUpdate,
    NewAssertion,
    NewBounty,
    QuorumReached,
    SettledBounty,
)
from polyswarmclient.wire.models import ArtifactEntry, Assertion, Bounty, BountyParameters

ADDRESS = "0xd595c0c90498619DaeAd4Fb67886A1f06c1B3c17"
MIN = nct("0.0625")
PARAMS = BountyParameters(
    bounty_fee=MIN,
    assertion_fee=nct("0.03125"),
    bounty_amount_minimum=MIN,
    assertion_bid_minimum=MIN,
    assertion_bid_maximum=nct("1"),
    arbiter_lookback_range=100,
    max_duration=100,
    assertion_reveal_window=10,
    arbiter_vote_window=20,
)
E = 120  # expiration of the bounties in these tests; R = 10, V = 20
PAGE = 3  # GET /bounties page size in the fake


class FakeClient:
    """A recording stand-in for PolyswarmClient."""

    address = ADDRESS

    def __init__(self, artifacts=None, balance=100 * 10**18):
        self.artifacts = artifacts or {}
        self.balance = balance
        self.head = 100
        self.bounties: dict[str, Bounty] = {}
        self.queue: asyncio.Queue = asyncio.Queue()
        self.calls: list[tuple] = []
        self.assertions: dict[str, dict] = {}
        self.reveals: list[dict] = []
        self.settles: list[str] = []
        self.fail_assertion: Exception | None = None
        self.fail_reveal: Exception | None = None
        self.fail_list: set[str] = set()
        self.metadata_uploads: list = []
        self.metadata_status = 404

    # facade API
    async def bounty_parameters(self, chain="side", *, refresh=False):
        self.calls.append(("bounty_parameters", chain, refresh))
        return PARAMS

    async def block_number(self, chain):
        return self.head

    async def get_bounty(self, guid, chain="side"):
        return self.bounties[guid]

    async def list_assertions(self, guid, chain="side"):
        self.calls.append(("list_assertions", guid))
        return [Assertion(a["index"], ADDRESS, a["commitment"]) for g, a in self.assertions.items() if g == guid]

    async def iter_bounty_pages(self, chain="side", *, start_page=0):
        self.calls.append(("iter_bounty_pages", chain, start_page))
        guids = list(self.bounties)
        for page in range(start_page, (len(guids) + PAGE - 1) // PAGE):
            yield page, guids[page * PAGE : (page + 1) * PAGE]

    async def list_artifacts(self, uri):
        if uri in self.fail_list:
            raise ConnectionFailed("polyswarmd went away")
        return [ArtifactEntry(f"{i:06d}", f"hash{i}") for i in range(len(self.artifacts[uri]))]

    async def fetch_artifact(self, uri, index):
        return self.artifacts[uri][index]

    async def post_metadata(self, metadata):
        self.metadata_uploads.append(metadata)
        if self.metadata_status != 200:
            raise ApiError(self.metadata_status, "not here")
        return "QmMetadataHash"

    async def nct_balance(self, chain, address=None):
        return self.balance

    async def post_assertion(self, guid, bids, mask, commitment, chain="side"):
        if self.fail_assertion is not None:
            raise self.fail_assertion
        assert len(bids) == sum(mask) and all(
            PARAMS.assertion_bid_minimum <= b <= PARAMS.assertion_bid_maximum for b in bids
        )
        self.assertions[guid] = {"bids": bids, "mask": mask, "commitment": commitment, "index": 0}
        return 0

    async def reveal_assertion(self, guid, index, nonce, verdicts, metadata, chain="side"):
        if self.fail_reveal is not None:
            raise self.fail_reveal
        posted = self.assertions[guid]
        # The contract's check: the commitment must match this sender's nonce and verdicts.
        assert commitment(nonce, bools_to_int(verdicts), ADDRESS) == posted["commitment"], (
            "reveal does not match"
        )
        self.reveals.append({"guid": guid, "index": index, "verdicts": verdicts, "metadata": metadata})

    async def settle(self, guid, chain="side"):
        self.settles.append(guid)

    async def events(self, chain):
        while True:
            event = await self.queue.get()
            if event.chain == chain:
                yield event

    # test helpers
    def push(self, event):
        self.queue.put_nowait(event)

    def block(self, number, chain="side"):
        self.head = number
        self.push(Block(number=number, chain=chain))


def new_bounty(uri="QmArtifacts", guid=None, artifact_type="file", expiration=E, metadata="", block=100):
    return NewBounty(
        chain="side",
        block_number=block,
        guid=guid or str(uuid.uuid4()),
        artifact_type=artifact_type,
        author="0xB8978B0D6aBB3D5BAeEaCbAC35d6B24F39AA443A",
        amount=MIN,
        uri=uri,
        expiration=expiration,
        metadata=metadata,
    )


def _open_bounty(guid, expiration=E):
    return Bounty(
        guid=guid,
        artifact_type="file",
        author=ADDRESS,
        amount=MIN,
        uri="QmArtifacts",
        num_artifacts=2,
        expiration=expiration,
        assigned_arbiter="",
        quorum_reached=False,
        quorum_reached_block=0,
        quorum_mask=(),
        metadata=None,
    )


async def wait_until(predicate, within=5.0):
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def make_engine(fake, tmp_path, backend=None, shutdown=None, **config):
    store = StateStore(tmp_path / "state", ADDRESS).open()
    engine = Microengine(
        fake,
        backend or create_backend(EicarScanner, name="eicar"),
        store,
        EngineConfig(**config),
        shutdown or Shutdown(grace=2.0),
    )
    return engine, store


@pytest.fixture
def fake():
    return FakeClient({"QmArtifacts": [b"xx" + EICAR + b"yy", b"hello world"], "QmOne": [b"plain"]})


async def test_testing_mode_full_lifecycle(fake, tmp_path, caplog):
    """--testing 1: assert (EICAR malicious, text benign), reveal after expiration, settle, then exit."""
    caplog.set_level(logging.INFO, logger="microengine")
    engine, store = make_engine(fake, tmp_path, testing=1)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    posted = fake.assertions[bounty.guid]
    assert posted["mask"] == [True, True] and len(posted["bids"]) == 2
    fake.block(E)
    await asyncio.sleep(0.02)
    assert fake.reveals == []  # not before the first block after expiration
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    assert fake.reveals[0]["verdicts"] == [True, False]
    fake.block(E + 10 + 20)
    await asyncio.wait_for(run, 5)
    assert fake.settles == [bounty.guid]
    store.close()
    text = caplog.text
    assert bounty.guid in text and "[malicious, benign]" in text and "settled" in text


async def test_reveal_metadata_falls_back_to_inline_json(fake, tmp_path):
    """Reveal metadata is the scanners' verdicts as a JSON array, inline when the upload route is missing."""
    engine, store = make_engine(fake, tmp_path, testing=1)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    fake.block(E + 30)
    await asyncio.wait_for(run, 5)
    metadata = json.loads(fake.reveals[0]["metadata"])
    assert [m["malware_family"] for m in metadata] == ["EICAR-Test-File", ""]
    store.close()


async def test_reveal_metadata_uploaded_when_possible(fake, tmp_path):
    """When polyswarmd stores metadata, the reveal carries its hash instead of the JSON."""
    fake.metadata_status = 200
    engine, store = make_engine(fake, tmp_path, testing=1)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    fake.block(E + 30)
    await asyncio.wait_for(run, 5)
    assert fake.reveals[0]["metadata"] == "QmMetadataHash" and len(fake.metadata_uploads[0]) == 2
    store.close()


async def test_restart_between_commit_and_reveal_keeps_the_bid(fake, tmp_path):
    """Stopping after asserting and starting again later still reveals with the original nonce and settles."""
    first_stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=first_stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    first_stop.request("test restart")
    await asyncio.wait_for(run, 5)
    store.close()
    assert fake.reveals == []

    fake.head = E + 2  # the new process starts after expiration
    fake.queue = asyncio.Queue()
    second_stop = Shutdown(grace=2.0)
    engine2, store2 = make_engine(fake, tmp_path, shutdown=second_stop)
    run2 = asyncio.create_task(engine2.run())
    await wait_until(lambda: fake.reveals)  # commitment checked by the fake
    fake.block(E + 30)
    await wait_until(lambda: fake.settles == [bounty.guid])
    second_stop.request("done")
    await asyncio.wait_for(run2, 5)
    assert store2.load("side", bounty.guid).status == SETTLED
    store2.close()


async def test_testing_run_restarted_mid_bounty_finishes_it_and_exits(fake, tmp_path):
    """--testing 1 killed after committing, then restarted, reveals and settles that bounty and exits 0."""
    engine, store = make_engine(fake, tmp_path, testing=1)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    run.cancel()  # the process dies without draining
    with pytest.raises(asyncio.CancelledError):
        await run
    store.close()

    fake.head = E + 2
    fake.queue = asyncio.Queue()
    engine2, store2 = make_engine(fake, tmp_path, testing=1)
    run2 = asyncio.create_task(engine2.run())
    await wait_until(lambda: fake.reveals)
    fake.push(new_bounty(guid=str(uuid.uuid4())))  # a new bounty would exceed N: ignored
    fake.block(E + 30)
    await asyncio.wait_for(run2, 5)  # ends by itself once the resumed bounty is settled
    assert fake.settles == [bounty.guid]
    assert len(fake.assertions) == 1
    store2.close()


async def test_restart_recovers_an_assertion_whose_receipt_was_lost(fake, tmp_path):
    """Dying while the assertion was being mined loses nothing: the restart finds its index and reveals."""
    engine, store = make_engine(fake, tmp_path)
    run = asyncio.create_task(engine.run())
    real_post = fake.post_assertion

    async def mined_but_unconfirmed(guid, bids, mask, commitment, chain="side"):
        await real_post(guid, bids, mask, commitment, chain)  # the transaction made it on chain...
        raise ConnectionLost("the connection broke while waiting for the receipt")  # ...we never heard

    fake.post_assertion = mined_but_unconfirmed
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    await asyncio.sleep(0.05)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    store.close()
    assert store_status(tmp_path, bounty.guid) == "committing"

    fake.post_assertion = real_post
    fake.head = E + 2
    fake.queue = asyncio.Queue()
    stop = Shutdown(grace=2.0)
    engine2, store2 = make_engine(fake, tmp_path, shutdown=stop)
    run2 = asyncio.create_task(engine2.run())
    await wait_until(lambda: fake.reveals)  # the fake checks the commitment against nonce and verdicts
    assert ("list_assertions", bounty.guid) in fake.calls
    stop.request("done")
    await asyncio.wait_for(run2, 5)
    store2.close()


def store_status(tmp_path, guid):
    with StateStore(tmp_path / "state", ADDRESS) as reopened:
        return reopened.load("side", guid).status


async def test_restart_after_reveal_window_forfeits_but_settles(fake, tmp_path, caplog):
    """A restart after the reveal window logs the bid as forfeited and still settles at E+R+V."""
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    stop.request("x")
    await asyncio.wait_for(run, 5)
    store.close()

    fake.head = E + 15
    fake.queue = asyncio.Queue()
    stop2 = Shutdown(grace=2.0)
    engine2, store2 = make_engine(fake, tmp_path, shutdown=stop2)
    run2 = asyncio.create_task(engine2.run())
    await wait_until(lambda: store2.load("side", bounty.guid).status == FORFEITED)
    assert "forfeited" in caplog.text
    fake.block(E + 30)
    await wait_until(lambda: fake.settles == [bounty.guid])
    stop2.request("done")
    await asyncio.wait_for(run2, 5)
    assert fake.reveals == []
    store2.close()


async def test_redelivered_bounty_is_handled_once(fake, tmp_path):
    """The same bounty event delivered twice (or after a reconnect) produces one assertion."""
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    fake.push(bounty)
    await asyncio.sleep(0.05)
    assert engine.stats.bounties_handled == 1 and engine.stats.assertions == 1
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_testing_counts_bounties_without_assertion(fake, tmp_path):
    """--testing 2 ends even when a bounty gets no assertion (filtered out) and ignores a third bounty."""

    engine, store = make_engine(
        fake, tmp_path, testing=2, bounty_filter=parse_filters([("reject", "mimetype", "==", "text/plain")])
    )
    run = asyncio.create_task(engine.run())
    skipped = new_bounty(uri="QmOne", metadata=[{"mimetype": "text/plain"}])
    asserted = new_bounty()
    fake.push(skipped)
    fake.push(asserted)
    await wait_until(lambda: asserted.guid in fake.assertions)
    fake.push(new_bounty())
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    fake.block(E + 30)
    await asyncio.wait_for(run, 5)
    assert list(fake.assertions) == [asserted.guid] and fake.settles == [asserted.guid]
    assert engine.stats.skipped == 1
    store.close()


async def test_other_artifact_types_and_chains_are_ignored(fake, tmp_path):
    """URL bounties are ignored unless --artifact-type url; they do not count toward --testing."""
    engine, store = make_engine(fake, tmp_path, testing=1)
    run = asyncio.create_task(engine.run())
    fake.push(new_bounty(artifact_type="url"))
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    assert len(fake.assertions) == 1
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    fake.block(E + 30)
    await asyncio.wait_for(run, 5)
    store.close()


async def test_url_bounties_when_enabled(tmp_path):
    """With --artifact-type url, URL artifacts are decoded to text and scanned."""
    fake = FakeClient({"QmUrl": [("http://bad.example/" + EICAR.decode()).encode()]})
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop, artifact_types=(ArtifactType.URL,))
    run = asyncio.create_task(engine.run())
    bounty = new_bounty(uri="QmUrl", artifact_type="url")
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    assert fake.reveals[0]["verdicts"] == [True]
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_low_balance_skips_the_bounty(fake, tmp_path, caplog):
    """Without enough NCT for bids plus the fee the bounty is skipped with a clear log line."""
    fake.balance = MIN
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.push(new_bounty())
    await wait_until(lambda: engine.stats.skipped == 1)
    assert fake.assertions == {} and "balancemanager deposit" in caplog.text
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_low_balance_is_fatal_in_testing_mode(fake, tmp_path):
    """In --testing mode a low balance stops the engine with InsufficientFunds (exit 1)."""
    fake.balance = 0
    engine, store = make_engine(fake, tmp_path, testing=1)
    run = asyncio.create_task(engine.run())
    fake.push(new_bounty())
    with pytest.raises(InsufficientFunds, match="deposit NCT"):
        await asyncio.wait_for(run, 5)
    store.close()


async def test_one_failing_bounty_does_not_stop_the_engine(fake, tmp_path):
    """A bounty whose artifacts cannot be listed is logged and the next bounty is still asserted on."""
    fake.fail_list.add("QmBroken")
    fake.artifacts["QmBroken"] = []
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.push(new_bounty(uri="QmBroken"))
    good = new_bounty()
    fake.push(good)
    await wait_until(lambda: good.guid in fake.assertions)
    assert engine.stats.failed == 1
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_quorum_settles_before_the_vote_window_ends(fake, tmp_path):
    """A quorum event for our bounty settles it right away; quorums of other bounties are ignored."""
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    fake.push(QuorumReached(bounty_guid=str(uuid.uuid4())))
    fake.block(E + 11)
    fake.push(QuorumReached(bounty_guid=bounty.guid))
    await wait_until(lambda: fake.settles == [bounty.guid])
    fake.push(QuorumReached(bounty_guid=bounty.guid))
    fake.block(E + 31)
    await asyncio.sleep(0.05)
    assert fake.settles == [bounty.guid]
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_reconnect_catches_up_on_missed_bounties(fake, tmp_path):
    """After a reconnect, open bounties missed meanwhile are asserted on; expired ones are not."""
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.block(101)
    missed, expired = str(uuid.uuid4()), str(uuid.uuid4())
    for guid, expiration in ((missed, E), (expired, 90)):
        fake.bounties[guid] = _open_bounty(guid, expiration)
    fake.push(Reconnected(chain="side"))
    await wait_until(lambda: missed in fake.assertions)
    assert expired not in fake.assertions
    assert ("bounty_parameters", "side", True) in fake.calls
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_bounties_posted_before_the_first_subscription_are_caught_up(fake, tmp_path):
    """A bounty posted while the engine was starting (before its socket connected) is still asserted on."""
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    early = str(uuid.uuid4())
    fake.bounties[early] = _open_bounty(early)
    run = asyncio.create_task(engine.run())
    fake.push(Connected(chain="side", start_time="0"))
    await wait_until(lambda: early in fake.assertions)
    fake.push(Connected(chain="side", start_time="0"))  # a later connect does not page again by itself
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_payouts_are_counted_and_other_events_ignored(fake, tmp_path):
    """A payout to us is counted; a fee update (the client's business) does not disturb the engine."""
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.push(FeeUpdate(bounty_fee=1, assertion_fee=2))
    fake.push(SettledBounty(bounty_guid=str(uuid.uuid4()), settler=ADDRESS, payout=5))
    await wait_until(lambda: engine.stats.payouts == 5)
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_deprecation_settles_finished_bounties(fake, tmp_path):
    """On Deprecated, a bounty whose vote window has passed is settled at once."""
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    engine.schedule.done(bounty.guid, "reveal")  # as if revealed
    engine.heads["side"] = E + 40  # the head moved on while no block event reached us
    fake.push(Deprecated(rollover=False))
    await wait_until(lambda: fake.settles == [bounty.guid])
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_lost_assertion_receipt_recovered_from_event(fake, tmp_path):
    """If posting fails after the tx went out, our NewAssertion event gives the index and we still reveal."""
    fake.fail_assertion = ConnectionFailed("receipt lost")
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: engine.stats.failed == 1)
    record = store.load("side", bounty.guid)
    fake.assertions[bounty.guid] = {"commitment": record.commitment}
    fake.push(
        NewAssertion(
            bounty_guid=bounty.guid,
            author=ADDRESS,
            index=4,
            bid=record.bids,
            mask=record.mask,
            commitment=record.commitment,
        )
    )
    await wait_until(lambda: store.load("side", bounty.guid).index == 4)
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    assert fake.reveals[0]["index"] == 4
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_reverted_reveal_is_fatal_in_testing_mode(fake, tmp_path):
    """In --testing mode a reverted transaction ends the run with an error (exit 1)."""
    fake.fail_reveal = TransactionFailed("transaction failed: reveal reverted")
    engine, store = make_engine(fake, tmp_path, testing=1)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: bounty.guid in fake.assertions)
    fake.block(E + 1)
    with pytest.raises(TransactionFailed):
        await asyncio.wait_for(run, 5)
    store.close()


class SlowScanner(AbstractScanner):
    def __init__(self, delay):
        super().__init__()
        self.delay = delay
        self.started = asyncio.Event()

    async def scan_async(self, guid, artifact_type, content, metadata, chain):
        self.started.set()
        await asyncio.sleep(self.delay)
        return ScanResult(bit=True, verdict=True, confidence=0.5, metadata="slow")


def slow_backend(delay):
    class Slow(SlowScanner):
        def __init__(self):
            super().__init__(delay)

    return create_backend(Slow, name="slow")


async def test_scan_slower_than_the_deadline_gets_no_assertion(fake, tmp_path, caplog):
    """A scan that outlasts the blocks left before expiration is cut off and no assertion is posted."""
    stop = Shutdown(grace=2.0)
    backend = slow_backend(5.0)
    engine, store = make_engine(fake, tmp_path, backend=backend, shutdown=stop, block_time=0.01)
    run = asyncio.create_task(engine.run())
    fake.push(new_bounty(uri="QmOne", expiration=110))  # 8 usable blocks x 0.01 s
    await wait_until(lambda: engine.stats.skipped == 1)
    assert fake.assertions == {} and "timed out" in caplog.text
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_shutdown_drains_an_in_flight_scan(fake, tmp_path):
    """SIGTERM during a scan: no new bounties are taken, the running one still gets its assertion, exit 0."""
    stop = Shutdown(grace=5.0)
    backend = slow_backend(0.2)
    engine, store = make_engine(fake, tmp_path, backend=backend, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty(uri="QmOne")
    fake.push(bounty)
    await asyncio.wait_for(backend.impl.started.wait(), 5)
    stop.request("SIGTERM received")
    late = new_bounty(uri="QmOne")
    fake.push(late)
    await asyncio.wait_for(run, 5)
    assert list(fake.assertions) == [bounty.guid]
    assert fake.assertions[bounty.guid]["bids"] == [MIN + (nct("1") - MIN) // 2]  # confidence 0.5
    store.close()


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


async def test_shutdown_gives_up_after_the_grace_period(fake, tmp_path, caplog):
    """A scan that outlives the grace period is stopped, so a stop request never hangs the process."""
    stop = Shutdown(grace=0.2)
    backend = slow_backend(30.0)
    engine, store = make_engine(fake, tmp_path, backend=backend, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.push(new_bounty(uri="QmOne"))
    await asyncio.wait_for(backend.impl.started.wait(), 5)
    stop.request("SIGTERM received")
    await asyncio.wait_for(run, 3)
    assert fake.assertions == {} and "grace period" in caplog.text
    store.close()


# --- outages: a reconnect must not lose bounties (or assertions) ---------------------------------------


def _post_mined_but_unanswered(fake):
    """Make ``fake.post_assertion`` put the assertion on chain, then lose the answer (connection broke)."""
    real_post = fake.post_assertion

    async def mined_but_unanswered(guid, bids, mask, commitment, chain="side"):
        await real_post(guid, bids, mask, commitment, chain)
        raise ConnectionLost("the connection broke during POST /transactions")

    fake.post_assertion = mined_but_unanswered


async def test_assertion_mined_without_receipt_or_event_is_found_at_expiration_and_revealed(fake, tmp_path):
    """Post answer and NewAssertion event both lost in an outage: at expiration the chain is asked, not abandoned."""
    _post_mined_but_unanswered(fake)
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: engine.stats.failed == 1)
    assert store.load("side", bounty.guid).index is None  # no receipt, and no event ever comes
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)  # the fake checks the commitment against nonce and verdicts
    assert ("list_assertions", bounty.guid) in fake.calls
    assert store.load("side", bounty.guid).status == "revealed"
    fake.block(E + 31)
    await wait_until(lambda: fake.settles == [bounty.guid])
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_unconfirmed_assertion_not_on_chain_is_still_abandoned_at_expiration(fake, tmp_path, caplog):
    """A post that never reached the chain is abandoned after expiration, once the chain confirms it is not there."""
    fake.fail_assertion = ConnectionLost("the connection broke during POST /transactions")
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: engine.stats.failed == 1)
    with caplog.at_level(logging.ERROR, logger="microengine"):
        fake.block(E + 1)
        await wait_until(lambda: store.load("side", bounty.guid).status == "abandoned")
    assert "was never confirmed" in caplog.text
    assert fake.reveals == []
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_testing_run_waits_for_an_assertion_whose_post_failed_ambiguously(fake, tmp_path):
    """--testing 1 does not exit while an assertion that may have been mined is unresolved; it reveals it."""
    _post_mined_but_unanswered(fake)
    engine, store = make_engine(fake, tmp_path, testing=1)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: engine.stats.failed == 1)
    await asyncio.sleep(0.05)
    assert not run.done(), "the testing run exited with its assertion on chain and unrevealed"
    fake.block(E + 1)
    await wait_until(lambda: fake.reveals)
    fake.block(E + 31)
    await asyncio.wait_for(run, 5)  # ends by itself once the bounty is settled
    assert fake.settles == [bounty.guid]
    store.close()


async def test_reconnect_catch_up_learns_the_index_of_an_assertion_mined_meanwhile(fake, tmp_path):
    """The catch-up after a reconnect finds our own assertion whose answer and event were lost, before expiration."""
    _post_mined_but_unanswered(fake)
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    bounty = new_bounty()
    fake.push(bounty)
    await wait_until(lambda: engine.stats.failed == 1)
    fake.push(Reconnected(chain="side"))
    await wait_until(lambda: store.load("side", bounty.guid).index == 0)
    assert store.load("side", bounty.guid).status == "asserted"
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_catch_up_that_fails_is_retried_until_it_finds_the_missed_bounty(fake, tmp_path, monkeypatch):
    """REST still failing when the stream comes back: the catch-up runs again later instead of giving up."""
    monkeypatch.setattr(engine_module, "CATCH_UP_RETRY_BASE", 0.01)
    missed = str(uuid.uuid4())
    fake.bounties[missed] = _open_bounty(missed)
    pages = fake.iter_bounty_pages
    outage = {"calls": 2}  # the first-connect catch-up and the first one after the reconnect fail

    async def flaky_pages(chain="side", *, start_page=0):
        if outage["calls"] > 0:
            outage["calls"] -= 1
            raise ConnectionFailed("cannot reach polyswarmd")
        async for page in pages(chain, start_page=start_page):
            yield page

    fake.iter_bounty_pages = flaky_pages
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.push(Reconnected(chain="side"))
    await wait_until(lambda: missed in fake.assertions)
    assert outage["calls"] == 0
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_catch_up_retries_a_bounty_it_could_not_read(fake, tmp_path, monkeypatch):
    """A missed bounty whose GET /bounties/<guid> failed once is read again, not silently dropped."""
    monkeypatch.setattr(engine_module, "CATCH_UP_RETRY_BASE", 0.01)
    missed = str(uuid.uuid4())
    fake.bounties[missed] = _open_bounty(missed)
    read = fake.get_bounty
    failures = {"left": 1}

    async def flaky_read(guid, chain="side"):
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionFailed("cannot reach polyswarmd")
        return await read(guid, chain)

    fake.get_bounty = flaky_read
    stop = Shutdown(grace=2.0)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.push(Reconnected(chain="side"))
    await wait_until(lambda: missed in fake.assertions)
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()


async def test_failing_catch_up_does_not_hold_up_shutdown(fake, tmp_path):
    """A catch-up waiting to try again stops at once on shutdown (no wait for the grace period)."""
    stop = Shutdown(grace=30.0)

    async def down(chain="side", *, start_page=0):
        raise ConnectionFailed("cannot reach polyswarmd")
        yield  # pragma: no cover - an async generator that fails on first use

    fake.iter_bounty_pages = down
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.push(Reconnected(chain="side"))
    await wait_until(lambda: engine.catch_up.running == {"side"})
    await asyncio.sleep(0.05)
    stop.request("done")
    await asyncio.wait_for(run, 2)
    store.close()


async def test_later_catch_ups_start_at_the_last_page_read(fake, tmp_path):
    """After one full catch-up, a reconnect pages from where the last one ended, not the whole history."""
    stop = Shutdown(grace=2.0)
    for _ in range(7):  # three pages of closed history: 3 + 3 + 1
        guid = str(uuid.uuid4())
        fake.bounties[guid] = _open_bounty(guid, expiration=90)
    engine, store = make_engine(fake, tmp_path, shutdown=stop)
    run = asyncio.create_task(engine.run())
    fake.block(101)
    fake.push(Reconnected(chain="side"))
    await wait_until(lambda: ("iter_bounty_pages", "side", 0) in fake.calls)
    missed = str(uuid.uuid4())
    fake.bounties[missed] = _open_bounty(missed)  # lands on the last page
    fake.push(Reconnected(chain="side"))
    await wait_until(lambda: missed in fake.assertions)
    starts = [c[2] for c in fake.calls if c[0] == "iter_bounty_pages"]
    assert starts[0] == 0 and starts[-1] == 2, starts
    stop.request("done")
    await asyncio.wait_for(run, 5)
    store.close()
