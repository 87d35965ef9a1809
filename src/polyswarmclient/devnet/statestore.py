"""py-evm's database for a long-running embedded chain: new entries in memory, the rest in sqlite on disk.

A devnet's contract storage only grows (every bounty, assertion and vote stays in the contracts, as on a
real chain), and in py-evm's ``MemoryDB`` each trie node costs its key, its value and about 100 bytes of
Python overhead. ``TieredDB`` keeps that state out of the process's memory:

* **hot**: a dict of the entries written since the last sweep; every py-evm write goes there;
* **cold**: a sqlite table (the standard library's ``sqlite3``) in a file the store creates in a private
  temporary directory and unlinks at once: nothing is left on disk when the process ends, however it ends
  (where the file system allows an open file to be unlinked; elsewhere ``close`` removes it);
* a bounded least-recently-used cache of cold entries in front of sqlite, filled by reads and by the newest
  entries each sweep moves (the ones the next blocks read).

``EmbeddedChain.prune`` decides what is reachable; this module moves it: ``flush`` copies the reachable
hot entries into cold in one transaction and drops the rest of hot, and ``compact`` copies what is
reachable from the retained roots into a fresh file and drops the old one (old states that fell out of
the retention pile up in cold until then), a slice at a time if asked (``start_compaction``,
``compact_step``), so that the chain does not stop for the whole walk. A node moved to cold has its
whole subtree in cold (it was reachable when it moved, and so were its children), so a sweep walks only
hot nodes.

Durability is not wanted (the chain is gone when the process ends): no journal, no fsync.
Not thread-safe by itself: ``EmbeddedChain`` calls it under its lock.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rlp
from eth.db.backends.base import BaseDB

from polyswarmclient.devnet.trienodes import decode_node

__all__ = ["TRIE", "ACCOUNTS", "RAW", "TieredDB", "mark_trie", "STORE_PREFIX"]

#: Prefix of the store's temporary directories (recognisable if a crash ever leaves one behind).
STORE_PREFIX = "polyswarm-devnet-state-"
#: Kinds of root ``compact`` walks: a plain hexary trie, the state trie (leaves are accounts, whose storage
#: tries and code are kept too), or one key copied as it is.
TRIE, ACCOUNTS, RAW = 0, 1, 2
_EMPTY_TRIE = bytes.fromhex("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421")
_EMPTY_CODE = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
#: Keys per sqlite statement while compacting. The walk keeps up to about 16 times this per trie level
#: waiting (about 100 bytes each), so it stays small: 256 keys keep that near 3 MB.
_BATCH = 256


def _children(node: list[Any]) -> tuple[list[Any], bytes | None]:
    """A decoded hexary-trie node's child references (hashes or embedded nodes) and its leaf value."""
    if len(node) == 17:
        return [child for child in node[:16] if child], node[16] or None
    if len(node) == 2:
        if node[0] and node[0][0] & 0x20:  # a leaf
            return [], node[1]
        return [node[1]], None
    return [], None


def _account_refs(leaf: bytes) -> list[tuple[Any, int]]:
    """A state-trie leaf (an account): its storage trie and its code."""
    _nonce, _balance, storage_root, code_hash = rlp.decode(leaf)
    refs: list[tuple[Any, int]] = []
    if storage_root != _EMPTY_TRIE:
        refs.append((bytes(storage_root), TRIE))
    if code_hash != _EMPTY_CODE:
        refs.append((bytes(code_hash), RAW))
    return refs


def _push_refs(node: Any, kind: int, stack: list[tuple[Any, int]]) -> None:
    """Push what the decoded trie ``node`` refers to: its children, and for a state-trie leaf
    (``kind`` ``ACCOUNTS``) the account's storage trie and code."""
    if not node:
        return
    children, leaf = _children(node)
    stack.extend((child, kind) for child in children)
    if leaf is not None and kind == ACCOUNTS:
        stack.extend(_account_refs(leaf))


