"""The dependency direction of docs/architecture.md, enforced by parsing every import of src/polyswarmclient.

Every import counts: absolute and relative ones (``from . import x`` and ``from ..a import b`` are
resolved against the importing module's package), imports inside functions, and imports under
``if TYPE_CHECKING:``. A type-only import is counted like any other, for layers and for cycles alike: it
is still a dependency a reader has to follow, and it becomes a runtime import the day the name is needed
at run time. Only dynamic imports (``importlib.import_module`` of a backend slug in
``backends/loader.py``) are invisible to a parser.

A module belongs to the layer its first path part names under ``polyswarmclient/`` (``cli/demo.py`` is
in ``cli``, ``errors.py`` is ``errors``); ``polyswarmclient/__init__.py`` itself is ``polyswarmclient``.
Within a layer imports are free; between layers they follow :data:`MAY_IMPORT`.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "polyswarmclient"
ROOT = PACKAGE  # the layer of polyswarmclient/__init__.py: it holds __version__ and imports nothing

#: errors < amounts < log, metrics: each base module may import the ones before it; heap (handing the C
#: heap's free pages back to the system) imports nothing of ours.
BASE = frozenset({ROOT, "errors", "amounts", "log", "metrics", "heap"})
#: The modules polyswarm-client engines import, at the top level as there.
COMPAT = frozenset({"artifacts", "abstractscanner", "abstractmicroengine"})

#: For every layer, every other layer it may import, in full (test_the_table_is_a_layering checks that
#: it is closed and acyclic).
MAY_IMPORT: dict[str, frozenset[str]] = {
    # the base, used everywhere
    ROOT: frozenset(),
    "errors": frozenset({ROOT}),
    "amounts": frozenset({ROOT, "errors"}),
    "log": frozenset({ROOT, "errors", "amounts"}),
    # what services count and the process's health (recorded through it, exported by telemetry/)
    "metrics": frozenset({ROOT, "errors", "amounts"}),
    "heap": frozenset(),
    # the sample corpus (ambassador bounties, the verbatim arbiter, the devnet): standard library only
    "samples": frozenset(),
    # compatibility with polyswarm-client engines: artifact types, then scanners, then the engine base
    # class (an interface over a scanner that imports nothing else; the backend loader adapts it)
    "artifacts": BASE,
    "abstractscanner": BASE | {"artifacts"},
    "abstractmicroengine": BASE | {"artifacts", "abstractscanner"},
    # the client stack: wire < eth, transport < client; transport never signs, so it never sees eth
    "wire": BASE,
    "eth": BASE | {"wire"},
    "transport": BASE | {"wire"},
    "client": BASE | {"wire", "eth", "transport"},
    # scan backends: built on the compatibility modules and the sample corpus only
    "backends": BASE | COMPAT | {"samples"},
    # polyswarm-signer: its policy, spending window and audit log, served over the transport's JSON-RPC; it
    # learns the contracts through the client facade, as the roles do
    "signer": BASE | {"wire", "eth", "transport", "client"},
    # microengine, balancemanager, ambassador, arbiter
    "services": BASE | COMPAT | {"samples", "wire", "eth", "transport", "client", "backends"},
    # polyswarm-client 2.x's bid strategies for engine-template engines, on the engine's bid rule
    "bidstrategy": BASE | COMPAT | {"samples", "wire", "eth", "transport", "client", "backends", "services"},
    # the scan queue: microengine --scan-queue's producer (the engine's scan step) and the worker service
    "scanqueue": BASE | COMPAT | {"samples", "wire", "eth", "transport", "client", "backends", "services"},
    # the local polyswarmd and its EVM: shares the wire format and the ABI with the client, nothing else
    "devnet": BASE | {"samples", "wire", "eth"},
    # microengine --devnet: runs a devnet, the roles and the engine together
    "demo": BASE | COMPAT | {"samples", "wire", "eth", "transport", "client", "backends", "services", "devnet"},
    # --metrics-addr: the Prometheus exporter of the base's metrics module and its aiohttp server
    "telemetry": BASE,
    # the click shells on top
    "cli": BASE
    | COMPAT
    | {
        "samples",
        "wire",
        "eth",
        "transport",
        "client",
        "backends",
        "services",
        "devnet",
        "demo",
        "signer",
        "telemetry",
        "scanqueue",
    },
}

#: Third-party packages (by import name) and the only layers that may import them. ``eth`` is py-evm.
CONFINED: dict[str, frozenset[str]] = {
    "click": frozenset({"cli"}),
    "aiohttp": frozenset({"transport", "devnet", "telemetry"}),
    "prometheus_client": frozenset({"telemetry"}),
    # The event stream reads with aiohttp's websocket client: one HTTP library in the engine.
    "websockets": frozenset(),
    "eth_account": frozenset({"eth", "devnet"}),
    "eth": frozenset({"devnet"}),
    "eth_tester": frozenset({"devnet"}),
    "vyper": frozenset({"devnet"}),
    "web3": frozenset({"devnet"}),
    "yara": frozenset({"backends"}),
    "redis": frozenset({"scanqueue"}),
}
#: Layers that import nothing outside the standard library (and, for the base, the base).
STDLIB_ONLY = BASE | {"samples"}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. polyswarmclient.client.facade
    path: Path

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    @property
    def layer(self) -> str:
        return layer_of(self.name)

    @property
    def rel(self) -> str:
        return str(self.path.relative_to(SRC / PACKAGE))


@dataclass(frozen=True)
class Import:
    source: Module
    target: str  # a module of the package (dotted), or a third-party/stdlib top-level name
    names: tuple[str, ...]  # for ``from X import a, b``: a, b (to check they exist)
    line: int
    type_only: bool

    @property
    def internal(self) -> bool:
        return self.target == PACKAGE or self.target.startswith(PACKAGE + ".")

    def __str__(self) -> str:
        where = f"{self.source.rel}:{self.line}"
        return f"{where} imports {self.target}" + (" (under TYPE_CHECKING)" if self.type_only else "")


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT


@functools.cache
def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = Module(".".join(parts), path)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``node`` (functions and classes included), flagged when type-only."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node, type_only
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        for child in node.body:
            yield from _walk(child, True)
        for child in node.orelse:
            yield from _walk(child, type_only)
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, type_only)


def _from_base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` reads from (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    if node.level - 1 >= len(package):
        raise AssertionError(f"{module.rel}:{node.lineno}: relative import climbs out of the package")
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_in(module: Module, source: str) -> tuple[Import, ...]:
    """Every import of ``source`` (the text of ``module``), resolved to absolute targets."""
    found: list[Import] = []
    for node, type_only in _walk(ast.parse(source, str(module.path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name if alias.name.startswith(PACKAGE) else alias.name.split(".")[0]
                found.append(Import(module, target, (), node.lineno, type_only))
            continue
        if node.module == "__future__":
            continue
        base = _from_base(module, node)
        if not (base == PACKAGE or base.startswith(PACKAGE + ".")):
            found.append(Import(module, base.split(".")[0], (), node.lineno, type_only))
            continue
        # ``from pkg import sub`` depends on the submodule; ``from mod import name`` on mod itself
        plain: list[str] = []
        for alias in node.names:
            if f"{base}.{alias.name}" in modules():
                found.append(Import(module, f"{base}.{alias.name}", (), node.lineno, type_only))
            else:
                plain.append(alias.name)
        if plain:
            found.append(Import(module, base, tuple(plain), node.lineno, type_only))
    return tuple(found)


@functools.cache
def imports_of(name: str) -> tuple[Import, ...]:
    module = modules()[name]
    return imports_in(module, module.path.read_text(encoding="utf-8"))


def all_imports() -> Iterator[Import]:
    for name in modules():
        yield from imports_of(name)


MODULE_IDS = {name: module.rel for name, module in modules().items()}


# --- the parser sees every import ------------------------------------------------------------------------

PROBE = """
from typing import TYPE_CHECKING
from . import nonces
from .pins import PinStore
from ..eth import abi
from .. import errors
from ...polyswarmclient import nothing
import polyswarmclient.transport.http as http
if TYPE_CHECKING:
    from polyswarmclient.services import microengine
