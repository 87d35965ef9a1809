"""``--testing N``: take N bounties, then stop once each of them is finished. All the counting is here.

One quota may serve several engines (one per community, see docs/communities.md): N counts the bounties
of all of them, and each engine subscribes to hear when the run is complete.

A bounty counts from the moment the engine takes it (or finds it in the state directory on a restart:
a bounty taken before the restart is still one of the N) until it is finished: settled, skipped,
failed before anything was posted, or abandoned. A bounty whose assertion may have been posted stays
open until the schedule resolves it, so a test run never exits with a commitment unrevealed.
"""

from __future__ import annotations

from collections.abc import Callable


class TestingQuota:
    """Counts the bounties of a ``--testing N`` run; ``limit`` 0 means no quota (take every bounty)."""

    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, limit: int, on_complete: Callable[[], None] = lambda: None) -> None:
        self.limit = limit
        self.taken = 0
        self._open: set[str] = set()
        self._listeners: list[Callable[[], None]] = [on_complete]

    def subscribe(self, on_complete: Callable[[], None]) -> None:
        """Call ``on_complete`` too once the run is complete (an engine sharing this quota). Without a quota
        nothing completes, so nothing is kept (an engine started again and again adds nothing)."""
        if self.active:
            self._listeners.append(on_complete)

    @property
    def active(self) -> bool:
        return self.limit > 0

    @property
    def full(self) -> bool:
        return self.active and self.taken >= self.limit

    @property
    def complete(self) -> bool:
        """Every one of the N bounties is taken and finished."""
        return self.full and not self._open

    def take(self, guid: str) -> bool:
        """Count ``guid`` as one of the N; False (and not counted) once N are taken."""
        if self.full:
            return False
        self.taken += 1
        if self.active:
            self._open.add(guid)
        return True

    def resume(self, guid: str) -> bool:
        """A bounty from the state directory: one of the N in testing mode (True when it was counted)."""
        if not self.active:
            return False
        self.taken += 1
        self._open.add(guid)
        return True

    def finished(self, guid: str) -> None:
        """``guid`` needs nothing more; the run completes with the last of the N."""
        if not self.active:
            return
        self._open.discard(guid)
        if self.complete:
            for listener in list(self._listeners):
                listener()
