"""The --metrics-addr server over real HTTP on loopback: /metrics, /healthz, /readyz, and bad addresses."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from polyswarmclient import metrics
from polyswarmclient.errors import ConfigError, PolyswarmError
from polyswarmclient.metrics import Health
from polyswarmclient.telemetry.server import MetricsServer, parse_address


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def served() -> Iterator[tuple[MetricsServer, Health, str]]:
    health = Health()
    server = MetricsServer("127.0.0.1", 0, health)
    server.start()
    assert server.address is not None
    try:
        yield server, health, f"http://127.0.0.1:{server.address[1]}"
    finally:
        server.stop()


def test_metrics_shows_what_services_recorded_in_prometheus_text(served: tuple[MetricsServer, Health, str]) -> None:
    """A counter a service bumps, a histogram it observes and the process metrics appear in a scrape."""
    _, _, base = served
    metrics.ASSERTIONS.inc(chain="side")
    metrics.ASSERTIONS.inc(chain="side")
    metrics.SCAN_SECONDS.observe(0.3)
    status, text = get(base + "/metrics")
    assert status == 200
    assert 'polyswarm_assertions_total{chain="side"} 2.0' in text
    assert "polyswarm_scan_duration_seconds_count 1.0" in text
    assert "process_resident_memory_bytes" in text
    assert "_created" not in text
    for instrument in metrics.INSTRUMENTS:
        assert f"# TYPE {instrument.spec.name} {instrument.spec.kind}" in text


def test_recording_stops_when_the_server_stops() -> None:
    """After stop() the services' recording goes nowhere again (no sink left installed)."""
    server = MetricsServer("127.0.0.1", 0, Health())
    server.start()
    assert metrics.enabled()
    server.stop()
    assert not metrics.enabled()


def test_healthz_follows_the_heartbeat(served: tuple[MetricsServer, Health, str]) -> None:
    """/healthz answers 200 while the loop beats and 503 with the stall's length when it stops."""
    _, health, base = served
    health.beat = health.clock()
    assert get(base + "/healthz")[0] == 200
    health.beat = health.clock() - 60
    status, text = get(base + "/healthz")
    assert status == 503 and "event loop stalled: no heartbeat for 60" in text


def test_readyz_answers_ready_only_while_serving_with_connected_streams(
    served: tuple[MetricsServer, Health, str],
) -> None:
    """/readyz gives 503 with the reason while starting, disconnected or draining, 200 otherwise."""
    _, health, base = served
    assert get(base + "/readyz") == (503, "not ready: starting: not serving yet\n")
    health.serving = True
    health.stream_connected("side", True)
    health.block("side", 3)
    assert get(base + "/readyz") == (200, "ready\n")
    health.stream_connected("side", False)
    assert get(base + "/readyz") == (503, "not ready: side event stream disconnected\n")
    status, text = get(base + "/metrics")
    assert 'polyswarm_websocket_connected{chain="side"} 0.0' in text and "polyswarm_ready 0.0" in text


def test_unknown_paths_are_404(served: tuple[MetricsServer, Health, str]) -> None:
    assert get(served[2] + "/")[0] == 404


@pytest.mark.parametrize("text", ["9100", "localhost", ":9100", "host:port", "1.2.3.4:70000", "http://x:1"])
def test_a_malformed_address_is_a_configuration_error(text: str) -> None:
    """Anything but HOST:PORT names the option and shows a working example (exit 2)."""
    with pytest.raises(ConfigError, match=r"--metrics-addr \(METRICS_ADDR\): .* such as 0.0.0.0:9100"):
        parse_address(text)


def test_addresses_parse_with_ipv6_brackets() -> None:
    assert parse_address("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_address("[::1]:9100") == ("::1", 9100)


def test_a_port_in_use_is_a_runtime_error_naming_the_address() -> None:
    """Another process on the port: exit 1 (a condition of the moment), and nothing installed."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(PolyswarmError, match=f"127.0.0.1:{port} is already in use") as info:
            MetricsServer("127.0.0.1", port, Health()).start()
    assert info.value.exit_code == 1
    assert not metrics.enabled()


def test_a_host_that_does_not_resolve_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="cannot resolve host"):
        MetricsServer("no-such-host.invalid", 9100, Health()).start()
