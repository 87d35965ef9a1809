"""The microengine: the service that scans bounties and asserts on them (commit, reveal, settle).

Pure cores: :mod:`.planning` (scan results to bids, mask and verdicts), :mod:`.bidding`,
:mod:`.schedule`, :mod:`.filters`; durable state: :mod:`.state`, kept in step with the schedule by
:mod:`.book`; the steps: :mod:`.asserting` (with :mod:`.scanning`), :mod:`.steps`, :mod:`.catchup`,
:mod:`.quota`; the dispatcher: :mod:`.engine`.

The names below are imported on first use (the CLI imports the light modules, such as :mod:`.config`,
to declare its options, without the client stack).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyswarmclient.services.microengine.config import EngineClient, EngineConfig, EngineStats
    from polyswarmclient.services.microengine.engine import Microengine

__all__ = ["EngineClient", "EngineConfig", "EngineStats", "Microengine"]


def __getattr__(name: str) -> Any:
    if name in ("EngineClient", "EngineConfig", "EngineStats"):
        from polyswarmclient.services.microengine import config

        return getattr(config, name)
    if name == "Microengine":
        from polyswarmclient.services.microengine.engine import Microengine

        return Microengine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
