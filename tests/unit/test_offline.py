"""The unit tier's network guard (``tests/unit/conftest.py``): connections fail the test, event loops still run."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.conftest import Offline

ATTEMPTS: dict[str, Callable[[], Any]] = {
    "create_connection": lambda: socket.create_connection(("127.0.0.1", 9), timeout=1),
    "connect": lambda: socket.socket().connect(("127.0.0.1", 9)),
    "connect_ex": lambda: socket.socket().connect_ex(("127.0.0.1", 9)),
    "bind": lambda: socket.socket().bind(("127.0.0.1", 0)),
    "sendto": lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9)),
    "getaddrinfo": lambda: socket.getaddrinfo("localhost", 80),
}


@pytest.mark.parametrize("attempt", ATTEMPTS.values(), ids=ATTEMPTS.keys())
def test_opening_a_connection_fails_the_test_with_a_clear_message(offline: Offline, attempt: Callable[[], Any]) -> None:
    """Each way to reach a network fails at once, saying the tier is offline and where such a test belongs."""
    with pytest.raises(pytest.fail.Exception, match="unit tests are offline.*tests/integration"):
        attempt()
    assert len(offline.attempts) == 1
    offline.attempts.clear()  # caught here on purpose; a test that swallowed it would fail at teardown


async def test_asyncio_connections_fail_too(offline: Offline) -> None:
    """An asyncio client (aiohttp, websockets) connecting to a port fails the same way."""
    with pytest.raises(pytest.fail.Exception, match="unit tests are offline"):
        await asyncio.open_connection("127.0.0.1", 9)
    assert offline.attempts
    offline.attempts.clear()


async def test_the_event_loop_and_socketpair_still_work() -> None:
    """The guard leaves socketpair alone: an event loop wakes up from other threads and a pair carries bytes."""
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, lambda: 42) == 42
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"
