"""The microengine: the service that scans bounties and asserts on them (commit, reveal, settle).

Pure cores: :mod:`.planning` (scan results to bids, mask and verdicts), :mod:`.bidding`,
:mod:`.schedule`, :mod:`.filters`; durable state: :mod:`.state`, kept in step with the schedule by
:mod:`.book`; the steps: :mod:`.asserting` (with :mod:`.scanning`), :mod:`.steps`, :mod:`.catchup`,
:mod:`.quota`; the dispatcher: :mod:`.engine`.
"""

from polyswarmclient.services.microengine.engine import EngineClient, EngineConfig, EngineStats, Microengine

__all__ = ["EngineClient", "EngineConfig", "EngineStats", "Microengine"]
