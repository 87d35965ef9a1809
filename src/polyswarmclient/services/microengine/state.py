"""Durable engine state: what we must remember to reveal and settle after a crash or restart.

One JSON file per bounty in play, under ``<state-dir>/microengine/<address>/<chain>-<guid>.json``. The
record is written **before** the assertion transaction is posted (so the nonce and verdicts behind the
commitment are never lost, spec pitfall 13), then updated with the assertion index once mined, and marked
revealed; once the bounty is settled or abandoned its file is deleted, so the directory holds only the
bounties still in play. Beside the records, one small ``catch-up-<chain>.page`` file per chain remembers
the first ``GET /bounties`` page a catch-up must read again after a restart.

A record's first write is atomic and durable (temporary file, fsync, rename, fsync of the directory) and
is awaited before its transaction goes out (:meth:`StateStore.write_now`). Later updates
(:meth:`StateStore.write_later`: the index once mined, revealed, forfeited, new windows) append the whole
newer record as one more line to the same file, without an fsync; the newest whole line wins when the
file is read, and a line torn by a crash is ignored. So an update never rewrites the first, synced line,
and it can be lost in a crash without harm, because the chain has the last word on start (see
:mod:`.steps`). Deletions (:meth:`StateStore.remove_later`) are not synced either. All of it happens on a
writer thread, never on the event loop: writes queued while the thread is busy go out together.

A lock file keeps two engines from sharing one state directory (and so revealing each other's bids).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from polyswarmclient.errors import StateError
from polyswarmclient.services.microengine.schedule import Deadlines

log = logging.getLogger("microengine.state")

COMMITTING = "committing"  # written, assertion tx not (known to be) mined
ASSERTED = "asserted"  # index known, reveal pending
REVEALED = "revealed"
FORFEITED = "forfeited"  # reveal window closed without a reveal; settle still attempted
SETTLED = "settled"
ABANDONED = "abandoned"  # the assertion never confirmed; nothing to reveal or settle
STATUSES = (COMMITTING, ASSERTED, REVEALED, FORFEITED, SETTLED, ABANDONED)
FINISHED = (SETTLED, ABANDONED)

_SAFE = re.compile(r"^[A-Za-z0-9-]{1,80}$")
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AssertionRecord:
    """Everything needed to reveal and settle one of our assertions."""

    guid: str
    chain: str
    address: str
    nonce: int
    commitment: int
    verdicts: tuple[bool, ...]
    mask: tuple[bool, ...]
    bids: tuple[int, ...]
    metadata: str
    expiration: int
    reveal_window: int
    vote_window: int
    status: str = COMMITTING
    index: int | None = None
    updated: float = 0.0

    @property
    def deadlines(self) -> Deadlines:
        return Deadlines(self.expiration, self.reveal_window, self.vote_window)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self) -> dict[str, Any]:
        d = self.deadlines
        return {
            # Field by field (dataclasses.asdict deep-copies through a recursion; every field here is flat).
            "guid": self.guid,
            "chain": self.chain,
            "address": self.address,
            # Big integers as decimal strings: other tools (jq, JavaScript) lose precision above 2**53.
            "nonce": str(self.nonce),
            "commitment": str(self.commitment),
            "verdicts": list(self.verdicts),
            "mask": list(self.mask),
            "bids": [str(b) for b in self.bids],
            "metadata": self.metadata,
            "expiration": self.expiration,
            "reveal_window": self.reveal_window,
            "vote_window": self.vote_window,
            "status": self.status,
            "index": self.index,
            "updated": self.updated,
            "version": FORMAT_VERSION,
            "reveal_after_block": d.expiration,
            "reveal_before_block": d.reveal_end,
            "settle_from_block": d.settle_from,
        }

    @classmethod
    def from_json(cls, data: Any) -> AssertionRecord:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        missing = {f.name for f in fields(cls)} - set(data) - _OPTIONAL
        if missing:
            raise ValueError(f"missing fields: {', '.join(sorted(missing))}")
        if data.get("status", COMMITTING) not in STATUSES:
            raise ValueError(f"unknown status {data['status']!r}")
        # Each field from its JSON value, converted by its declared type (absent optional ones: the default).
        return cls(**{f.name: _FROM_JSON[str(f.type)](data[f.name]) for f in fields(cls) if f.name in data})


#: Fields an older record may lack.
_OPTIONAL = {"status", "index", "updated"}
#: How a record field of each declared type is read back (big integers arrive as decimal strings).
_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "int | None": lambda value: None if value is None else int(value),
    "tuple[bool, ...]": lambda values: tuple(bool(v) for v in values),
    "tuple[int, ...]": lambda values: tuple(int(v) for v in values),
}


class StateStore:
    """The microengine's state directory for one account."""

    def __init__(self, root: Path | str, address: str) -> None:
        self.root = Path(root)
        self.address = address
        self.directory = self.root / "microengine" / address.lower()
        # File names are built as plain strings: pathlib costs more per write and interns every part.
        self._prefix = os.path.join(os.fspath(self.directory), "")
        self._pid = os.getpid()
        self._lock_fd: int | None = None
        self._dir_fd: int | None = None
        self._writer = _Writer(self)

    # --- lifecycle -------------------------------------------------------------------------------

    def open(self) -> StateStore:
        """Create the directory and take the lock. Raises :class:`StateError` with a fix."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create state directory {self.directory}: {exc.strerror or exc}; "
                "choose a writable --state-dir (STATE_DIR)"
            ) from None
        lock_path = self.directory / ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot open {lock_path}: {exc.strerror or exc}") from None
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - non-POSIX: no lock, but still usable
            pass
        except OSError:
            os.close(fd)
            raise StateError(
                f"another microengine is using {self.directory}; give each engine its own --state-dir (STATE_DIR)"
            ) from None
        self._lock_fd = fd
        try:  # kept open for the directory's fsyncs
            self._dir_fd = os.open(self.directory, os.O_RDONLY)
        except OSError:  # pragma: no cover - e.g. Windows cannot open directories
            self._dir_fd = None
        return self

    def close(self) -> None:
        """Finish the queued writes, then release the directory."""
        self._writer.close()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def __enter__(self) -> StateStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- records ---------------------------------------------------------------------------------

    def path_for(self, chain: str, guid: str) -> Path:
        return Path(self._file(chain, guid))

    def _file(self, chain: str, guid: str) -> str:
        if not _SAFE.match(guid) or not _SAFE.match(chain):
            raise StateError(f"refusing to store bounty {guid!r} on chain {chain!r}: not a UUID-like name")
        return f"{self._prefix}{chain}-{guid}.json"

    def save(self, record: AssertionRecord) -> AssertionRecord:
        """Write ``record`` atomically and durably, now, on this thread; returns it with ``updated`` stamped."""
        record = stamped(record)
        self.write_batch({self._file(record.chain, record.guid): record})
        return record

    def remove(self, chain: str, guid: str) -> None:
        """Delete the record of ``guid`` (durably), now, on this thread."""
        self.write_batch({self._file(chain, guid): None})

    def write_batch(
        self,
        batch: Mapping[str, AssertionRecord | bytes | None] | Mapping[Path, AssertionRecord | bytes | None],
        sync_directory: bool = True,
        appends: Collection[str] = (),
    ) -> None:
        """Apply ``batch`` (path -> record, raw bytes, or None to delete) atomically per file, then (with
        ``sync_directory``) make the renames and deletions durable with one fsync of the directory.

        A record whose path is in ``appends`` is an update: its line is appended to the existing file,
        unsynced (:func:`decode` reads the newest whole line). When that file is gone, it is written in full
        instead, durably, as a first write is."""
        moves: list[tuple[str, str]] = []
        try:
            for path, content in batch.items():
                if content is None:
                    continue
                payload = content if isinstance(content, bytes) else encode(content)
                name = os.fspath(path)
                if name in appends:
                    try:
                        fd = os.open(name, os.O_WRONLY | os.O_APPEND)
                    except FileNotFoundError:
                        sync_directory = True  # a new file after all: its name must survive a power loss
                    else:
                        try:
                            os.write(fd, payload)
                        finally:
                            os.close(fd)
                        continue
                head, tail = os.path.split(name)
                tmp = os.path.join(head, f".{tail}.{self._pid}.tmp")
                moves.append((tmp, name))
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, payload)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            for tmp, path in moves:
                os.replace(tmp, path)
            for path, content in batch.items():
                if content is None:
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
            if sync_directory:
                self._fsync_dir()
        except OSError as exc:
            for tmp, _ in moves:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            where = next(iter(batch), self.directory) if len(batch) == 1 else self.directory
            raise StateError(f"cannot write {where}: {exc.strerror or exc}; check --state-dir (STATE_DIR)") from None

    def _fsync_dir(self) -> None:
        if self._dir_fd is None:  # not opened (or a platform that cannot open directories)
            _fsync_dir(self.directory)
            return
        try:
            os.fsync(self._dir_fd)
        except OSError:  # pragma: no cover
            pass

    # --- off the event loop ----------------------------------------------------------------------

    def write_later(self, record: AssertionRecord) -> None:
        """Queue an update of ``record`` for the writer thread (a newer version of it replaces a queued one);
        it is appended to the record's file, unsynced."""
        self._writer.put(self._file(record.chain, record.guid), record, append=True)

    def remove_later(self, chain: str, guid: str) -> None:
        """Queue the deletion of ``guid``'s record (a finished bounty) for the writer thread."""
        self._writer.put(self._file(chain, guid), None)

    async def write_now(self, record: AssertionRecord) -> AssertionRecord:
        """Write ``record`` on the writer thread and wait until it is durable (raises :class:`StateError`)."""
        record = stamped(record)
        await self._writer.wait(self._writer.put(self._file(record.chain, record.guid), record, new_name=True))
        return record

    async def flush(self) -> None:
        """Wait until every queued write is on disk (failures were logged when they happened)."""
        try:
            await self._writer.wait(self._writer.queued)
        except StateError:
            pass

    # --- the catch-up cursor -------------------------------------------------------------------------

    def cursor_path(self, chain: str) -> Path:
        if not _SAFE.match(chain):
            raise StateError(f"refusing to store a cursor for chain {chain!r}: not a plain name")
        return self.directory / f"catch-up-{chain}.page"

    def load_cursor(self, chain: str) -> int:
        """The first ``GET /bounties`` page a catch-up on ``chain`` must read (0 when none was stored)."""
        path = self.cursor_path(chain)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("cannot read %s (%s); the catch-up reads every page", path, exc)
            return 0
        try:
            page = int(json.loads(text)["page"])
        except (ValueError, TypeError, KeyError):
            log.warning("%s is damaged; the catch-up reads every page", path)
            return 0
        return max(page, 0)

    def save_cursor_later(self, chain: str, page: int) -> None:
        """Queue the catch-up cursor of ``chain`` for the writer thread."""
        payload = json.dumps({"version": FORMAT_VERSION, "chain": chain, "page": page}).encode("utf-8")
        self._writer.put(os.fspath(self.cursor_path(chain)), payload)

    # --- reading ---------------------------------------------------------------------------------

    def load(self, chain: str, guid: str) -> AssertionRecord | None:
        path = self.path_for(chain, guid)
        if not path.exists():
            return None
        return self._read(path)

    def has(self, chain: str, guid: str) -> bool:
        try:
            return self.path_for(chain, guid).exists()
        except StateError:
            return False

    def update(self, record: AssertionRecord, **changes: Any) -> AssertionRecord:
        return self.save(replace(record, **changes))

    def _read(self, path: Path) -> AssertionRecord:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StateError(f"cannot read state file {path}: {exc}") from None
        try:
            record = decode(text, str(path))
        except (ValueError, TypeError, KeyError) as exc:
            raise StateError(
                f"state file {path} is corrupt ({exc}); it may hold an unrevealed bid: inspect it, then move "
                "it out of the state directory to continue"
            ) from None
        if record.address.lower() != self.address.lower():
            raise StateError(f"state file {path} belongs to {record.address}, not {self.address}")
        return record

    def records(self) -> Iterator[AssertionRecord]:
        """Every stored record, finished or not. Raises :class:`StateError` on the first corrupt file."""
        if not self.directory.exists():
            return
        for path in sorted(self.directory.glob("*.json")):
            yield self._read(path)

    def pending(self) -> list[AssertionRecord]:
        """Records with a reveal or settle still to do."""
        return [r for r in self.records() if not r.finished]

    def prune(self) -> int:
        """Delete finished records (settled or abandoned; an earlier version kept them). Returns how many."""
        finished = [self._file(r.chain, r.guid) for r in self.records() if r.finished]
        if not finished:
            return 0
        try:
            self.write_batch(dict.fromkeys(finished))
        except StateError as exc:
            log.warning("could not remove finished state files: %s", exc)
            return 0
        return len(finished)


