"""Compile the devnet Vyper contracts into ``build/<Name>.json``.

Run ``python -m polyswarmclient.devnet.contracts.compile`` after editing a ``.vy`` file.
The output is deterministic (fixed compiler version, EVM version and settings), so the
committed ``build/`` files can be checked by recompiling.

The ABI gets two cosmetic, selector-neutral fixes after compilation:

* a single leading underscore is stripped from parameter names (Vyper reserves ``from`` and
  ``value`` as argument names, the 1.6 ABI uses them);
* the tuple outputs of ``bountiesByGuid``, ``assertionsByGuid`` and ``votesByGuid`` get the
  field names of the 1.6 ABI.

``load_artifact`` only reads ``build/`` and needs no compiler.
"""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from polyswarmclient.devnet.contracts import CONTRACT_NAMES

VYPER_VERSION = "0.4.3"
EVM_VERSION = "cancun"

OUTPUT_NAMES: dict[str, list[str]] = {
    "bountiesByGuid": [
        "guid",
        "artifactType",
        "author",
        "amount",
        "artifactURI",
        "numArtifacts",
        "expirationBlock",
        "assignedArbiter",
        "quorumReached",
        "quorumBlock",
        "quorumMask",
        "metadata",
    ],
    "assertionsByGuid": ["author", "mask", "commitment", "nonce", "verdicts", "metadata"],
    "votesByGuid": ["author", "votes", "validBloom"],
}

_HERE = Path(__file__).resolve().parent


def _source_dir() -> Path:
    return _HERE


def _build_dir() -> Path:
    return _HERE / "build"


def _fix_params(params: list[dict[str, Any]]) -> None:
    for p in params:
        name = p.get("name", "")
        if name.startswith("_") and not name.startswith("__"):
            p["name"] = name[1:]
        if "components" in p:
            _fix_params(p["components"])


def _postprocess_abi(abi: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for item in abi:
        _fix_params(item.get("inputs", []))
        _fix_params(item.get("outputs", []))
        names = OUTPUT_NAMES.get(item.get("name", ""))
        if item.get("type") == "function" and names is not None:
            outputs = item["outputs"]
            if len(outputs) != len(names):
                raise RuntimeError(f"{item['name']}: expected {len(names)} outputs, got {len(outputs)}")
            for out, name in zip(outputs, names, strict=True):
                out["name"] = name
    return abi


def compile_source(name: str) -> dict[str, Any]:
    """Compile one contract from its ``.vy`` source; needs vyper installed."""
    import vyper
    from vyper.compiler.settings import OptimizationLevel, Settings

    if vyper.__version__ != VYPER_VERSION:
        raise RuntimeError(f"vyper {VYPER_VERSION} required for reproducible output, found {vyper.__version__}")
    path = _source_dir() / f"{name}.vy"
    source = path.read_text(encoding="utf-8")
    settings = Settings(evm_version=EVM_VERSION, optimize=OptimizationLevel.GAS)
    out = vyper.compile_code(
        source,
        contract_path=f"{name}.vy",
        output_formats=["abi", "bytecode"],
        settings=settings,
    )
    return {"abi": _postprocess_abi(out["abi"]), "bytecode": out["bytecode"]}


def compile_all() -> dict[str, dict[str, Any]]:
    """Compile every devnet contract: ``{name: {"abi": [...], "bytecode": "0x..."}}``."""
    return {name: compile_source(name) for name in CONTRACT_NAMES}


def artifact_json(artifact: dict[str, Any]) -> str:
    """The exact text written to ``build/<name>.json``."""
    return json.dumps({"abi": artifact["abi"], "bytecode": artifact["bytecode"]}, indent=1) + "\n"


def write_all(build_dir: Path | None = None) -> list[Path]:
    target = build_dir or _build_dir()
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in compile_all().items():
        path = target / f"{name}.json"
        path.write_text(artifact_json(artifact), encoding="utf-8")
        written.append(path)
    return written


def load_artifact(name: str) -> dict[str, Any]:
    """Read the committed ``build/<name>.json`` (``{"abi", "bytecode"}``); no compiler needed."""
    if name not in CONTRACT_NAMES:
        raise KeyError(f"unknown contract {name!r}")
    ref = resources.files("polyswarmclient.devnet.contracts").joinpath("build", f"{name}.json")
    data: dict[str, Any] = json.loads(ref.read_text(encoding="utf-8"))
    return data


def load_interface() -> dict[str, Any]:
    """``interface-1.6.json``: the functions and events of the 1.6 generation of contracts that polyswarmd
    2.2.0 binds (signature, outputs and mutability; which event arguments are indexed), per contract."""
    ref = resources.files("polyswarmclient.devnet.contracts").joinpath("interface-1.6.json")
    data: dict[str, Any] = json.loads(ref.read_text(encoding="utf-8"))
    return data


def main() -> int:
    for path in write_all():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
