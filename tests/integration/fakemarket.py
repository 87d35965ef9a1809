"""A simulated marketplace for the service tests: one recording fake of the client facade for all of them.

One :class:`Market` holds the state of both chains (block numbers, NCT balances, stakes, artifacts,
bounties, assertions, the relay) and enforces what the contracts enforce: bids within the limits, a
reveal that matches its commitment inside the reveal window, votes and settles inside their windows
(spec §5.2), treating the next block as the one a transaction lands in. Each participant (microengine,
ambassador, arbiter, balance manager) gets a :class:`FakeClient` with the facade's methods, recording
every call. Events go to every subscriber through in-memory queues or, with :meth:`Market.serve_websocket`,
through a real websocket server on an ephemeral port read by the package's real :class:`EventStream`.

:func:`running` runs a service in the background for the length of an ``async with`` and stops it at
the end, so a test says only what it does while the service runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from polyswarmclient.amounts import nct
from polyswarmclient.errors import ConnectionLost, InsufficientFunds, TransactionFailed
from polyswarmclient.eth.bloom import bloom_words
from polyswarmclient.eth.commitment import commitment
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.transport.stream import EventStream, StreamSettings
from polyswarmclient.wire.bits import bools_to_int
from polyswarmclient.wire.events import (
    Block,
    Connected,
    Event,
    NewAssertion,
    NewBounty,
    NewVote,
    QuorumReached,
    SettledBounty,
    to_message,
)
from polyswarmclient.wire.models import ArtifactEntry, Assertion, Bloom, Bounty, BountyParameters, StakingParameters

PARAMS = BountyParameters(
    bounty_fee=nct("0.0625"),
    assertion_fee=nct("0.03125"),
    bounty_amount_minimum=nct("0.0625"),
    assertion_bid_minimum=nct("0.0625"),
    assertion_bid_maximum=nct("1"),
    arbiter_lookback_range=100,
    max_duration=100,
    assertion_reveal_window=3,
    arbiter_vote_window=5,
)
STAKING = StakingParameters(
    minimum_stake=nct(10), maximum_stake=nct(100), vote_ratio_numerator=9, vote_ratio_denominator=10
)

AMBASSADOR = "0x00000000000000000000000000000000000000a1"
ARBITER = "0x00000000000000000000000000000000000000b2"
ENGINE = "0xd595c0c90498619DaeAd4Fb67886A1f06c1B3c17"
MANAGER = "0x00000000000000000000000000000000000000Aa"


def ipfs_hash(data: bytes) -> str:
    return "Qm" + hashlib.sha256(data).hexdigest()[:44]


@dataclass
class BountyRecord:
    guid: str
    author: str
    amount: int
    uri: str
    expiration: int
    num_artifacts: int
    bloom: list[int]
    metadata: Any
    artifact_type: str = "file"
    votes: dict[str, tuple[list[bool], bool]] = field(default_factory=dict)
    quorum: bool = False
    settled_by: list[str] = field(default_factory=list)


@dataclass
class Posted:
    """An assertion on chain (one per bounty: these tests run one engine per market)."""

    author: str
    index: int
    bids: list[int]
    mask: list[bool]
    commitment: int
    #: Set by the reveal (the contract's state): nonce 0 and no verdicts until then.
    nonce: int = 0
    verdicts: list[bool] | None = None


@dataclass
class Revealed:
    guid: str
    index: int
    verdicts: list[bool]
    metadata: str


@dataclass
class Market:
    params: BountyParameters = PARAMS
    staking: StakingParameters = STAKING
    block: int = 100  # side chain
    home_block: int = 100
    arbiters: set[str] = field(default_factory=lambda: {ARBITER})
    nct: dict[str, int] = field(default_factory=dict)  # side chain
    home_nct: dict[str, int] = field(default_factory=dict)
    stake: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, list[tuple[str, str, bytes]]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    bounties: dict[str, BountyRecord] = field(default_factory=dict)
    assertions: dict[str, Posted] = field(default_factory=dict)
    reveals: list[Revealed] = field(default_factory=list)
    unfetchable: set[tuple[str, int]] = field(default_factory=set)
    #: ``GET /bounties`` page size.
    page_size: int = 3
    #: What each chain's relay keeps when it pays a transfer out.
    relay_fees: dict[str, int] = field(default_factory=lambda: {"home": 0, "side": 0})
    #: Home blocks before a deposit lands on the side chain (None: the relay is down).
    relay_delay: int | None = 3
    #: Seconds a relay transaction takes to be mined.
    relay_tx_time: float = 0.0
    landings: list[tuple[int, str, int]] = field(default_factory=list)  # (home block, address, amount)
    #: Relay transfers posted to either chain, by hash: "mined" or "reverted" (``GET /transactions``).
    transactions: dict[str, str] = field(default_factory=dict)
    #: Called after each home block, to script a scenario.
    on_home_block: Callable[[Market], None] | None = None
    subscribers: list[_Subscription] = field(default_factory=list)
    sockets: dict[ServerConnection, str] = field(default_factory=dict)
    server: Server | None = None
    #: Called with (method name, args) before each fake call; may raise to script a failure.
    hook: Callable[[str, tuple[Any, ...]], None] | None = None
    #: Transactions (``post_assertion``, ``reveal_assertion``, ``settle``) that never go out: the call waits
    #: forever, as a process killed right before sending it would (kill the service while it waits).
    never_sent: set[str] = field(default_factory=set)
    #: Transactions mined whose answer is lost: they take effect on chain, then the call raises
    #: :class:`ConnectionLost` (the receipt was never read, e.g. the process died meanwhile).
    answer_lost: set[str] = field(default_factory=set)

    # --- events -----------------------------------------------------------------------------------

    def broadcast(self, event: Event) -> None:
        for subscriber in self.subscribers:
            if subscriber.chain == event.chain:
                subscriber.queue.put_nowait(event)
        sockets = [ws for ws, chain in self.sockets.items() if chain == event.chain]
        if sockets:  # (a ``Reconnected`` marker exists only in memory: the client makes it up)
            text = json.dumps(to_message(event))
            for ws in sockets:
                asyncio.ensure_future(self._send(ws, text))

    async def _send(self, ws: ServerConnection, text: str) -> None:
        try:
            await ws.send(text)
        except ConnectionClosed:
            self.sockets.pop(ws, None)

    async def mine(self, blocks: int = 1, pause: float = 0.01) -> None:
        """Advance ``blocks`` side blocks, announcing each and letting the services react."""
        for _ in range(blocks):
            self.jump_to(self.block + 1)
            await asyncio.sleep(pause)

    def jump_to(self, number: int) -> None:
        """The side chain is at block ``number`` now (announced)."""
        self.block = number
        self.broadcast(Block(number=number, chain="side"))

    def mine_home(self) -> None:
        """One home block: deposits due land on the side chain, the scenario script runs, it is announced."""
        self.home_block += 1
        for due, address, amount in list(self.landings):
            if due <= self.home_block:
                self.nct[address] = self.nct.get(address, 0) + amount
                self.landings.remove((due, address, amount))
        if self.on_home_block is not None:
            self.on_home_block(self)
        self.broadcast(Block(number=self.home_block, chain="home"))

    async def serve_websocket(self, *, home_blocks_every: float | None = None, max_home_blocks: int = 2000) -> str:
        """A websocket server on an ephemeral port (``/events?chain=...``); returns its base URL.

        With ``home_blocks_every``, each home-chain connection makes the home chain produce a block every so
        many seconds, at most ``max_home_blocks`` (so no test can spin forever).
        """

        async def handler(ws: ServerConnection) -> None:
            assert ws.request is not None
            chain = parse_qs(urlsplit(ws.request.path).query).get("chain", ["side"])[0]
            await ws.send(json.dumps(to_message(Connected(start_time="0", chain=chain))))
            self.sockets[ws] = chain
            try:
                if chain == "home" and home_blocks_every is not None:
                    for _ in range(max_home_blocks):
                        if ws.close_code is not None or ws not in self.sockets:
                            break  # the reader went away (or the server is closing)
                        self.mine_home()
                        await asyncio.sleep(home_blocks_every)
                await ws.wait_closed()
            except ConnectionClosed:
                pass
            finally:
                self.sockets.pop(ws, None)

        self.server = await serve(handler, "127.0.0.1", 0)
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    # --- scenario helpers -------------------------------------------------------------------------

    def add_artifacts(self, files: list[tuple[str, bytes]], uri: str | None = None) -> str:
        listing = [(name, ipfs_hash(content), content) for name, content in files]
        uri = uri or ipfs_hash(b"".join(h.encode() for _, h, _ in listing) + str(len(self.artifacts)).encode())
        self.artifacts[uri] = listing
        return uri

    def open_bounty(
        self,
        author: str,
        amount: int,
        uri: str,
        duration: int | None = None,
        metadata: Any = "",
        *,
        expiration: int | None = None,
        artifact_type: str = "file",
        announce: bool = True,
    ) -> BountyRecord:
        """A bounty mined in the next block, expiring ``duration`` blocks after it (or at ``expiration``)."""
        listing = self.artifacts[uri]
        record = BountyRecord(
            guid=str(uuid.uuid4()),
            author=author,
            amount=amount,
            uri=uri,
            expiration=expiration if expiration is not None else self.block + 1 + (duration or 0),
            num_artifacts=len(listing),
            bloom=bloom_words(h for _, h, _ in listing),
            metadata=metadata,
            artifact_type=artifact_type,
        )
        self.bounties[record.guid] = record
        if announce:
            self.broadcast(self.announcement(record.guid))
        return record

    def announcement(self, guid: str) -> NewBounty:
        """The ``NewBounty`` event of ``guid`` (broadcast it again to deliver it twice)."""
        r = self.bounties[guid]
        return NewBounty(
            guid=guid,
            artifact_type=r.artifact_type,
            author=r.author,
            amount=r.amount,
            uri=r.uri,
            expiration=r.expiration,
            metadata=self.metadata.get(r.metadata, r.metadata) if isinstance(r.metadata, str) else r.metadata,
            chain="side",
            block_number=self.block + 1,
        )

    def reach_quorum(self, guid: str) -> None:
        self.bounties[guid].quorum = True
        self.broadcast(QuorumReached(bounty_guid=guid, chain="side", block_number=self.block))

    def mine_assertion(self, guid: str, posted: Posted, *, announce: bool = True) -> None:
        """An assertion reaches the chain (its poster may never have heard back)."""
        self.assertions[guid] = posted
        if announce:
            self.broadcast(
                NewAssertion(
                    bounty_guid=guid,
                    author=posted.author,
                    index=posted.index,
                    bid=tuple(posted.bids),
                    mask=tuple(posted.mask),
                    commitment=posted.commitment,
                    chain="side",
                )
            )


class FakeClient:
    """The facade's surface used by the services; records every call in ``calls``."""

    def __init__(self, market: Market, address: str, ws_url: str | None = None) -> None:
        self.market = market
        self.address = address
        self.ws_url = ws_url
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._streams: list[_Subscription] = []

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.market.hook is not None:
            self.market.hook(name, args)

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for call, args in self.calls if call == name]

    # reads
    async def bounty_parameters(self, chain: str = "side", *, refresh: bool = False) -> BountyParameters:
        self._record("bounty_parameters", chain, refresh)
        return self.market.params

    async def staking_parameters(self, chain: str = "side") -> StakingParameters:
        return self.market.staking

    async def block_number(self, chain: str) -> int:
        return self.market.home_block if chain == "home" else self.market.block

    async def get_bounty(self, guid: str, chain: str = "side") -> Bounty:
        self._record("get_bounty", guid)
        r = self.market.bounties[guid]
        same = ("guid", "artifact_type", "author", "amount", "uri", "num_artifacts", "expiration")
        return Bounty(
            **{name: getattr(r, name) for name in same},
            assigned_arbiter="",
            quorum_reached=r.quorum,
            quorum_reached_block=0,
            quorum_mask=(),
            metadata=r.metadata or None,
        )

    async def list_assertions(self, guid: str, chain: str = "side") -> list[Assertion]:
        self._record("list_assertions", guid)
        posted = self.market.assertions.get(guid)
        if posted is None:
            return []
        verdicts = None if posted.verdicts is None else tuple(posted.verdicts)
        return [Assertion(posted.index, posted.author, posted.commitment, posted.nonce, verdicts)]

    async def iter_bounty_pages(
        self, chain: str = "side", *, start_page: int = 0
    ) -> AsyncIterator[tuple[int, list[str]]]:
        self._record("iter_bounty_pages", chain, start_page)
        guids, size = list(self.market.bounties), self.market.page_size
        for page in range(start_page, (len(guids) + size - 1) // size):
            yield page, guids[page * size : (page + 1) * size]

    async def iter_bounty_guids(self, chain: str = "side") -> AsyncIterator[str]:
        for guid in list(self.market.bounties):
            yield guid

    async def list_artifacts(self, uri: str) -> list[ArtifactEntry]:
        self._record("list_artifacts", uri)
        return [ArtifactEntry(name, h) for name, h, _ in self.market.artifacts[uri]]

    async def fetch_artifact(self, uri: str, index: int) -> bytes | None:
        self._record("fetch_artifact", uri, index)
        if (uri, index) in self.market.unfetchable:
            return None
        return self.market.artifacts[uri][index][2]

    async def get_bloom(self, guid: str, chain: str = "side") -> Bloom:
        self._record("get_bloom", guid)
        return Bloom(tuple(self.market.bounties[guid].bloom))

    async def nct_balance(self, chain: str, address: str | None = None) -> int:
        self._record("nct_balance", chain)
        balances = self.market.home_nct if chain == "home" else self.market.nct
        return balances.get(address or self.address, 0)

    async def eth_balance(self, chain: str, address: str | None = None) -> int:
        return nct(1)

    async def staking_balance(
        self, chain: str = "side", *, withdrawable: bool = False, address: str | None = None
    ) -> int:
        return self.market.stake.get(address or self.address, 0)

    async def relay_fees(self, chain: str) -> int:
        return self.market.relay_fees[chain]

    # writes
    def _spend(self, amount: int, what: str) -> None:
        if self.market.nct.get(self.address, 0) < amount:
            raise InsufficientFunds(f"not enough NCT for the {what}")
        self.market.nct[self.address] -= amount

    async def upload_artifacts(self, files: list[tuple[str, bytes]]) -> str:
        self._record("upload_artifacts", [name for name, _ in files])
        return self.market.add_artifacts(files)

    async def post_metadata(self, obj: Any) -> str:
        self._record("post_metadata", obj)
        key = ipfs_hash(json.dumps(obj).encode())
        self.market.metadata[key] = obj
        return key

    async def post_bounty(self, amount: int, uri: str, duration: int, *, metadata: str = "", **_: Any) -> str:
        self._record("post_bounty", amount, uri, duration, metadata)
        self._spend(amount + self.market.params.bounty_fee, "bounty")
        return self.market.open_bounty(self.address, amount, uri, duration, metadata).guid

    async def _send(self, name: str) -> None:
        """A transaction about to go out: one of :attr:`Market.never_sent` never does."""
        if name in self.market.never_sent:
            await asyncio.Event().wait()

    def _answer(self, name: str) -> None:
        """A transaction was mined: one of :attr:`Market.answer_lost` loses its answer."""
        if name in self.market.answer_lost:
            raise ConnectionLost(f"{name}: the connection broke while waiting for the receipt")

    def _reverted(self, reason: str) -> TransactionFailed:
        """A mined transaction that reverted, worded as polyswarmd's ``GET /transactions`` reports it."""
        return TransactionFailed(
            f"transaction failed at block {self.market.block + 1}, error: {reason} (the transaction was mined "
            "but reverted)"
        )

    async def post_assertion(
        self, guid: str, bids: list[int], mask: list[bool], commitment: int, chain: str = "side"
    ) -> int:
        self._record("post_assertion", guid, list(bids), list(mask))
        await self._send("post_assertion")
        low, high = self.market.params.assertion_bid_minimum, self.market.params.assertion_bid_maximum
        if len(bids) != sum(mask) or not all(low <= b <= high for b in bids):
            raise TransactionFailed(f"bids {bids} do not fit mask {mask} and [{low}, {high}]")
        if self.market.block + 1 >= self.market.bounties[guid].expiration:
            raise self._reverted("Bounty inactive")
        if guid in self.market.assertions:
            raise self._reverted("Duplicate assertion")
        self._spend(sum(bids) + self.market.params.assertion_fee, "assertion")
        self.market.assertions[guid] = Posted(self.address, 0, list(bids), list(mask), commitment)
        self._answer("post_assertion")
        return 0

    async def reveal_assertion(
        self, guid: str, index: int, nonce: int, verdicts: list[bool], metadata: str, chain: str = "side"
    ) -> None:
        self._record("reveal_assertion", guid, index)
        await self._send("reveal_assertion")
        r, posted = self.market.bounties[guid], self.market.assertions[guid]
        # The contract's checks, with its revert reasons: in the reveal window, once, and matching this
        # sender's nonce and verdicts.
        landing = self.market.block + 1
        if landing < r.expiration:
            raise self._reverted("Bounty still active")
        if landing >= r.expiration + self.market.params.assertion_reveal_window:
            raise self._reverted("Reveal window closed")
        if posted.nonce != 0:
            raise self._reverted("Assertion already revealed")
        if commitment(nonce, bools_to_int(verdicts), self.address) != posted.commitment:
            raise self._reverted("Commitment mismatch")
        posted.nonce, posted.verdicts = nonce, list(verdicts)
        self.market.reveals.append(Revealed(guid, index, list(verdicts), metadata))
        self._answer("reveal_assertion")

    async def vote(self, guid: str, votes: list[bool], valid_bloom: bool, chain: str = "side") -> None:
        self._record("vote", guid, list(votes), valid_bloom, self.market.block)
        r = self.market.bounties[guid]
        landing = self.market.block + 1
        opens = r.expiration + self.market.params.assertion_reveal_window
        if not opens <= landing < opens + self.market.params.arbiter_vote_window:
            raise TransactionFailed(f"vote landed in block {landing}, outside [{opens}, {opens + 5})")
        r.votes[self.address] = (list(votes), valid_bloom)
        self.market.broadcast(NewVote(bounty_guid=guid, voter=self.address, votes=tuple(votes), chain="side"))
        if set(r.votes) >= self.market.arbiters:
            self.market.reach_quorum(guid)

    async def settle(self, guid: str, chain: str = "side") -> None:
        self._record("settle", guid, self.market.block)
        r = self.market.bounties[guid]
        landing = self.market.block + 1
        vote_end = r.expiration + self.market.params.assertion_reveal_window + self.market.params.arbiter_vote_window
        if self.address in r.settled_by:
            raise TransactionFailed("Bounty already settled")
        if self.address in self.market.arbiters:
            if landing < vote_end:
                raise TransactionFailed("Bounty not yet settleable")
        elif landing < vote_end and not r.quorum:
            raise TransactionFailed("Bounty not yet settleable")
        r.settled_by.append(self.address)
        self.market.broadcast(SettledBounty(bounty_guid=guid, settler=self.address, payout=0, chain="side"))

    async def stake_deposit(self, amount: int, chain: str = "side") -> None:
        self._record("stake_deposit", amount)
        if self.market.nct.get(self.address, 0) < amount:
            raise TransactionFailed("transfer failed")
        self.market.nct[self.address] -= amount
        self.market.stake[self.address] = self.market.stake.get(self.address, 0) + amount

    def _sign(self, on_signed: Callable[[str], None] | None) -> str:
        """The hash of the next signed transaction, handed to ``on_signed`` before it is posted."""
        tx_hash = "0x" + hashlib.sha256(f"{self.address}/{len(self.market.transactions)}".encode()).hexdigest()
        if on_signed is not None:
            on_signed(tx_hash)
        return tx_hash

    async def relay_deposit(self, amount: int, *, on_signed: Callable[[str], None] | None = None) -> tuple[str, ...]:
        """Home to side: signed, posted and mined at once (a process killed while it waits ``relay_tx_time``
        for the receipt has still sent it); lands ``relay_delay`` home blocks later, less the fee."""
        self._record("relay_deposit", amount)
        tx_hash = self._sign(on_signed)
        self.market.transactions[tx_hash] = "mined"
        self.market.home_nct[self.address] -= amount
        if self.market.relay_delay is not None:
            due = self.market.home_block + self.market.relay_delay
            self.market.landings.append((due, self.address, amount - self.market.relay_fees["side"]))
        await asyncio.sleep(self.market.relay_tx_time)
        return (tx_hash,)

    async def relay_withdraw(self, amount: int, *, on_signed: Callable[[str], None] | None = None) -> tuple[str, ...]:
        self._record("relay_withdraw", amount)
        tx_hash = self._sign(on_signed)
        self.market.transactions[tx_hash] = "mined"
        self.market.nct[self.address] -= amount
        return (tx_hash,)

    async def transaction_status(self, chain: str, tx_hash: str) -> str:
        """What ``GET /transactions`` says: "mined", "reverted", or "missing" (never posted)."""
        self._record("transaction_status", chain, tx_hash)
        return self.market.transactions.get(tx_hash, "missing")

    # events
    def events(self, chain: str) -> Any:
        if self.ws_url is not None:
            url = f"{self.ws_url}/events?chain={chain}"
            return EventStream(url, chain, StreamSettings(backoff_base=0.05, backoff_cap=0.2))
        stream = _Subscription(self.market, chain)
        self._streams.append(stream)
        return stream

    def subscribed(self, chain: str = "side") -> bool:
        """This client reads ``chain``'s events (through a queue, or a websocket of the market)."""
        if self.ws_url is not None:
            return chain in self.market.sockets.values()
        return any(s.chain == chain and s in self.market.subscribers for s in self._streams)


class _Subscription:
    """One reader of a chain's events; closing it unsubscribes."""

    def __init__(self, market: Market, chain: str) -> None:
        self.market = market
        self.chain = chain
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.queue.put_nowait(Connected(start_time="0", chain=chain))  # polyswarmd's first message
        market.subscribers.append(self)

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> Event:
        return await self.queue.get()

    async def aclose(self) -> None:
        with contextlib.suppress(ValueError):
            self.market.subscribers.remove(self)


class Failing:
    """A market hook that makes calls of ``name`` (whose arguments start with ``args``) raise ``error``,
    the first ``times`` of them (``None``: all of them); ``left`` says how many failures are left."""

    def __init__(self, name: str, error: Exception, times: int | None = 1, args: tuple[Any, ...] = ()) -> None:
        self.name, self.error, self.left, self.args = name, error, times, args

    def __call__(self, call: str, args: tuple[Any, ...]) -> None:
        if call != self.name or args[: len(self.args)] != self.args or self.left == 0:
            return
        if self.left is not None:
            self.left -= 1
        raise self.error


def failing(name: str, error: Exception, times: int | None = 1, args: tuple[Any, ...] = ()) -> Failing:
    return Failing(name, error, times, args)


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


T = TypeVar("T")


class Running(Generic[T]):
    """A service running in the background: wait for it to end, stop it, or kill it."""

    def __init__(self, task: asyncio.Task[T], shutdown: Shutdown) -> None:
        self.task = task
        self.shutdown = shutdown
        self.collected = False

    async def ended(self, within: float = 5.0) -> T:
        """Wait for the run to end by itself; its result, or its error raised here."""
        self.collected = True
        return await asyncio.wait_for(self.task, within)

    async def stop(self, reason: str = "test over", within: float = 5.0) -> T:
        """A stop request (the first SIGTERM), then wait for the drain to finish."""
        self.shutdown.request(reason)
        return await self.ended(within)

    async def kill(self) -> None:
        """The process dies: cancelled, no drain."""
        self.collected = True
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            return
        raise AssertionError("the service ended before it was killed")


@contextlib.asynccontextmanager
async def running(
    main: Callable[[Shutdown], Awaitable[T]],
    *,
    shutdown: Shutdown | None = None,
    grace: float = 2.0,
    ready: Callable[[], bool] = lambda: True,
) -> AsyncIterator[Running[T]]:
    """Run ``main(shutdown)`` for the ``async with``: ready once ``ready()`` holds (or it ended); at the end
    a stop request, unless the test already waited for the run (whose error, if any, fails the test)."""
    shutdown = shutdown or Shutdown(grace)
    run = Running(asyncio.ensure_future(main(shutdown)), shutdown)
    try:
        await until(lambda: ready() or run.task.done())
        yield run
        if not run.collected:
            await run.stop()
    finally:
        if not run.task.done():
            run.task.cancel()
            with contextlib.suppress(BaseException):
                await run.task


__all__ = [
    "AMBASSADOR",
    "ARBITER",
    "ENGINE",
    "MANAGER",
    "PARAMS",
    "STAKING",
    "Failing",
    "FakeClient",
    "Market",
    "Posted",
    "Running",
    "failing",
    "ipfs_hash",
    "running",
    "until",
]
