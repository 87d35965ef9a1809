"""What every tier shares: a marker per tier folder, and the fixtures more than one test module uses.

Each test is marked with the tier its folder names (``unit``, ``integration``, ``cli``, ``devnet``,
``e2e``, ``faults``, and the real-component tiers ``clamav``, ``yara``, ``anvil`` and ``redis``; registered in
``pyproject.toml``), so ``pytest -m unit`` runs exactly ``tests/unit``.
Helpers that are plain functions (envelopes, ``unused_port``, ``wait_until``, ``cli_invoker``, ...) live in
``tests/helpers.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from tests.fixtures_devnet import DevnetApi, RunningDevnet

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "cli", "devnet", "e2e", "faults", "clamav", "yara", "anvil", "redis")


def tier_of(path: Path) -> str | None:
    """The tier of a test file: the first folder under ``tests/`` when it is one of :data:`TIERS`."""
    try:
        folder = path.resolve().relative_to(TESTS).parts[0]
    except (ValueError, IndexError):
        return None
    return folder if folder in TIERS else None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item.path)
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))


@pytest_asyncio.fixture(loop_scope="module")
async def api(net: RunningDevnet) -> AsyncIterator[DevnetApi]:
    """Raw HTTP to the test module's devnet; the module defines the ``net`` fixture it wants."""
    import aiohttp

    from tests.fixtures_devnet import DevnetApi

    async with aiohttp.ClientSession() as session:
        yield DevnetApi(session, net.url)
