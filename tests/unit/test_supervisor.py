"""The Supervisor every service runs in: error boundaries, event readers, the one drain, the fatal rule."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from polyswarmclient.errors import (
    ConnectionFailed,
    InsufficientFunds,
    ScanError,
    TransactionFailed,
    TransportError,
    Unauthorized,
)
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.supervision import FatalErrors, Supervisor
from polyswarmclient.wire.events import Block, Event

log = logging.getLogger("tests.supervisor")  # propagates to caplog whatever setup_logging did


class Events:
    """A client whose event streams are in-memory queues; ``end()`` ends every stream."""

    def __init__(self) -> None:
        self.queues: dict[str, asyncio.Queue[Event | None]] = {}

    def events(self, chain: str) -> AsyncIterator[Event]:
        queue = self.queues.setdefault(chain, asyncio.Queue())

        async def stream() -> AsyncIterator[Event]:
            while (event := await queue.get()) is not None:
                yield event

        return stream()

    def push(self, *numbers: int, chain: str = "side") -> None:
        for number in numbers:
            self.queues[chain].put_nowait(Block(number=number, chain=chain))

    def end(self) -> None:
        for queue in self.queues.values():
            queue.put_nowait(None)


async def test_rule_unauthorized_always_and_money_errors_in_testing() -> None:
    """A refused API key is always fatal; transaction and funds errors only in --testing mode."""
    normal, testing = FatalErrors(), FatalErrors(testing=True)
    assert normal(Unauthorized("401")) and testing(Unauthorized("401"))
    for error in (TransactionFailed("reverted"), InsufficientFunds("poor")):
        assert not normal(error) and testing(error)
    assert not testing(ConnectionFailed("down")) and not testing(ScanError("bad"))
    assert FatalErrors(testing=True, in_testing=(Exception,))(ScanError("bad"))


async def test_a_failing_task_is_logged_and_the_service_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """One task's error costs that task: it is logged with its label and the next task still runs."""
    shutdown = Shutdown(grace=1)
    ran: list[str] = []
    seen: list[Exception] = []

    async def broken() -> None:
        raise ConnectionFailed("polyswarmd went away")

    async def fine() -> None:
        ran.append("fine")
        shutdown.request("done")

    async with Supervisor(log, shutdown) as supervisor:
        supervisor.spawn(broken, "settle of bounty 1", on_error=seen.append)
        await asyncio.sleep(0)
        supervisor.spawn(fine, "settle of bounty 2")
        await supervisor.serve()
    assert ran == ["fine"] and [str(e) for e in seen] == ["polyswarmd went away"]
    assert "settle of bounty 1 failed: polyswarmd went away" in caplog.text


async def test_a_fatal_error_stops_the_service_as_itself() -> None:
    """In --testing mode a reverted transaction leaves the ``async with`` with its own type."""

    async def reverts() -> None:
        raise TransactionFailed("reveal reverted")

    with pytest.raises(TransactionFailed, match="reveal reverted"):
        async with Supervisor(log, Shutdown(), FatalErrors(testing=True)) as supervisor:
            supervisor.spawn(reverts, "reveal of bounty 1")
            await supervisor.serve()


async def test_essential_work_stops_the_service_on_any_error() -> None:
    """An error in a loop the service cannot do without stops the service even outside testing mode."""

    async def loop() -> None:
        raise ScanError("posting loop broke")

    with pytest.raises(ScanError):
        async with Supervisor(log, Shutdown()) as supervisor:
            supervisor.spawn(loop, "posting on side", essential=True)
            await supervisor.serve()


async def test_one_bad_event_never_stops_the_reader(caplog: pytest.LogCaptureFixture) -> None:
    """An event whose handling raises is logged; the following events are still handled, in order."""
    client, handled, shutdown = Events(), [], Shutdown()

    def dispatch(event: Event) -> None:
        assert isinstance(event, Block)
        if event.number == 2:
            raise ValueError("bad block")
        handled.append(event.number)
        if event.number == 3:
            shutdown.request("done")

    async with Supervisor(log, shutdown) as supervisor:
        supervisor.consume(client, ["side"], dispatch)
        await asyncio.sleep(0)
        client.push(1, 2, 3)
        await supervisor.serve()
    assert handled == [1, 3]
    assert "could not handle side event Block: unexpected ValueError: bad block" in caplog.text


