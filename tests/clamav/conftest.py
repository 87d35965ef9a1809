"""The ``clamav`` tier: one real clamd per module, on a unix socket in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clamd_daemon import Clamd


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    with Clamd(tmp_path_factory.mktemp("clamd")) as daemon:
        yield daemon
