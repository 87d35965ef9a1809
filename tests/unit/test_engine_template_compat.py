"""What engine-template engines import from us and from polyswarm-artifact works as in polyswarm-client 2.x."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
from polyswarmartifact import ArtifactType as ForeignArtifactType
from polyswarmartifact.schema.verdict import Verdict

from polyswarmclient.abstractscanner import AbstractScanner, ArtifactType, ScanMode, ScanResult
from polyswarmclient.backends import create_backend
from polyswarmclient.bidstrategy import (
    AggressiveBidStrategy,
    BidStrategyBase,
    ConservativeBidStrategy,
    DefaultBidStrategy,
    strategy_for_name,
)
from polyswarmclient.cli import installation
from polyswarmclient.cli.microengine import cli as microengine_cli
from polyswarmclient.services.microengine.bidding import STRATEGIES, bids
from tests.helpers import cli_invoker

NCT = 10**18
MINIMUM, MAXIMUM = NCT // 16, NCT


class TemplateBidStrategy(BidStrategyBase):
    def __init__(self) -> None:
        super().__init__(min_bid_multiplier=8, max_bid_multiplier=8)


async def test_template_bid_strategy_bids_eight_times_the_minimum() -> None:
    """The template's BidStrategyBase(8, 8) bids exactly 8x the bounty minimum on each asserted artifact."""
    got = await TemplateBidStrategy().bid(
        "g", [True, False, True], [True, False, False], [1.0, 0, 0.2], [], MINIMUM, MAXIMUM, "side"
    )
    assert got == [8 * MINIMUM, 8 * MINIMUM]


@pytest.mark.parametrize(
    ("name", "cls"),
    [("default", DefaultBidStrategy), ("conservative", ConservativeBidStrategy), ("aggressive", AggressiveBidStrategy)],
)
async def test_2x_strategy_names_bid_like_the_same_bid_strategy_option(name: str, cls: type) -> None:
    """default, conservative and aggressive bid what --bid-strategy of the same name bids."""
    strategy = strategy_for_name(name)
    assert isinstance(strategy, cls)
    for confidence in (0.0, 0.5, 1.0):
        got = await strategy.bid("g", [True], [True], [confidence], [""], MINIMUM, MAXIMUM, "side")
        assert got == bids(STRATEGIES[name], [True], [confidence], MINIMUM, MAXIMUM)


def test_bad_multipliers_and_names_are_refused() -> None:
    """A multiplier below 1 or not an integer, and an unknown strategy name, raise ValueError."""
    with pytest.raises(ValueError, match="min_bid_multiplier"):
        BidStrategyBase(min_bid_multiplier=0)
    with pytest.raises(ValueError, match="max_bid_multiplier"):
        BidStrategyBase(max_bid_multiplier=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown bid strategy 'greedy'"):
        strategy_for_name("greedy")


def test_artifact_types_compare_equal_to_polyswarm_artifacts() -> None:
    """`artifact_type == polyswarmartifact.ArtifactType.FILE` holds for the type the engine hands a scanner."""
    assert ArtifactType.FILE == ForeignArtifactType.FILE and ForeignArtifactType.URL == ArtifactType.URL
    assert ArtifactType.FILE != ForeignArtifactType.URL and not (ArtifactType.URL != ForeignArtifactType.URL)
    assert ArtifactType.coerce(ForeignArtifactType.URL) is ArtifactType.URL
    assert ArtifactType.FILE == 0 and {ArtifactType.URL: "u"}[1] == "u"


class VerdictScanner(AbstractScanner):
    """The template's shape: SYNC, Verdict().json() as metadata, branching on polyswarm-artifact's enum."""

    def __init__(self) -> None:
        super().__init__(ScanMode.SYNC)

    def scan_sync(self, guid, artifact_type, content, metadata, chain):  # type: ignore[no-untyped-def]
        kind = "file" if artifact_type == ForeignArtifactType.FILE else "url"
        verdict = (
            Verdict()
            .set_malware_family(f"Demo-{kind}")
            .set_scanner(operating_system="Linux", architecture="x86_64", vendor_version="1.0", version="2.0")
        )
        return ScanResult(True, True, 0.5, metadata=verdict.json())


async def test_verdict_json_metadata_is_kept_as_is() -> None:
    """A ScanResult built from Verdict().json() reaches the engine unchanged, family and scanner included."""
    async with create_backend(VerdictScanner) as backend:
        result = await backend.scan("g", ArtifactType.FILE, b"x", None, "side")
    assert (result.bit, result.verdict, result.confidence) == (True, True, 0.5)
    meta = json.loads(result.metadata)
    assert meta["malware_family"] == "Demo-file"
    assert meta["scanner"]["environment"] == {"operating_system": "Linux", "architecture": "x86_64"}


class _Dist:
    def __init__(self, version: str, requires: list[str]) -> None:
        self.version = version
        self.requires = requires


def test_foreign_polyswarm_client_stops_every_command_with_the_repair(monkeypatch) -> None:
    """With the real polyswarm-client installed, `microengine` exits 2 with one line that names it and the
    repair command; our stand-in (which depends on polyswarm-kit) is accepted."""
    real = importlib.metadata.distribution

    def distribution(name: str):  # type: ignore[no-untyped-def]
        if name == "polyswarm-client":
            return _Dist("2.13.3", ["aiohttp (==3.7.4)", "polyswarm-artifact (>=1.3.3)"])
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)
    result = cli_invoker(microengine_cli, "microengine")("--list-backends")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: polyswarm-client 2.13.3 is installed and replaces polyswarm-kit's polyswarmclient package; "
        f"repair from a polyswarm-kit checkout with: {installation.REPAIR}"
    ]
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: _Dist("2.99.0", ["polyswarm-kit"]))
    assert installation.foreign_polyswarm_client() is None
