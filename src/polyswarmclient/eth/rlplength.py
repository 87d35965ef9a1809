"""RLP's length prefix (the yellow paper, appendix B), for the two encoders that build RLP by hand: a
legacy transaction's in :mod:`polyswarmclient.eth.keys` and the devnet's trie nodes
(:mod:`polyswarmclient.devnet.trienodes`)."""

from __future__ import annotations

#: ``short`` for a byte string and for a list.
STRING, LIST = 0x80, 0xC0


def length_prefix(length: int, short: int) -> bytes:
    """The prefix of an RLP byte string (``short`` = :data:`STRING`) or list payload (:data:`LIST`) of
    ``length`` bytes (a byte string of one byte below 0x80 has none: that is the caller's case)."""
    if length <= 55:
        return bytes((short + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((short + 55 + len(size),)) + size
