"""The transfer journal: every relay transfer is written to the state directory before it is posted.

A crash between posting a transfer and hearing back must not make the next run send it again (issue 8).
So each deposit and withdrawal is a :class:`TransferRecord`, written (temporary file, fsync, rename,
fsync of the directory) before anything is signed, with the transaction hash added as soon as it is
signed and before it is posted. On start, :func:`reconcile` turns what the chain says about each
unfinished record into its new state; it is pure, so it is tested without I/O.

States: ``posting`` (written before posting; maybe with hashes), ``mined`` (the chain has it; a
deposit made by ``maintain`` stays in flight until the side balance shows it), and the finished ones:
``arrived`` (a deposit seen on the side chain), ``done`` (mined, and nobody waits for the payout:
withdrawals and one-shot transfers) and ``failed`` (never went out: no hash, reverted, or no such
transaction after polyswarmd's receipt wait). Finished records are pruned to the last
:data:`HISTORY`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from polyswarmclient.client.pins import write_json_atomically
from polyswarmclient.errors import StateError

Direction = Literal["deposit", "withdraw"]
Origin = Literal["maintain", "once"]
State = Literal["posting", "mined", "arrived", "done", "failed"]
TxStatus = Literal["mined", "reverted", "missing"]

FINISHED: frozenset[State] = frozenset({"arrived", "done", "failed"})
#: Finished records kept for the operator to read; older ones are dropped.
HISTORY = 20
VERSION = 1


@dataclass(frozen=True)
class TransferRecord:
    """One relay transfer: what, from where, when (both chains' blocks), and its transaction hashes."""

    seq: int
    direction: Direction
    amount: int
    chain: str  # the source chain, where the transaction is mined
    origin: Origin
    home_block: int
    side_block: int
    #: The side balance just before (a deposit's arrival is measured from it).
    side_before: int
    tx_hashes: tuple[str, ...] = ()
    state: State = "posting"
    #: The home block once the transaction was seen mined (0: not known).
    mined_at: int = 0
    note: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def sent_at(self) -> int:
        """The home block the relay's wait is counted from."""
        return self.mined_at or self.home_block

    def describe(self, show: Any = str) -> str:
        tx = f"tx {', '.join(self.tx_hashes)}" if self.tx_hashes else "no transaction hash"
        return f"{self.direction} #{self.seq} of {show(self.amount)} ({tx}, home block {self.home_block})"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["amount"] = str(self.amount)  # NCT-wei can pass 2**53: keep them exact for any reader
        data["side_before"] = str(self.side_before)
        data["tx_hashes"] = list(self.tx_hashes)
        return data

    @classmethod
    def from_json(cls, data: Any) -> TransferRecord:
        if not isinstance(data, dict):
            raise ValueError("a record is not an object")
        record = cls(
            seq=_int(data["seq"]),
            direction=_choice(data["direction"], Direction),
            amount=_int(data["amount"]),
            chain=_choice(data["chain"], Literal["home", "side"]),
            origin=_choice(data["origin"], Origin),
            home_block=_int(data["home_block"]),
            side_block=_int(data["side_block"]),
            side_before=_int(data["side_before"]),
            tx_hashes=tuple(_hash(h) for h in data.get("tx_hashes", [])),
            state=_choice(data.get("state", "posting"), State),
            mined_at=_int(data.get("mined_at", 0)),
            note=str(data.get("note", "")),
        )
        return record


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise ValueError(f"{value!r} is not a non-negative integer")
    return int(value)


def _choice(value: Any, kind: Any) -> Any:
    if value not in get_args(kind):
        raise ValueError(f"{value!r} is not one of {get_args(kind)}")
    return value


def _hash(value: Any) -> str:
    text = str(value)
    if not text.startswith("0x") or len(text) != 66:
        raise ValueError(f"{value!r} is not a transaction hash")
    return text


# --- the decision on start (pure) -----------------------------------------------------------------


def reconcile(record: TransferRecord, statuses: Mapping[str, TxStatus]) -> TransferRecord:
    """``record`` after learning what the chain says of each of its hashes (``statuses``).

    No hash: nothing was signed, so nothing was posted (failed). Any hash mined: the transfer went
    out (``mined``; the caller decides whether someone waits for its arrival). Every hash reverted or
    missing after polyswarmd's receipt wait: it never went out (failed, and policy may send it again).
    Records already past ``posting`` are returned unchanged.
    """
    if record.state != "posting":
        return record
    if not record.tx_hashes:
        return replace(record, state="failed", note="never signed, so never posted")
    if any(statuses.get(h) == "mined" for h in record.tx_hashes):
        # When it was mined is not known: the relay's wait counts from the block it was recorded at, so
        # a deposit is looked for no later than it would have been (a late one is reported, never resent).
        return replace(record, state="mined")
    if all(statuses.get(h) == "reverted" for h in record.tx_hashes):
        return replace(record, state="failed", note="mined but reverted: nothing moved")
    return replace(record, state="failed", note="no such transaction on chain after polyswarmd's receipt wait")


def prune(records: Iterable[TransferRecord], history: int = HISTORY) -> list[TransferRecord]:
    """Every unfinished record and the last ``history`` finished ones, in order."""
    ordered = sorted(records, key=lambda r: r.seq)
    finished = [r for r in ordered if r.finished]
    keep = {r.seq for r in finished[-history:]} if history > 0 else set()
    return [r for r in ordered if not r.finished or r.seq in keep]


# --- the file -------------------------------------------------------------------------------------


@dataclass
class TransferJournal:
    """The transfer records of one account, in ``<state dir>/balancemanager-<address>.json``.

    ``path=None`` keeps them in memory only (tests, and callers that opt out of durability).
    """

    path: Path | None
    records: dict[int, TransferRecord] = field(default_factory=dict)

    @classmethod
    def open(cls, state_dir: Path, address: str) -> TransferJournal:
        journal = cls(Path(state_dir) / f"balancemanager-{address.lower()}.json")
        journal._load()
        return journal

    @classmethod
    def in_memory(cls) -> TransferJournal:
        return cls(None)

    def unfinished(self, direction: Direction | None = None) -> list[TransferRecord]:
        return [
            r
            for r in sorted(self.records.values(), key=lambda r: r.seq)
            if not r.finished and (direction is None or r.direction == direction)
        ]

    def begin(
        self,
        direction: Direction,
        amount: int,
        *,
        origin: Origin,
        home_block: int,
        side_block: int,
        side_before: int,
    ) -> TransferRecord:
        """Write a new ``posting`` record (before anything is signed) and return it."""
        seq = max(self.records, default=0) + 1
        record = TransferRecord(
            seq=seq,
            direction=direction,
            amount=amount,
            chain="home" if direction == "deposit" else "side",
            origin=origin,
            home_block=home_block,
            side_block=side_block,
            side_before=side_before,
        )
        return self.put(record)

    def add_hash(self, seq: int, tx_hash: str) -> None:
        """A transaction of record ``seq`` was signed: write its hash before it is posted."""
        record = self.records[seq]
        if tx_hash not in record.tx_hashes:
            self.put(replace(record, tx_hashes=(*record.tx_hashes, tx_hash)))

    def put(self, record: TransferRecord) -> TransferRecord:
        """Store ``record`` (replacing the one with its ``seq``), prune, and write the file."""
        self.records[record.seq] = record
        self.records = {r.seq: r for r in prune(self.records.values())}
        self._save()
        return record

    def finish(self, seq: int, state: State, note: str = "", *, mined_at: int = 0) -> TransferRecord:
        record = self.records[seq]
        changes: dict[str, Any] = {"state": state}
        if note:
            changes["note"] = note
        if mined_at:
            changes["mined_at"] = mined_at
        return self.put(replace(record, **changes))

    # -- I/O ---------------------------------------------------------------------------------------

    def _load(self) -> None:
        assert self.path is not None
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"cannot read the transfer journal {self.path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("transfers"), list):
                raise ValueError("no 'transfers' list")
            records = [TransferRecord.from_json(item) for item in data["transfers"]]
        except (ValueError, KeyError) as exc:
            raise StateError(
                f"the transfer journal {self.path} is damaged ({exc}); check the transfers it names on chain, "
                "then move it away to start a new one"
            ) from None
        self.records = {r.seq: r for r in records}

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"version": VERSION, "transfers": [r.to_json() for r in sorted(self.records.values(), key=_seq)]}
        try:
            write_json_atomically(self.path, data)
        except OSError as exc:
            raise StateError(f"cannot write the transfer journal {self.path}: {exc.strerror or exc}") from exc


def _seq(record: TransferRecord) -> int:
    return record.seq
