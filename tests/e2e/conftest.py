"""Fixtures of the end-to-end tier (``-m e2e``): a ``polyswarmd-devnet`` subprocess and our CLIs against it.

* ``devnet`` (one per test module): started on a free port with fast blocks and small windows; a module
  sets ``DEVNET_OPTIONS = DevnetOptions(...)`` to change them. Stopped with SIGTERM at the end of the
  module, and its exit code must be 0.
* ``arbiter`` (one per module that asks for it): the registered arbiter, running all module long with
  ``--testing 0``; also stopped with SIGTERM and checked for exit code 0.
* ``cli``: starts CLIs with a keystore and a state directory; whatever a test leaves running is stopped
  after it.

When a test fails, the report carries the log of every process the test started, and the tail of the
shared ones (devnet, arbiter), so the failure explains itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import harness
from tests.e2e.harness import ARBITER_READY, Cli, Devnet, DevnetOptions, Process


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    harness.begin_test()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not report.failed:
        return
    for process in harness.processes_to_report():
        try:
            text = process.tail(200)
        except OSError as exc:
            text = f"(log unreadable: {exc})"
        report.sections.append((f"{process.name} [pid {process.pid}, {process.status()}]", text))


@pytest.fixture(scope="module")
def devnet(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    options = getattr(request.module, "DEVNET_OPTIONS", DevnetOptions())
    workdir = tmp_path_factory.mktemp("devnet")
    net = Devnet.start(workdir, options)
    try:
        yield net
    finally:
        code = net.process.stop(timeout=20) if net.process.running else net.process.returncode
        net.process.cleanup()
    assert code == 0, f"polyswarmd-devnet exited with code {code} on SIGTERM:\n{net.process.tail(40)}"


@pytest.fixture(scope="module")
def arbiter(devnet: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    """The devnet's registered arbiter, voting on every bounty of the module."""
    shared = Cli(devnet, tmp_path_factory.mktemp("arbiter"))
    process = shared.arbiter(testing=0)
    try:
        shared.ready(process, ARBITER_READY)
        yield process
        assert process.running, f"the arbiter died during the module ({process.status()})"
        code = process.stop(timeout=30)
        assert code == 0, f"arbiter exited with code {code} on SIGTERM"
    finally:
        shared.cleanup()


@pytest.fixture
def cli(devnet: Devnet, tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(devnet, tmp_path)
    try:
        yield runner
    finally:
        runner.cleanup()
