"""The ``multi`` backend over a real clamd and real yara rules (the default members, clamav and yara)."""

from __future__ import annotations

import json
from pathlib import Path

from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends import create_backend, load_backend_class
from polyswarmclient.samples import build_samples
from tests.clamd_daemon import SIGNATURE, Clamd

RULES = Path(__file__).resolve().parents[1] / "fixtures" / "yara"


async def test_multi_with_clamav_and_yara_gets_the_demo_corpus_right(clamd: Clamd, monkeypatch) -> None:
    """`--backend multi` (MULTI_BACKENDS unset: clamav + yara) calls each demo sample right, reports both
    members' verdicts, and takes the family from clamav, the first member that found it."""
    monkeypatch.setenv("CLAMD_SOCKET", str(clamd.socket))
    monkeypatch.setenv("RULES_DIR", str(RULES / "demo"))
    monkeypatch.delenv("MULTI_BACKENDS", raising=False)
    async with create_backend(load_backend_class("multi"), name="multi") as backend:
        for sample in build_samples(8):
            result = await backend.scan("g", ArtifactType.FILE, sample.content, None, "side")
            meta = json.loads(result.metadata)
            expected = "malicious" if sample.malicious else "benign"
            assert (result.bit, result.verdict) == (True, sample.malicious), sample.name
            assert [m["verdict"] for m in meta["backends"].values()] == [expected, expected]
            assert meta["malware_family"] == (SIGNATURE if sample.malicious else "")


async def test_multi_goes_on_when_one_member_fails(tmp_path: Path, monkeypatch) -> None:
    """clamd gone after setup: multi still answers with yara's verdict and marks clamav as failed."""
    daemon = Clamd(tmp_path).start()
    monkeypatch.setenv("CLAMD_SOCKET", str(daemon.socket))
    monkeypatch.setenv("RULES_DIR", str(RULES / "demo"))
    monkeypatch.setenv("MULTI_BACKENDS", "clamav yara")
    backend = create_backend(load_backend_class("multi"), name="multi")
    try:
        await backend.setup()
        daemon.stop()
        sample = build_samples(1)[0]
        result = await backend.scan("g", ArtifactType.FILE, sample.content, None, "side")
    finally:
        daemon.stop()
        await backend.teardown()
    meta = json.loads(result.metadata)
    assert (result.bit, result.verdict) == (True, True)
    assert meta["backends"] == {
        "clamav": {"verdict": "failed"},
        "yara": {"verdict": "malicious", "malware_family": "EICAR-Test-File"},
    }
