"""Compatibility: the ``AbstractMicroengine`` base class of polyswarm-client engines.

An engine-template package may expose ``Microengine(AbstractMicroengine)`` that passes ``Scanner()`` to
``super().__init__``, and may override ``scan`` or ``bid``. The ``microengine`` CLI loads such a class
by slug and drives it: event handling, commit-reveal and settling live in
:mod:`polyswarmclient.services.microengine`, not here. This class only answers two questions for the
service: "what is this artifact?" (:meth:`scan`) and, optionally, "what do you bid?" (:meth:`bid`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from polyswarmclient.abstractscanner import AbstractScanner, ScanResult, call_scan, maybe_await
from polyswarmclient.artifacts import ArtifactType

__all__ = ["AbstractMicroengine", "ScanResult"]


class AbstractMicroengine:
    """Base class for engines written the polyswarm-client way.

    ``client`` is the running :class:`~polyswarmclient.client.facade.PolyswarmClient` as the backend's own
    loop sees it (a :class:`~polyswarmclient.backends.isolation.EngineClientProxy`: awaited coroutine
    methods run on the engine's loop), or ``None`` when the engine is built outside the service.
    """

    def __init__(
        self,
        client: Any = None,
        testing: int = 0,
        scanner: AbstractScanner | None = None,
        chains: Iterable[str] | None = None,
        artifact_types: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.client = client
        self.testing = testing
        self.scanner = scanner
        self.chains = set(chains) if chains else {"side"}
        self.artifact_types = (
            [ArtifactType.coerce(t) for t in artifact_types] if artifact_types else [ArtifactType.FILE]
        )
        self.extra_options = dict(kwargs)

    async def setup(self) -> bool:
        if self.scanner is not None and hasattr(self.scanner, "setup"):
            return await maybe_await(self.scanner.setup()) is not False
        return True

    async def teardown(self) -> None:
        if self.scanner is not None and hasattr(self.scanner, "teardown"):
            await maybe_await(self.scanner.teardown())

    async def scan(self, guid: str, artifact_type: Any, content: bytes | str, metadata: Any, chain: str) -> ScanResult:
        """Scan one artifact. The default delegates to ``self.scanner``; override to scan here instead."""
        if self.scanner is None:
            raise NotImplementedError(f"{type(self).__name__} has no scanner: pass scanner= or override scan()")
        return await call_scan(self.scanner.scan, guid, ArtifactType.coerce(artifact_type), content, metadata, chain)

    async def bid(
        self,
        guid: str,
        mask: list[bool],
        verdicts: list[bool],
        confidences: list[float],
        metadatas: list[str],
        chain: str,
    ) -> list[int] | int | None:
        """Override to choose bids (NCT-wei, one per set mask bit, or one int for all).

        ``None`` (the default) means: use the ``--bid-strategy`` of the service. Whatever is returned is
        clamped to the bounty's [minimum, maximum] so a transaction can never revert on the bid.
        """
        return None

    @classmethod
    def connect(cls, *args: Any, **kwargs: Any) -> AbstractMicroengine:
        raise NotImplementedError(
            "polyswarm-kit runs engines through its service: `microengine --backend <slug or module:Class>`"
        )

    def run(self) -> None:
        raise NotImplementedError(
            "polyswarm-kit runs engines through its service: `microengine --backend <slug or module:Class>`"
        )
