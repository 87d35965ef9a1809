"""Find a scan backend by slug.

Order (fixing polyswarm-client defect 2, where a same-named top-level module shadowed a bundled one):

1. ``module:Class`` (or ``module:attr.Class``) imports exactly that, with a precise error when the
   module is missing, fails to import, or lacks the attribute (like uvicorn's importer);
2. a slug registered in the ``polyswarmclient.backends`` entry-point group (built-ins ``eicar`` and
   ``scratch`` are registered there too, in ``pyproject.toml``);
3. an importable module (an engine-template package such as ``acme_eicar``): its ``Microengine`` class,
   else its ``Scanner`` class.

Anything else is :class:`~polyswarmclient.errors.BackendNotFound` (exit 2) with a "did you mean" hint.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
from types import ModuleType
from typing import Any

from polyswarmclient.errors import BackendNotFound

GROUP = "polyswarmclient.backends"

#: Used only when the distribution's metadata is missing (running from a source tree on PYTHONPATH);
#: an installed polyswarm-kit registers the same names through its entry points.
_BUILTIN_FALLBACK = {
    "eicar": "polyswarmclient.backends.eicar:EicarScanner",
    "scratch": "polyswarmclient.backends.scratch:ScratchScanner",
}

#: Attribute names looked up in a module given without ``:Class``, in order.
MODULE_CLASS_NAMES = ("Microengine", "Scanner")


def registered() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed backends by slug."""
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}
    for name, value in _BUILTIN_FALLBACK.items():
        found.setdefault(name, importlib.metadata.EntryPoint(name=name, value=value, group=GROUP))
    return found


def list_backends() -> list[str]:
    """Slugs of every installed backend, sorted."""
    return sorted(registered())


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
            raise BackendNotFound(
                f"backend {spec!r}: module {module_name!r} has no attribute {attrs!r}"
            ) from None
    return obj


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _not_found(slug: str) -> BackendNotFound:
    installed = list_backends()
    close = difflib.get_close_matches(slug, installed, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return BackendNotFound(
        f"unknown backend {slug!r}.{hint} Installed backends: {', '.join(installed) or 'none'}; "
        "an engine package name or module:Class works too."
    )


def load_backend_class(slug: str) -> type:
    """Resolve ``slug`` to a backend class (an ``AbstractScanner`` or ``AbstractMicroengine`` subclass)."""
    slug = slug.strip()
    if not slug:
        raise BackendNotFound(
            f"no backend given: pass --backend (BACKEND); installed: {', '.join(list_backends())}"
        )
    if ":" in slug:
        obj = import_from_string(slug)
    else:
        entry_points = registered()
        if slug in entry_points:
            try:
                obj = entry_points[slug].load()
            except Exception as exc:
                raise BackendNotFound(
                    f"backend {slug!r} is registered as {entry_points[slug].value} but failed to load: "
                    f"{exc.__class__.__name__}: {exc}"
                ) from None
        elif _module_exists(slug):
            module = _import_module(slug, slug)
            for name in MODULE_CLASS_NAMES:
                if isinstance(getattr(module, name, None), type):
                    obj = getattr(module, name)
                    break
            else:
                raise BackendNotFound(
                    f"backend {slug!r}: module {module.__name__} defines neither Microengine nor Scanner; "
                    f"name the class explicitly ({slug}:ClassName)"
                )
        else:
            raise _not_found(slug)
    if not isinstance(obj, type):
        raise BackendNotFound(f"backend {slug!r} is a {type(obj).__name__}, not a class")
    if not callable(getattr(obj, "scan", None)):
        raise BackendNotFound(f"backend {slug!r}: class {obj.__qualname__} has no scan() method")
    return obj
