"""A BidStrategyBase subclass in the backend's package bids for the engine, as polyswarm-client 2.x did."""

import asyncio
import sys
import textwrap

import pytest

from polyswarmclient.backends import load_backend_class
from polyswarmclient.errors import ConfigError
from polyswarmclient.services.evaluation import DEVNET_PARAMETERS
from polyswarmclient.services.microengine import EngineConfig
from polyswarmclient.services.microengine.build import make_backend

ENGINE = textwrap.dedent(
    """
    from polyswarmclient.abstractscanner import AbstractScanner, ScanResult
    from polyswarmclient.bidstrategy import BidStrategyBase, DefaultBidStrategy

    class BidStrategy(BidStrategyBase):
        def __init__(self):
            super().__init__(min_bid_multiplier=4, max_bid_multiplier=4)

    class Scanner(AbstractScanner):
        async def scan_async(self, guid, artifact_type, content, metadata, chain):
            return ScanResult(bit=True, verdict=True, confidence=1.0)
    """
)


class ParametersOnly:
    """The one client call a package strategy needs: the bounty's bid range."""

    address = "0x" + "11" * 20

    async def bounty_parameters(self, chain="side", *, refresh=False):
        return DEVNET_PARAMETERS


@pytest.fixture
def engine_class(tmp_path, monkeypatch):
    name = f"strategy_engine_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(ENGINE)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield load_backend_class(f"{name}:Scanner", app_dir=tmp_path)
    sys.modules.pop(name, None)


def bid_with(backend):
    async def go():
        await backend.setup()
        try:
            return await backend.custom_bid("guid", [True, True], [True, False], [1.0, 0.2], ["", ""], "side")
        finally:
            await backend.teardown()

    return asyncio.run(go())


def test_the_package_strategy_bids_four_times_the_minimum(engine_class):
    """The engine's backend bids 4x the bounty's minimum on each asserted artifact, whatever the confidence."""
    backend = make_backend(ParametersOnly(), engine_class, "strategy_engine", EngineConfig())
    assert type(backend.bid_strategy).__name__ == "BidStrategy"  # not the imported DefaultBidStrategy
    assert bid_with(backend) == [4 * DEVNET_PARAMETERS.assertion_bid_minimum] * 2


def test_an_explicit_bid_strategy_turns_it_off(engine_class):
    """With --bid-strategy given (package_bid_strategy off), the backend has no bid of its own."""
    backend = make_backend(ParametersOnly(), engine_class, "strategy_engine", EngineConfig(package_bid_strategy=False))
    assert backend.bid_strategy is None and not backend.has_custom_bid
    assert bid_with(backend) is None


def test_built_in_backends_have_none():
    """eicar (a polyswarm-kit backend) never picks up a strategy."""
    backend = make_backend(ParametersOnly(), load_backend_class("eicar"), "eicar", EngineConfig())
    assert backend.bid_strategy is None


def test_two_unnamed_strategies_are_a_configuration_error(tmp_path, monkeypatch):
    """Two strategies, neither called BidStrategy: one line asking to name one."""
    name = f"two_strategies_{tmp_path.name.replace('-', '_')}"
    source = ENGINE.replace("class BidStrategy(", "class Low(") + "\nclass High(Low):\n    pass\n"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.setattr(sys, "path", list(sys.path))
    cls = load_backend_class(f"{name}:Scanner", app_dir=tmp_path)
    with pytest.raises(ConfigError, match="several bid strategies"):
        make_backend(ParametersOnly(), cls, name, EngineConfig())
    sys.modules.pop(name, None)
