"""Scan jobs and results as stream fields, stream names, Redis addresses and the deadline maths."""

from __future__ import annotations

import pytest

from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.errors import ConfigError
from polyswarmclient.scanqueue.jobs import (
    BadEntry,
    ScanJob,
    ScanReply,
    deadline_ms,
    default_queue,
    expired,
    job_stream,
    percentile,
    redis_url,
    redis_url_for_logs,
    reply_stream,
    seconds_left,
)

GUID = "3b0ab5c6-40f4-4a3b-a9ae-7bb4c5f1a2d0"


def job(**changes: object) -> ScanJob:
    values: dict[str, object] = dict(
        id="a" * 32,
        guid=GUID,
        index=2,
        uri="QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
        artifact_type="file",
        metadata={"mimetype": "text/plain", "size": 3},
        chain="side",
        deadline=1_700_000_012_345,
        reply="q:results:0xab",
    )
    values.update(changes)
    return ScanJob(**values)  # type: ignore[arg-type]


def test_a_job_survives_the_trip_through_stream_fields() -> None:
    """Every field a worker needs comes back as it went in, all as strings on the wire."""
    original = job()
    fields = original.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    assert ScanJob.from_fields(fields) == original


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("guid", "not-a-guid", "GUID"),
        ("uri", "../../etc/passwd", "artifact URI"),
        ("type", "exe", "file or url"),
        ("chain", "main", "home or side"),
        ("index", "-1", "integer"),
        ("deadline", "soon", "integer"),
        ("metadata", "{not json", "JSON"),
        ("v", "2", "version"),
    ],
)
def test_a_bad_job_is_refused_with_what_is_wrong(key: str, value: str, complaint: str) -> None:
    """A job that would put a bad path in polyswarmd's URL or cannot be read is refused, never scanned."""
    fields = job().to_fields() | {key: value}
    with pytest.raises(BadEntry, match=complaint):
        ScanJob.from_fields(fields)


def test_a_missing_field_is_refused() -> None:
    fields = job().to_fields()
    del fields["reply"]
    with pytest.raises(BadEntry, match="reply"):
        ScanJob.from_fields(fields)


def test_a_result_carries_the_scan_result_fields_back() -> None:
    """bit, verdict, confidence and metadata return intact, with who scanned and how long it took."""
    reply = ScanReply("b" * 32, GUID, 1, ScanResult(True, True, 0.25, '{"malware_family": "X"}'), "host-1", 12.5)
    back = ScanReply.from_fields(reply.to_fields())
    assert back == reply
    failed = ScanReply("c" * 32, GUID, 0, ScanResult(), "host-2", 0.0, "could not be fetched")
    assert ScanReply.from_fields(failed.to_fields()).error == "could not be fetched"


def test_a_result_confidence_is_kept_within_0_and_1() -> None:
    fields = ScanReply("b" * 32, GUID, 1, ScanResult(True, True)).to_fields()
    assert ScanReply.from_fields(fields | {"confidence": "7"}).result.confidence == 1.0
    with pytest.raises(BadEntry):
        ScanReply.from_fields(fields | {"confidence": "nan"})
    with pytest.raises(BadEntry):
        ScanReply.from_fields(fields | {"bit": "yes"})


def test_deadlines_are_absolute_on_one_clock() -> None:
    """A job published at t with a budget of b seconds expires at t + b (ms); before it, its time left is
    positive, at it the job is expired (the engine stops waiting then)."""
    deadline = deadline_ms(1_000_000, 2.5)
    assert deadline == 1_002_500
    assert seconds_left(deadline, 1_001_000) == 1.5
    assert not expired(deadline, 1_002_499)
    assert expired(deadline, 1_002_500)
    assert seconds_left(deadline, 1_003_000) == -0.5
    assert deadline_ms(5, -1) == 5  # no time at all: expired at once


def test_stream_names_follow_the_queue_and_the_engine() -> None:
    """The default queue is named by the backend, so an engine and its workers meet without --queue."""
    assert default_queue("eicar") == "polyswarm:scan:eicar"
    assert job_stream("q") == "q:jobs"
    assert reply_stream("q", "0xABcd") == "q:results:0xabcd"


def test_redis_addresses_are_checked_and_a_bare_host_port_is_accepted() -> None:
    assert redis_url("redis://10.0.0.5:6379/2") == "redis://10.0.0.5:6379/2"
    assert redis_url("10.0.0.5:6379") == "redis://10.0.0.5:6379/0"  # polyswarm-client's REDIS_ADDR form
    for bad, why in [
        ("http://host:6379", "scheme"),
        ("redis://:6379/0", "no host"),
        ("redis://host:99999/0", "not a Redis address"),
        ("redis://host:6379/zero", "not a number"),
    ]:
        with pytest.raises(ConfigError, match=why):
            redis_url(bad)


def test_a_redis_password_never_reaches_a_log_line() -> None:
    assert redis_url_for_logs("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redis_url_for_logs("redis://user:s3cret@host/0") == "redis://user:***@host/0"
    assert redis_url_for_logs("redis://host:6379/0") == "redis://host:6379/0"


def test_percentiles_use_the_nearest_rank() -> None:
    assert percentile([], 0.99) == 0.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0


def test_the_password_of_a_redis_address_is_found_for_redaction() -> None:
    from polyswarmclient.scanqueue.jobs import redis_password

    assert redis_password("redis://:s3cret@host:6379/0") == "s3cret"
    assert redis_password("redis://user:pw@host/0") == "pw"
    assert redis_password("redis://host:6379/0") is None
