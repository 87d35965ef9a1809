"""Durable engine state: what we must remember to reveal and settle after a crash or restart.

One JSON file per bounty, under ``<state-dir>/microengine/<address>/<chain>-<guid>.json``. The record is
written **before** the assertion transaction is posted (so the nonce and verdicts behind the commitment
are never lost, spec pitfall 13), then updated with the assertion index once mined, and marked revealed
and settled. Every write is atomic: temporary file, fsync, rename, fsync of the directory.

A lock file keeps two engines from sharing one state directory (and so revealing each other's bids).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace
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
        data = asdict(self)
        d = self.deadlines
        data.update(
            version=FORMAT_VERSION,
            # Big integers as decimal strings: other tools (jq, JavaScript) lose precision above 2**53.
            nonce=str(self.nonce),
            commitment=str(self.commitment),
            bids=[str(b) for b in self.bids],
            verdicts=list(self.verdicts),
            mask=list(self.mask),
            reveal_after_block=d.expiration,
            reveal_before_block=d.reveal_end,
            settle_from_block=d.settle_from,
        )
        return data

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
        self._lock_fd: int | None = None

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
        return self

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def __enter__(self) -> StateStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- records ---------------------------------------------------------------------------------

    def path_for(self, chain: str, guid: str) -> Path:
        if not _SAFE.match(guid) or not _SAFE.match(chain):
            raise StateError(f"refusing to store bounty {guid!r} on chain {chain!r}: not a UUID-like name")
        return self.directory / f"{chain}-{guid}.json"

    def save(self, record: AssertionRecord) -> AssertionRecord:
        """Write ``record`` atomically and durably; returns it with ``updated`` stamped."""
        record = replace(record, updated=time.time())
        path = self.path_for(record.chain, record.guid)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        payload = json.dumps(record.to_json(), indent=1, sort_keys=True).encode("utf-8")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(self.directory)
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise StateError(f"cannot write {path}: {exc.strerror or exc}; check --state-dir (STATE_DIR)") from None
        return record

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
            record = AssertionRecord.from_json(json.loads(text))
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
        """Delete finished records (settled or abandoned). Returns how many were removed."""
        removed = 0
        for record in list(self.records()):
            if record.finished:
                try:
                    self.path_for(record.chain, record.guid).unlink(missing_ok=True)
                    removed += 1
                except OSError as exc:
                    log.warning("could not remove finished state file for %s: %s", record.guid, exc)
        return removed


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
