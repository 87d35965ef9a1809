"""The microengine: the service that scans bounties and asserts on them (commit, reveal, settle).

Pure cores: :mod:`.bidding`, :mod:`.schedule`, :mod:`.filters`; durable state: :mod:`.state`; the
service shell: :mod:`.engine`.
"""

from polyswarmclient.services.microengine.engine import EngineClient, EngineConfig, EngineStats, Microengine

__all__ = ["EngineClient", "EngineConfig", "EngineStats", "Microengine"]
