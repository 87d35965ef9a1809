"""The microengine service around a fresh backend: what ``microengine`` and ``microengine --devnet`` run."""

from __future__ import annotations

from polyswarmclient.backends import Backend, create_backend
from polyswarmclient.client import PolyswarmClient
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import EngineConfig, Microengine
from polyswarmclient.services.microengine.state import StateStore


def make_engine(
    client: PolyswarmClient,
    backend_class: type,
    name: str,
    store: StateStore,
    config: EngineConfig,
    shutdown: Shutdown,
) -> Microengine:
    """The engine service around a new instance of ``backend_class`` (the client must be open).

    ``name`` is the backend as the user gave it (a slug, a package, ``module:Class``), for messages.
    Raises ``ConfigError`` when the backend cannot be created.
    """
    backend: Backend = create_backend(
        backend_class,
        name=name,
        client=client,
        testing=config.testing,
        chains=config.chains,
        artifact_types=config.artifact_types,
    )
    return Microengine(client, backend, store, config, shutdown)


__all__ = ["make_engine"]
