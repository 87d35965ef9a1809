"""``maintain`` end to end against a real local websocket server feeding home blocks.

The facade is the simulated market's recording fake, with scripted balances and a simulated relay; the
block stream is the package's real :class:`EventStream` reading the market's websocket server on an
ephemeral port, which makes a home block every tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from polyswarmclient.amounts import nct
from polyswarmclient.errors import InsufficientFunds, TransactionError
from polyswarmclient.services.balancemanager import BalanceManager, Policy
from polyswarmclient.services.balancemanager.journal import TransferJournal
from polyswarmclient.services.lifecycle import Shutdown
from tests.integration.fakemarket import MANAGER, FakeClient, Market, running, until

TICK = 0.01  # seconds per home block
Connect = Callable[[Market], Awaitable[FakeClient]]


def devnet_of(side: int, home: int, relay_delay: int | None = 3, fees: dict[str, int] | None = None) -> Market:
    """Two NCT balances of the manager; a relay that mines a deposit in two ticks and lands it later."""
    return Market(
        nct={MANAGER: side},
        home_nct={MANAGER: home},
        relay_delay=relay_delay,
        relay_tx_time=TICK * 2,
        relay_fees=fees or {"home": 0, "side": 0},
    )


@pytest.fixture
async def home_chain() -> AsyncIterator[Connect]:
    """The manager's client on a market whose websocket server (ephemeral port) makes a home block a tick."""
    markets: list[Market] = []

    async def connect(market: Market) -> FakeClient:
        markets.append(market)
        return FakeClient(market, MANAGER, ws_url=await market.serve_websocket(home_blocks_every=TICK))

    yield connect
    for market in markets:
        await market.close()


async def maintain(client: FakeClient, policy: Policy, testing: int, shutdown: Shutdown | None = None) -> int:
    manager = BalanceManager(client, policy, testing=testing)
    return await asyncio.wait_for(manager.run(shutdown or Shutdown()), timeout=15)


def sent(client: FakeClient) -> list[tuple[str, int]]:
    """The relay transfers the manager sent, in order."""
    names = {"relay_deposit": "deposit", "relay_withdraw": "withdraw"}
    return [(names[name], args[0]) for name, args in client.calls if name in names]


async def test_deposits_once_waits_sees_arrival_and_stops(home_chain: Connect) -> None:
    """A low side balance gets exactly one refill; after it lands, --testing 1 exits with 1 transfer."""
    devnet = devnet_of(side=nct(50), home=nct(1000), relay_delay=3)
    client = await home_chain(devnet)
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)

    transfers = await maintain(client, policy, testing=1)

    assert transfers == 1
    assert sent(client) == [("deposit", nct(60))]
    assert devnet.nct[MANAGER] == nct(110) and devnet.home_nct[MANAGER] == nct(940)


async def test_late_deposit_is_reported_and_never_repeated(
    home_chain: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """A deposit that is late logs one ERROR naming it, is not sent again, and counts once it lands."""
    caplog.set_level(logging.INFO, logger="balancemanager")
    devnet = devnet_of(side=nct(50), home=nct(1000), relay_delay=11)
    client = await home_chain(devnet)
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)  # window: 7 blocks

    transfers = await maintain(client, policy, testing=1)

    assert transfers == 1
    assert sent(client) == [("deposit", nct(60))]
    stuck = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(stuck) == 1
    assert "deposit of 60 NCT sent at block" in stuck[0].getMessage()
    assert "has not arrived after" in stuck[0].getMessage() and "relay may be down" in stuck[0].getMessage()


async def test_dead_relay_in_testing_mode_fails_without_a_second_deposit(
    home_chain: Connect,
) -> None:
    """With the relay down, --testing gives up with an error instead of waiting forever; one deposit."""
    devnet = devnet_of(side=nct(50), home=nct(1000), relay_delay=None)
    client = await home_chain(devnet)
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)

    with pytest.raises(TransactionError, match="has not arrived"):
        await maintain(client, policy, testing=1)
    assert sent(client) == [("deposit", nct(60))]


async def test_home_too_low_is_fatal_in_testing_mode(home_chain: Connect) -> None:
    """--testing stops with InsufficientFunds (exit 1) naming both balances when home cannot refill."""
    devnet = devnet_of(side=nct(50), home=nct(10))
    client = await home_chain(devnet)
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)

    with pytest.raises(InsufficientFunds) as caught:
        await maintain(client, policy, testing=1)
    assert "50 NCT" in str(caught.value) and "10 NCT" in str(caught.value) and "60 NCT" in str(caught.value)
    assert sent(client) == []


async def test_home_too_low_is_logged_once_until_it_changes(
    home_chain: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """Outside testing mode a too-low home balance is one ERROR line, repeated only when it changes."""
    caplog.set_level(logging.INFO, logger="balancemanager")
    devnet = devnet_of(side=nct(50), home=nct(10))
    shutdown = Shutdown()

    def script(d: Market) -> None:
        if d.home_block == 120:
            d.home_nct[MANAGER] = nct(20)
        if d.home_block == 140:
            shutdown.request("test over")

    devnet.on_home_block = script
    client = await home_chain(devnet)
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)

    assert await maintain(client, policy, testing=0, shutdown=shutdown) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "home balance 10 NCT" in errors[0] and "home balance 20 NCT" in errors[1]
    assert sent(client) == []