def stamped(record: AssertionRecord) -> AssertionRecord:
    return replace(record, updated=time.time())


def encode(record: AssertionRecord) -> bytes:
    # One line through the C encoder (``indent`` would fall back to the pure-Python one); ``jq`` pretty-prints it.
    return json.dumps(record.to_json(), sort_keys=True).encode("utf-8") + b"\n"


_JSON = json.JSONDecoder()
_SPACE = re.compile(r"\s*")


def decode(text: str, where: str = "state file") -> AssertionRecord:
    """The newest version of the record in a state file's ``text``.

    The file's first JSON object (one line, or indented as earlier versions wrote it) was synced before
    anything depended on it and must be whole: a ValueError says what is wrong with it. Each update after
    it is one more line; the last one that reads as a whole record of the same bounty wins, and what a
    crash tore at the end (a cut line, zeros) is ignored.
    """
    objects: list[Any] = []
    position = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    while position < len(text):
        try:
            value, position = _JSON.raw_decode(text, position)
        except ValueError:
            if not objects:
                raise
            log.warning("%s: ignoring an unfinished update at its end (a crash cut it)", where)
            break
        objects.append(value)
        position = _SPACE.match(text, position).end()  # type: ignore[union-attr]
    if not objects:
        raise ValueError("empty file")
    first = AssertionRecord.from_json(objects[0])
    for value in reversed(objects[1:]):
        try:
            newer = AssertionRecord.from_json(value)
        except (ValueError, TypeError, KeyError):
            continue
        if (newer.guid, newer.chain, newer.address) == (first.guid, first.chain, first.address):
            return newer
    return first


