"""The assertion commitment of spec §5.5.

``commitment = uint256(keccak256(be32(verdicts XOR uint256(keccak256(be32(nonce))) XOR uint256(sender))))``
"""

from __future__ import annotations

import secrets

from eth_utils import keccak, to_canonical_address


def _be32(value: int) -> bytes:
    return value.to_bytes(32, "big")


def new_nonce() -> int:
    """32 random bytes read big-endian; never 0 (the contract refuses a zero nonce)."""
    while True:
        value = int.from_bytes(secrets.token_bytes(32), "big")
        if value:
            return value


def commitment(nonce: int, verdicts: int, sender: str) -> int:
    """The commitment the contract recomputes on reveal for ``sender``."""
    if nonce <= 0 or nonce >= 2**256:
        raise ValueError("nonce must be in [1, 2**256)")
    hashed_nonce = int.from_bytes(keccak(_be32(nonce)), "big")
    address = int.from_bytes(to_canonical_address(sender), "big")
    return int.from_bytes(keccak(_be32(verdicts ^ hashed_nonce ^ address)), "big")
