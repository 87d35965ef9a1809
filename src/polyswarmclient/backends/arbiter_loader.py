"""Find an *arbiter* backend by slug: the entry-point group ``polyswarmclient.arbiter_backends``.

The same rules as :mod:`polyswarmclient.backends.loader` (``module:Class`` imports exactly that; a
wrong slug gets a "did you mean"), over the arbiter's own group, whose built-ins are ``verbatim`` (ground
truth of the devnet corpus) and ``eicar``.
"""

from __future__ import annotations

import difflib
import importlib.metadata

from polyswarmclient.backends.loader import import_from_string
from polyswarmclient.errors import BackendNotFound

GROUP = "polyswarmclient.arbiter_backends"
DEFAULT = "verbatim"

#: Used only when the distribution's metadata is missing (running from a source tree on PYTHONPATH).
_BUILTIN_FALLBACK = {
    "verbatim": "polyswarmclient.backends.verbatim:VerbatimArbiter",
    "eicar": "polyswarmclient.backends.eicar:EicarScanner",
}


def registered() -> dict[str, importlib.metadata.EntryPoint]:
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}
    for name, value in _BUILTIN_FALLBACK.items():
        found.setdefault(name, importlib.metadata.EntryPoint(name=name, value=value, group=GROUP))
    return found


def list_arbiter_backends() -> list[str]:
    return sorted(registered())


def load_arbiter_backend_class(slug: str) -> type:
    """Resolve ``slug`` (a registered name or ``module:Class``) to a class with a ``scan`` method."""
    slug = slug.strip()
    installed = list_arbiter_backends()
    if not slug:
        raise BackendNotFound(
            f"no arbiter backend given: pass --backend (BACKEND); installed: {', '.join(installed)}"
        )
    if ":" in slug:
        obj = import_from_string(slug)
    else:
        entry_points = registered()
        if slug not in entry_points:
            close = difflib.get_close_matches(slug, installed, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise BackendNotFound(
                f"unknown arbiter backend {slug!r}.{hint} Installed: {', '.join(installed)}; "
                "module:Class works too."
            )
        try:
            obj = entry_points[slug].load()
        except Exception as exc:
            raise BackendNotFound(
                f"arbiter backend {slug!r} is registered as {entry_points[slug].value} but failed to load: "
                f"{exc.__class__.__name__}: {exc}"
            ) from None
    if not isinstance(obj, type):
        raise BackendNotFound(f"arbiter backend {slug!r} is a {type(obj).__name__}, not a class")
    if not callable(getattr(obj, "scan", None)):
        raise BackendNotFound(f"arbiter backend {slug!r}: class {obj.__qualname__} has no scan() method")
    return obj
