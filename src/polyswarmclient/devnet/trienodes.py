"""The devnet's hexary trie: py-trie's ``HexaryTrie`` with a codec for trie nodes only.

py-trie encodes and decodes every node it writes or reads with pyrlp's general codec, which handles
any RLP item and checks it on the way (a type dispatch per item, a generator per list, a strict-mode
pass over each decoded item). A trie node is narrower: a list of 2 or 17 items, each a byte string or,
for a node shorter than 32 bytes, the embedded node itself. ``encode_node`` and ``decode_node`` handle
exactly that, and give the same bytes and the same lists pyrlp does (``tests/devnet/test_trienodes.py``
checks both against pyrlp; ``tests/devnet/test_replay.py`` replays the devnet's blocks on py-evm's own
classes and compares every state root). Under cProfile, mining the benchmark's transactions in-process,
the two codecs were about a sixth of the time.

Only the devnet's own state classes use :class:`DevnetHexaryTrie` (``EmbeddedChain`` with
``slot_cache=True``, the default); py-evm's are left alone.
"""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak
from trie.constants import BLANK_NODE, BLANK_NODE_HASH
from trie.hexary import HexaryTrie

from polyswarmclient.eth.rlplength import LIST, STRING, length_prefix

_SHORT = [length_prefix(n, STRING) for n in range(56)]  # the prefix of a byte string of n < 56 bytes
_SHORT_LIST = [length_prefix(n, LIST) for n in range(56)]  # the prefix of a list whose payload is n < 56 bytes


class NodeCodecError(ValueError):
    """Bytes or a value that is not a trie node."""


def _encode_item(item: Any) -> bytes:
    kind = type(item)
    if kind is bytes:
        n = len(item)
        if n == 1 and item[0] < 0x80:
            return item  # type: ignore[no-any-return]
        if n < 56:
            return _SHORT[n] + item  # type: ignore[no-any-return]
        return length_prefix(n, STRING) + item  # type: ignore[no-any-return]
    if kind is list or kind is tuple:
        parts = []
        for x in item:  # a branch's children are mostly hashes and blanks: those short strings inline
            if type(x) is bytes and 1 < len(x) < 56:
                parts.append(_SHORT[len(x)])
                parts.append(x)
            elif x == b"":
                parts.append(b"\x80")
            else:
                parts.append(_encode_item(x))
        payload = b"".join(parts)
        n = len(payload)
        if n < 56:
            return _SHORT_LIST[n] + payload
        return length_prefix(n, LIST) + payload
    if kind is bytearray:
        return _encode_item(bytes(item))
    raise NodeCodecError(f"a trie node holds byte strings and lists, not {kind.__name__}")


def encode_node(node: list[Any] | tuple[Any, ...]) -> bytes:
    """RLP of a trie node (a list of byte strings and embedded nodes), as ``rlp.encode`` gives it."""
    if type(node) is not list and type(node) is not tuple:
        raise NodeCodecError(f"a trie node is a list, not {type(node).__name__}")
    return _encode_item(node)


def _decode_at(data: bytes, pos: int) -> tuple[Any, int]:
    first = data[pos]
    if first < 0x80:
        return data[pos : pos + 1], pos + 1
    if first < 0xB8:
        end = pos + 1 + first - 0x80
        if end > len(data):
            raise NodeCodecError("a trie node's byte string runs past its end")
        return data[pos + 1 : end], end
    if first < 0xC0:
        width = first - 0xB7
        start = pos + 1 + width
        end = start + int.from_bytes(data[pos + 1 : start], "big")
        if end > len(data):
            raise NodeCodecError("a trie node's byte string runs past its end")
        return data[start:end], end
    if first < 0xF8:
        start = pos + 1
        end = start + first - 0xC0
    else:
        width = first - 0xF7
        start = pos + 1 + width
        end = start + int.from_bytes(data[pos + 1 : start], "big")
    if end > len(data):
        raise NodeCodecError("a trie node's list runs past its end")
    items = []
    at = start
    while at < end:  # a branch's children are mostly hashes and blanks: those short strings inline
        first = data[at]
        if 0x80 <= first < 0xB8:
            after = at + 1 + first - 0x80
            items.append(data[at + 1 : after])
            at = after
        else:
            item, at = _decode_at(data, at)
            items.append(item)
    if at != end:
        raise NodeCodecError("a trie node's list does not end where its length says")
    return items, end


def decode_node(data: bytes) -> Any:
    """The node (a list) that ``data`` encodes, as ``rlp.decode`` gives it; ``b""`` is the blank node."""
    if not data:
        return BLANK_NODE
    try:
        node, end = _decode_at(data, 0)
    except IndexError:
        raise NodeCodecError("a trie node ends early") from None
    if end != len(data):
        raise NodeCodecError("bytes after the end of a trie node")
    return node


class DevnetHexaryTrie(HexaryTrie):
    """py-trie's ``HexaryTrie`` reading and writing nodes with :func:`decode_node` and :func:`encode_node`."""

    def get_node(self, node_hash: Any) -> Any:
        if node_hash == BLANK_NODE or node_hash == BLANK_NODE_HASH:
            return BLANK_NODE
        if type(node_hash) is list:  # an embedded node, already decoded
            return node_hash
        encoded = node_hash if len(node_hash) < 32 else self.db[node_hash]
        return decode_node(encoded)

    def _node_to_db_mapping(self, node: Any) -> tuple[Any, bytes | None]:
        # py-trie keeps the last 4,096 mappings in a cache keyed by the node made into nested tuples, since
        # its encoding costs more than that; with this codec, encoding again is the cheaper of the two
        return self._create_node_to_db_mapping(node)

    def _create_node_to_db_mapping(self, node: Any) -> tuple[Any, bytes | None]:
        if node == BLANK_NODE:
            return BLANK_NODE, None
        encoded = encode_node(node)
        if len(encoded) < 32:
            return node, None
        return keccak(encoded), encoded
