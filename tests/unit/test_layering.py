"""The dependency direction of docs/architecture.md, enforced by parsing imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "polyswarmclient"

# Layer order, top to bottom; a module may import only its own layer or lower ones.
LAYERS = ["cli", "services", "client", "transport", "eth", "wire"]
# Third-party libraries confined to one place (the devnet is a separate product and exempt).
CONFINED = {"click": {"cli"}, "aiohttp": {"transport"}, "websockets": {"transport"}, "eth_account": {"eth"}}


def _layer(path: Path) -> str | None:
    rel = path.relative_to(SRC).parts
    return rel[0] if rel[0] in LAYERS else None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


MODULES = sorted(p for p in SRC.rglob("*.py") if "devnet" not in p.relative_to(SRC).parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    """A lower layer (wire, eth, transport, client, services) never imports a higher one."""
    layer = _layer(path)
    if layer is None:
        return
    allowed = set(LAYERS[LAYERS.index(layer) :])
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "polyswarmclient" and len(parts) > 1 and parts[1] in LAYERS:
            assert parts[1] in allowed, f"{path.relative_to(SRC)} imports {name}, a higher layer"
        if parts[1:2] == ["devnet"] and parts[0] == "polyswarmclient":
            assert layer == "cli", f"{path.relative_to(SRC)} imports the devnet; only CLIs may"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_third_party_libraries_stay_in_their_module(path: Path) -> None:
    """click only in cli/, aiohttp and websockets only in transport/, eth-account only in eth/."""
    layer = _layer(path)
    for name in _imports(path):
        root = name.split(".")[0]
        if root in CONFINED:
            assert layer in CONFINED[root], f"{path.relative_to(SRC)} imports {root}"