else:
    import json
def later():
    import click.testing
"""


def test_the_parser_resolves_relative_function_level_and_type_checking_imports() -> None:
    """Relative imports resolve against the package, ``from pkg import sub`` names the submodule, and
    imports inside functions or under TYPE_CHECKING are found (the latter flagged as type-only)."""
    probe = Module(f"{PACKAGE}.client.facade", SRC / PACKAGE / "client" / "facade.py")
    with pytest.raises(AssertionError, match="climbs out of the package"):
        imports_in(probe, PROBE)
    found = imports_in(probe, PROBE.replace("from ...polyswarmclient import nothing\n", ""))
    assert [(i.target, i.names, i.type_only) for i in found] == [
        ("typing", (), False),
        (f"{PACKAGE}.client.nonces", (), False),
        (f"{PACKAGE}.client.pins", ("PinStore",), False),
        (f"{PACKAGE}.eth.abi", (), False),
        (f"{PACKAGE}.errors", (), False),
        (f"{PACKAGE}.transport.http", (), False),
        (f"{PACKAGE}.services.microengine", (), True),
        ("json", (), False),
        ("click", (), False),
    ]
    package = Module(f"{PACKAGE}.client", SRC / PACKAGE / "client" / "__init__.py")
    assert [i.target for i in imports_in(package, "from .facade import PolyswarmClient")] == [
        f"{PACKAGE}.client.facade"
    ]


def test_the_cycle_finder_reports_every_cycle() -> None:
    """Tarjan's components: a three-module loop and a self-import are found; a chain into a loop is not one."""
    graph: dict[str, dict[str, Import]] = {"a": {"b": PROBE_EDGE}, "b": {"c": PROBE_EDGE}, "c": {"a": PROBE_EDGE}}
    graph |= {"d": {"d": PROBE_EDGE}, "e": {"a": PROBE_EDGE}, "f": {}}
    assert sorted(_strongly_connected(graph)) == [["a", "b", "c"], ["d"]]


