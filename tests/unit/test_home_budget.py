"""Two communities' balance managers, one wallet, one homechain: a refill never spends home NCT twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from polyswarmclient.errors import TransactionFailed
from polyswarmclient.services.balancemanager import BalanceManager, Policy
from polyswarmclient.services.balancemanager.service import HomeBudget, TransferTally
from polyswarmclient.wire.events import Event

NCT = 10**18


class Wallet:
    """The home NCT of one account on a homechain several communities share."""

    def __init__(self, home: int) -> None:
        self.home = home
        self.deposits: list[tuple[str, int]] = []


class Community:
    """A community's client as the manager sees it: its own sidechain balance, the shared homechain."""

    address = "0x5702046d922a4c7381aebf6ea4c021e8bb468704"

    def __init__(self, name: str, wallet: Wallet, side: int) -> None:
        self.name = name
        self.wallet = wallet
        self.side = side

    async def nct_balance(self, chain: str, address: str | None = None) -> int:
        await asyncio.sleep(0)
        return self.wallet.home if chain == "home" else self.side

    async def eth_balance(self, chain: str, address: str | None = None) -> int:
        return 10**18

    async def relay_fees(self, chain: str) -> int:
        return 0

    async def relay_deposit(self, amount: int, *, on_signed: Callable[[str], None] | None = None) -> tuple[str, ...]:
        tx = f"0x{len(self.wallet.deposits):064x}"
        if on_signed is not None:
            on_signed(tx)
        self.wallet.deposits.append((self.name, amount))
        await asyncio.sleep(0.01)  # mined a little later, as on a chain
        if self.wallet.home < amount:
            raise TransactionFailed(
                "relay deposit: the transaction was mined but reverted (transfer amount exceeds balance)"
            )
        self.wallet.home -= amount
        return (tx,)

    async def relay_withdraw(self, amount: int, *, on_signed: Callable[[str], None] | None = None) -> tuple[str, ...]:
        raise AssertionError("no withdrawal expected")

    async def transaction_status(self, chain: str, tx_hash: str) -> str:
        return "mined"

    async def block_number(self, chain: str) -> int:
        return 10

    async def events(self, chain: str) -> AsyncIterator[Event]:  # pragma: no cover - step() is driven directly
        if False:
            yield


async def _both_low(budget: HomeBudget | None) -> tuple[Wallet, list[BalanceManager]]:
    """Both sidechains below MINIMUM at the same home block; home covers one refill, not two."""
    wallet = Wallet(home=100 * NCT)
    policy = Policy(minimum=100 * NCT, refill=60 * NCT, confirmations=2)
    managers = [
        BalanceManager(Community(name, wallet, side=50 * NCT), policy, budget=(budget, 1337) if budget else None)  # type: ignore[arg-type]
        for name in ("alpha", "beta")
    ]
    for manager in managers:
        await manager.prepare()
    await asyncio.gather(*(manager.step(10) for manager in managers))
    return wallet, managers


async def test_a_shared_home_budget_refills_one_community_and_reports_the_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under one budget the second manager reads home again after the first refill: too low, no deposit."""
    with caplog.at_level(logging.INFO, logger="balancemanager"):
        wallet, managers = await _both_low(HomeBudget())
    assert len(wallet.deposits) == 1
    assert wallet.home == 40 * NCT
    assert [m.in_flight is not None for m in managers].count(True) == 1
    assert not [r for r in caplog.records if "failed" in r.getMessage()]
    assert any("home" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


async def test_without_a_shared_budget_both_managers_spend_the_same_home_nct() -> None:
    """The same block without the budget: both decide on the same 100 NCT and the second deposit reverts."""
    wallet, _ = await _both_low(None)
    assert len(wallet.deposits) == 2
    assert wallet.home == 40 * NCT


def test_a_testing_tally_counts_across_communities_and_tells_everyone() -> None:
    """--testing 2 over two communities: done after the second transfer, whichever community made it."""
    tally = TransferTally(2)
    told: list[str] = []
    tally.subscribe(lambda: told.append("alpha"))
    tally.subscribe(lambda: told.append("beta"))
    tally.add()
    assert not tally.done and told == []
    tally.add()
    assert tally.done and told == ["alpha", "beta"]
