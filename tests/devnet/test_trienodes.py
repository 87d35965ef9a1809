"""The devnet's trie node codec gives pyrlp's bytes and lists, and its trie py-trie's roots."""

from __future__ import annotations

import random

import pytest
import rlp
from trie.hexary import HexaryTrie

from polyswarmclient.devnet.trienodes import DevnetHexaryTrie, NodeCodecError, decode_node, encode_node


def _random_item(rng: random.Random) -> bytes:
    size = rng.choice([0, 1, 1, 2, 20, 32, 33, 55, 56, 57, 100, 300, 70_000])
    return bytes(rng.getrandbits(8) for _ in range(size))


def _random_node(rng: random.Random) -> list:
    if rng.random() < 0.5:  # a branch: 16 children and a value, some children embedded nodes
        children: list = []
        for _ in range(16):
            pick = rng.random()
            if pick < 0.4:
                children.append(b"")
            elif pick < 0.9:
                children.append(bytes(rng.getrandbits(8) for _ in range(32)))
            else:
                children.append([bytes([0x20 + rng.randrange(16)]), bytes([rng.randrange(256)])])
        return [*children, _random_item(rng) if rng.random() < 0.3 else b""]
    return [_random_item(rng), _random_item(rng)]  # a leaf or an extension


def test_nodes_encode_and_decode_as_pyrlp_does():
    rng = random.Random(7)
    nodes = [_random_node(rng) for _ in range(400)]
    nodes += [[b"\x00", b"\x7f"], [b"\x80", b""], [b"\x20", [b"\x35", b"\x01"]], [b"", b""]]
    for node in nodes:
        expected = rlp.encode(node)
        assert encode_node(node) == expected
        assert encode_node(tuple(node)) == expected
        assert decode_node(expected) == rlp.decode(expected)


def test_the_blank_node_decodes_to_blank():
    assert decode_node(b"") == b""


@pytest.mark.parametrize(
    "data",
    [
        b"\xc3\x82\x01",  # a list whose item runs past the end
        b"\xc2\x01",  # a list shorter than its length says
        b"\x85abc",  # a byte string shorter than its length says
        b"\xc1\x01\x02",  # bytes after the node
        b"\xf8",  # a long list with no length
    ],
)
def test_bytes_that_are_not_a_node_are_refused(data):
    with pytest.raises(NodeCodecError):
        decode_node(data)


def test_values_that_are_not_nodes_are_refused():
    with pytest.raises(NodeCodecError):
        encode_node(b"\x01")
    with pytest.raises(NodeCodecError):
        encode_node([b"\x01", 5])


def test_the_devnet_trie_has_py_tries_roots_and_nodes():
    rng = random.Random(11)
    ours_db: dict = {}
    theirs_db: dict = {}
    ours = DevnetHexaryTrie(ours_db, prune=True)
    theirs = HexaryTrie(theirs_db, prune=True)
    keys = [bytes(rng.getrandbits(8) for _ in range(32)) for _ in range(300)]
    keys += [b"\x01", b"\x01\x02", b"\x01\x02\x03"]  # short keys: embedded nodes
    for step in range(1500):
        key = rng.choice(keys)
        if rng.random() < 0.25:
            for trie in (ours, theirs):
                if key in trie:
                    del trie[key]
        else:
            value = _random_item(rng)[:200] or b"\x01"
            ours[key] = value
            theirs[key] = value
        if step % 50 == 0:
            assert ours.root_hash == theirs.root_hash
    assert ours.root_hash == theirs.root_hash
    assert ours_db == theirs_db  # the same nodes written, and the same ones pruned
    reader = DevnetHexaryTrie(theirs_db, root_hash=theirs.root_hash)
    for key in keys:
        assert reader.get(key) == theirs.get(key)


def test_the_devnet_trie_reads_and_writes_through_its_codec(monkeypatch):
    """py-trie's hooks the devnet overrides are the ones it calls: a write encodes with ``encode_node``
    and a read of a stored node decodes with ``decode_node``."""
    from polyswarmclient.devnet import trienodes

    counts = {"encode": 0, "decode": 0}
    real_encode, real_decode = trienodes.encode_node, trienodes.decode_node

    def encode(node):
        counts["encode"] += 1
        return real_encode(node)

    def decode(data):
        counts["decode"] += 1
        return real_decode(data)

    monkeypatch.setattr(trienodes, "encode_node", encode)
    monkeypatch.setattr(trienodes, "decode_node", decode)
    db: dict = {}
    trie = DevnetHexaryTrie(db)
    for n in range(20):
        trie[bytes([n]) * 32] = bytes([n + 1]) * 40
    assert counts["encode"] > 20
    assert DevnetHexaryTrie(db, root_hash=trie.root_hash)[bytes([7]) * 32] == bytes([8]) * 40
    assert counts["decode"] > 0
