"""The unit tier is offline: any attempt to open a network connection fails the test.

The guard patches the socket calls that reach a network (``connect``, ``connect_ex``, ``bind``,
``sendto``, ``create_connection``, and name resolution). Each attempt fails the test where it happens;
an attempt the code under test swallows (an ``except`` around a connect, a task nobody awaits) still
fails it at teardown. ``socket.socketpair``, which every asyncio event loop uses to wake itself up,
stays available. A test that needs a socket belongs in ``tests/integration``.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

CALL_REPORT = pytest.StashKey[pytest.TestReport]()


class Offline:
    """Records and refuses network access for one test."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def refuse(self, what: str) -> None:
        self.attempts.append(what)
        pytest.fail(
            f"unit tests are offline, yet this test tried {what}; use a fake, or move the test to tests/integration",
            pytrace=True,
        )

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def method(name: str) -> Callable[..., Any]:
            def refused(sock: socket.socket, *args: Any, **kwargs: Any) -> Any:
                self.refuse(f"socket.{name}({', '.join(map(repr, args))})")

            return refused

        def function(name: str) -> Callable[..., Any]:
            def refused(*args: Any, **kwargs: Any) -> Any:
                self.refuse(f"socket.{name}({', '.join(map(repr, args))})")

            return refused

        for name in ("connect", "connect_ex", "bind", "sendto"):
            monkeypatch.setattr(socket.socket, name, method(name))
        for name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname", "gethostbyname_ex"):
            monkeypatch.setattr(socket, name, function(name))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_REPORT] = report
    return report


@pytest.fixture(autouse=True)
def offline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Offline]:
    guard = Offline()
    guard.install(monkeypatch)
    yield guard
    call = request.node.stash.get(CALL_REPORT, None)
    if guard.attempts and call is not None and call.passed:
        pytest.fail(f"unit tests are offline, yet this test tried (and swallowed the failure of) {guard.attempts}")
