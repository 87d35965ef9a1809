"""Fixtures of the anvil tier (``-m anvil``): the devnet on two real anvil nodes instead of py-evm.

anvil comes from npm (``.ci/run`` installs ``@foundry-rs/anvil`` into ``.tools/npm`` when it is missing);
``find_anvil`` also looks at ``$DEVNET_ANVIL`` and ``PATH``. A missing anvil fails the tier, it never skips it.

The tier reuses the test functions of the devnet and e2e tiers (imported into its modules, which give
them an anvil-backed ``net`` or ``DEVNET_OPTIONS``); the e2e tier's fixtures and hooks are shared here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from polyswarmclient.devnet.anvil import AnvilMissing, AnvilNode, find_anvil
from tests.e2e.conftest import arbiter, cli, devnet, pytest_runtest_makereport, pytest_runtest_setup

__all__ = [
    "anvil_binary",
    "anvil_pair",
    "arbiter",
    "cli",
    "devnet",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
]


@pytest.fixture(scope="session", autouse=True)
def anvil_binary() -> Path:
    """The anvil binary, exported as ``DEVNET_ANVIL`` so that every devnet of the tier (and its children) runs it."""
    try:
        binary = find_anvil()
    except AnvilMissing as exc:
        pytest.fail(f"the anvil tier needs anvil: {exc}", pytrace=False)
    os.environ["DEVNET_ANVIL"] = str(binary)
    return binary


@pytest.fixture
def anvil_pair(anvil_binary: Path) -> Iterator[tuple[AnvilNode, AnvilNode]]:
    """Two fresh anvil nodes, chain ids 1337 and 1338, mining a block per transaction (as a user's usually
    do), that the test gives to ``--home-rpc``/``--side-rpc``."""
    nodes = (AnvilNode(anvil_binary, 1337, automine=True), AnvilNode(anvil_binary, 1338, automine=True))
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
