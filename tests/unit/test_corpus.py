"""The sample corpus and the ``verbatim`` arbiter backend that knows its ground truth."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from polyswarmclient import samples
from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.backends.verbatim import VerbatimArbiter
from polyswarmclient.samples import (
    DEFAULT_SIZE,
    EICAR,
    Corpus,
    benign_text,
    build_samples,
    contains_eicar,
    eicar_variant,
    ground_truth_by_sha256,
)

# The EICAR string's published sha256, so the test does not spell out the signature either.
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def test_eicar_is_the_published_test_string() -> None:
    """The assembled EICAR string is byte-for-byte the published one (known sha256, 68 bytes)."""
    assert len(EICAR) == 68
    assert hashlib.sha256(EICAR).hexdigest() == EICAR_SHA256


def test_source_files_do_not_contain_the_whole_signature() -> None:
    """No file in the repository's corpus or backend holds the full EICAR string, so scanners stay quiet."""
    src = Path(samples.__file__).read_bytes()
    assert EICAR not in src
    verbatim = Path(samples.__file__).parent / "backends" / "verbatim.py"
    assert EICAR not in verbatim.read_bytes()


def test_default_corpus_is_half_malicious_half_benign() -> None:
    """The demo corpus has 16 samples, half EICAR files and half benign text."""
    samples = build_samples()
    assert len(samples) == DEFAULT_SIZE
    assert sum(s.malicious for s in samples) == DEFAULT_SIZE // 2
    assert all(contains_eicar(s.content) == s.malicious for s in samples)


def test_every_sample_is_distinct_and_eicar_variants_stay_valid() -> None:
    """Each sample has its own hash; EICAR variants add only whitespace after the string, <= 128 B."""
    samples = build_samples(512)
    assert len({s.sha256 for s in samples}) == 512
    for index in range(256):
        variant = eicar_variant(index)
        assert variant.startswith(EICAR)
        assert variant[len(EICAR) :].strip() == b""
        assert len(variant) <= 128


def test_corpus_is_deterministic() -> None:
    """Two processes build the same corpus, so the arbiter's truth table matches the ambassador's posts."""
    assert [s.sha256 for s in build_samples()] == [s.sha256 for s in build_samples()]
    assert benign_text(3) == benign_text(3)
    assert benign_text(3) != benign_text(4)
    assert benign_text(0).decode("ascii").startswith("Benign sample 000")


def test_ground_truth_by_sha256_covers_every_corpus_size() -> None:
    """The truth table knows every sample of any corpus an ambassador can build (up to 256 per bounty)."""
    truth = ground_truth_by_sha256()
    big = Corpus.for_bounties(256)
    assert len(big) >= 256
    assert all(truth[s.sha256] == s.malicious for s in big.samples)


def test_corpus_truth_and_round_robin_pick() -> None:
    """``truth`` answers for known content only; ``pick`` hands samples out in order and wraps around."""
    c = Corpus()
    first = c.samples[0]
    assert c.truth(first.content) is True
    assert c.truth(c.samples[1].content) is False
    assert c.truth(b"something else") is None
    picked = c.pick(len(c) - 1, 3)
    assert [s.name for s in picked] == [c.samples[-1].name, c.samples[0].name, c.samples[1].name]
    with pytest.raises(ValueError):
        c.pick(0, 0)


def test_for_bounties_never_repeats_a_sample_within_a_bounty() -> None:
    """A corpus built for N artifacts per bounty has at least N samples."""
    c = Corpus.for_bounties(21)
    assert len(c) >= 21
    assert len({s.sha256 for s in c.pick(5, 21)}) == 21


async def test_verbatim_answers_known_samples_with_their_truth() -> None:
    """verbatim votes a corpus sample's recorded truth with full confidence."""
    backend = VerbatimArbiter()
    for sample in build_samples():
        result = await backend.scan("guid", "file", sample.content, None, "side")
        assert isinstance(result, ScanResult)
        assert (result.bit, result.verdict, result.confidence) == (True, sample.malicious, 1.0)


async def test_verbatim_falls_back_to_the_eicar_check_for_unknown_content() -> None:
    """An unknown file is malicious iff it contains EICAR, with lower confidence, always with a verdict."""
    backend = VerbatimArbiter()
    dirty = await backend.scan("g", "file", b"prefix " + EICAR + b" suffix", None, "side")
    clean = await backend.scan("g", "file", b"hello world", None, "side")
    assert (dirty.bit, dirty.verdict) == (True, True)
    assert (clean.bit, clean.verdict) == (True, False)
    assert dirty.confidence < 1.0


async def test_verbatim_uses_a_given_truth_table() -> None:
    """A custom truth table overrides the EICAR check (here: a benign-looking file recorded as malicious)."""
    content = b"looks harmless"
    backend = VerbatimArbiter({hashlib.sha256(content).hexdigest().upper(): True})
    result = await backend.scan("g", "file", content, None, "side")
    assert (result.verdict, result.confidence) == (True, 1.0)
