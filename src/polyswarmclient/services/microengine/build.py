"""The microengine service around a fresh backend: what ``microengine`` and ``microengine --devnet`` run."""

from __future__ import annotations

import logging
from typing import Any

from polyswarmclient.backends import Backend, create_backend
from polyswarmclient.backends.loader import find_bid_strategy
from polyswarmclient.errors import ConfigError
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import EngineConfig, Microengine
from polyswarmclient.services.microengine.config import EngineClient
from polyswarmclient.services.microengine.state import StateStore

log = logging.getLogger("microengine")


def package_bid_strategy(backend_class: type, name: str, config: EngineConfig) -> Any:
    """An instance of the ``BidStrategyBase`` subclass the backend's package defines, or None (none defined,
    or ``config.package_bid_strategy`` is off). Raises ``ConfigError`` when it cannot be created."""
    if not config.package_bid_strategy:
        return None
    found = find_bid_strategy(backend_class)
    if found is None:
        return None
    try:
        strategy = found()
    except Exception as exc:
        raise ConfigError(
            f"backend {name!r}: bid strategy {found.__module__}.{found.__qualname__} could not be created: "
            f"{exc.__class__.__name__}: {exc}"
        ) from None
    log.info(
        "backend %s: bidding with its package's %s (min x%s, max x%s); --bid-strategy overrides it",
        name,
        found.__qualname__,
        getattr(strategy, "min_bid_multiplier", None),
        getattr(strategy, "max_bid_multiplier", None),
    )
    return strategy


def make_backend(client: EngineClient | None, backend_class: type, name: str, config: EngineConfig) -> Backend:
    """A new instance of ``backend_class`` behind the engine's :class:`Backend` face, not set up yet.

    ``name`` is the backend as the user gave it (a slug, a package, ``module:Class``), for messages.
    Raises ``ConfigError`` when the backend or its package's bid strategy cannot be created.
    """
    return create_backend(
        backend_class,
        name=name,
        client=client,
        testing=config.testing,
        chains=config.chains,
        artifact_types=config.artifact_types,
        bid_strategy=package_bid_strategy(backend_class, name, config),
    )


def make_engine(
    client: EngineClient,
    backend_class: type,
    name: str,
    store: StateStore,
    config: EngineConfig,
    shutdown: Shutdown,
) -> Microengine:
    """The engine service around a new instance of ``backend_class`` (see :func:`make_backend`); its
    :meth:`~Microengine.run` sets the backend up and tears it down."""
    return Microengine(client, make_backend(client, backend_class, name, config), store, config, shutdown)


__all__ = ["make_backend", "make_engine", "package_bid_strategy"]