async def test_a_stream_that_ends_unexpectedly_is_an_error() -> None:
    """The real stream reconnects forever, so an end while the service runs means polyswarmd is gone."""
    client = Events()
    with pytest.raises(TransportError, match="side event stream ended unexpectedly"):
        async with Supervisor(log, Shutdown()) as supervisor:
            supervisor.consume(client, ["side"], lambda event: None)
            await asyncio.sleep(0)
            client.end()
            await supervisor.serve()


async def test_drain_waits_for_work_that_falls_due_meanwhile() -> None:
    """After a stop request, work started by events during the grace period is waited for too."""
    client, shutdown, done = Events(), Shutdown(grace=5), []

    async def settle(number: int) -> None:
        await asyncio.sleep(0.05)
        done.append(number)

    def dispatch(event: Event) -> None:
        assert isinstance(event, Block)
        supervisor.spawn(lambda: settle(event.number), f"settle at block {event.number}")

    supervisor = Supervisor(log, shutdown)
    async with supervisor:
        supervisor.consume(client, ["side"], dispatch)
        await asyncio.sleep(0)
        client.push(1)
        await asyncio.sleep(0.01)
        shutdown.request("SIGTERM received")
        client.push(2)  # falls due while draining
        left = await supervisor.serve()
    assert done == [1, 2] and left == []


async def test_drain_gives_up_after_the_grace_period_and_names_what_was_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Work outliving the grace period is cancelled and named, so a stop request never hangs."""
    shutdown = Shutdown(grace=0.05)

    async with Supervisor(log, shutdown) as supervisor:
        supervisor.spawn(lambda: asyncio.sleep(30), "scan of bounty 7")
        shutdown.request("SIGTERM received")
        left = await asyncio.wait_for(supervisor.serve(), 2)
    assert left == ["scan of bounty 7"]
    assert "still running after the grace period were stopped: scan of bounty 7" in caplog.text
    assert not supervisor.spawn(lambda: asyncio.sleep(0), "too late")


async def test_drain_waits_for_unfinished_bounties_without_a_task() -> None:
    """What the service reports as unfinished is waited for until it is finished or the grace is over."""
    unfinished = [1]
    shutdown = Shutdown(grace=5)

    async def finish_later() -> None:
        await asyncio.sleep(0.05)
        unfinished.clear()

    async with Supervisor(log, shutdown, unfinished=lambda: len(unfinished)) as supervisor:
        shutdown.request("SIGTERM received")
        asyncio.get_running_loop().call_later(0.05, lambda: supervisor.spawn(finish_later, "settle"))
        await asyncio.wait_for(supervisor.serve(), 2)
    assert unfinished == []


async def test_async_dispatch_is_finished_before_the_reader_stops() -> None:
    """A stop request during an awaited event handler lets that handler complete (never half a step)."""
    client, shutdown, steps = Events(), Shutdown(grace=5), []

    async def step(event: Event) -> None:
        steps.append("started")
        shutdown.request("SIGTERM received")
        await asyncio.sleep(0.05)
        steps.append("finished")

    async with Supervisor(log, shutdown) as supervisor:
        supervisor.consume(client, ["home"], step)
        await asyncio.sleep(0)
        client.push(1, chain="home")
        await supervisor.serve()
    assert steps == ["started", "finished"]


async def test_finish_stops_like_a_request_and_cuts_waits_short() -> None:
    """``finish()`` (--testing done) ends serve(); a pending wait_for_stop returns True at once."""
    async with Supervisor(log, Shutdown()) as supervisor:
        assert not await supervisor.wait_for_stop(0.01)
        waiting = asyncio.ensure_future(supervisor.wait_for_stop(30))
        await asyncio.sleep(0)
        supervisor.finish()
        assert await asyncio.wait_for(waiting, 1) and supervisor.stopping and supervisor.finished
        await asyncio.wait_for(supervisor.serve(), 1)
