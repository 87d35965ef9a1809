"""Durable state: reveals and settles survive a restart; broken files fail clearly."""

import errno
import json
import os
import stat
import threading
from dataclasses import replace

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


def test_every_field_survives_the_disk(tmp_path):
    """A record with every field set away from its default is read back equal, one JSON line on disk."""
    from dataclasses import fields

    full = record(status=REVEALED, index=7, updated=1234.5)
    assert {f.name for f in fields(AssertionRecord)} <= set(full.to_json())
    with StateStore(tmp_path, ADDRESS) as store:
        store.write_batch({store.path_for("side", GUID): full})
        text = store.path_for("side", GUID).read_text()
        assert store.load("side", GUID) == full
    assert text.count("\n") == 1 and text.endswith("\n")


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


def counting_fsyncs(monkeypatch) -> list[str]:
    """Every os.fsync from now on, by the name of the thread that made it."""
    calls: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        calls.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def test_a_batch_costs_one_fsync_per_record_plus_one_for_the_directory(tmp_path, monkeypatch):
    """Three records written and one deleted together: three file fsyncs and one of the directory."""
    with StateStore(tmp_path, ADDRESS) as store:
        gone = record(guid="00000000-0000-0000-0000-000000000009")
        store.save(gone)
        fsyncs = counting_fsyncs(monkeypatch)
        batch = {store.path_for("side", f"00000000-0000-0000-0000-00000000000{i}"): None for i in range(3)}
        batch = {path: record(guid=path.stem.removeprefix("side-")) for path in batch}
        store.write_batch({**batch, store.path_for("side", gone.guid): None})
        assert len(fsyncs) == 4
        assert sorted(r.guid for r in store.records()) == sorted(r.guid for r in batch.values())


async def test_updates_are_written_on_the_writer_thread_and_queued_ones_coalesce(tmp_path, monkeypatch):
    """Updates never touch the disk on the event loop; ten updates queued while the writer is busy reach
    the disk as one write of the newest version."""
    with StateStore(tmp_path, ADDRESS) as store:
        fsyncs = counting_fsyncs(monkeypatch)
        busy, release = threading.Event(), threading.Event()
        real = store.write_batch

        def slow_batch(batch, sync_directory=True, appends=()):
            busy.set()
            release.wait(5)
            real(batch, sync_directory, appends)

        first = await store.write_now(record())  # durable once this returns
        assert store.load("side", GUID) == first
        monkeypatch.setattr(store, "write_batch", slow_batch)
        other = record(guid="00000000-0000-0000-0000-000000000001")
        store.write_later(other)
        assert busy.wait(5)
        busy.clear()
        for index in range(10):
            store.write_later(replace(first, index=index, status=ASSERTED))
        release.set()
        await store.flush()
        assert store.load("side", GUID).index == 9
        assert set(fsyncs) == {"microengine-state"}
        # The first (record and directory); the other, whose file did not exist yet, written in full (record
        # and directory); the ten coalesced into one appended line, unsynced.
        assert len(fsyncs) == 2 + 2 + 0
        assert store.path_for("side", GUID).read_text().count("\n") == 2


