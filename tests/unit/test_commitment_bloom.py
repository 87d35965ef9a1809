"""The commitment and bloom match the protocol's published test vectors (spec Appendix A)."""

from __future__ import annotations

from eth_utils import keccak

from polyswarmclient.eth.bloom import bloom_value, bloom_words, from_words, to_words
from polyswarmclient.eth.commitment import commitment, new_nonce

SENDER = "0x34E583cf9C1789c3141538EeC77D9F0B8F7E89f2"
HASH = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


def test_commitment_vector_one() -> None:
    """nonce 1, verdicts 0b101 gives the published commitment."""
    assert keccak((1).to_bytes(32, "big")).hex() == "b10e2d527612073b26eecdfd717e6a320cf44b4afac2b0732d9fcbe2b7fa0cf6"
    expected = 0x2077E73AB2DB249DF38A21EE7A377AF80B78FFDC7FD1609DACDBDA0B575F1FB2
    assert commitment(1, 0b101, SENDER) == expected


def test_commitment_vector_two() -> None:
    """nonce 0x0102..1f20, verdicts 1 gives the published commitment."""
    nonce = int.from_bytes(bytes(range(1, 33)), "big")
    assert keccak(nonce.to_bytes(32, "big")).hex() == "52b3f53ff196a28e7d2d01283ef9427070bda64128fb5630b97b6ab17a8ff0a8"
    assert commitment(nonce, 1, SENDER) == 0x176C1AA3589C8CDF57A03768296D1FA0FF3D5B85B90F79FD232F0E16753DFE2A


def test_commitment_depends_on_the_sender() -> None:
    """A reveal from another key would not match: the sender is part of the commitment."""
    assert commitment(1, 5, SENDER) != commitment(1, 5, "0x" + "11" * 20)


def test_new_nonce_is_never_zero_and_fits_uint256() -> None:
    """Random reveal nonces are valid for the contract."""
    for _ in range(100):
        assert 0 < new_nonce() < 2**256


def test_bloom_vector() -> None:
    """The bloom of one IPFS hash string sets the published bits and words, most significant first."""
    assert keccak(HASH.encode()).hex() == "9e70d347eb27e5edfa2b03409b020ecdaba0997a7a4806a5c441694ea6bf9b5d"
    value = bloom_value([HASH])
    assert [i for i in range(2048) if value >> i & 1] == [555, 770, 807, 832, 839, 1517, 1648, 1741]
    assert bloom_words([HASH]) == [0, 2**205 + 2**112, 2**237, 0, 2**71 + 2**64 + 2**39 + 2**2, 2**43, 0, 0]


def test_bloom_words_round_trip() -> None:
    """Splitting into 8 words and joining them back gives the same 2048-bit value."""
    value = bloom_value([HASH, "QmOther"])
    assert from_words(to_words(value)) == value
    assert bloom_value([]) == 0