def mark_trie(get: Callable[[bytes], bytes | None], root: bytes, keep: set[bytes], accounts: bool) -> None:
    """Add every node of the trie at ``root`` that ``get`` finds to ``keep`` (stopping where it finds none);
    for the state trie (``accounts``) also each account's storage trie and code hash."""
    stack: list[tuple[Any, int]] = [(root, ACCOUNTS if accounts else TRIE)]
    while stack:
        ref, kind = stack.pop()
        if isinstance(ref, list):  # a node embedded in its parent (shorter than 32 bytes)
            node = ref
        else:
            if not ref or ref in keep:
                continue
            if kind == RAW:
                if get(ref) is not None:
                    keep.add(ref)
                continue
            encoded = get(ref)
            if encoded is None:
                continue
            keep.add(ref)
            node = decode_node(encoded)
        _push_refs(node, kind, stack)


def _open(parent: Path | None) -> tuple[sqlite3.Connection, str | None]:
    """A fresh sqlite database in a new private directory under ``parent`` (default: the system's temporary
    directory), unlinked at once where the system allows; returns it and the directory left to remove."""
    directory = tempfile.mkdtemp(prefix=STORE_PREFIX, dir=parent)  # mode 0700
    path = os.path.join(directory, "state.sqlite")
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE", "temp_store=MEMORY"):
            conn.execute("PRAGMA " + pragma)
        conn.execute("CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    try:
        os.unlink(path)
        os.rmdir(directory)
    except OSError:  # pragma: no cover - a system that keeps open files (Windows): removed on close
        return conn, directory
    return conn, None


def _close(conn: sqlite3.Connection, leftover: str | None) -> None:
    conn.close()
    if leftover:  # pragma: no cover
        shutil.rmtree(leftover, ignore_errors=True)


@dataclass
class _Compaction:
    fresh: sqlite3.Connection
    leftover: str | None
    stack: list[tuple[Any, int]]  # what is left to walk
    rows_before: int
    steps: int = 0
    busy: float = 0.0


class TieredDB(BaseDB):
    """py-evm's key-value database: a dict of recent writes, a sqlite file for the rest; see the module
    docstring. ``cache_entries``/``cache_bytes`` bound the read cache in front of sqlite."""

    def __init__(
        self, directory: Path | None = None, *, cache_entries: int = 16_384, cache_bytes: int = 4 << 20
    ) -> None:
        self.directory = directory
        self.hot: dict[bytes, bytes] = {}
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_size = 0
        self._cache_entries = cache_entries
        self._cache_bytes = cache_bytes
        self._conn, self._leftover = _open(directory)
        self._finalizer = weakref.finalize(self, _close, self._conn, self._leftover)
        self._get_sql = "SELECT v FROM kv WHERE k = ?"
        #: Rows in cold after the last compaction, and rows written since (an upper bound: a rewrite of a
        #: key counts again).
        self.cold_compacted = 0
        self.cold_written = 0
        self.compactions = 0
        #: The last compaction's steps and the seconds they took in all.
        self.last_compaction: tuple[int, float] = (0, 0.0)
        self._compaction: _Compaction | None = None

    # --- py-evm's interface ------------------------------------------------------------------------

    def __getitem__(self, key: bytes) -> bytes:
        value = self.hot.get(key)
        if value is not None:
            return value
        value = self._cache.get(key)
        if value is not None:
            self._cache.move_to_end(key)
            return value
        row = self._conn.execute(self._get_sql, (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        self._remember(key, value)
        return value

    def get(self, key: bytes, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.hot[key] = value
        if key in self._cache:  # the cache holds cold's values only
            self._cache_size -= len(self._cache.pop(key)) + len(key)

    def _exists(self, key: bytes) -> bool:
        if key in self.hot or key in self._cache:
            return True
        return self._conn.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    def __delitem__(self, key: bytes) -> None:
        found = self.hot.pop(key, None) is not None
        if key in self._cache:
            self._cache_size -= len(self._cache.pop(key)) + len(key)
        for conn, table in self._targets():
            found = conn.execute(f"DELETE FROM {table} WHERE k = ?", (key,)).rowcount > 0 or found
        if self._compaction is not None:
            self._compaction.fresh.execute("DELETE FROM kv WHERE k = ?", (key,))
        if not found:
            raise KeyError(key)

    def _targets(self) -> list[tuple[sqlite3.Connection, str]]:
        """Where moves and deletes go: cold, and during a compaction the fresh file's pending table."""
        if self._compaction is None:
            return [(self._conn, "kv")]
        return [(self._conn, "kv"), (self._compaction.fresh, "pending")]

    def _remember(self, key: bytes, value: bytes) -> None:
        self._cache[key] = value
        self._cache_size += len(value) + len(key)
        while len(self._cache) > self._cache_entries or self._cache_size > self._cache_bytes:
            old_key, old_value = self._cache.popitem(last=False)
            self._cache_size -= len(old_value) + len(old_key)

    # --- sweeping ------------------------------------------------------------------------------------

    def cold_get(self, key: bytes) -> bytes | None:
        """A cold entry (through the cache), None when cold has none."""
        value = self._cache.get(key)
        if value is not None:
            return value
        row = self._conn.execute(self._get_sql, (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def flush(self, keep: Callable[[bytes, bytes], bool]) -> tuple[int, int]:
        """Move the hot entries ``keep`` accepts into cold (one transaction) and drop the others; returns
        (moved, dropped)."""
        hot, self.hot = self.hot, {}
        moving = [(k, v) for k, v in hot.items() if keep(k, v)]
        for conn, table in self._targets():
            conn.execute("BEGIN")
            try:
                conn.executemany(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", moving)
            finally:
                conn.execute("COMMIT")
        self.cold_written += len(moving)
        # The newest entries are the ones the next blocks read (the upper nodes of the tries they change):
        # they stay readable from memory, in the read cache, instead of each coming back from sqlite.
        for key, value in moving[-self._cache_entries :]:
            self._remember(key, value)
        return len(moving), len(hot) - len(moving)

    @property
    def compacting(self) -> bool:
        """Whether a compaction is under way (``start_compaction`` without the ``compact_step`` that ends it)."""
        return self._compaction is not None

    def start_compaction(self, roots: Iterable[tuple[bytes, int]], keep_other: Callable[[bytes, bytes], bool]) -> None:
        """Begin copying into a fresh file what the retained blocks need; ``compact_step`` goes on with it.

        Kept: every node of the tries at ``roots`` (``(root, TRIE | ACCOUNTS | RAW)``, see ``mark_trie``),
        and each entry whose key is not 32 bytes long that ``keep_other(key, value)`` accepts (copied now).
        Call it right after ``flush``: hot is not looked at. Until the compaction ends, reads use the old
        file and ``flush`` writes to both (to the fresh one's ``pending`` table, merged at the end, so that
        the walk does not take a moved node for one it copied and skip its children).
        """
        if self._compaction is not None:
            raise RuntimeError("a compaction is already under way")
        fresh, leftover = _open(self.directory)
        try:
            fresh.execute("CREATE TABLE pending (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
            fresh.execute("BEGIN")
            rows = (row for row in self._conn.execute("SELECT k, v FROM kv WHERE length(k) != 32") if keep_other(*row))
            fresh.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", rows)
            fresh.execute("COMMIT")
        except BaseException:
            _close(fresh, leftover)
            raise
        self._compaction = _Compaction(fresh, leftover, list(roots), self.cold_compacted + self.cold_written)

    def compact_step(self, budget: int | None) -> tuple[int, int] | None:
        """Copy up to ``budget`` more trie nodes (None: all); when the walk is done, switch to the fresh
        file, drop the old one and return (rows kept, rows dropped at most); else None."""
        job = self._compaction
        if job is None:
            raise RuntimeError("no compaction under way")
        fresh = job.fresh
        started = time.monotonic()
        try:
            fresh.execute("BEGIN")
            self._copy_tries(self._conn, fresh, job.stack, budget)
            if not job.stack:
                fresh.execute("INSERT OR REPLACE INTO kv SELECT k, v FROM pending")
            fresh.execute("COMMIT")
        except BaseException:
            self._compaction = None
            _close(fresh, job.leftover)
            raise
        job.busy += time.monotonic() - started
        job.steps += 1
        if job.stack:
            return None
        fresh.execute("DROP TABLE pending")
        kept = int(fresh.execute("SELECT count(*) FROM kv").fetchone()[0])
        self._compaction = None
        self._finalizer()  # closes the old file
        self._conn, self._leftover = fresh, job.leftover
        self._finalizer = weakref.finalize(self, _close, fresh, job.leftover)
        self._cache.clear()
        self._cache_size = 0
        self.cold_compacted, self.cold_written = kept, 0
        self.compactions += 1
        self.last_compaction = (job.steps, job.busy)
        return kept, max(0, job.rows_before - kept)

    def compact(self, roots: Iterable[tuple[bytes, int]], keep_other: Callable[[bytes, bytes], bool]) -> int:
        """A whole compaction at once (``start_compaction`` and every step); returns the rows kept."""
        self.start_compaction(roots, keep_other)
        done = self.compact_step(None)
        assert done is not None
        return done[0]

    @staticmethod
    def _copy_tries(
        old: sqlite3.Connection, fresh: sqlite3.Connection, stack: list[tuple[Any, int]], budget: int | None
    ) -> None:
        """Walk the tries from ``stack`` over ``old``, copying each node into ``fresh``, a batch at a time,
        until ``budget`` nodes are copied (None: all); ``fresh`` doubles as the set of nodes already copied,
        and ``stack`` keeps what is left to walk."""
        copied = 0
        while stack and (budget is None or copied < budget):
            batch: dict[bytes, int] = {}
            limit = _BATCH if budget is None else min(_BATCH, budget - copied)
            while stack and len(batch) < limit:
                ref, kind = stack.pop()
                if isinstance(ref, list):  # embedded node: no row of its own
                    children, leaf = _children(ref) if ref else ([], None)
                    stack.extend((child, kind) for child in children)
                    if leaf is not None and kind == ACCOUNTS:
                        stack.extend(_account_refs(leaf))
                elif ref:
                    batch[bytes(ref)] = kind
            if not batch:
                continue
            marks = ",".join("?" * len(batch))
            keys = list(batch)
            done = {bytes(k) for (k,) in fresh.execute(f"SELECT k FROM kv WHERE k IN ({marks})", keys)}
            todo = [k for k in keys if k not in done]
            if not todo:
                continue
            rows = old.execute(f"SELECT k, v FROM kv WHERE k IN ({','.join('?' * len(todo))})", todo).fetchall()
            fresh.executemany("INSERT INTO kv VALUES (?, ?)", rows)
            copied += len(rows)
            for key, value in rows:
                kind = batch[bytes(key)]
                if kind == RAW:
                    continue
                _push_refs(rlp.decode(bytes(value)), kind, stack)

    # --- size and life ---------------------------------------------------------------------------

    def cold_rows(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM kv").fetchone()[0])

    def cold_keys(self) -> Iterator[bytes]:
        """Every key in cold (for tests)."""
        return (bytes(k) for (k,) in self._conn.execute("SELECT k FROM kv"))

    def disk_bytes(self) -> int:
        """Bytes the cold file takes (pages in use and free)."""
        page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        return int(self._conn.execute("PRAGMA page_count").fetchone()[0]) * int(page_size)

    def close(self) -> None:
        if self._compaction is not None:
            _close(self._compaction.fresh, self._compaction.leftover)
            self._compaction = None
        self._finalizer()

    def __len__(self) -> int:
        """Entries, counting a key in both hot and cold twice (for logs and tests)."""
        return len(self.hot) + self.cold_rows()

    def __repr__(self) -> str:
        return f"TieredDB(hot={len(self.hot)})"
