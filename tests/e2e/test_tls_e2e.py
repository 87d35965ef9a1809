"""``microengine`` over TLS: REST and the event stream through a TLS-terminating front of the devnet.

Production polyswarmd speaks https. Here a proxy with a certificate from a private CA (trustme) sits in
front of the devnet; the engine is given the address in its seed form (``host:port``, so https and wss)
without ``--insecure-transport``. With the CA trusted through ``SSL_CERT_FILE`` it finishes a bounty;
without it, it stops at start with one line about the certificate, and no request reached the server.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from tests.e2e.harness import (
    ENGINE_READY,
    PASSWORD,
    Cli,
    Devnet,
    Process,
    TcpProxy,
    assert_asserted_revealed_settled,
    command,
    keyfile,
    posted_guids,
)

DURATION = 12


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _front(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return context


def _engine(cli: Cli, devnet: Devnet, port: int, state: Path, env: dict[str, str]) -> Process:
    return cli.spawn(
        "engine-tls",
        [
            *command("microengine"),
            "--backend", "eicar",
            "--block-time", str(devnet.options.block_time),
            "--testing", "1",
            "--polyswarmd-addr", f"localhost:{port}",
            "--keyfile", str(keyfile("spare1_keyfile")),
            "--password", PASSWORD,
            "--state-dir", str(state),
            "--log", "info",
        ],
        env=env,
    )  # fmt: skip


def test_engine_over_tls_with_a_private_ca_finishes_its_bounty(
    devnet: Devnet, arbiter: Process, cli: Cli, tmp_path: Path, ca: trustme.CA
) -> None:
    """https and wss through the front, the CA trusted via SSL_CERT_FILE: asserted, revealed, settled."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TcpProxy(devnet.port, ssl=_front(ca)) as front:
        engine = _engine(cli, devnet, front.port, tmp_path / "state", {"SSL_CERT_FILE": str(ca_file)})
        cli.ready(engine, ENGINE_READY)
        ambassador = cli.ambassador(bounties=1, duration=DURATION)
        engine.expect_exit(0, timeout=90)
        ambassador.expect_exit(0, timeout=60)
        relayed = list(front.requests)
    [guid] = posted_guids(ambassador)
    assert_asserted_revealed_settled(engine, guid)
    assert any(line.startswith("GET /events/?chain=side") for line in relayed), relayed  # the stream, over TLS
    assert sum(line.startswith("POST /transactions") for line in relayed) >= 3, relayed  # assert, reveal, settle


def test_engine_refuses_a_certificate_it_does_not_trust(
    devnet: Devnet, cli: Cli, tmp_path: Path, ca: trustme.CA
) -> None:
    """No CA given: the engine stops at start (exit 1) with one line naming TLS and the certificate, no
    traceback, and nothing reached the server."""
    with TcpProxy(devnet.port, ssl=_front(ca)) as front:
        engine = _engine(cli, devnet, front.port, tmp_path / "state", {})
        engine.expect_exit(1, timeout=60)
        relayed = list(front.requests)
    output = engine.output()
    assert "TLS with polyswarmd at" in output and "point SSL_CERT_FILE at the CA's certificate" in output, output
    assert "Traceback" not in output
    assert relayed == []
