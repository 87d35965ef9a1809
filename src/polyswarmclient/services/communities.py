"""Serve several communities from one process: one task per community, none able to stop the others.

Each community has a client of its own (its polyswarmd, API key, pins, rate-limit gate and event
streams); the clients share the wallet's signer and nonce book (see :mod:`polyswarmclient.client.nonces`).
:class:`Communities` runs one service per community (a microengine, say) and keeps them apart:

* every log line and metric written for a community carries its name (log field ``community``; the
  ``chain`` label of a metric reads ``NAME/side``), set once at the top of the community's task;
* a community whose polyswarmd cannot be reached at start (down, 5xx, 429), or goes away before its
  service got going, is retried with capped backoff while the others serve; once serving, its client
  reconnects by itself;
* a community that cannot be served (its API key refused, at start or later; a configuration problem
  such as a pin mismatch) is stopped with one error line, and the others go on;
* the run ends when every community's service has returned. When none could be served at all, the first
  error is raised, so the command exits as it would for that error alone; so is an error that stops
  the whole process (``--testing`` mode's fatal errors), as itself rather than as a task group's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

from polyswarmclient import metrics
from polyswarmclient.errors import ConfigError, PolyswarmError, TransportError, Unauthorized, VerificationError
from polyswarmclient.log import set_fields as set_log_fields
from polyswarmclient.metrics import HEALTH
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.transport.backoff import Backoff

log = logging.getLogger("polyswarmclient.communities")

#: Seconds between tries to reach a community that is down at start: the first, and the cap.
RETRY_BASE = 2.0
RETRY_CAP = 60.0


class CommunityClient(Protocol):
    """What the runner needs of a community's client (``PolyswarmClient``)."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def check_server(self) -> None: ...

    async def learn_contracts(self, kinds: Sequence[str]) -> None: ...

    def pinned_chain_id(self, chain: str) -> int | None: ...


class Communities:
    """Runs ``work(name, client, shutdown)`` for each community, each behind its own boundary."""

    def __init__(
        self,
        clients: Mapping[str, CommunityClient],
        shutdown: Shutdown,
        *,
        retry_base: float = RETRY_BASE,
        retry_cap: float = RETRY_CAP,
    ) -> None:
        if not clients:
            raise ValueError("no community to serve")
        self.clients = dict(clients)
        self.shutdown = shutdown
        self._retry = (retry_base, retry_cap)
        self._done = asyncio.Event()
        #: The communities whose service is running now.
        self.serving: set[str] = set()
        #: Why each stopped community was stopped (its error), by name.
        self.failed: dict[str, PolyswarmError] = {}
        #: (chain, chain id) -> the communities seen on it, to say which ones share a nonce sequence.
        self._chain_ids: dict[tuple[str, int], list[str]] = {}

    def done(self) -> None:
        """Stop waiting for communities that have not started (a ``--testing`` run completed elsewhere)."""
        self._done.set()

    async def run(
        self, work: Callable[[str, CommunityClient, Shutdown], Awaitable[None]], learn: Sequence[str] = ()
    ) -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for name, client in self.clients.items():
                    group.create_task(self._serve(name, client, work, learn), name=f"community {name}")
        except BaseExceptionGroup as errors:  # one error stops the process: show it as itself, not as a group
            raise _first(errors) from None
        if len(self.failed) == len(self.clients):
            raise next(iter(self.failed.values()))
        for name, error in self.failed.items():
            log.error("community %s was stopped: %s", name, error)

    async def _serve(
        self,
        name: str,
        client: CommunityClient,
        work: Callable[[str, CommunityClient, Shutdown], Awaitable[None]],
        learn: Sequence[str],
    ) -> None:
        set_log_fields(community=name)  # this task's context, inherited by every task it starts
        metrics.set_scope(name)
        backoff = Backoff(*self._retry)
        while not (self.shutdown.requested or self._done.is_set()):
            started = False
            try:
                async with client:
                    await client.check_server()
                    await client.learn_contracts(learn)
                    self._note_chain_ids(name, client)
                    started = True
                    self.serving.add(name)
                    HEALTH.serving = True
                    log.info("community %s: serving", name)
                    try:
                        await work(name, client, self.shutdown)
                    finally:
                        self.serving.discard(name)
                return
            except Unauthorized as exc:
                self._stop(name, exc, "its polyswarmd refused the API key; check --api-key for it")
                return
            except (ConfigError, VerificationError) as exc:
                self._stop(name, exc, "it cannot be served as configured")
                return
            except TransportError as exc:
                # Down at start, or gone before its service got going (its parameters, its listing): only
                # this community waits and starts again, from the state directory, as after a restart.
                delay = backoff.delay()
                state = "stopped" if started else "cannot start"
                log.warning(
                    "community %s: %s (%s); trying again in %.0f s while the others serve", name, state, exc, delay
                )
                await self._wait(delay)

    def _note_chain_ids(self, name: str, client: CommunityClient) -> None:
        """Say which communities share a chain (one chain id): they share its nonce sequence. Two sidechains
        with one id are most likely two chains that were given the same id, whose nonces would then clash."""
        for chain in ("home", "side"):
            chain_id = client.pinned_chain_id(chain)
            if chain_id is None:
                continue
            names = self._chain_ids.setdefault((chain, chain_id), [])
            if name in names:
                continue
            names.append(name)
            if len(names) < 2:
                continue
            if chain == "home":
                log.info(
                    "communities %s share homechain %d: one nonce sequence and one home balance",
                    ", ".join(names),
                    chain_id,
                )
            else:
                log.warning(
                    "communities %s report the same sidechain id %d, so they share one nonce sequence on it; "
                    "if these are separate chains, their nonces will clash: give each chain its own chain id",
                    ", ".join(names),
                    chain_id,
                )

    def _stop(self, name: str, error: PolyswarmError, why: str) -> None:
        self.failed[name] = error
        others = [other for other in self.clients if other != name and other not in self.failed]
        tail = f"the others ({', '.join(others)}) go on" if others else "no community is left"
        log.error("community %s: %s (%s); stopped, %s", name, why, error, tail)

    async def _wait(self, seconds: float) -> None:
        stop = asyncio.ensure_future(self.shutdown.wait())
        done = asyncio.ensure_future(self._done.wait())
        try:
            await asyncio.wait({stop, done}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            done.cancel()


def _first(errors: BaseExceptionGroup) -> BaseException:
    """The first error of a task group that is not a cancellation (the others were cancelled because of it)."""
    for error in errors.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return errors.exceptions[0]


__all__ = ["Communities", "CommunityClient"]
