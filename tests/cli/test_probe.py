"""polyswarm-probe, as a HEALTHCHECK runs it: exit 0 when ready, 1 when not or unreachable, 2 on bad usage."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from polyswarmclient.metrics import Health
from polyswarmclient.telemetry.server import MetricsServer
from tests.helpers import run_module

PROBE = "polyswarmclient.cli.probe"


@pytest.fixture
def served() -> Iterator[tuple[Health, int]]:
    health = Health()
    server = MetricsServer("127.0.0.1", 0, health)
    server.start()
    assert server.address is not None
    try:
        yield health, server.address[1]
    finally:
        server.stop()


def test_exit_0_when_ready_and_1_with_the_reason_when_not(served: tuple[Health, int]) -> None:
    health, port = served
    url = f"http://127.0.0.1:{port}/readyz"
    result = run_module(PROBE, url, clear=["METRICS_ADDR"])
    assert result.returncode == 1
    assert result.stderr.strip() == f"unhealthy: {url} answered 503: not ready: starting: not serving yet"
    health.serving = True
    result = run_module(PROBE, url, clear=["METRICS_ADDR"])
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "ready", "")


def test_without_a_url_it_asks_readyz_on_metrics_addr_on_loopback(served: tuple[Health, int]) -> None:
    """In the image, HEALTHCHECK runs the bare probe: METRICS_ADDR=0.0.0.0:PORT is asked on 127.0.0.1."""
    health, port = served
    health.serving = True
    assert run_module(PROBE, env={"METRICS_ADDR": f"0.0.0.0:{port}"}).returncode == 0
    health.serving = False
    assert run_module(PROBE, env={"METRICS_ADDR": f"0.0.0.0:{port}"}).returncode == 1
    live = run_module(PROBE, "--live", env={"METRICS_ADDR": f"0.0.0.0:{port}"})  # /healthz: alive though not ready
    assert live.returncode == 0 and live.stdout.startswith("ok:")


def test_exit_1_when_nothing_listens() -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    result = run_module(PROBE, f"http://127.0.0.1:{port}/readyz", clear=["METRICS_ADDR"])
    assert result.returncode == 1
    assert "cannot be reached" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "nothing to probe: give a URL"),
        (("127.0.0.1:9100",), {}, "is not an http:// URL"),
        ((), {"METRICS_ADDR": "9100"}, "METRICS_ADDR '9100' is not HOST:PORT"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: tuple[str, ...], env: dict[str, str], message: str) -> None:
    result = run_module(PROBE, *args, clear=["METRICS_ADDR"], env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr
