"""The relay on anvil nodes: a deposit and a withdrawal arrive on the other chain, as on py-evm."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.devnet.test_relay import (
    CONFIRMATIONS,
    test_deposit_arrives_on_side_after_confirmations,
    test_withdrawal_arrives_on_home_minus_the_home_fee,
)
from tests.fixtures_devnet import RunningDevnet, running_devnet

pytestmark = pytest.mark.asyncio(loop_scope="module")

__all__ = ["test_deposit_arrives_on_side_after_confirmations", "test_withdrawal_arrives_on_home_minus_the_home_fee"]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    # Blocks are mined by hand (evm_mine through the devnet), so the confirmations are counted exactly.
    async with running_devnet(block_time=60.0, relay_confirmations=CONFIRMATIONS, chains_on="anvil") as running:
        assert running.devnet.rpc_urls["home"] and running.devnet.rpc_urls["side"]
        yield running
