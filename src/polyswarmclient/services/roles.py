"""What the devnet roles (:mod:`.ambassador`, :mod:`.arbiter`) share: a book of bounties and a supervised run.

Each role follows its bounties through phases of its own, driven by blocks, and hands every step of a
bounty to its :class:`~polyswarmclient.services.supervision.Supervisor`. A stop request waits (up to the
grace period) for the bounties still unfinished; in ``--testing`` mode every error is fatal, so a broken
run exits non-zero.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.supervision import FatalErrors, Supervisor
from polyswarmclient.wire.events import Event


class Tracked(Protocol):
    """One bounty a role follows."""

    guid: str
    chain: str
    phase: Any  # a member of the role's phase enum


@dataclass
class Report:
    """What a role's run did (each role adds its own outcomes); ``run`` returns it."""

    settled: list[str] = field(default_factory=list)


class RoleSettings(Protocol):
    @property
    def chains(self) -> tuple[str, ...]: ...
    @property
    def testing(self) -> int: ...


class RoleClient(Protocol):
    """What every role needs from the client facade."""

    async def settle(self, guid: str, chain: str = ...) -> Any: ...
    def events(self, chain: str) -> Any: ...


B = TypeVar("B", bound=Tracked)
C = TypeVar("C", bound=RoleClient)
S = TypeVar("S", bound=RoleSettings)
R = TypeVar("R", bound=Report)


class Role(Generic[B, C, S, R]):
    """Base of the roles: ``bounties`` by GUID, the newest block per chain, and the supervisor of a run.

    ``final`` are the phases after which a bounty needs nothing more from the role; ``settled`` is the
    phase of a bounty it has settled.
    """

    def __init__(
        self, client: C, settings: S, report: R, *, log: logging.Logger, final: tuple[Any, ...], settled: Any
    ) -> None:
        self.client = client
        self.settings = settings
        self.report = report
        self.log = log
        self.final_phases = final
        self.settled_phase = settled
        self.bounties: dict[str, B] = {}
        self._latest_block: dict[str, int] = {}
        self._supervisor: Supervisor | None = None

    @property
    def supervisor(self) -> Supervisor:
        assert self._supervisor is not None, f"{type(self).__name__}.run() owns the tasks"
        return self._supervisor

    def unfinished(self) -> int:
        """Bounties that still need something from this role."""
        return sum(1 for b in self.bounties.values() if b.phase not in self.final_phases)

    def newer_block(self, chain: str, number: int) -> bool:
        """Remember ``number`` as the newest block of ``chain``; False when it is not newer (blocks repeat)."""
        if number <= self._latest_block.get(chain, -1):
            return False
        self._latest_block[chain] = number
        return True

    def dispatch(self, event: Event) -> None:
        """Route one event (each role matches the events it cares about)."""
        raise NotImplementedError

    async def settle(self, bounty: B) -> None:
        """Settle ``bounty`` (its payouts go out) and record it."""
        self.log.info("settling bounty %s", bounty.guid)
        await self.client.settle(bounty.guid, bounty.chain)
        bounty.phase = self.settled_phase
        self.report.settled.append(bounty.guid)

    async def supervise(self, shutdown: Shutdown, *, stop_note: str, start: Callable[[Supervisor], None]) -> Supervisor:
        """Consume the client's events on every chain, ``start`` the role's own work, serve until stopped."""
        fatal = FatalErrors(testing=bool(self.settings.testing), in_testing=(Exception,))
        supervisor = Supervisor(self.log, shutdown, fatal, unfinished=self.unfinished, stop_note=stop_note)
        async with supervisor:
            self._supervisor = supervisor
            supervisor.consume(self.client, self.settings.chains, self.dispatch)
            start(supervisor)
            await supervisor.serve()
        return supervisor
