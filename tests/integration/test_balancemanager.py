"""``maintain`` end to end against a real local websocket server feeding home blocks.

The facade is a recording fake with scripted balances and a simulated relay; the block stream is the
package's real :class:`EventStream` reading a real websocket server on an ephemeral port.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from polyswarmclient.amounts import nct
from polyswarmclient.errors import InsufficientFunds, TransactionError
from polyswarmclient.services.balancemanager import BalanceManager, Policy
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.transport.stream import EventStream
from polyswarmclient.wire.events import Block, Connected, Event, to_message

TICK = 0.01  # seconds per home block
MAX_BLOCKS = 2000  # the server stops producing blocks after this many, so no test can spin forever


@dataclass
class Devnet:
    """Home-chain blocks, two NCT balances and a relay that lands deposits after ``relay_delay`` blocks."""

    side: int
    home: int
    relay_delay: int | None = 3  # None: the relay is down
    block: int = 100
    landings: list[tuple[int, int]] = field(default_factory=list)
    on_block: Callable[[Devnet], None] | None = None

    def advance(self) -> None:
        self.block += 1
        for due, amount in list(self.landings):
            if due <= self.block:
                self.side += amount
                self.landings.remove((due, amount))
        if self.on_block is not None:
            self.on_block(self)


class FakeClient:
    """The facade's balance-manager surface, recording every transfer."""

    address = "0x00000000000000000000000000000000000000Aa"

    def __init__(self, devnet: Devnet, url: str, fees: dict[str, int] | None = None) -> None:
        self.devnet = devnet
        self.url = url
        self.fees = fees or {"home": 0, "side": 0}
        self.calls: list[tuple[str, int]] = []
        self.during_deposit: Callable[[], None] | None = None

    async def nct_balance(self, chain: str, address: str | None = None) -> int:
        return self.devnet.side if chain == "side" else self.devnet.home

    async def eth_balance(self, chain: str, address: str | None = None) -> int:
        return nct(1)

    async def relay_fees(self, chain: str) -> int:
        return self.fees[chain]

    async def block_number(self, chain: str) -> int:
        return self.devnet.block

    async def relay_deposit(self, amount: int) -> None:
        self.calls.append(("deposit", amount))
        if self.during_deposit is not None:
            self.during_deposit()
        await asyncio.sleep(TICK * 2)  # "mined" a couple of blocks later
        self.devnet.home -= amount
        if self.devnet.relay_delay is not None:
            self.devnet.landings.append(
                (self.devnet.block + self.devnet.relay_delay, amount - self.fees["side"])
            )

    async def relay_withdraw(self, amount: int) -> None:
        self.calls.append(("withdraw", amount))
        self.devnet.side -= amount

    def events(self, chain: str) -> AsyncIterator[Event]:
        return EventStream(f"{self.url}/events?chain={chain}", chain)


@pytest.fixture
async def home_chain() -> AsyncIterator[Callable[[Devnet], str]]:
    """A websocket server on an ephemeral port that sends one ``block`` per tick for the given devnet."""
    servers = []

    async def start(devnet: Devnet) -> str:
        async def handler(ws: ServerConnection) -> None:
            try:
                await ws.send(json.dumps(to_message(Connected(start_time="0", chain="home"))))
                for _ in range(MAX_BLOCKS):
                    devnet.advance()
                    await ws.send(json.dumps(to_message(Block(number=devnet.block, chain="home"))))
                    await asyncio.sleep(TICK)
                await ws.wait_closed()
            except ConnectionClosed:
                pass

        server = await serve(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def maintain(client: FakeClient, policy: Policy, testing: int, shutdown: Shutdown | None = None) -> int:
    manager = BalanceManager(client, policy, testing=testing)
    return await asyncio.wait_for(manager.run(shutdown or Shutdown()), timeout=15)


async def test_deposits_once_waits_sees_arrival_and_stops(home_chain: Callable[[Devnet], str]) -> None:
    """A low side balance gets exactly one refill; after it lands, --testing 1 exits with 1 transfer."""
    devnet = Devnet(side=nct(50), home=nct(1000), relay_delay=3)
    client = FakeClient(devnet, await home_chain(devnet))
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)

    transfers = await maintain(client, policy, testing=1)

    assert transfers == 1
    assert client.calls == [("deposit", nct(60))]
    assert devnet.side == nct(110) and devnet.home == nct(940)


