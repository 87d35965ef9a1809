"""The demo's clock: bounty lifetime and windows in blocks, and the seconds between bounties."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Windows:
    """The demo's bounty lifetime and contract windows, in blocks."""

    duration: int
    reveal: int
    vote: int


def demo_windows(block_time: float) -> Windows:
    """Short enough that a bounty settles about 12 blocks after it is posted (12 s with 1 s blocks), long
    enough in seconds that a scan and each transaction fit in their window even with very fast blocks.
    """

    def blocks(at_least: int, seconds: float) -> int:
        return max(at_least, math.ceil(seconds / block_time))

    return Windows(duration=blocks(6, 4.0), reveal=blocks(4, 2.0), vote=blocks(4, 2.0))


def submission_interval(block_time: float) -> float:
    """Seconds between two demo bounties: a few blocks, so bounties overlap as on a real network."""
    return max(2.0, 3 * block_time)


def settle_time(windows: Windows, block_time: float) -> float:
    """Seconds the arbiter may still need after the engine settled (the rest of the vote window)."""
    return (windows.vote + 4) * block_time + 10.0
