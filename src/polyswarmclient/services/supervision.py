"""The one owner of a service's tasks: :class:`Supervisor`.

Every service (microengine, ambassador, arbiter, balance manager) runs inside one::

    async with Supervisor(log, shutdown, FatalErrors(testing=True)) as supervisor:
        supervisor.consume(client, chains, self.dispatch)   # one reader task per chain
        supervisor.spawn(work, "settle of bounty 1234")      # work, each behind its own error boundary
        await supervisor.serve()                            # until a stop request; drains once

* :meth:`Supervisor.spawn` starts work in the service's ``asyncio.TaskGroup`` behind an error boundary:
  an error is logged and the service goes on, unless it is fatal.
* :meth:`Supervisor.consume` reads ``client.events(chain)`` for each chain, with one error boundary per
  event. A stream that ends while the service is not stopping is an error (the real stream reconnects
  forever, so an end means polyswarmd went away for good).
* :meth:`Supervisor.serve` waits for the first stop request (the :class:`Shutdown` the CLI sets on the
  first signal) or for :meth:`Supervisor.finish` (``--testing`` is done), then drains once, as uvicorn
  does: in-flight work, and work that falls due meanwhile, gets the grace period; what is left is
  cancelled and named. A second signal is the CLI's business: it cancels the whole run.
* :class:`FatalErrors` says which errors stop the service: a refused API key always, and in ``--testing``
  mode transaction and funds errors too, so a broken test run exits non-zero. A fatal error leaves the
  ``async with`` as itself, so it keeps its type and exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from polyswarmclient.errors import (
    InsufficientFunds,
    PolyswarmError,
    TransactionError,
    TransportError,
    Unauthorized,
)
from polyswarmclient.log import fields as log_fields
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.wire.events import Block, Event

Work = Callable[[], Awaitable[None]]
Dispatch = Callable[[Event], Awaitable[None] | None]


@dataclass(frozen=True)
class FatalErrors:
    """Which errors stop a service instead of costing one task or one event."""

    testing: bool = False
    #: Fatal in every mode: retrying cannot fix a refused API key.
    always: tuple[type[Exception], ...] = (Unauthorized,)
    #: Fatal in ``--testing`` mode (reference §2.13): a test run that lost money or a transaction failed.
    in_testing: tuple[type[Exception], ...] = (TransactionError, InsufficientFunds)

    def __call__(self, error: BaseException) -> bool:
        return isinstance(error, self.always) or (self.testing and isinstance(error, self.in_testing))


class Supervisor:
    """Owns one service's TaskGroup: its event readers, its work, and the drain on the first stop request.

    ``unfinished`` counts what the service still has to finish although no task runs for it right now
    (a bounty waiting for its settle block); the drain waits for those too.
    """

    def __init__(
        self,
        log: logging.Logger,
        shutdown: Shutdown,
        fatal: FatalErrors | None = None,
        *,
        unfinished: Callable[[], int] = lambda: 0,
        stop_note: str = "finishing in-flight work",
    ) -> None:
        self.log = log
        self.shutdown = shutdown
        self.is_fatal = fatal or FatalErrors()
        self._unfinished = unfinished
        self._stop_note = stop_note
        self._group: asyncio.TaskGroup | None = None
        self._work: dict[asyncio.Task[None], str] = {}
        self._readers: list[asyncio.Task[None]] = []
        self._handling = 0  # events whose (async) handling is under way in a reader
        self._changed = asyncio.Event()  # work started or ended: the drain looks again
        self._finished = asyncio.Event()
        self._closed = False

    @property
    def testing(self) -> bool:
        return self.is_fatal.testing

    # --- the TaskGroup -----------------------------------------------------------------------------

    async def __aenter__(self) -> Supervisor:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        group, self._group = self._group, None
        assert group is not None, "Supervisor used outside `async with`"
        self._close()
        try:
            await group.__aexit__(kind, error, tb)
        except BaseExceptionGroup as errors:
            raise first_error(errors) from None

    # --- starting work -----------------------------------------------------------------------------

    def spawn(
        self,
        work: Work,
        label: str,
        *,
        on_error: Callable[[Exception], None] | None = None,
        essential: bool = False,
    ) -> bool:
        """Run ``work()`` in its own task behind an error boundary; False once the service has stopped.

        ``label`` names the work in log lines ("<label> failed: ..."). ``on_error`` sees every error first
        (to give the bounty up, say), fatal or not. An error in ``essential`` work (a loop the service
        cannot do without) always stops the service.
        """
        if self._group is None or self._closed:
            self.log.debug("%s not started: the service has stopped", label)
            return False
        task = self._group.create_task(self._guarded(work, label, on_error, essential), name=label)
        self._work[task] = label
        task.add_done_callback(self._forget)
        self._changed.set()
        return True

    async def _guarded(
        self, work: Work, label: str, on_error: Callable[[Exception], None] | None, essential: bool
    ) -> None:
        try:
            await work()
        except Exception as exc:
            if on_error is not None:
                on_error(exc)
            if essential or self.is_fatal(exc):
                raise
            self._log_failure(exc, "%s failed", label)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._work.pop(task, None)
        self._changed.set()

    def consume(self, client: Any, chains: Iterable[str], dispatch: Dispatch) -> None:
        """Start one reader per chain feeding ``client.events(chain)`` to ``dispatch``, one event at a time.

        ``dispatch`` may be a coroutine function; the reader then awaits each event's handling, and the drain
        waits for the one under way.
        """
        assert self._group is not None, "Supervisor used outside `async with`"
        for chain in chains:
            self._readers.append(self._group.create_task(self._read(client, chain, dispatch), name=f"{chain} events"))

    async def _read(self, client: Any, chain: str, dispatch: Dispatch) -> None:
        async with opened(client.events(chain)) as stream:
            async for event in stream:
                try:
                    # JSON log lines of this event's handling, and of the work it starts, say what it was about.
                    with log_fields(chain=chain, **_about(event)):
                        handling = dispatch(event)
                        if handling is not None:
                            self._handling += 1
                            try:
                                await handling
                            finally:
                                self._handling -= 1
                                self._changed.set()
                except Exception as exc:
                    if self.is_fatal(exc):
                        raise
                    self._log_failure(exc, "could not handle %s event %s", chain, type(event).__name__)
        if not self.stopping:
            raise TransportError(f"the {chain} event stream ended unexpectedly; polyswarmd may have shut down")

    def _log_failure(self, exc: Exception, message: str, *args: object) -> None:
        if isinstance(exc, PolyswarmError):
            self.log.error(message + ": %s", *args, exc, exc_info=self.log.isEnabledFor(logging.DEBUG))
        else:  # a bug: the traceback helps
            self.log.exception(message + ": unexpected %s: %s", *args, type(exc).__name__, exc)

    # --- stopping ----------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """A stop was requested or the service finished: take no new work."""
        return self.shutdown.requested or self._finished.is_set()

    @property
    def finished(self) -> bool:
        """:meth:`finish` was called."""
        return self._finished.is_set()

    def finish(self) -> None:
        """The service is done (``--testing`` reached its count): :meth:`serve` stops like on a request."""
        self._finished.set()

    async def wait_for_stop(self, within: float | None = None, *, wake: asyncio.Event | None = None) -> bool:
        """Wait until the service is stopping, at most ``within`` seconds (or until ``wake`` is set, for a
        caller that waits for something else as well); True when it is stopping."""
        if self.stopping:
            return True
        events = (self.shutdown.wait(), self._finished.wait(), *([wake.wait()] if wake is not None else []))
        waiters = [asyncio.ensure_future(event) for event in events]
        try:
            await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self.stopping

    async def serve(self) -> list[str]:
        """Run until the first stop request or :meth:`finish`, drain once, stop the rest.

        Returns the labels of the work the grace period cut short.
        """
        await self.wait_for_stop()
        if self.shutdown.requested:
            self.log.warning("stopping: %s; %s", self.shutdown.reason or "stop requested", self._stop_note)
        left = await self.drain(self.shutdown.grace)
        self._close()
        return left

    def _busy(self) -> bool:
        return bool(self._work) or self._handling > 0 or self._unfinished() > 0

    async def drain(self, grace: float) -> list[str]:
        """Wait up to ``grace`` seconds for in-flight work, including work that falls due meanwhile; then
        cancel what is left and say what it was (its labels are returned)."""
        if not self._busy():
            return []
        waiting = f"{len(self._work) + self._handling} in-flight task(s)"
        if unfinished := self._unfinished():
            waiting += f" and {unfinished} unfinished bounty(ies)"
        self.log.info("waiting up to %.0f s for %s", grace, waiting)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._busy() and (remaining := deadline - loop.time()) > 0:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._changed.wait()
        left = sorted(self._work.values())
        if left:
            self.log.warning(
                "%d task(s) still running after the grace period were stopped: %s", len(left), ", ".join(left)
            )
        for task in list(self._work):
            task.cancel()
        return left

    def _close(self) -> None:
        """No new work from now on; cancel the readers and whatever still runs."""
        self._closed = True
        for task in [*self._readers, *self._work]:
            task.cancel()


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error of a (possibly nested) exception group, errors before cancellations.

    A ``PolyswarmError`` raised in a service task keeps its type (and so its exit code) this way.
    """
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return first_error(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return group.exceptions[0]


@contextlib.asynccontextmanager
async def opened(stream: Any) -> AsyncIterator[Any]:
    """Enter ``stream`` when it is an async context manager (the facade's ``EventStream``), else use it."""
    if hasattr(stream, "__aenter__"):
        async with stream as entered:
            yield entered if entered is not None else stream
    else:
        try:
            yield stream
        finally:
            close = getattr(stream, "aclose", None)
            if close is not None:
                await close()


def _about(event: object) -> dict[str, object]:
    """The log fields an event names: its bounty's ``guid``, a block's number as ``block``."""
    about: dict[str, object] = {}
    if isinstance(event, Block):
        about["block"] = event.number
    guid = getattr(event, "guid", None) or getattr(event, "bounty_guid", None)
    if isinstance(guid, str):
        about["guid"] = guid
    return about


__all__ = ["FatalErrors", "Supervisor", "first_error", "opened"]
