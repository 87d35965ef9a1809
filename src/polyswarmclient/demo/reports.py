"""What a demo run reports, in the order it happens: typed values, rendered by whoever runs the demo."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polyswarmclient.demo.scoring import BountyView, Summary
from polyswarmclient.demo.timing import Windows


@dataclass(frozen=True)
class DevnetStarted:
    """The devnet is serving at ``url``; ``moved_from`` is the port asked for when it was taken."""

    url: str
    moved_from: int | None
    block_time: float
    windows: Windows


@dataclass(frozen=True)
class RolesStarted:
    """The arbiter is staked; the ambassador and the engine are about to start."""

    ambassador: str
    arbiter: str
    engine: str
    backend: str
    balance: int  # the engine's sidechain NCT-wei before the first bounty
    state_dir: Path
    bounties: int  # how many bounties the ambassador posts; 0 until stopped
    interval: float  # seconds between two bounties


@dataclass(frozen=True)
class VerdictsRevealed:
    """The engine revealed its verdicts on a bounty it asserted on."""

    view: BountyView


@dataclass(frozen=True)
class BountySettled:
    """The engine settled a bounty (once per bounty, whatever the event stream repeats)."""

    view: BountyView


Report = DevnetStarted | RolesStarted | VerdictsRevealed | BountySettled | Summary
