"""A whole bounty lifecycle over the devnet's HTTP API and WS stream with both chains on anvil nodes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.devnet.test_server_lifecycle import test_full_bounty_lifecycle
from tests.fixtures_devnet import RunningDevnet, running_devnet

pytestmark = pytest.mark.asyncio(loop_scope="module")

__all__ = ["test_full_bounty_lifecycle"]

BLOCK_TIME = 0.2


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    overrides = {"assertion_reveal_window": 6, "arbiter_vote_window": 6}
    async with running_devnet(block_time=BLOCK_TIME, community_overrides=overrides, chains_on="anvil") as running:
        assert running.devnet.rpc_urls["side"] and running.devnet.rpc_urls["side"].startswith("http://127.0.0.1:")
        yield running


async def test_the_wall_clock_ticker_mines_both_anvil_nodes(net: RunningDevnet) -> None:
    """With no transactions, each anvil node still gets a block every --block-time (the ticker's evm_mine)."""
    before = {chain: net.devnet.node(chain).head for chain in ("home", "side")}
    await asyncio.sleep(10 * BLOCK_TIME)
    for chain in ("home", "side"):
        node = net.devnet.node(chain)
        head = await node.run(node.chain.block_number)
        assert head >= before[chain] + 5, (chain, before[chain], head)
