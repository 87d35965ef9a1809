"""The pure parts of the clamav, yara and multi backends: settings, clamd's answers, the multi verdict rule."""

from __future__ import annotations

import json

import pytest

from polyswarmclient.abstractscanner import ScanResult
from polyswarmclient.backends.clamav import parse_version
from polyswarmclient.backends.clamd import ClamdAddress, ClamdError, parse_verdict
from polyswarmclient.backends.metadata import verdict_metadata
from polyswarmclient.backends.multi import combine, member_slugs
from polyswarmclient.backends.yara_rules import compile_error
from polyswarmclient.errors import ConfigError


def _result(verdict: bool, family: str = "", confidence: float = 1.0) -> ScanResult:
    return ScanResult(bit=True, verdict=verdict, confidence=confidence, metadata=verdict_metadata(family))


def test_clamd_address_defaults_to_localhost_3310_and_socket_wins() -> None:
    """No CLAMD_* variables: localhost:3310 with a 30 s timeout; CLAMD_SOCKET, when set, is the address."""
    assert str(ClamdAddress.from_env({})) == "localhost:3310"
    assert ClamdAddress.from_env({}).timeout == 30.0
    address = ClamdAddress.from_env({"CLAMD_SOCKET": "/run/clamav/clamd.ctl", "CLAMD_PORT": "4000"})
    assert str(address) == "unix:/run/clamav/clamd.ctl"
    assert str(ClamdAddress.from_env({"CLAMD_HOST": "av", "CLAMD_PORT": "4000", "CLAMD_TIMEOUT": "5"})) == "av:4000"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLAMD_PORT": "clam"}, "CLAMD_PORT must be a TCP port"),
        ({"CLAMD_PORT": "70000"}, "CLAMD_PORT must be a TCP port"),
        ({"CLAMD_TIMEOUT": "0"}, "CLAMD_TIMEOUT must be a positive number"),
        ({"CLAMD_TIMEOUT": "soon"}, "CLAMD_TIMEOUT must be a positive number"),
    ],
)
def test_bad_clamd_settings_are_configuration_errors(env: dict[str, str], message: str) -> None:
    """A CLAMD_PORT or CLAMD_TIMEOUT that is not a number in range stops the engine (exit 2) naming it."""
    with pytest.raises(ConfigError, match=message):
        ClamdAddress.from_env(env)


def test_clamd_answers_are_read_as_verdicts() -> None:
    """`stream: OK` is clean, `stream: Sig FOUND` names Sig, an ERROR line is a ClamdError."""
    assert parse_verdict("stream: OK").signature is None
    assert parse_verdict("stream: Win.Test.EICAR_HDB-1 FOUND").signature == "Win.Test.EICAR_HDB-1"
    with pytest.raises(ClamdError, match="size limit exceeded"):
        parse_verdict("INSTREAM size limit exceeded. ERROR")
    with pytest.raises(ClamdError, match="answered"):
        parse_verdict("stream: Can't allocate memory ERROR")


def test_clamd_version_line_gives_engine_and_signature_versions() -> None:
    """`ClamAV 1.4.3/27000/date` -> engine 1.4.3, signatures 27000; a local database reports none."""
    assert parse_version("ClamAV 1.4.3/27000/Mon Nov 30 10:00:00 2026") == ("1.4.3", "27000")
    assert parse_version("ClamAV 1.4.3") == ("1.4.3", None)


def test_yara_compile_error_becomes_file_and_line() -> None:
    """yara's `path(line): message` is rewritten as `yara rule path:line: message` on one line."""
    error = compile_error(Exception("/rules/x.yar(12): syntax error,\n unexpected <and>"))
    assert str(error) == "yara rule /rules/x.yar:12: syntax error, unexpected <and>"
    assert str(compile_error(Exception("could not open file"))) == "yara rules do not compile: could not open file"


def test_multi_members_default_to_clamav_and_yara_and_cannot_nest() -> None:
    """MULTI_BACKENDS unset means clamav and yara; repeats are dropped; naming multi is refused."""
    assert member_slugs(None) == ["clamav", "yara"]
    assert member_slugs("yara, eicar yara") == ["yara", "eicar"]
    with pytest.raises(ConfigError, match="multi itself"):
        member_slugs("eicar multi")


def test_multi_is_malicious_when_any_asserting_member_says_so() -> None:
    """One malicious member outvotes benign ones; the family is the first malicious member's; confidence is
    the highest among the members calling it malicious."""
    combined = combine(
        [("clamav", _result(False)), ("yara", _result(True, "Evil", 0.6)), ("eicar", _result(True, "Eicar", 0.9))]
    )
    meta = json.loads(combined.metadata)
    assert (combined.bit, combined.verdict, combined.confidence) == (True, True, 0.9)
    assert meta["malware_family"] == "Evil"
    assert meta["backends"] == {
        "clamav": {"verdict": "benign"},
        "yara": {"verdict": "malicious", "malware_family": "Evil"},
        "eicar": {"verdict": "malicious", "malware_family": "Eicar"},
    }


def test_multi_is_benign_only_when_every_asserting_member_agrees() -> None:
    """All asserting members benign: benign, with the highest benign confidence; a member that did not
    assert or failed does not count."""
    combined = combine([("a", _result(False, confidence=0.4)), ("b", ScanResult()), ("c", RuntimeError("x"))])
    assert (combined.bit, combined.verdict, combined.confidence) == (True, False, 0.4)
    assert json.loads(combined.metadata)["backends"]["b"] == {"verdict": "no assertion"}
    assert json.loads(combined.metadata)["backends"]["c"] == {"verdict": "failed"}


def test_multi_does_not_assert_when_no_member_does() -> None:
    """No member asserting gives no assertion on the artifact."""
    assert combine([("a", ScanResult()), ("b", ValueError("down"))]).bit is False
