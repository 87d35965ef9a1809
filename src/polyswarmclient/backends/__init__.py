"""Scan backends and the one face the microengine service sees for all of them.

A backend class is either an :class:`~polyswarmclient.abstractscanner.AbstractScanner` subclass (our
built-ins, 2.x scanners) or an :class:`~polyswarmclient.abstractmicroengine.AbstractMicroengine` subclass
(engine-template packages). :func:`create_backend` wraps either in a :class:`Backend`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from polyswarmclient.abstractmicroengine import AbstractMicroengine
from polyswarmclient.abstractscanner import ScanResult, _positional_arity, call_scan, maybe_await
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends.loader import list_backends, load_backend_class
from polyswarmclient.errors import ConfigError, ScanError

log = logging.getLogger("microengine.backend")

__all__ = ["Backend", "create_backend", "list_backends", "load_backend_class"]


class Backend:
    """Uniform adapter: ``setup``/``teardown``/``scan`` and an optional engine-chosen ``bid``."""

    def __init__(self, name: str, impl: Any) -> None:
        self.name = name
        self.impl = impl

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {type(self.impl).__qualname__})"

    async def setup(self) -> None:
        setup = getattr(self.impl, "setup", None)
        if setup is None:
            return
        if await maybe_await(setup()) is False:
            raise ScanError(f"backend {self.name!r}: setup() reported failure; check its configuration and logs")

    async def teardown(self) -> None:
        teardown = getattr(self.impl, "teardown", None)
        if teardown is not None:
            await maybe_await(teardown())

    async def scan(
        self, guid: str, artifact_type: ArtifactType, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        return await call_scan(self.impl.scan, guid, artifact_type, content, metadata, chain)

    @property
    def has_custom_bid(self) -> bool:
        if not isinstance(self.impl, AbstractMicroengine):
            return False
        return type(self.impl).bid is not AbstractMicroengine.bid

    async def custom_bid(
        self,
        guid: str,
        mask: Sequence[bool],
        verdicts: Sequence[bool],
        confidences: Sequence[float],
        metadatas: Sequence[str],
        chain: str,
    ) -> int | list[int] | None:
        """The engine's own ``bid()`` answer: 1.x ``bid(guid, chain)`` or 2.x ``bid(guid, mask, ...)``."""
        if not self.has_custom_bid:
            return None
        bid = self.impl.bid
        if _positional_arity(bid) == 2:
            result = await maybe_await(bid(guid, chain))
        else:
            result = await maybe_await(bid(guid, list(mask), list(verdicts), list(confidences), list(metadatas), chain))
        return result  # type: ignore[no-any-return]


def _accepted_kwargs(cls: type, wanted: dict[str, Any]) -> dict[str, Any]:
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return wanted
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return wanted
    return {k: v for k, v in wanted.items() if k in params}


def create_backend(
    cls: type,
    *,
    name: str | None = None,
    client: Any = None,
    testing: int = 0,
    chains: Iterable[str] = ("side",),
    artifact_types: Iterable[ArtifactType] = (ArtifactType.FILE,),
) -> Backend:
    """Instantiate a backend class the way its base class expects."""
    label = name or cls.__qualname__
    impl: Any
    try:
        if issubclass(cls, AbstractMicroengine):
            kwargs = _accepted_kwargs(
                cls, {"testing": testing, "chains": set(chains), "artifact_types": list(artifact_types)}
            )
            impl = cls(client, **kwargs)
        else:
            impl = cls()
    except Exception as exc:
        raise ConfigError(f"backend {label!r} could not be created: {exc.__class__.__name__}: {exc}") from exc
    return Backend(label, impl)