async def test_withdraws_above_maximum_then_refills(home_chain: Connect) -> None:
    """Above --maximum it withdraws down to the target; after spending drops it below MINIMUM it refills."""
    devnet = devnet_of(side=nct(300), home=nct(1000), relay_delay=3, fees={"home": nct(5), "side": 0})

    def spend(d: Market) -> None:
        if d.home_block == 115:
            d.nct[MANAGER] = nct(90)

    devnet.on_home_block = spend
    client = await home_chain(devnet)
    policy = Policy(minimum=nct(100), refill=nct(12), maximum=nct(200), withdraw_target=nct(150), confirmations=2)

    transfers = await maintain(client, policy, testing=2)

    assert transfers == 2
    assert sent(client) == [("withdraw", nct(150)), ("deposit", nct(12))]


async def test_shutdown_finishes_the_current_step(home_chain: Connect) -> None:
    """A stop requested while a deposit is being sent lets it complete and record it, then returns."""
    devnet = devnet_of(side=nct(50), home=nct(1000))
    client = await home_chain(devnet)
    shutdown = Shutdown()
    devnet.hook = lambda name, args: shutdown.request("SIGTERM received") if name == "relay_deposit" else None
    manager = BalanceManager(client, Policy(minimum=nct(100), refill=nct(60), confirmations=2))

    transfers = await asyncio.wait_for(manager.run(shutdown), timeout=15)

    assert transfers == 0
    assert sent(client) == [("deposit", nct(60))]
    assert devnet.home_nct[MANAGER] == nct(940)  # the deposit was not cut short
    assert manager.in_flight is not None and manager.in_flight.amount == nct(60)


async def test_shutdown_while_idle_returns_promptly(home_chain: Connect) -> None:
    """A stop requested while waiting for the next block returns at once with nothing sent."""
    devnet = devnet_of(side=nct(150), home=nct(1000))
    client = await home_chain(devnet)
    shutdown = Shutdown()
    manager = BalanceManager(client, Policy(minimum=nct(100), refill=nct(60)))
    task = asyncio.create_task(manager.run(shutdown))
    await asyncio.sleep(0.1)
    shutdown.request("SIGINT received")

    assert await asyncio.wait_for(task, timeout=2) == 0
    assert sent(client) == []


# --- restarts: the journal in the state directory -------------------------------------------------


async def test_a_restart_after_a_posted_deposit_does_not_deposit_again(home_chain: Connect, tmp_path: Path) -> None:
    """Killed while its deposit waits for the receipt, restarted on the same state dir: one deposit in all."""
    devnet = devnet_of(side=nct(50), home=nct(1000), relay_delay=6)
    devnet.relay_tx_time = 60.0  # the receipt never comes back before the kill
    client = await home_chain(devnet)
    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)
    first = BalanceManager(client, policy, journal=TransferJournal.open(tmp_path, MANAGER))
    async with running(first.run) as run:
        await until(lambda: bool(devnet.transactions))
        await run.kill()
    devnet.relay_tx_time = 0.0

    second = BalanceManager(client, policy, testing=1, journal=TransferJournal.open(tmp_path, MANAGER))
    transfers = await asyncio.wait_for(second.run(Shutdown()), timeout=15)

    assert transfers == 1
    assert sent(client) == [("deposit", nct(60))]
    assert devnet.home_nct[MANAGER] == nct(940) and devnet.nct[MANAGER] == nct(110)
    journal = TransferJournal.open(tmp_path, MANAGER)
    assert [(r.direction, r.state) for r in journal.records.values()] == [("deposit", "arrived")]


async def test_a_deposit_that_never_went_out_is_failed_and_sent_again(home_chain: Connect, tmp_path: Path) -> None:
    """A record whose transaction the chain never saw is marked failed on start, and the refill is sent."""
    devnet = devnet_of(side=nct(50), home=nct(1000))
    client = await home_chain(devnet)
    journal = TransferJournal.open(tmp_path, MANAGER)
    lost = journal.begin("deposit", nct(60), origin="maintain", home_block=90, side_block=90, side_before=nct(50))
    journal.add_hash(lost.seq, "0x" + "9" * 64)  # signed, never posted

    policy = Policy(minimum=nct(100), refill=nct(60), confirmations=2)
    transfers = await maintain_with(client, policy, TransferJournal.open(tmp_path, MANAGER))

    assert transfers == 1
    assert sent(client) == [("deposit", nct(60))]
    states = {r.seq: r.state for r in TransferJournal.open(tmp_path, MANAGER).records.values()}
    assert states == {lost.seq: "failed", lost.seq + 1: "arrived"}


async def maintain_with(client: FakeClient, policy: Policy, journal: TransferJournal) -> int:
    manager = BalanceManager(client, policy, testing=1, journal=journal)
    return await asyncio.wait_for(manager.run(Shutdown()), timeout=15)
