"""Where backend code runs: never on the engine's event loop.

A backend's coroutines (``setup``, ``scan_async`` or an async ``scan``, ``bid``, ``teardown``) run on the
backend's own event loop in a daemon thread (:class:`BackendLoop`, one per backend instance, so
connections and state a backend keeps across scans stay on one loop). A synchronous scan
(``ScanMode.SYNC``'s ``scan_sync``, or a plain ``def scan``) runs in a daemon thread of its own.

The engine sees each call as a :class:`Job`: it awaits :meth:`Job.result` on its own loop, with its own
timeout, which therefore fires even when the backend never yields. A job the engine gave up on may keep
running; :meth:`Job.when_finished` says when it really ends, so the caller can bound how many such
stuck calls pile up. Threads are daemons, so a backend stuck for good never keeps the process alive.

:class:`EngineClientProxy` is what a backend gets as its ``client``: coroutine methods it awaits from its
own loop run on the engine's loop (where the client's connections live) and hand their answer back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

log = logging.getLogger("microengine.backend")

T = TypeVar("T")

__all__ = ["BackendLoop", "EngineClientProxy", "Job"]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _call_on(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    """``callback()`` on ``loop`` soon, from any thread; nothing when that loop is closed."""
    try:
        loop.call_soon_threadsafe(callback)
    except RuntimeError:  # the loop is closed: nobody is waiting any more
        pass


class Job(Generic[T]):
    """One call into a backend, running in its thread or on its loop.

    ``_result`` carries the answer; ``_finished`` resolves when the backend code has really returned
    (whether or not anybody still waits for it), always before ``_result``.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._result: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._finished: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._cancel: Callable[[], None] = lambda: None

    @property
    def finished(self) -> bool:
        """The backend code of this job has returned (or raised, or was cancelled)."""
        return self._finished.done()

    async def result(self) -> T:
        """The backend's answer, awaited on the caller's loop. Cancelling this (a timeout) asks the backend
        to stop (a coroutine is cancelled at its next ``await``; a thread cannot be) and returns at once."""
        try:
            return await asyncio.wrap_future(self._result)
        except asyncio.CancelledError:
            self._cancel()
            raise

    def wait(self) -> T:
        """Block the calling thread until the answer (for a worker thread; never call it on a loop)."""
        return self._result.result()

    def when_finished(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` on the caller's loop once the backend code has returned (at once if it has)."""
        loop = asyncio.get_running_loop()
        self._finished.add_done_callback(lambda _: _call_on(loop, callback))

    # --- the worker's side ----------------------------------------------------------------------

    def _start(self) -> bool:
        """The worker is about to run the job; False when the caller already gave up on it."""
        if self._result.set_running_or_notify_cancel():
            return True
        self._finished.set_result(None)
        return False

    def _settle(self, value: T | None = None, error: BaseException | None = None) -> None:
        self._finished.set_result(None)
        if error is not None:
            self._result.set_exception(error)
        else:
            self._result.set_result(value)  # type: ignore[arg-type]

    @classmethod
    def in_thread(cls, what: str, func: Callable[[], T]) -> Job[T]:
        """``func()`` in a new daemon thread."""
        job: Job[T] = cls(what)

        def work() -> None:
            if not job._start():
                return
            try:
                value = func()
            except BaseException as exc:  # handed to the caller, whatever it is
                job._settle(error=exc)
            else:
                job._settle(value)

        threading.Thread(target=work, name=what, daemon=True).start()
        return job


class BackendLoop:
    """A backend's own event loop, running in a daemon thread from :meth:`start` to :meth:`stop`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the loop and its thread (nothing when already running)."""
        if self.running:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                _close(loop)

        self._loop = loop
        self._thread = threading.Thread(target=run, name=f"backend {self.name}", daemon=True)
        self._thread.start()
        ready.wait()

    def submit(self, what: str, make: Callable[[], Coroutine[Any, Any, T]]) -> Job[T]:
        """Run the coroutine ``make()`` on this loop (started if need be) as a :class:`Job`."""
        self.start()
        loop = self._loop
        assert loop is not None
        job: Job[T] = Job(what)
        task: asyncio.Task[T] | None = None

        def begin() -> None:
            nonlocal task
            if not job._start():
                return
            task = loop.create_task(make())
            task.add_done_callback(done)

        def done(finished: asyncio.Task[T]) -> None:
            if finished.cancelled():
                job._settle(error=concurrent.futures.CancelledError())
            elif finished.exception() is not None:
                job._settle(error=finished.exception())
            else:
                job._settle(finished.result())

        def cancel() -> None:  # runs after begin(): callbacks of one loop run in order
            if task is not None:
                task.cancel()

        job._cancel = lambda: _call_on(loop, cancel)
        try:
            loop.call_soon_threadsafe(begin)
        except RuntimeError as exc:  # stopped between start() and here
            job._start()
            job._settle(error=RuntimeError(f"backend {self.name!r} has been stopped"))
            log.debug("backend %s: %s refused: %s", self.name, what, exc)
        return job

    def stop(self, wait: float) -> bool:
        """Stop the loop (its tasks are cancelled); wait up to ``wait`` seconds for the thread. True once it
        ended; False when backend code still blocks it (the daemon thread is left behind)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return True
        _call_on(loop, loop.stop)
        thread.join(wait)
        return not thread.is_alive()


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is still running on a stopped backend loop, then close it."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except Exception:  # pragma: no cover - a backend that refuses to be cancelled
        log.warning("backend loop did not close cleanly", exc_info=True)
    finally:
        loop.close()


class EngineClientProxy:
    """The engine's client as a backend sees it.

    Awaiting one of its coroutine methods from the backend's loop (or from any other loop, e.g.
    ``asyncio.run`` inside ``scan_sync``) runs the call on the engine's loop and returns its answer there.
    Plain attributes and methods are the client's own. Async iterators (``events()``, the page
    iterators) are not marshalled: a backend must not read them.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._home: asyncio.AbstractEventLoop | None = None

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Calls are marshalled to ``loop`` (the engine's) from now on."""
        self._home = loop

    @property
    def wrapped(self) -> Any:
        """The client itself."""
        return self._client

    def __repr__(self) -> str:
        return f"EngineClientProxy({self._client!r})"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def on_engine_loop(*args: Any, **kwargs: Any) -> Any:
            home = self._home
            if home is None or home is _running_loop():
                return await attr(*args, **kwargs)
            coro = attr(*args, **kwargs)
            try:
                future = asyncio.run_coroutine_threadsafe(coro, home)
            except RuntimeError:
                coro.close()
                raise RuntimeError(f"client.{name}(): the engine has stopped") from None
            return await asyncio.wrap_future(future)

        on_engine_loop.__name__ = name
        return on_engine_loop
