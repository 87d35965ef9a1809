"""Relay daemon: deposits and withdrawals arrive on the other chain after confirmations, less fees, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.fixtures_devnet import DevnetApi, RunningDevnet, running_devnet
from tests.helpers import signer

pytestmark = pytest.mark.asyncio(loop_scope="module")

NCT = 10**18
CONFIRMATIONS = 3


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    # Blocks are mined by hand here (the wall clock is far too slow to matter), so timing is exact.
    async with running_devnet(block_time=60.0, relay_confirmations=CONFIRMATIONS) as running:
        yield running


async def _send(api: DevnetApi, net: RunningDevnet, path: str, who: str, amount: int, chain: str) -> int:
    """Build, sign and post a relay transfer, mine one block so it confirms; returns its block number."""
    s = signer(who)
    built = (await api.build(path, s, {"amount": str(amount)}, chain=chain)).result
    hashes = await api.post_signed(s, built["transactions"], chain=chain)
    node = net.devnet.node(chain)
    receipt = await node.run(node.chain.get_receipt, bytes.fromhex(hashes[0][2:]))
    await net.devnet.mine(chain, 1)
    events = (await api.confirm(s, hashes, chain=chain)).result
    assert int(events["transfers"][0]["value"]) == amount
    return int(receipt.block_number)


async def _wait_balance(api: DevnetApi, address: str, chain: str, expected: int, within: float = 5.0) -> int:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await api.nct(address, chain)
        if value == expected or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_deposit_arrives_on_side_after_confirmations(api: DevnetApi, net: RunningDevnet) -> None:
    """A home→side deposit is paid on the sidechain (minus the side fee) only after the confirmations."""
    who = signer("spare3").address
    side_before = await api.nct(who, "side")
    fee = (await api.get("/relay/fees", chain="side", account=who)).result["fees"]
    mined_in = await _send(api, net, "/relay/deposit", "spare3", 100 * NCT, "home")
    await asyncio.sleep(0.5)
    assert await api.nct(who, "side") == side_before  # not confirmed yet
    await net.mine_to(mined_in + CONFIRMATIONS, "home")
    assert await _wait_balance(api, who, "side", side_before + 100 * NCT - fee) == side_before + 100 * NCT - fee


async def test_withdrawal_arrives_on_home_minus_the_home_fee(api: DevnetApi, net: RunningDevnet) -> None:
    """A side→home withdrawal pays ``amount − fees`` of the homechain relay."""
    who = signer("spare4").address
    home_before = await api.nct(who, "home")
    fee = (await api.get("/relay/fees", chain="home", account=who)).result["fees"]
    assert fee > 0
    mined_in = await _send(api, net, "/relay/withdrawal", "spare4", 5 * NCT, "side")
    await net.mine_to(mined_in + CONFIRMATIONS, "side")
    expected = home_before + 5 * NCT - fee
    assert await _wait_balance(api, who, "home", expected) == expected


async def test_withdrawal_at_or_below_the_fee_is_never_paid(api: DevnetApi, net: RunningDevnet) -> None:
    """A withdrawal not above the homechain fee stays in the relay (the daemon skips it)."""
    who = signer("spare4").address
    fee = (await api.get("/relay/fees", chain="home", account=who)).result["fees"]
    home_before = await api.nct(who, "home")
    mined_in = await _send(api, net, "/relay/withdrawal", "spare4", fee, "side")
    await net.mine_to(mined_in + CONFIRMATIONS + 1, "side")
    await asyncio.sleep(0.5)
    assert await api.nct(who, "home") == home_before
    assert net.devnet.relay is not None
    assert any(not r.paid and r.reason == "below fee" for r in net.devnet.relay.history)


async def test_each_transfer_is_paid_once(api: DevnetApi, net: RunningDevnet) -> None:
    """More blocks after a payout never pay the same deposit again."""
    who = signer("spare2").address
    before = await api.nct(who, "side")
    mined_in = await _send(api, net, "/relay/deposit", "spare2", 7 * NCT, "home")
    await net.mine_to(mined_in + CONFIRMATIONS, "home")
    await _wait_balance(api, who, "side", before + 7 * NCT)
    await net.devnet.mine("home", 5)
    await asyncio.sleep(0.5)
    assert await api.nct(who, "side") == before + 7 * NCT
    assert net.devnet.relay is not None
    paid = [r for r in net.devnet.relay.history if r.destination == who and r.paid]
    assert len(paid) == 1
