"""Scan backends and the one face the microengine service sees for all of them.

A backend class is either an :class:`~polyswarmclient.abstractscanner.AbstractScanner` subclass (our
built-ins, 2.x scanners) or an :class:`~polyswarmclient.abstractmicroengine.AbstractMicroengine` subclass
(engine-template packages). :func:`create_backend` wraps either in a :class:`Backend`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from polyswarmclient.abstractmicroengine import AbstractMicroengine
from polyswarmclient.abstractscanner import (
    AbstractScanner,
    ScanMode,
    ScanResult,
    _positional_arity,
    call_scan,
    maybe_await,
    scan_args,
)
from polyswarmclient.artifacts import ArtifactType
from polyswarmclient.backends.isolation import BackendLoop, EngineClientProxy, Job
from polyswarmclient.backends.loader import list_backends, load_backend_class
from polyswarmclient.errors import ConfigError, PolyswarmError, ScanError

log = logging.getLogger("microengine.backend")

__all__ = ["Backend", "Job", "create_backend", "list_backends", "load_backend_class"]

T = TypeVar("T")


def sync_scan(impl: Any) -> Callable[..., Any] | None:
    """The synchronous function that really scans for ``impl``, or None when its scan is a coroutine.

    Looks through the layers polyswarm-client stacked: an ``AbstractMicroengine`` that keeps the default
    ``scan`` delegates to its ``scanner``; an ``AbstractScanner`` that keeps the default ``scan`` calls
    ``scan_sync`` in ``ScanMode.SYNC``. A plain ``def scan`` (1.x) is synchronous too.
    """
    target = impl
    if isinstance(target, AbstractMicroengine) and type(target).scan is AbstractMicroengine.scan:
        if target.scanner is None:
            return None  # the default scan() raises its own explanation
        target = target.scanner
    if isinstance(target, AbstractScanner) and type(target).scan is AbstractScanner.scan:
        return target.scan_sync if target.mode is ScanMode.SYNC else None
    scan = target.scan
    if inspect.iscoroutinefunction(scan) or inspect.iscoroutinefunction(getattr(scan, "__func__", None)):
        return None
    return scan  # type: ignore[no-any-return]


#: Seconds the engine waits for a backend's ``bid()`` before using ``--bid-strategy`` instead.
BID_TIMEOUT = 10.0
#: Seconds the engine waits for a backend's ``teardown()`` at shutdown.
TEARDOWN_TIMEOUT = 10.0
#: Seconds the engine then waits for the backend's thread to end.
STOP_WAIT = 1.0


class Backend:
    """Uniform adapter: ``setup``/``teardown``/``scan`` and an optional engine-chosen ``bid``.

    Backend code never runs on the caller's event loop (see :mod:`polyswarmclient.backends.isolation`):
    coroutines run on the backend's own loop in its own thread, started by :meth:`setup` (or the first
    call) and stopped by :meth:`teardown`; synchronous scans run in a thread each. The caller awaits the
    answer on its loop, so its timeouts fire even when the backend never yields.
    """

    def __init__(self, name: str, impl: Any, client: EngineClientProxy | None = None, bid_strategy: Any = None) -> None:
        self.name = name
        self.impl = impl
        #: A 2.x ``BidStrategyBase`` instance from the engine's package, bidding when ``impl`` has no ``bid()``.
        self.bid_strategy = bid_strategy
        self._client = client
        self._loop = BackendLoop(name)
        self._set_up = False

    @property
    def is_set_up(self) -> bool:
        """:meth:`setup` succeeded and :meth:`teardown` has not run since."""
        return self._set_up

    def __repr__(self) -> str:
        return f"Backend({self.name!r}, {type(self.impl).__qualname__})"

    async def __aenter__(self) -> Backend:
        await self.setup()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.teardown()

    def _on_backend_loop(self, what: str, make: Callable[[], Awaitable[T]]) -> Job[T]:
        if self._client is not None:
            self._client._bind(asyncio.get_running_loop())

        async def call() -> T:
            return await make()

        return self._loop.submit(f"{self.name} {what}", call)

    async def setup(self) -> None:
        """Start the backend's loop and run its ``setup()`` there; a ``False`` answer is a :class:`ScanError`."""
        setup = getattr(self.impl, "setup", None)
        job = self._on_backend_loop("setup", lambda: maybe_await(setup() if setup is not None else None))
        if await job.result() is False:
            raise ScanError(f"backend {self.name!r}: setup() reported failure; check its configuration and logs")
        self._set_up = True

    async def teardown(self) -> None:
        """Run the backend's ``teardown()`` on its loop (for at most :data:`TEARDOWN_TIMEOUT` seconds), then
        stop the loop. A backend still stuck in a scan is left behind in its daemon thread, with a warning."""
        teardown = getattr(self.impl, "teardown", None)
        self._set_up = False
        try:
            if teardown is not None:
                job = self._on_backend_loop("teardown", lambda: maybe_await(teardown()))
                try:
                    async with asyncio.timeout(TEARDOWN_TIMEOUT):
                        await job.result()
                except TimeoutError:
                    log.warning(
                        "backend %s: teardown() did not finish within %.0fs (is a scan still blocking its "
                        "thread?); leaving it behind",
                        self.name,
                        TEARDOWN_TIMEOUT,
                    )
        finally:
            if not await asyncio.to_thread(self._loop.stop, STOP_WAIT):
                log.warning("backend %s: its thread is still busy at shutdown; leaving it behind", self.name)

    def start_scan(
        self, guid: str, artifact_type: ArtifactType, content: bytes | str, metadata: Any, chain: str
    ) -> Job[ScanResult]:
        """Start scanning one artifact off the caller's loop; await :meth:`Job.result` for the answer."""
        what = f"{self.name} scan of bounty {guid}"
        kind = ArtifactType.coerce(artifact_type)
        sync = sync_scan(self.impl)
        if sync is None:
            return self._on_backend_loop(
                f"scan of bounty {guid}", lambda: call_scan(self.impl.scan, guid, kind, content, metadata, chain)
            )
        args = scan_args(sync, guid, kind, content, metadata, chain)

        def scan_in_thread() -> ScanResult:
            result = sync(*args)
            if inspect.isawaitable(result):  # a plain function that hands back a coroutine
                result = self._loop.submit(what, lambda: maybe_await(result)).wait()
            return ScanResult.coerce(result)

        return Job.in_thread(what, scan_in_thread)

    async def scan(
        self, guid: str, artifact_type: ArtifactType, content: bytes | str, metadata: Any, chain: str
    ) -> ScanResult:
        """Scan one artifact. Wrap it in ``asyncio.timeout``: that fires even when the backend never yields.

        A scan abandoned this way may keep running in its thread; :meth:`start_scan` says when it ends.
        """
        return await self.start_scan(guid, artifact_type, content, metadata, chain).result()

    @property
    def has_own_bid(self) -> bool:
        """The engine class overrides ``AbstractMicroengine.bid()``."""
        return isinstance(self.impl, AbstractMicroengine) and type(self.impl).bid is not AbstractMicroengine.bid

    @property
    def has_custom_bid(self) -> bool:
        """The backend bids itself: its own ``bid()``, else its package's 2.x bid strategy."""
        return self.has_own_bid or self.bid_strategy is not None

    async def _bid_limits(self, chain: str) -> tuple[int, int] | None:
        """The bounty's bid range, from the engine's client (its cached bounty parameters)."""
        if self._client is None:
            return None
        params = await self._client.wrapped.bounty_parameters(chain)
        return int(params.assertion_bid_minimum), int(params.assertion_bid_maximum)

    async def custom_bid(
        self,
        guid: str,
        mask: Sequence[bool],
        verdicts: Sequence[bool],
        confidences: Sequence[float],
        metadatas: Sequence[str],
        chain: str,
        limits: tuple[int, int] | None = None,
    ) -> int | list[int] | None:
        """The engine's own ``bid()`` answer (1.x ``bid(guid, chain)`` or 2.x ``bid(guid, mask, ...)``), else its
        package's bid strategy's ``bid(guid, mask, verdicts, confidences, metadatas, min, max, chain)`` with the
        bounty's bid range (``limits``, by default read from the client), as polyswarm-client 2.x called it.

        It runs on the backend's loop; with no answer within :data:`BID_TIMEOUT` seconds it is ``None``
        (the engine's ``--bid-strategy`` decides), with a warning.
        """
        bid: Callable[..., Any]
        args: tuple[Any, ...]
        if self.has_own_bid:
            bid = self.impl.bid
            if _positional_arity(bid) == 2:
                args = (guid, chain)
            else:
                args = (guid, list(mask), list(verdicts), list(confidences), list(metadatas), chain)
        elif self.bid_strategy is not None:
            limits = limits or await self._bid_limits(chain)
            if limits is None:
                return None
            bid = self.bid_strategy.bid
            args = (guid, list(mask), list(verdicts), list(confidences), list(metadatas), *limits, chain)
        else:
            return None
        job = self._on_backend_loop(f"bid on bounty {guid}", lambda: maybe_await(bid(*args)))
        try:
            async with asyncio.timeout(BID_TIMEOUT):
                result = await job.result()
        except TimeoutError:
            log.warning(
                "backend %s: bid() for bounty %s did not answer within %.0fs; using --bid-strategy",
                self.name,
                guid,
                BID_TIMEOUT,
            )
            return None
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
    bid_strategy: Any = None,
) -> Backend:
    """Instantiate a backend class the way its base class expects.

    An ``AbstractMicroengine`` gets ``client`` wrapped in an :class:`EngineClientProxy`, so the coroutine
    methods it awaits from its own loop run on the engine's loop. ``bid_strategy`` (a 2.x
    ``BidStrategyBase``, see :func:`~polyswarmclient.backends.loader.find_bid_strategy`) bids for a backend
    without its own ``bid()``.
    """
    label = name or cls.__qualname__
    proxy = EngineClientProxy(client) if client is not None else None
    impl: Any
    try:
        if issubclass(cls, AbstractMicroengine):
            kwargs = _accepted_kwargs(
                cls, {"testing": testing, "chains": set(chains), "artifact_types": list(artifact_types)}
            )
            impl = cls(proxy, **kwargs)
        else:
            impl = cls()
    except PolyswarmError:
        raise  # already one line that says what to fix (a backend reading its settings, say)
    except Exception as exc:
        raise ConfigError(f"backend {label!r} could not be created: {exc.__class__.__name__}: {exc}") from exc
    return Backend(label, impl, proxy, bid_strategy)
