"""The transfer journal of the balance manager: durable records, the reconcile decision and pruning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyswarmclient.amounts import nct
from polyswarmclient.errors import StateError
from polyswarmclient.services.balancemanager.journal import (
    HISTORY,
    TransferJournal,
    TransferRecord,
    prune,
    reconcile,
)

ADDRESS = "0x00000000000000000000000000000000000000Aa"
H1, H2 = "0x" + "1" * 64, "0x" + "2" * 64


def record(seq: int = 1, hashes: tuple[str, ...] = (H1,), state: str = "posting") -> TransferRecord:
    return TransferRecord(
        seq=seq,
        direction="deposit",
        amount=nct(4),
        chain="home",
        origin="maintain",
        home_block=100,
        side_block=500,
        side_before=nct(10),
        tx_hashes=hashes,
        state=state,  # type: ignore[arg-type]
    )


# --- reconcile (pure) -----------------------------------------------------------------------------


def test_a_record_without_a_hash_never_went_out() -> None:
    """Nothing was signed, so nothing was posted: failed, and policy may send it again."""
    assert reconcile(record(hashes=()), {}).state == "failed"


def test_a_mined_hash_makes_the_transfer_mined() -> None:
    """Any of its transactions mined means the NCT moved: the record is mined (in flight for a deposit)."""
    settled = reconcile(record(hashes=(H1, H2)), {H1: "missing", H2: "mined"})
    assert settled.state == "mined"
    assert settled.sent_at == 100  # the relay's wait counts from the block it was recorded at


@pytest.mark.parametrize("status", ["missing", "reverted"])
def test_a_missing_or_reverted_transaction_failed(status: str) -> None:
    """No such transaction after polyswarmd's receipt wait, or reverted: nothing moved, so failed."""
    settled = reconcile(record(), {H1: status})  # type: ignore[dict-item]
    assert settled.state == "failed" and settled.note


def test_reconcile_leaves_records_past_posting_alone() -> None:
    """A record already mined is not asked about again."""
    mined = record(state="mined")
    assert reconcile(mined, {H1: "missing"}) is mined


# --- pruning --------------------------------------------------------------------------------------


def test_prune_keeps_every_unfinished_record_and_a_bounded_history() -> None:
    """Unfinished records all stay; of the finished ones only the last HISTORY."""
    finished = [record(seq=i, state="arrived") for i in range(1, 50)]
    open_ones = [record(seq=3, state="mined"), record(seq=60)]
    kept = prune([r for r in finished if r.seq != 3] + open_ones)
    assert [r.seq for r in kept if r.finished] == list(range(50 - HISTORY, 50))
    assert {3, 60} <= {r.seq for r in kept}


# --- the file -------------------------------------------------------------------------------------


def test_records_survive_a_restart_with_their_hash(tmp_path: Path) -> None:
    """begin() and add_hash() are on disk at once: a new journal on the same directory reads them back."""
    journal = TransferJournal.open(tmp_path, ADDRESS)
    first = journal.begin("deposit", nct(4), origin="maintain", home_block=100, side_block=500, side_before=nct(10))
    journal.add_hash(first.seq, H1)

    again = TransferJournal.open(tmp_path, ADDRESS)
    assert again.unfinished() == [TransferRecord(**{**first.__dict__, "tx_hashes": (H1,)})]
    assert not list(tmp_path.glob("*.tmp"))  # written through a temporary file, renamed into place
    data = json.loads((tmp_path / f"balancemanager-{ADDRESS.lower()}.json").read_text())
    assert data["transfers"][0]["amount"] == str(nct(4))  # exact, as a decimal string


def test_the_file_stays_bounded(tmp_path: Path) -> None:
    """However many transfers finish, the file holds at most HISTORY finished records."""
    journal = TransferJournal.open(tmp_path, ADDRESS)
    for _ in range(HISTORY * 3):
        r = journal.begin("withdraw", nct(1), origin="once", home_block=1, side_block=1, side_before=nct(5))
        journal.finish(r.seq, "done")
    assert len(TransferJournal.open(tmp_path, ADDRESS).records) == HISTORY


def test_a_damaged_journal_is_a_state_error_that_says_what_to_do(tmp_path: Path) -> None:
    """Unreadable JSON is refused with a message naming the file and the fix, never silently dropped."""
    (tmp_path / f"balancemanager-{ADDRESS.lower()}.json").write_text("{not json")
    with pytest.raises(StateError, match="damaged.*move it away"):
        TransferJournal.open(tmp_path, ADDRESS)
