"""The e2e marketplace (ambassador, arbiter, two engines, balancemanager) with the devnet's chains on anvil."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.e2e import test_marketplace_e2e
from tests.e2e.harness import Devnet
from tests.e2e.test_marketplace_e2e import test_marketplace_pays_the_right_engine_and_keeps_its_side_balance_topped_up

__all__ = ["test_marketplace_pays_the_right_engine_and_keeps_its_side_balance_topped_up"]

DEVNET_OPTIONS = replace(test_marketplace_e2e.DEVNET_OPTIONS, chains_on="anvil")


@pytest.fixture(autouse=True)
def _chains_are_on_anvil(devnet: Devnet) -> None:
    banner = devnet.process.output()
    assert banner.count("(anvil)") == 2, banner
