"""The ``clamav`` backend against a real clamd: the demo corpus, TCP and unix sockets, size refusals, outages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import create_backend, load_backend_class
from polyswarmclient.backends.arbiter_loader import load_arbiter_backend_class
from polyswarmclient.backends.clamav import ClamavScanner
from polyswarmclient.backends.clamd import ClamdAddress, ClamdError
from polyswarmclient.errors import ConfigError
from polyswarmclient.samples import EICAR, build_samples
from tests.clamd_daemon import SIGNATURE, Clamd
from tests.helpers import unused_port


def _scanner(socket: Path, timeout: float = 10) -> ClamavScanner:
    return ClamavScanner(ClamdAddress(socket=str(socket), timeout=timeout))


async def test_demo_corpus_gets_every_verdict_right_with_the_signature_as_family(clamd: Clamd, monkeypatch) -> None:
    """`--backend clamav` (CLAMD_SOCKET) calls every EICAR sample malicious, family = clamd's signature, and
    every benign sample benign, asserting on all of them."""
    monkeypatch.setenv("CLAMD_SOCKET", str(clamd.socket))
    backend = create_backend(load_backend_class("clamav"), name="clamav")
    async with backend:
        for sample in build_samples(16):
            result = await backend.scan("g", ArtifactType.FILE, sample.content, None, "side")
            family = json.loads(result.metadata)["malware_family"]
            assert (result.bit, result.verdict) == (True, sample.malicious), sample.name
            assert family == (SIGNATURE if sample.malicious else ""), sample.name


async def test_metadata_names_clamds_version(clamd: Clamd) -> None:
    """The verdict's scanner block carries the ClamAV engine version clamd reported at setup."""
    scanner = _scanner(clamd.socket)
    assert await scanner.setup() is True
    result = await scanner.scan("g", ArtifactType.FILE, EICAR, None, "side")
    info = json.loads(result.metadata)["scanner"]
    assert info["vendor_version"][0].isdigit() and "." in info["vendor_version"]


async def test_tcp_address_from_clamd_host_and_port(tmp_path: Path, monkeypatch) -> None:
    """With CLAMD_HOST and CLAMD_PORT (no CLAMD_SOCKET) the backend talks to clamd over TCP."""
    port = unused_port()
    with Clamd(tmp_path, tcp_port=port):
        monkeypatch.delenv("CLAMD_SOCKET", raising=False)
        monkeypatch.setenv("CLAMD_HOST", "127.0.0.1")
        monkeypatch.setenv("CLAMD_PORT", str(port))
        async with create_backend(ClamavScanner, name="clamav") as backend:
            bad = await backend.scan("g", ArtifactType.URL, "http://x/" + EICAR.decode(), None, "side")
            good = await backend.scan("g", ArtifactType.FILE, b"hello", None, "side")
    assert (bad.verdict, good.verdict) == (True, False)


async def test_no_clamd_at_setup_is_a_configuration_error_naming_the_socket(tmp_path: Path) -> None:
    """Nothing listening on CLAMD_SOCKET: setup raises one ConfigError (exit 2) naming it and the fix."""
    missing = tmp_path / "nobody.sock"
    with pytest.raises(ConfigError, match=f"no clamd at unix:{missing}.*start clamd") as info:
        await _scanner(missing).setup()
    assert "\n" not in str(info.value)


async def test_artifact_over_stream_max_length_gets_no_assertion_and_is_not_resent(clamd: Clamd) -> None:
    """clamd refuses a 2 MiB artifact (StreamMaxLength 1M): no assertion, the next one as big is not sent,
    and a small artifact after it is still scanned."""
    scanner = _scanner(clamd.socket)
    await scanner.setup()
    big = EICAR + b"\0" * (2 * 1024 * 1024)
    first = await scanner.scan("g", ArtifactType.FILE, big, None, "side")
    assert (first.bit, scanner.clamd.refused_size) == (False, len(big))
    second = await scanner.scan("g", ArtifactType.FILE, big + b"more", None, "side")
    assert second.bit is False
    small = await scanner.scan("g", ArtifactType.FILE, EICAR, None, "side")
    assert (small.bit, small.verdict) == (True, True)


async def test_clamd_gone_after_setup_fails_that_scan_only(tmp_path: Path) -> None:
    """When clamd dies after setup, a scan raises a ClamdError (the engine skips that artifact), not a hang."""
    daemon = Clamd(tmp_path).start()
    scanner = _scanner(daemon.socket, timeout=5)
    try:
        await scanner.setup()
    finally:
        daemon.stop()
    with pytest.raises(ClamdError, match="no clamd"):
        await scanner.scan("g", ArtifactType.FILE, b"text", None, "side")


async def test_clamav_is_an_arbiter_backend_too(clamd: Clamd, monkeypatch) -> None:
    """`arbiter --backend clamav` loads the same scanner, which votes on every demo sample."""
    monkeypatch.setenv("CLAMD_SOCKET", str(clamd.socket))
    scanner = load_arbiter_backend_class("clamav")()
    await scanner.setup()
    votes = [(await scanner.scan("g", ArtifactType.FILE, s.content, None, "side")).verdict for s in build_samples(4)]
    assert votes == [True, False, True, False]