# --- the table itself ----------------------------------------------------------------------------------


def test_every_module_and_package_has_a_declared_layer() -> None:
    """No module of the package sits outside the table, so none escapes the direction checks."""
    undeclared = sorted(m.rel for m in modules().values() if m.layer not in MAY_IMPORT)
    assert undeclared == [], f"add a row to MAY_IMPORT for: {undeclared}"


def test_the_table_is_a_layering() -> None:
    """The table has no cycle and is closed: a layer may import whatever the layers below it may."""
    for layer, allowed in MAY_IMPORT.items():
        assert layer not in allowed, layer
        for lower in allowed:
            assert layer not in MAY_IMPORT[lower], f"{layer} and {lower} may import each other"
            missing = MAY_IMPORT[lower] - allowed
            assert not missing, f"{layer} may import {lower}, which may import {sorted(missing)}, but {layer} may not"


# --- the direction of every import ---------------------------------------------------------------------


@pytest.mark.parametrize("name", MODULE_IDS, ids=MODULE_IDS.values())
def test_imports_point_down(name: str) -> None:
    """A module imports its own layer or a layer the table puts below it, never one above or beside it."""
    layer = layer_of(name)
    allowed = MAY_IMPORT.get(layer, frozenset()) | {layer}
    wrong = [
        f"{i} (layer {layer_of(i.target)})"
        for i in imports_of(name)
        if i.internal and layer_of(i.target) not in allowed
    ]
    assert wrong == [], f"layer {layer} may import only {sorted(allowed)}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("name", MODULE_IDS, ids=MODULE_IDS.values())
def test_third_party_libraries_stay_in_their_layers(name: str) -> None:
    """click only in cli; aiohttp in transport and devnet; websockets nowhere; eth-account in eth and
    devnet; eth-tester, py-evm, vyper and web3 in devnet; the base and the sample corpus use the stdlib only."""
    layer = layer_of(name)
    wrong = []
    for i in imports_of(name):
        if i.internal:
            continue
        if i.target in CONFINED and layer not in CONFINED[i.target]:
            wrong.append(f"{i}, allowed only in {sorted(CONFINED[i.target])}")
        elif layer in STDLIB_ONLY and i.target not in sys.stdlib_module_names:
            wrong.append(f"{i}, but layer {layer} uses the standard library only")
    assert wrong == [], "\n".join(wrong)


# --- cycles ----------------------------------------------------------------------------------------------


def _graph() -> dict[str, dict[str, Import]]:
    """module -> {imported module of the package: the first import statement that makes the edge}."""
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules()}
    for i in all_imports():
        if i.internal and i.target in modules():
            graph[i.source.name].setdefault(i.target, i)
    return graph


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively; components of more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(graph[target])))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))
    return found


def _one_cycle(graph: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """A shortest cycle through the first module of a strongly connected component (breadth first)."""
    members = set(component)
    start = component[0]
    paths: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target, statement in graph[node].items():
            if target == start:
                return [*paths[node], statement]
            if target in members and target not in paths:
                paths[target] = [*paths[node], statement]
                queue.append(target)
    raise AssertionError(f"no cycle through {start}")  # cannot happen in a strongly connected component


PROBE_EDGE = Import(Module(PACKAGE, SRC / PACKAGE / "__init__.py"), PACKAGE, (), 1, False)


def test_no_import_cycles() -> None:
    """The import graph of the whole package (function-level and type-only imports included) is acyclic."""
    graph = _graph()
    report = []
    for component in _strongly_connected(graph):
        cycle = _one_cycle(graph, component)
        chain = " -> ".join([component[0], *(i.target for i in cycle)])
        report.append(f"{chain}\n    " + "\n    ".join(str(i) for i in cycle))
    assert report == [], "import cycles:\n" + "\n".join(report)


# --- imports that cannot work ----------------------------------------------------------------------------


def _defined_names(name: str) -> set[str]:
    """The names a module binds at its top level (definitions, assignments, imports), ``__all__`` included."""
    tree = ast.parse(modules()[name].path.read_text(encoding="utf-8"))
    names: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(node, field, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


def test_every_import_names_something_that_exists() -> None:
    """Each module of the package imported exists, each name taken from one is defined there (a typo guard),
    and each outside package is the standard library or installed."""
    wrong = []
    for i in all_imports():
        if not i.internal:
            if i.target not in sys.stdlib_module_names and importlib.util.find_spec(i.target) is None:
                wrong.append(f"{i}, which is not installed")
        elif i.target not in modules():
            wrong.append(f"{i}, which does not exist")
        elif missing := sorted(n for n in i.names if n != "*" and n not in _defined_names(i.target)):
            if "__getattr__" not in _defined_names(i.target):
                wrong.append(f"{i}, which defines no {', '.join(missing)}")
    assert wrong == [], "\n".join(wrong)
