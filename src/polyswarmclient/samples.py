"""The sample corpus: half EICAR test files, half benign text, generated at run time (stdlib only).

Nothing here touches the disk or the network. The EICAR test string is assembled from two halves when
the module is imported, so the repository itself never holds the signature a virus scanner would flag.
EICAR's published rules allow the 68-byte string to be followed by whitespace up to 128 bytes in total;
each malicious sample uses a different whitespace tail, so every sample has its own hash (and its own
IPFS hash, which keeps the bounty blooms of a demo distinct).

The ground truth is exposed by sha256, which is what the ``verbatim`` arbiter backend looks up. The
``ambassador`` posts these samples and ``microengine --devnet`` judges verdicts against them; none of
them needs the devnet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

# The published EICAR test string, in two halves (see the module docstring).
_EICAR_HEAD = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$"
_EICAR_TAIL = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR: bytes = (_EICAR_HEAD + _EICAR_TAIL).encode("ascii")
EICAR_MAX_FILE_SIZE = 128

#: Default number of samples: 8 malicious, 8 benign.
DEFAULT_SIZE = 16

_WHITESPACE = (b" ", b"\t", b"\r\n", b"\n")
_WORDS = (
    "alpha", "amber", "anchor", "apple", "arbor", "aspen", "atlas", "autumn", "badge", "basil", "beacon",
    "birch", "bison", "breeze", "bridge", "cedar", "canyon", "cobalt", "comet", "coral", "cotton", "delta",
    "dune", "ember", "fable", "falcon", "fern", "fjord", "garnet", "glacier", "harbor", "hazel", "indigo",
    "island", "jasper", "juniper", "kestrel", "lagoon", "lantern", "linen", "maple", "meadow", "mesa",
    "nectar", "nimbus", "oasis", "orchid", "otter", "pebble", "prairie", "quartz", "quill", "raven",
    "ridge", "saffron", "sierra", "spruce", "summit", "tundra", "umber", "valley", "velvet", "willow",
    "zephyr",
)  # fmt: skip


def eicar_variant(index: int) -> bytes:
    """The EICAR string followed by a whitespace tail that is different for every ``index`` (< 128 B)."""
    tail = bytearray()
    value = index
    while True:
        tail += _WHITESPACE[value % len(_WHITESPACE)]
        value //= len(_WHITESPACE)
        if value == 0:
            break
    content = EICAR + bytes(tail)
    if len(content) > EICAR_MAX_FILE_SIZE:
        raise ValueError(f"EICAR variant {index} would exceed {EICAR_MAX_FILE_SIZE} bytes")
    return content


def contains_eicar(content: bytes) -> bool:
    """True when ``content`` holds the EICAR test string anywhere."""
    return EICAR in content


def benign_text(index: int) -> bytes:
    """A small deterministic text file: a title line and a few lines of words chosen by sha256."""
    stream = _digest_stream(f"polyswarm-kit benign sample {index}".encode())
    lines = [f"Benign sample {index:03d}: a harmless text file for the devnet demo."]
    for _ in range(2 + next(stream) % 4):
        words = [_WORDS[next(stream) % len(_WORDS)] for _ in range(4 + next(stream) % 8)]
        lines.append(" ".join(words).capitalize() + ".")
    return ("\n".join(lines) + "\n").encode("ascii")


def _digest_stream(seed: bytes) -> Iterator[int]:
    """An endless, platform-independent stream of bytes derived from ``seed`` by chained sha256."""
    counter = 0
    while True:
        yield from hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1


@dataclass(frozen=True)
class Sample:
    """One corpus file: a name for the upload, its bytes and whether it is malicious."""

    name: str
    content: bytes = field(repr=False)
    malicious: bool

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def mimetype(self) -> str:
        return "text/plain"


def build_samples(size: int = DEFAULT_SIZE) -> tuple[Sample, ...]:
    """``size`` samples alternating malicious (even positions) and benign (odd positions)."""
    if size < 1:
        raise ValueError("the corpus needs at least one sample")
    samples = []
    for position in range(size):
        number = position // 2
        if position % 2 == 0:
            samples.append(Sample(f"eicar-{number:03d}.txt", eicar_variant(number), True))
        else:
            samples.append(Sample(f"benign-{number:03d}.txt", benign_text(number), False))
    return tuple(samples)


class Corpus:
    """An ordered set of samples with their ground truth; ``pick`` hands them out round-robin."""

    def __init__(self, samples: Iterable[Sample] | None = None) -> None:
        self.samples: tuple[Sample, ...] = tuple(samples) if samples is not None else build_samples()
        if not self.samples:
            raise ValueError("the corpus is empty")
        self._truth: dict[str, bool] = {s.sha256: s.malicious for s in self.samples}

    @classmethod
    def for_bounties(cls, artifacts_per_bounty: int) -> Corpus:
        """A corpus big enough that one bounty never carries the same sample twice."""
        return cls(build_samples(max(DEFAULT_SIZE, artifacts_per_bounty + artifacts_per_bounty % 2)))

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def ground_truth(self) -> Mapping[str, bool]:
        """sha256 (lower-case hex) -> True for malicious, False for benign."""
        return dict(self._truth)

    def truth(self, content: bytes) -> bool | None:
        """The ground truth of ``content``, or None when it is not in the corpus."""
        return self._truth.get(hashlib.sha256(content).hexdigest())

    def pick(self, start: int, count: int) -> list[Sample]:
        """``count`` consecutive samples from position ``start``, wrapping around."""
        if count < 1:
            raise ValueError("pick at least one sample")
        return [self.samples[(start + i) % len(self.samples)] for i in range(count)]


_DEFAULT: Corpus | None = None


def default_corpus() -> Corpus:
    """The shared default corpus (built once per process)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Corpus()
    return _DEFAULT


def ground_truth_by_sha256(size: int = 512) -> dict[str, bool]:
    """Ground truth for every sample any ambassador corpus of up to ``size`` samples can post.

    Corpora are prefixes of one deterministic sequence, so a big prefix covers every smaller one.
    """
    return {s.sha256: s.malicious for s in build_samples(size)}
