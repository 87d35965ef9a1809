"""Durable state: reveals and settles survive a restart; broken files fail clearly."""

import json

import pytest

from polyswarmclient.errors import StateError
from polyswarmclient.services.microengine.state import (
    ASSERTED,
    COMMITTING,
    REVEALED,
    SETTLED,
    AssertionRecord,
    StateStore,
)

ADDRESS = "0xd595c0c90498619DaeAd4Fb67886A1f06c1B3c17"
GUID = "3e4f4d5c-2b1a-4c3d-9e8f-7a6b5c4d3e2f"


def record(**changes):
    base = dict(
        guid=GUID,
        chain="side",
        address=ADDRESS,
        nonce=2**255 + 12345,
        commitment=2**256 - 1,
        verdicts=(True, False),
        mask=(True, True),
        bids=(62500000000000000, 10**18),
        metadata='[{"malware_family":"EICAR"}]',
        expiration=100,
        reveal_window=10,
        vote_window=20,
    )
    base.update(changes)
    return AssertionRecord(**base)


def test_reveal_written_before_posting_survives_restart(tmp_path):
    """A record written before the assertion tx (status committing) is loaded intact by a new process."""
    with StateStore(tmp_path, ADDRESS) as store:
        store.save(record())
    with StateStore(tmp_path, ADDRESS) as again:
        (loaded,) = again.pending()
    assert loaded.status == COMMITTING
    assert loaded.nonce == 2**255 + 12345 and loaded.verdicts == (True, False)
    assert loaded.bids == (62500000000000000, 10**18)
    assert loaded.deadlines.reveal_end == 110 and loaded.deadlines.settle_from == 130


def test_big_integers_are_strings_on_disk(tmp_path):
    """Nonce, commitment and bids are decimal strings on disk, so other tools read them exactly."""
    with StateStore(tmp_path, ADDRESS) as store:
        store.save(record())
        data = json.loads(store.path_for("side", GUID).read_text())
    assert data["nonce"] == str(2**255 + 12345) and data["bids"] == ["62500000000000000", str(10**18)]
    assert data["reveal_before_block"] == 110 and data["settle_from_block"] == 130


def test_updates_and_finished_records(tmp_path):
    """Index and status updates persist; settled records are no longer pending and are pruned at start."""
    with StateStore(tmp_path, ADDRESS) as store:
        r = store.save(record())
        r = store.update(r, index=3, status=ASSERTED)
        assert store.load("side", GUID).index == 3
        r = store.update(r, status=REVEALED)
        assert [p.status for p in store.pending()] == [REVEALED]
        store.update(r, status=SETTLED)
        assert store.pending() == []
        assert store.prune() == 1 and not store.has("side", GUID)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    """Writes go through a temporary file and a rename, leaving only the record behind."""
    with StateStore(tmp_path, ADDRESS) as store:
        store.save(record())
        store.save(record(status=ASSERTED, index=0))
        names = sorted(p.name for p in store.directory.iterdir())
    assert names == [".lock", f"side-{GUID}.json"]


def test_corrupt_state_file_is_a_clear_error(tmp_path):
    """A truncated state file stops the engine with a StateError naming the file and what to do."""
    with StateStore(tmp_path, ADDRESS) as store:
        store.save(record())
        path = store.path_for("side", GUID)
        path.write_text(path.read_text()[:40])
        with pytest.raises(StateError, match="corrupt.*move it"):
            store.pending()


def test_state_file_missing_fields_is_a_clear_error(tmp_path):
    """A state file that is JSON but lacks fields is reported as corrupt too."""
    with StateStore(tmp_path, ADDRESS) as store:
        store.path_for("side", GUID).write_text('{"guid": "x"}')
        with pytest.raises(StateError, match="missing fields"):
            store.pending()


def test_second_engine_on_same_state_dir_is_refused(tmp_path):
    """Two engines sharing one state directory would reveal each other's bids, so the second is refused."""
    with StateStore(tmp_path, ADDRESS):
        with pytest.raises(StateError, match="another microengine"):
            StateStore(tmp_path, ADDRESS).open()


def test_unusable_state_dir_is_a_clear_error(tmp_path):
    """A state dir that cannot be created names the directory and the option to change."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError, match="--state-dir"):
        StateStore(blocker, ADDRESS).open()


def test_weird_guid_is_refused(tmp_path):
    """A GUID that is not UUID-like cannot escape the state directory."""
    with StateStore(tmp_path, ADDRESS) as store, pytest.raises(StateError):
        store.save(record(guid="../../etc/passwd"))
