"""A whole bounty lifecycle over the devnet's HTTP API and WS stream with both chains on anvil nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.devnet.test_server_lifecycle import test_full_bounty_lifecycle
from tests.fixtures_devnet import RunningDevnet, running_devnet

pytestmark = pytest.mark.asyncio(loop_scope="module")

__all__ = ["test_full_bounty_lifecycle"]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    overrides = {"assertion_reveal_window": 6, "arbiter_vote_window": 6}
    async with running_devnet(block_time=0.2, community_overrides=overrides, chains_on="anvil") as running:
        assert running.devnet.rpc_urls["side"] and running.devnet.rpc_urls["side"].startswith("http://127.0.0.1:")
        yield running