async def test_late_deposit_is_reported_and_never_repeated(
    home_chain: Callable[[Devnet], str], caplog: pytest.LogCaptureFixture
) -> None:
    """A deposit that is late logs one ERROR naming it, is not sent again, and counts once it lands."""
    caplog.set_level(logging.INFO, logger="balancemanager")
    devnet = Devnet(side=nct(50), home=nct(1000), relay_delay=11)
    client = FakeClient(devnet, await home_chain(devnet))
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)  # window: 7 blocks

    transfers = await maintain(client, policy, testing=1)

    assert transfers == 1
    assert client.calls == [("deposit", nct(60))]
    stuck = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(stuck) == 1
    assert "deposit of 60 NCT sent at block" in stuck[0].getMessage()
    assert "has not arrived after" in stuck[0].getMessage() and "relay may be down" in stuck[0].getMessage()


async def test_dead_relay_in_testing_mode_fails_without_a_second_deposit(
    home_chain: Callable[[Devnet], str],
) -> None:
    """With the relay down, --testing gives up with an error instead of waiting forever; one deposit."""
    devnet = Devnet(side=nct(50), home=nct(1000), relay_delay=None)
    client = FakeClient(devnet, await home_chain(devnet))
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)

    with pytest.raises(TransactionError, match="has not arrived"):
        await maintain(client, policy, testing=1)
    assert client.calls == [("deposit", nct(60))]


async def test_home_too_low_is_fatal_in_testing_mode(home_chain: Callable[[Devnet], str]) -> None:
    """--testing stops with InsufficientFunds (exit 1) naming both balances when home cannot refill."""
    devnet = Devnet(side=nct(50), home=nct(10))
    client = FakeClient(devnet, await home_chain(devnet))
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)

    with pytest.raises(InsufficientFunds) as caught:
        await maintain(client, policy, testing=1)
    assert "50 NCT" in str(caught.value) and "10 NCT" in str(caught.value) and "60 NCT" in str(caught.value)
    assert client.calls == []


async def test_home_too_low_is_logged_once_until_it_changes(
    home_chain: Callable[[Devnet], str], caplog: pytest.LogCaptureFixture
) -> None:
    """Outside testing mode a too-low home balance is one ERROR line, repeated only when it changes."""
    caplog.set_level(logging.INFO, logger="balancemanager")
    devnet = Devnet(side=nct(50), home=nct(10))
    shutdown = Shutdown()

    def script(d: Devnet) -> None:
        if d.block == 120:
            d.home = nct(20)
        if d.block == 140:
            shutdown.request("test over")

    devnet.on_block = script
    client = FakeClient(devnet, await home_chain(devnet))
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)

    assert await maintain(client, policy, testing=0, shutdown=shutdown) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "home balance 10 NCT" in errors[0] and "home balance 20 NCT" in errors[1]
    assert client.calls == []


async def test_withdraws_above_maximum_then_refills(home_chain: Callable[[Devnet], str]) -> None:
    """Above --maximum it withdraws down to the target; after spending drops it below MINIMUM it refills."""
    devnet = Devnet(side=nct(300), home=nct(1000), relay_delay=3)

    def spend(d: Devnet) -> None:
        if d.block == 115:
            d.side = nct(90)

    devnet.on_block = spend
    client = FakeClient(devnet, await home_chain(devnet), fees={"home": nct(5), "side": 0})
    policy = Policy(
        minimum=nct(100), refill=nct(12), maximum=nct(200), withdraw_target=nct(150), confirmations=2
    )

    transfers = await maintain(client, policy, testing=2)

    assert transfers == 2
    assert client.calls == [("withdraw", nct(150)), ("deposit", nct(12))]


async def test_shutdown_finishes_the_current_step(home_chain: Callable[[Devnet], str]) -> None:
    """A stop requested while a deposit is being sent lets it complete and record it, then returns."""
    devnet = Devnet(side=nct(50), home=nct(1000))
    client = FakeClient(devnet, await home_chain(devnet))
    shutdown = Shutdown()
    client.during_deposit = lambda: shutdown.request("SIGTERM received")
    manager = BalanceManager(client, Policy(minimum=nct(100), refill=nct(60), confirmations=2))

    transfers = await asyncio.wait_for(manager.run(shutdown), timeout=15)

    assert transfers == 0
    assert client.calls == [("deposit", nct(60))]
    assert devnet.home == nct(940)  # the deposit was not cut short
    assert manager.in_flight is not None and manager.in_flight.amount == nct(60)


async def test_shutdown_while_idle_returns_promptly(home_chain: Callable[[Devnet], str]) -> None:
    """A stop requested while waiting for the next block returns at once with nothing sent."""
    devnet = Devnet(side=nct(150), home=nct(1000))
    client = FakeClient(devnet, await home_chain(devnet))
    shutdown = Shutdown()
    manager = BalanceManager(client, Policy(minimum=nct(100), refill=nct(60)))
    task = asyncio.create_task(manager.run(shutdown))
    await asyncio.sleep(0.1)
    shutdown.request("SIGINT received")

    assert await asyncio.wait_for(task, timeout=2) == 0
    assert client.calls == []
