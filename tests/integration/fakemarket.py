"""A simulated marketplace for the ambassador and arbiter tests: a recording fake of the client facade.

One :class:`Market` holds the chain state (block number, balances, stakes, artifacts, bounties) and
enforces the contract's windows (spec §5.2) for votes and settles, treating the next block as the one a
transaction lands in. Each participant gets a :class:`FakeClient` with the facade's methods. Events go
to every subscriber through in-memory queues or, with :meth:`Market.serve_websocket`, through a real
websocket server on an ephemeral port read by the package's real :class:`EventStream`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from polyswarmclient.amounts import nct
from polyswarmclient.errors import InsufficientFunds, TransactionFailed, TransportError
from polyswarmclient.eth.bloom import bloom_words
from polyswarmclient.transport.stream import EventStream, StreamSettings
from polyswarmclient.wire.events import (
    Block,
    Connected,
    Event,
    NewBounty,
    NewVote,
    QuorumReached,
    SettledBounty,
    to_message,
)
from polyswarmclient.wire.models import ArtifactEntry, Bloom, Bounty, BountyParameters, StakingParameters

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
    metadata: str
    votes: dict[str, tuple[list[bool], bool]] = field(default_factory=dict)
    quorum: bool = False
    settled_by: list[str] = field(default_factory=list)


@dataclass
class Market:
    params: BountyParameters = PARAMS
    staking: StakingParameters = STAKING
    block: int = 100
    arbiters: set[str] = field(default_factory=lambda: {ARBITER})
    nct: dict[str, int] = field(default_factory=dict)
    stake: dict[str, int] = field(default_factory=dict)
    artifacts: dict[str, list[tuple[str, str, bytes]]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    bounties: dict[str, BountyRecord] = field(default_factory=dict)
    unfetchable: set[tuple[str, int]] = field(default_factory=set)
    queues: list[asyncio.Queue[Event]] = field(default_factory=list)
    sockets: set[ServerConnection] = field(default_factory=set)
    server: Server | None = None
    #: Called with (method name, args) before each fake call; may raise to script a failure.
    hook: Callable[[str, tuple[Any, ...]], None] | None = None

    # --- events -----------------------------------------------------------------------------------

    def broadcast(self, event: Event) -> None:
        for queue in self.queues:
            queue.put_nowait(event)
        if self.sockets:
            text = json.dumps(to_message(event))
            for ws in list(self.sockets):
                asyncio.ensure_future(self._send(ws, text))

    async def _send(self, ws: ServerConnection, text: str) -> None:
        try:
            await ws.send(text)
        except ConnectionClosed:
            self.sockets.discard(ws)

    async def mine(self, blocks: int = 1, pause: float = 0.01) -> None:
        """Advance ``blocks`` blocks, announcing each and letting the services react."""
        for _ in range(blocks):
            self.block += 1
            self.broadcast(Block(number=self.block, chain="side"))
            await asyncio.sleep(pause)

    async def serve_websocket(self) -> str:
        async def handler(ws: ServerConnection) -> None:
            await ws.send(json.dumps(to_message(Connected(start_time="0"))))
            self.sockets.add(ws)
            try:
                await ws.wait_closed()
            finally:
                self.sockets.discard(ws)

        self.server = await serve(handler, "127.0.0.1", 0)
        port = next(iter(self.server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/events?chain=side"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    # --- scenario helpers -------------------------------------------------------------------------

    def add_artifacts(self, files: list[tuple[str, bytes]]) -> str:
        listing = [(name, ipfs_hash(content), content) for name, content in files]
        uri = ipfs_hash(b"".join(h.encode() for _, h, _ in listing) + str(len(self.artifacts)).encode())
        self.artifacts[uri] = listing
        return uri

    def open_bounty(
        self, author: str, amount: int, uri: str, duration: int, metadata: str = ""
    ) -> BountyRecord:
        listing = self.artifacts[uri]
        guid = str(uuid.uuid4())
        record = BountyRecord(
            guid=guid,
            author=author,
            amount=amount,
            uri=uri,
            expiration=self.block + 1 + duration,
            num_artifacts=len(listing),
            bloom=bloom_words(h for _, h, _ in listing),
            metadata=metadata,
        )
        self.bounties[guid] = record
        self.broadcast(
            NewBounty(
                guid=guid,
                artifact_type="file",
                author=author,
                amount=amount,
                uri=uri,
                expiration=record.expiration,
                metadata=self.metadata.get(metadata, metadata),
                chain="side",
                block_number=self.block + 1,
            )
        )
        return record

    def reach_quorum(self, guid: str) -> None:
        self.bounties[guid].quorum = True
        self.broadcast(QuorumReached(bounty_guid=guid, chain="side", block_number=self.block))


class FakeClient:
    """The facade's surface used by the devnet roles; records every call in ``calls``."""

    def __init__(self, market: Market, address: str, ws_url: str | None = None) -> None:
        self.market = market
        self.address = address
        self.ws_url = ws_url
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.market.hook is not None:
            self.market.hook(name, args)

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for call, args in self.calls if call == name]

    # reads
    async def bounty_parameters(self, chain: str = "side", *, refresh: bool = False) -> BountyParameters:
        return self.market.params

    async def staking_parameters(self, chain: str = "side") -> StakingParameters:
        return self.market.staking

    def apply_event(self, event: Event) -> None:
        pass

    async def block_number(self, chain: str) -> int:
        return self.market.block

    async def get_bounty(self, guid: str, chain: str = "side") -> Bounty:
        self._record("get_bounty", guid)
        r = self.market.bounties[guid]
        return Bounty(
            guid=r.guid,
            artifact_type="file",
            author=r.author,
            amount=r.amount,
            uri=r.uri,
            num_artifacts=r.num_artifacts,
            expiration=r.expiration,
            assigned_arbiter="",
            quorum_reached=r.quorum,
            quorum_reached_block=0,
            quorum_mask=(),
            metadata=r.metadata or None,
        )

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

    async def nct_balance(self, chain: str, address: str | None = None) -> int:
        return self.market.nct.get(address or self.address, 0)

    async def staking_balance(
        self, chain: str = "side", *, withdrawable: bool = False, address: str | None = None
    ) -> int:
        return self.market.stake.get(address or self.address, 0)

    # writes
    async def upload_artifacts(self, files: list[tuple[str, bytes]]) -> str:
        self._record("upload_artifacts", [name for name, _ in files])
        return self.market.add_artifacts(files)

    async def post_metadata(self, obj: Any) -> str:
        self._record("post_metadata", obj)
        key = ipfs_hash(json.dumps(obj).encode())
        self.market.metadata[key] = obj
        return key

    async def post_bounty(
        self,
        amount: int,
        uri: str,
        duration: int,
        *,
        artifact_type: str = "file",
        metadata: str = "",
        chain: str = "side",
    ) -> str:
        self._record("post_bounty", amount, uri, duration, metadata)
        cost = amount + self.market.params.bounty_fee
        if self.market.nct.get(self.address, 0) < cost:
            raise InsufficientFunds("not enough NCT for the bounty")
        self.market.nct[self.address] -= cost
        return self.market.open_bounty(self.address, amount, uri, duration, metadata).guid

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
        vote_end = (
            r.expiration + self.market.params.assertion_reveal_window + self.market.params.arbiter_vote_window
        )
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

    # events
    async def get_bloom(self, guid: str, chain: str = "side") -> Bloom:
        self._record("get_bloom", guid)
        return Bloom(tuple(self.market.bounties[guid].bloom))

    def events(self, chain: str) -> Any:
        if self.ws_url is not None:
            return EventStream(self.ws_url, chain, StreamSettings(backoff_base=0.05, backoff_cap=0.2))
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self.market.queues.append(queue)
        return _QueueStream(queue)


class _QueueStream:
    def __init__(self, queue: asyncio.Queue[Event]) -> None:
        self.queue = queue

    def __aiter__(self) -> _QueueStream:
        return self

    async def __anext__(self) -> Event:
        return await self.queue.get()


def failing(name: str, error: Exception, times: int = 1) -> Callable[[str, tuple[Any, ...]], None]:
    """A market hook that makes the first ``times`` calls of ``name`` raise ``error``."""
    left = [times]

    def hook(call: str, args: tuple[Any, ...]) -> None:
        if call == name and left[0] > 0:
            left[0] -= 1
            raise error

    return hook


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


__all__ = [
    "AMBASSADOR",
    "ARBITER",
    "PARAMS",
    "STAKING",
    "FakeClient",
    "Market",
    "TransportError",
    "failing",
    "until",
]
