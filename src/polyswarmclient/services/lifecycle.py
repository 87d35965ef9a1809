"""Graceful shutdown shared by every service: the first request drains, the shell forces on the second."""

from __future__ import annotations

import asyncio
import contextlib

#: Seconds in-flight work gets after the first stop request (``--shutdown-grace``).
DEFAULT_GRACE = 30.0


class Shutdown:
    """A stop request that services poll or await.

    The CLI calls :meth:`request` on the first SIGTERM/SIGINT; the service stops taking new work and
    drains what is in flight for up to ``grace`` seconds. A second signal cancels the main task.
    """

    def __init__(self, grace: float = DEFAULT_GRACE) -> None:
        self.grace = grace
        self._event = asyncio.Event()
        self.reason = ""

    def request(self, reason: str = "stop requested") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    async def wait(self, within: float | None = None) -> bool:
        """Wait for a stop request, at most ``within`` seconds; True when one was made."""
        if within is None:
            await self._event.wait()
        else:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._event.wait()
        return self.requested
