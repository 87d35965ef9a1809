"""The ambassador's pure decisions: bounty amounts, durations, cost, settle timing and metadata."""

from __future__ import annotations

import hashlib

import pytest

from polyswarmclient.amounts import nct
from polyswarmclient.errors import ConfigError
from polyswarmclient.samples import Corpus
from polyswarmclient.services.ambassador import (
    bounty_cost,
    bounty_metadata,
    check_artifacts_per_bounty,
    check_duration,
    resolve_bounty_amount,
    settle_due,
)
from polyswarmclient.wire.models import BountyParameters

MIN = nct("0.0625")


def test_default_amount_is_the_minimum_per_artifact_times_artifacts() -> None:
    """Without --bounty-amount a bounty offers exactly the contract minimum for its artifact count."""
    assert resolve_bounty_amount(None, MIN, 1) == MIN
    assert resolve_bounty_amount(None, MIN, 4) == nct("0.25")


def test_explicit_amount_is_kept_exactly() -> None:
    """An explicit amount at or above the minimum is used to the wei."""
    assert resolve_bounty_amount(nct("0.25"), MIN, 4) == nct("0.25")
    assert resolve_bounty_amount(nct("1.000000000000000001"), MIN, 1) == nct("1.000000000000000001")


def test_amount_below_the_minimum_is_a_config_error() -> None:
    """An amount the contract would refuse is rejected up front, with the minimum in the message."""
    with pytest.raises(ConfigError, match=r"minimum of 0\.25 NCT"):
        resolve_bounty_amount(nct("0.2"), MIN, 4)


@pytest.mark.parametrize("duration", [1, 10, 100])
def test_durations_within_max_duration_are_accepted(duration: int) -> None:
    """Durations from 1 to max_duration blocks are fine."""
    check_duration(duration, 100)


@pytest.mark.parametrize("duration", [0, 101])
def test_durations_outside_the_range_are_config_errors(duration: int) -> None:
    """A duration polyswarmd would refuse is reported with the allowed range."""
    with pytest.raises(ConfigError, match="1 to 100 blocks"):
        check_duration(duration, 100)


@pytest.mark.parametrize("count", [0, 257])
def test_artifacts_per_bounty_is_bounded(count: int) -> None:
    """A bounty carries 1 to 256 artifacts."""
    with pytest.raises(ConfigError):
        check_artifacts_per_bounty(count)


def test_cost_adds_the_bounty_fee() -> None:
    """A bounty takes its amount plus the bounty fee from the wallet."""
    params = BountyParameters(
        bounty_fee=nct("0.0625"),
        assertion_fee=0,
        bounty_amount_minimum=MIN,
        assertion_bid_minimum=0,
        assertion_bid_maximum=0,
        arbiter_lookback_range=0,
        max_duration=100,
        assertion_reveal_window=25,
        arbiter_vote_window=100,
    )
    assert bounty_cost(nct(1), params) == nct("1.0625")


def test_poster_settles_on_quorum_or_after_the_vote_window() -> None:
    """The poster may settle as soon as quorum is reached, otherwise at E+R+V."""
    assert settle_due(120, 110, 25, 100, quorum=True)
    assert not settle_due(234, 110, 25, 100, quorum=False)
    assert settle_due(235, 110, 25, 100, quorum=False)


def test_metadata_describes_each_artifact() -> None:
    """Bounty metadata lists every artifact's name, size, mimetype and hashes, in upload order."""
    samples = Corpus().pick(0, 2)
    meta = bounty_metadata(samples)
    assert [m["filename"] for m in meta] == [s.name for s in samples]
    first = meta[0]
    content = samples[0].content
    assert first["filesize"] == str(len(content))
    assert first["mimetype"] == "text/plain"
    assert first["sha256"] == hashlib.sha256(content).hexdigest()
    assert first["sha1"] == hashlib.sha1(content).hexdigest()
    assert first["md5"] == hashlib.md5(content).hexdigest()


def test_metadata_passes_the_schema_polyswarmd_validates_with() -> None:
    """The ambassador's metadata passes polyswarm-artifact 1.3.3's schema (string filesize), as polyswarmd checks."""
    from polyswarmclient.devnet.metadata import is_bounty_metadata

    meta = bounty_metadata(Corpus().pick(0, 3))
    assert is_bounty_metadata(meta)
    assert not is_bounty_metadata([dict(m, filesize=int(m["filesize"])) for m in meta])
