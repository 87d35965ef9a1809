"""Bool lists and the uint256 bitsets they stand for (bit i = artifact i, LSB first)."""

from __future__ import annotations

from collections.abc import Sequence

MAX_ARTIFACTS = 256


def bools_to_int(values: Sequence[bool]) -> int:
    """``[True, False, True]`` -> ``0b101``."""
    if len(values) > MAX_ARTIFACTS:
        raise ValueError(f"at most {MAX_ARTIFACTS} entries, got {len(values)}")
    result = 0
    for i, value in enumerate(values):
        if value:
            result |= 1 << i
    return result


def int_to_bools(value: int, length: int) -> list[bool]:
    """``0b101, 3`` -> ``[True, False, True]``; bits at or above ``length`` are dropped."""
    return [bool((value >> i) & 1) for i in range(length)]


def popcount(value: int) -> int:
    return bin(value).count("1")
