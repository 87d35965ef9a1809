"""Handing the C heap's free pages back to the system, now and then, in a long-running service.

CPython allocates objects larger than 512 bytes (and the C libraries everything) with ``malloc``. glibc
gives memory back to the system only from the top of its heap, so in a process that runs for months the
pages freed in the middle (a bounty's buffers, replies and records, gone once it is settled) stay resident:
a soak of the microengine showed glibc's bytes in use flat while its heap, and so the RSS, kept growing.
``malloc_trim(0)`` returns every whole free page; it costs about a millisecond on a heap of tens of MB, so
once a minute is plenty. Where there is no glibc (macOS, musl) it does nothing. The devnet calls it after
each sweep of its embedded chains' state, which frees tens of thousands of trie nodes scattered through
the heap.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

#: Seconds between two trims: RSS follows the memory in use within a minute, at about a millisecond a minute.
TRIM_EVERY = 60.0


def _find_malloc_trim() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # here: only a running service needs it, not ``--help``

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library: glibc has it, musl does not
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM: Any = None
_LOOKED_UP = False


def release_freed_memory() -> bool:
    """Hand the free pages of the C heap back to the system; False where there is no ``malloc_trim``."""
    global _MALLOC_TRIM, _LOOKED_UP
    if not _LOOKED_UP:
        _MALLOC_TRIM, _LOOKED_UP = _find_malloc_trim(), True
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class HeapTrimmer:
    """Calls :func:`release_freed_memory` at most once every ``every`` seconds, when asked to."""

    def __init__(self, every: float = TRIM_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._last = clock()

    def maybe(self) -> bool:
        """Trim if the last trim is ``every`` seconds old; True when it trimmed."""
        now = self._clock()
        if now - self._last < self.every:
            return False
        self._last = now
        return release_freed_memory()