async def test_only_a_first_write_is_synced(tmp_path, monkeypatch):
    """The first write of a record (awaited before its assertion goes out) is synced with its directory;
    updates append a line and deletions unlink without a sync: a crash loses at most the update, never
    the synced first line."""
    with StateStore(tmp_path, ADDRESS) as store:
        synced: list[str] = []
        real = os.fsync

        def fsync(fd: int) -> None:
            synced.append("directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
            real(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        first = await store.write_now(record())
        assert synced == ["file", "directory"]
        synced.clear()
        store.write_later(replace(first, index=3, status=ASSERTED))
        await store.flush()
        assert synced == []
        assert store.load("side", GUID).index == 3
        synced.clear()
        store.remove_later("side", GUID)
        await store.flush()
        assert synced == [] and not store.has("side", GUID)
        assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


async def test_a_first_write_that_fails_is_raised_before_anything_is_posted(tmp_path, monkeypatch):
    """A full disk makes write_now raise a StateError naming --state-dir (the assertion must not go out)."""
    with StateStore(tmp_path, ADDRESS) as store:
        real_open = os.open

        def no_space(path, *args, **kwargs):
            if str(path).endswith(".tmp"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", no_space)
        with pytest.raises(StateError, match="No space left.*--state-dir"):
            await store.write_now(record())
        monkeypatch.setattr(os, "open", real_open)
        assert not store.has("side", GUID)
        await store.write_now(record())  # the writer goes on after a failure
        assert store.has("side", GUID)


def test_catch_up_cursor_round_trip_and_damage(tmp_path, caplog):
    """The stored catch-up page reads back after a restart; a damaged file means page 0, with a warning."""
    with StateStore(tmp_path, ADDRESS) as store:
        assert store.load_cursor("side") == 0
        store.save_cursor_later("side", 41)
    with StateStore(tmp_path, ADDRESS) as store:
        assert store.load_cursor("side") == 41 and list(store.records()) == []
        store.cursor_path("side").write_text("{")
        assert store.load_cursor("side") == 0
    assert "damaged" in caplog.text


async def test_updates_append_lines_and_the_newest_wins(tmp_path):
    """An update adds a line and leaves the synced first line as it was; a new process reads the newest."""
    with StateStore(tmp_path, ADDRESS) as store:
        first = await store.write_now(record())
        path = store.path_for("side", GUID)
        synced_line = path.read_bytes()
        store.write_later(replace(first, index=3, status=ASSERTED))
        await store.flush()
        store.write_later(replace(first, index=3, status=REVEALED))
        await store.flush()
        assert path.read_bytes().startswith(synced_line)
        assert path.read_text().count("\n") == 3
    with StateStore(tmp_path, ADDRESS) as again:
        (loaded,) = again.pending()
    assert (loaded.status, loaded.index, loaded.nonce) == (REVEALED, 3, first.nonce)


@pytest.mark.parametrize("tail", ['{"guid": "3e4f', "\x00" * 300, '{"guid": "3e4f"}\n'])
def test_an_update_torn_by_a_crash_leaves_the_last_whole_version(tmp_path, tail):
    """What a crash leaves at the end of a record's file (a cut line, zeros, a line that is no record) is
    passed over: the last whole version is the record, and the engine starts."""
    with StateStore(tmp_path, ADDRESS) as store:
        first = store.save(record())
        path = store.path_for("side", GUID)
        store.write_batch({path: replace(first, index=5, status=ASSERTED)}, appends={str(path)})
        with path.open("a", encoding="utf-8") as file:
            file.write(tail)
        (loaded,) = store.pending()
    assert (loaded.status, loaded.index) == (ASSERTED, 5)


def test_an_indented_record_of_an_earlier_version_takes_updates(tmp_path):
    """A record an earlier version wrote indented over several lines reads back, and so does an update
    appended to it."""
    with StateStore(tmp_path, ADDRESS) as store:
        path = store.path_for("side", GUID)
        path.write_text(json.dumps(record().to_json(), indent=2) + "\n")
        assert store.load("side", GUID) == record()
        store.write_batch({path: record(index=2, status=ASSERTED)}, appends={str(path)})
        assert store.load("side", GUID) == record(index=2, status=ASSERTED)


async def test_an_update_whose_file_is_gone_is_written_in_full_and_synced(tmp_path, monkeypatch):
    """An update of a record whose file is missing (deleted meanwhile) creates it durably, as a first write."""
    with StateStore(tmp_path, ADDRESS) as store:
        fsyncs = counting_fsyncs(monkeypatch)
        store.write_later(record(index=1, status=ASSERTED))
        await store.flush()
        assert len(fsyncs) == 2  # the file and the directory
        assert store.load("side", GUID) == record(index=1, status=ASSERTED)
        assert store.path_for("side", GUID).read_text().count("\n") == 1
