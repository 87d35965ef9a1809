"""Find an *arbiter* backend by slug: the entry-point group ``polyswarmclient.arbiter_backends``.

The rules of :mod:`polyswarmclient.backends.loader` (``module:Class`` imports exactly that; a wrong slug
gets a "did you mean"), over the arbiter's own group, whose built-ins are ``verbatim`` (ground truth of
the devnet corpus) and ``eicar``.
"""

from __future__ import annotations

from polyswarmclient.backends.loader import ARBITER_GROUP, list_backends, load_backend_class

GROUP = ARBITER_GROUP
DEFAULT = "verbatim"


def list_arbiter_backends() -> list[str]:
    return list_backends(GROUP)


def load_arbiter_backend_class(slug: str) -> type:
    """Resolve ``slug`` (a registered name or ``module:Class``) to a class with a ``scan`` method."""
    return load_backend_class(slug, GROUP)
