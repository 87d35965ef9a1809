"""Every third-party package src/ imports is declared in pyproject.toml, where a user's install gets it.

A package that only arrives as some other dependency's dependency (``rlp`` through eth-account) breaks
the day that dependency drops it. Imports in the devnet need the devnet or compile extra, the yara
backend the yara extra, the Redis scan queue the redis extra; everything else needs a core dependency.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "polyswarmclient"

#: Paths (relative to the package) whose imports an extra provides, and which extras those are.
EXTRAS_BY_PATH = {
    "devnet/": {"devnet", "compile"},
    "backends/yara_rules.py": {"yara"},
    "scanqueue/": {"redis"},
}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared() -> dict[str, set[str]]:
    """``"core"`` and each extra -> the distributions it names (normalised)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    groups = {"core": {_name(r) for r in project["dependencies"]}}
    for extra, requirements in project["optional-dependencies"].items():
        groups[extra] = {_name(r) for r in requirements}
    return groups


def third_party_imports() -> dict[str, set[str]]:
    """Top-level import name -> the package files (relative) that import it."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "polyswarmclient" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
    return found


def test_every_third_party_import_is_declared_where_its_code_needs_it() -> None:
    groups = declared()
    distributions = importlib.metadata.packages_distributions()
    problems = []
    for top, files in sorted(third_party_imports().items()):
        owners = {d.lower().replace("_", "-") for d in distributions.get(top, [])}
        assert owners, f"{top} (imported by {sorted(files)}) is not installed: pip install -e '.[test]'"
        for file in sorted(files):
            extras = next((e for prefix, e in EXTRAS_BY_PATH.items() if file.startswith(prefix)), set())
            allowed = groups["core"].union(*(groups[e] for e in extras))
            if not owners & allowed:
                where = "a core dependency" if not extras else f"the {' or '.join(sorted(extras))} extra"
                problems.append(f"{file} imports {top} ({', '.join(sorted(owners))}): declare it in {where}")
    assert not problems, "\n".join(problems)
