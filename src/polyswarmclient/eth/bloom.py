"""The 2048-bit bounty bloom of spec §5.7 (over artifact hash strings, most significant word first)."""

from __future__ import annotations

from collections.abc import Iterable

from eth_utils import keccak

FILTER_BITS = 2048
HASH_FUNCTIONS = 8
WORDS = 8


def bloom_value(artifact_hashes: Iterable[str]) -> int:
    """The bloom as one 2048-bit integer."""
    value = 0
    for text in artifact_hashes:
        digest = keccak(text.encode("utf-8"))
        for j in range(HASH_FUNCTIONS):
            bit = ((digest[2 * j] << 8) | digest[2 * j + 1]) & (FILTER_BITS - 1)
            value |= 1 << bit
    return value


def to_words(value: int) -> list[int]:
    """Split into 8 uint256 words, most significant first (``words[0]`` = bits 1792-2047)."""
    mask = (1 << 256) - 1
    return [(value >> (256 * (WORDS - 1 - i))) & mask for i in range(WORDS)]


def from_words(words: Iterable[int]) -> int:
    value = 0
    for word in words:
        value = (value << 256) | word
    return value


def bloom_words(artifact_hashes: Iterable[str]) -> list[int]:
    return to_words(bloom_value(artifact_hashes))