_ABSENT = object()


class _Writer:
    """One thread that applies queued writes in batches; event-loop code waits on it without blocking.

    Writes are numbered as they are queued; a waiter wakes once a batch holding its number is written
    (or raises :class:`StateError` when that batch failed). The thread starts with the first write and
    stops when the store closes, after the queue is empty.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: dict[str, AssertionRecord | bytes | None] = {}
        self._appends: set[str] = set()  # queued paths whose record is an update, appended to its file
        self._new_name = False  # a queued write's file name must survive a power loss: fsync the directory
        self.queued = 0  # numbers of writes queued so far
        self._written = 0  # every write numbered up to this one has been handled
        self._failures: list[tuple[int, int, StateError]] = []  # (after, upto, error), the latest few
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False

    def put(
        self, path: str, content: AssertionRecord | bytes | None, new_name: bool = False, append: bool = False
    ) -> int:
        with self._lock:
            queued = self._queue.pop(path, _ABSENT)  # keep the order of the newest version
            self._queue[path] = content
            if append and (queued is _ABSENT or path in self._appends):
                self._appends.add(path)
            else:  # a full write still queued for this file stays one, of the newest version
                self._appends.discard(path)
            self._new_name = self._new_name or new_name
            self.queued += 1
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="microengine-state", daemon=True)
                self._thread.start()
            self._wake.notify()
            return self.queued

    async def wait(self, number: int) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._written >= number:
                error = self._failure(number)
                if error is not None:
                    raise error
                return
            self._waiters.append((number, loop, future))
        await future

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        with self._lock:
            thread = self._thread
            self._stopping = True
            self._wake.notify()
        if thread is not None:
            thread.join()
        with self._lock:
            self._thread = None

    def _failure(self, number: int) -> StateError | None:
        for after, upto, error in self._failures:
            if after < number <= upto:
                return error
        return None

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, {}
                appends, self._appends = self._appends, set()
                sync_directory, self._new_name = self._new_name, False
                after, upto = self._written, self.queued
            error: StateError | None = None
            try:
                self._store.write_batch(batch, sync_directory, appends)
            except StateError as exc:
                error = exc
                log.error("state not written (%d file(s)): %s", len(batch), exc)
            with self._lock:
                self._written = upto
                if error is not None:
                    self._failures = [*self._failures[-7:], (after, upto, error)]
                ready = [w for w in self._waiters if w[0] <= upto]
                self._waiters = [w for w in self._waiters if w[0] > upto]
            for number, loop, future in ready:
                failed = error if after < number else self._failure(number)
                try:
                    loop.call_soon_threadsafe(_settle, future, failed)
                except RuntimeError:  # pragma: no cover - the loop closed meanwhile
                    pass


def _settle(future: asyncio.Future[None], error: StateError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
