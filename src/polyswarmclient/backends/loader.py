"""Find a scan backend by slug.

Order (fixing polyswarm-client defect 2, where a same-named top-level module shadowed a bundled one):

1. ``module:Class`` (or ``module:attr.Class``) imports exactly that, with a precise error when the
   module is missing, fails to import, or lacks the attribute (like uvicorn's importer);
2. a slug registered in the ``polyswarmclient.backends`` entry-point group (built-ins ``eicar`` and
   ``scratch`` are registered there too, in ``pyproject.toml``);
3. an importable module (an engine-template package such as ``acme_eicar``): its ``Microengine`` class,
   else its ``Scanner`` class.

Anything else is :class:`~polyswarmclient.errors.BackendNotFound` (exit 2) with a "did you mean" hint.

Every function takes the entry-point ``group`` to search: the microengine's (the default) or the
arbiter's (:data:`ARBITER_GROUP`, used by :mod:`polyswarmclient.backends.arbiter_loader`); step 3 applies
to the microengine's group only.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from polyswarmclient.errors import BackendNotFound

if TYPE_CHECKING:  # importlib.metadata (with email and zipfile) is imported when a backend is looked up
    import importlib.metadata

#: The microengine's entry-point group (the default everywhere here).
GROUP = "polyswarmclient.backends"
#: The arbiter's entry-point group (see :mod:`polyswarmclient.backends.arbiter_loader`).
ARBITER_GROUP = "polyswarmclient.arbiter_backends"

#: Used only when the distribution's metadata is missing (running from a source tree on PYTHONPATH);
#: an installed polyswarm-kit registers the same names through its entry points.
_BUILTIN_FALLBACK: dict[str, dict[str, str]] = {
    GROUP: {
        "eicar": "polyswarmclient.backends.eicar:EicarScanner",
        "scratch": "polyswarmclient.backends.scratch:ScratchScanner",
        "clamav": "polyswarmclient.backends.clamav:ClamavScanner",
        "yara": "polyswarmclient.backends.yara_rules:YaraScanner",
        "multi": "polyswarmclient.backends.multi:MultiScanner",
    },
    ARBITER_GROUP: {
        "verbatim": "polyswarmclient.backends.verbatim:VerbatimArbiter",
        "eicar": "polyswarmclient.backends.eicar:EicarScanner",
        "clamav": "polyswarmclient.backends.clamav:ClamavScanner",
        "yara": "polyswarmclient.backends.yara_rules:YaraScanner",
    },
}

#: What a group's backends are called in messages.
_KIND = {GROUP: "backend", ARBITER_GROUP: "arbiter backend"}

#: Attribute names looked up in a module given without ``:Class``, in order (microengine group only).
MODULE_CLASS_NAMES = ("Microengine", "Scanner")


def registered(group: str = GROUP) -> dict[str, importlib.metadata.EntryPoint]:
    """Installed backends of ``group`` by slug."""
    import importlib.metadata

    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=group)}
    for name, value in _BUILTIN_FALLBACK.get(group, {}).items():
        found.setdefault(name, importlib.metadata.EntryPoint(name=name, value=value, group=group))
    return found


def list_backends(group: str = GROUP) -> list[str]:
    """Slugs of every installed backend of ``group``, sorted."""
    return sorted(registered(group))


def _import_module(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (name == exc.name or name.startswith(exc.name + ".")):
            raise BackendNotFound(
                f"backend {spec!r}: no module named {name!r} (is the engine package installed?)"
            ) from None
        raise BackendNotFound(
            f"backend {spec!r}: module {name!r} was found but needs {exc.name!r}, which is not installed"
        ) from None
    except Exception as exc:
        raise BackendNotFound(
            f"backend {spec!r}: importing module {name!r} failed with {exc.__class__.__name__}: {exc}"
        ) from None


def import_from_string(spec: str) -> Any:
    """``"package.module:Class"`` -> the object, with an error that says which part is wrong."""
    module_name, _, attrs = spec.partition(":")
    if not module_name or not attrs:
        raise BackendNotFound(f"backend {spec!r}: use the form module:Class, e.g. acme_engine:Microengine")
    module = _import_module(module_name, spec)
    obj: Any = module
    for part in attrs.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BackendNotFound(f"backend {spec!r}: module {module_name!r} has no attribute {attrs!r}") from None
    return obj


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _not_found(slug: str, group: str) -> BackendNotFound:
    installed = list_backends(group)
    close = difflib.get_close_matches(slug, installed, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    if group == GROUP:
        return BackendNotFound(
            f"unknown backend {slug!r}.{hint} Installed backends: {', '.join(installed) or 'none'}; "
            "an engine package name or module:Class works too."
        )
    return BackendNotFound(
        f"unknown {_KIND.get(group, 'backend')} {slug!r}.{hint} Installed: {', '.join(installed) or 'none'}; "
        "module:Class works too."
    )


def _module_backend(slug: str) -> Any:
    """The ``Microengine`` (else ``Scanner``) class of an importable engine package named ``slug``."""
    module = _import_module(slug, slug)
    for name in MODULE_CLASS_NAMES:
        if isinstance(getattr(module, name, None), type):
            return getattr(module, name)
    raise BackendNotFound(
        f"backend {slug!r}: module {module.__name__} defines neither Microengine nor Scanner; "
        f"name the class explicitly ({slug}:ClassName)"
    )


def look_in(app_dir: str | Path) -> None:
    """Put ``app_dir`` (made absolute) first on ``sys.path``, as uvicorn's ``--app-dir`` does: a console
    script does not have the working directory there, so ``my_engine:Scanner`` would not be found."""
    path = str(Path(app_dir).resolve())
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    importlib.invalidate_caches()


def load_backend_class(slug: str, group: str = GROUP, app_dir: str | Path | None = None) -> type:
    """Resolve ``slug`` to a backend class of ``group``: ``module:Class``, a registered slug, or (for the
    microengine group only) an engine package name. The class must have a ``scan`` method.

    With ``app_dir``, modules are looked for there first (registered slugs still win over modules).
    """
    kind = _KIND.get(group, "backend")
    slug = slug.strip()
    if app_dir is not None:
        look_in(app_dir)
    if not slug:
        raise BackendNotFound(
            f"no {kind} given: pass --backend (BACKEND); installed: {', '.join(list_backends(group))}"
        )
    obj: Any
    if ":" in slug:
        obj = import_from_string(slug)
    else:
        entry_points = registered(group)
        if slug in entry_points:
            try:
                obj = entry_points[slug].load()
            except Exception as exc:
                raise BackendNotFound(
                    f"{kind} {slug!r} is registered as {entry_points[slug].value} but failed to load: "
                    f"{exc.__class__.__name__}: {exc}"
                ) from None
        elif group == GROUP and _module_exists(slug):
            obj = _module_backend(slug)
        else:
            raise _not_found(slug, group)
    if not isinstance(obj, type):
        raise BackendNotFound(f"{kind} {slug!r} is a {type(obj).__name__}, not a class")
    if not callable(getattr(obj, "scan", None)):
        raise BackendNotFound(f"{kind} {slug!r}: class {obj.__qualname__} has no scan() method")
    return obj


#: Where polyswarm-client 2.x's bid strategy base class lives (found by name: this layer sits below it).
_BID_STRATEGY_BASE = ("polyswarmclient.bidstrategy", "BidStrategyBase")


def _is_bid_strategy(obj: Any) -> bool:
    return isinstance(obj, type) and any(
        (base.__module__, base.__qualname__) == _BID_STRATEGY_BASE for base in obj.__mro__[1:]
    )


def find_bid_strategy(backend_class: type) -> type | None:
    """The ``BidStrategyBase`` subclass the engine's own code defines, as polyswarm-client 2.x picked it up.

    Looked for at module level in the backend class's module, then in its top-level package (an
    engine-template package exports it from ``__init__``); classes of polyswarm-kit itself never count.
    Several candidates in one module: the one named ``BidStrategy``, else a ``BackendNotFound`` naming them.
    """
    names = [backend_class.__module__]
    top = names[0].split(".", 1)[0]
    if top == "polyswarmclient":
        return None
    if top != names[0]:
        names.append(top)
    for name in names:
        module = sys.modules.get(name)
        if module is None:
            continue
        found: dict[str, type] = {
            obj.__qualname__: obj
            for obj in vars(module).values()
            if _is_bid_strategy(obj) and not obj.__module__.startswith("polyswarmclient.")
        }
        if len(found) == 1:
            return next(iter(found.values()))
        if "BidStrategy" in found:
            return found["BidStrategy"]
        if found:
            raise BackendNotFound(
                f"module {name} defines several bid strategies ({', '.join(sorted(found))}); name one BidStrategy"
            )
    return None
