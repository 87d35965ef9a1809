"""The committed build/ artifacts are exactly what the Vyper sources compile to."""

from __future__ import annotations

from importlib import resources

import pytest

from polyswarmclient.devnet.contracts import CONTRACT_NAMES
from polyswarmclient.devnet.contracts.compile import artifact_json, load_artifact


def test_compile_reproduces_committed_build() -> None:
    """Recompiling every .vy source gives byte-identical build/<Name>.json files."""
    pytest.importorskip("vyper")
    from polyswarmclient.devnet.contracts.compile import compile_all

    compiled = compile_all()
    assert set(compiled) == set(CONTRACT_NAMES)
    build = resources.files("polyswarmclient.devnet.contracts").joinpath("build")
    for name, artifact in compiled.items():
        committed = build.joinpath(f"{name}.json").read_text(encoding="utf-8")
        assert artifact_json(artifact) == committed, f"{name}: build/ is stale, run the compile module"


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_load_artifact_reads_build_without_compiler(name: str) -> None:
    """load_artifact returns the ABI and 0x-prefixed deployable bytecode from build/."""
    artifact = load_artifact(name)
    assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 100
    assert any(item.get("type") == "function" for item in artifact["abi"])
    # init code (EIP-3860); the deployed code's EIP-170 limit of 24,576 bytes is enforced by every deployment
    assert len(bytes.fromhex(artifact["bytecode"][2:])) <= 49_152


def test_load_artifact_rejects_unknown_names() -> None:
    """An unknown contract name is a KeyError, not a file lookup."""
    with pytest.raises(KeyError):
        load_artifact("OfferRegistry")
