"""Small helpers the devnet roles share for owning tasks and stopping cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from polyswarmclient.errors import TransportError

if TYPE_CHECKING:
    from polyswarmclient.services.lifecycle import Shutdown
    from polyswarmclient.wire.events import Event


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf of a (possibly nested) exception group, so a TaskGroup failure surfaces as itself.

    A ``PolyswarmError`` raised in a service task keeps its type (and so its exit code) this way.
    """
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


async def wait_first(*events: asyncio.Event) -> None:
    """Wait until any of ``events`` is set."""
    if any(event.is_set() for event in events):
        return
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``event`` is set first. True when the event cut the sleep short."""
    if event.is_set():
        return True
    if seconds <= 0:
        return False
    try:
        await asyncio.wait_for(event.wait(), seconds)
    except TimeoutError:
        return False
    return True


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


async def stop_on_request(shutdown: Shutdown, stop: asyncio.Event, log: logging.Logger, what: str) -> None:
    """Wait for a stop request, log it (``what`` says what stops), and set ``stop`` for the service's loops."""
    await shutdown.wait()
    log.info("%s: %s", shutdown.reason or "stop requested", what)
    stop.set()


async def drain(idle: asyncio.Event, unfinished: int, busy: bool, grace: float, log: logging.Logger) -> None:
    """Give ``unfinished`` bounties (and any running ``busy`` step) up to ``grace`` seconds to finish."""
    if not unfinished and not busy:
        return
    log.info("waiting up to %.0f s for %d unfinished bounty(ies)", grace, unfinished)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(idle.wait(), grace)


async def consume(
    client: Any,
    chain: str,
    dispatch: Callable[[Event], None],
    log: logging.Logger,
    *,
    finished: Callable[[], bool],
) -> None:
    """Feed ``chain``'s events to ``dispatch``, one error boundary
    per event so a bad one never stops the service. A stream that ends before ``finished()`` is an error."""
    async with opened(client.events(chain)) as stream:
        async for event in stream:
            try:
                dispatch(event)
            except Exception:
                log.exception("could not handle %s event %s", chain, type(event).__name__)
    if not finished():
        raise TransportError(f"the {chain} event stream ended unexpectedly")
