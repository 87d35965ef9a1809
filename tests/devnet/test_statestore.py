"""The embedded chains' on-disk state store: what a sweep moves to disk, what it drops, what a compaction
keeps, the bounded read cache, and no file left behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from trie import HexaryTrie
from trie.exceptions import MissingTrieNode

from polyswarmclient.devnet.statestore import TRIE, TieredDB, mark_trie


def test_a_sweep_moves_what_is_reachable_to_disk_and_a_compaction_drops_old_tries(tmp_path: Path) -> None:
    """Two versions of a trie: after a sweep that keeps both, every node reads back from the file (nothing
    in memory); the read cache stays within its bound; a compaction from the newer root drops the nodes
    only the older one used, and keeps other entries it is told to; the directory stays empty."""
    store = TieredDB(tmp_path, cache_entries=8)
    trie = HexaryTrie(store)
    items = {os.urandom(32): os.urandom(40) for _ in range(300)}
    for key, value in items.items():
        trie[key] = value
    old_root = trie.root_hash
    changed = next(iter(items))
    trie[changed] = b"new value"
    new_root = trie.root_hash
    store[b"bookkeeping"] = b"kept"
    store[b"garbage-" + os.urandom(24)] = b"x"  # 32 bytes long, reachable from nothing: dropped by the sweep

    keep: set[bytes] = set()
    for root in (old_root, new_root):
        mark_trie(store.hot.get, root, keep, False)
    moved, dropped = store.flush(lambda k, v: k in keep or k == b"bookkeeping")
    assert moved == len(keep) + 1 and dropped > 0 and not store.hot
    assert HexaryTrie(store, new_root)[changed] == b"new value"
    assert HexaryTrie(store, old_root)[changed] == items[changed]
    assert all(HexaryTrie(store, new_root)[k] == v for k, v in items.items() if k != changed)
    assert len(store._cache) <= 8
    rows = store.cold_rows()

    kept = store.compact([(new_root, TRIE)], lambda k, v: k == b"bookkeeping")
    assert kept == store.cold_rows() < rows
    assert old_root not in store and new_root in store and store[b"bookkeeping"] == b"kept"
    assert all(HexaryTrie(store, new_root)[k] == v for k, v in items.items() if k != changed)
    with pytest.raises(MissingTrieNode):
        HexaryTrie(store, old_root)[changed]  # noqa: B018 - reading is the point
    assert list(tmp_path.iterdir()) == []  # the files are unlinked as soon as they are open
    store.close()
    assert list(tmp_path.iterdir()) == []


def test_the_newest_entries_a_sweep_moves_stay_readable_without_a_query(tmp_path: Path) -> None:
    """The entries written last before a sweep (what the next blocks read) come from the read cache; older
    ones come from the file, and every value reads back the same either way."""
    store = TieredDB(tmp_path, cache_entries=100)
    items = [(os.urandom(32), os.urandom(40)) for _ in range(300)]
    for key, value in items:
        store[key] = value
    store.flush(lambda k, v: True)
    queries: list[str] = []
    store._conn.set_trace_callback(queries.append)
    assert all(store[key] == value for key, value in items[-100:])
    assert queries == []
    assert all(store[key] == value for key, value in items[:200])
    assert len(queries) == 200 and len(store._cache) <= 100
    store.close()


def test_writes_reads_and_deletes_behave_as_a_dict_across_the_tiers(tmp_path: Path) -> None:
    """A rewrite in memory wins over the copy on disk, and a sweep replaces it; a delete removes both."""
    store = TieredDB(tmp_path)
    store[b"k"] = b"1"
    store.flush(lambda k, v: True)
    assert store[b"k"] == b"1" and b"k" in store
    store[b"k"] = b"2"
    assert store[b"k"] == b"2"
    store.flush(lambda k, v: True)
    assert store[b"k"] == b"2" and store.cold_rows() == 1
    del store[b"k"]
    assert b"k" not in store
    with pytest.raises(KeyError):
        del store[b"k"]
    store.close()


def test_a_compaction_in_slices_keeps_what_sweeps_move_meanwhile(tmp_path: Path) -> None:
    """A compaction copies a slice per sweep while the chain goes on: what sweeps move to disk between the
    slices (here a new version of the trie, then the first version written again, node for node) is all
    in the fresh file at the end, and every node of both versions reads back."""
    store = TieredDB(tmp_path)
    trie = HexaryTrie(store)
    items = {os.urandom(32): os.urandom(40) for _ in range(300)}
    for key, value in items.items():
        trie[key] = value
    first_root = trie.root_hash
    store.flush(lambda k, v: True)
    store.start_compaction([(first_root, TRIE)], lambda k, v: False)
    assert store.compact_step(1) is None and store.compacting  # the root only

    changed = next(iter(items))
    for value in (b"new value", items[changed]):  # the second write rebuilds nodes the walk has not reached
        trie[changed] = value
        keep: set[bytes] = set()
        mark_trie(store.hot.get, trie.root_hash, keep, False)
        store.flush(lambda k, v, keep=keep: k in keep)  # type: ignore[misc]
        if value == b"new value":
            second_root = trie.root_hash
        assert store.compact_step(1) is None
    assert trie.root_hash == first_root
    steps = 2
    while store.compact_step(50) is None:
        steps += 1
    assert steps > 3 and store.compactions == 1 and not store.compacting
    assert all(HexaryTrie(store, first_root)[k] == v for k, v in items.items())
    assert HexaryTrie(store, second_root)[changed] == b"new value"
    assert list(tmp_path.iterdir()) == []
    store.close()
