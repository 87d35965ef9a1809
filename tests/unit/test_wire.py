"""polyswarmd's JSON shapes: envelopes, big ints, the three ``errors`` shapes, events, malformed replies."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from polyswarmclient.errors import ApiError, MalformedResponse, NotFound
from polyswarmclient.wire.envelope import error_text, parse_body
from polyswarmclient.wire.events import (
    Block,
    NewAssertion,
    NewBounty,
    SettledBounty,
    UnknownEvent,
    parse_event,
    to_message,
)
from polyswarmclient.wire.models import Assertion, BountyParameters, UnsignedTransaction, parse_transactions
from polyswarmclient.wire.transactions import PostResult, TransactionEvents
from tests.helpers import GUID, PARAMETERS, TOKEN, fail, ok, unsigned

BIG = 62_500_000_000_000_000_000_000  # far above 2**53


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def test_ok_envelope_returns_result_with_exact_big_ints() -> None:
    """Integers above 2**53 survive exactly (no float rounding)."""
    assert parse_body(200, body(ok({"bounty_fee": BIG})), what="GET x") == {"bounty_fee": BIG}
    assert parse_body(200, b'{"status":"OK"}', what="GET x") is None


def test_string_errors_become_api_error_with_message() -> None:
    """``errors`` as a string (validation, lookups) is the message of an ApiError."""
    with pytest.raises(ApiError, match="Invalid IPFS URI") as info:
        parse_body(400, body(fail("Invalid IPFS URI")), what="GET /bounties/x")
    assert info.value.status == 400


@pytest.mark.parametrize("status", [404, 502, 504])
def test_error_status_with_a_non_envelope_body_is_an_http_error(status: int) -> None:
    """A gateway's HTML (or foreign JSON) error page is reported as the HTTP error it is, not as garbage."""
    for raw in (b"<html><body>Bad Gateway</body></html>", b'{"error": "upstream"}', b""):
        with pytest.raises(ApiError) as info:
            parse_body(status, raw, what="POST /transactions")
        assert info.value.status == status
        assert f"HTTP {status}" in str(info.value)
        assert isinstance(info.value, NotFound) == (status == 404)
    with pytest.raises(MalformedResponse):
        parse_body(200, b"<html>ok</html>", what="GET /status")


def test_list_errors_keep_the_per_transaction_results() -> None:
    """``errors`` as a list of {is_error, message} (POST /transactions) is kept for the caller."""
    errors = [{"is_error": True, "message": "Invalid transaction error for tx 0x1: nonce too low"}]
    with pytest.raises(ApiError) as info:
        parse_body(400, body(fail(errors)), what="POST /transactions")
    assert info.value.errors == errors
    assert "nonce too low" in str(info.value)
    assert PostResult.parse_list(info.value.errors)[0].is_error


def test_dict_errors_keep_the_events_and_the_error_strings() -> None:
    """``errors`` as a dict (GET /transactions) keeps the decoded events next to its error strings."""
    payload = {"transfers": [{"value": "1"}], "errors": ["transaction 0x1: timeout during wait for receipt"]}
    with pytest.raises(ApiError) as info:
        parse_body(400, body(fail(payload)), what="GET /transactions")
    events = TransactionEvents.from_json(info.value.errors)
    assert events.get("transfers") == [{"value": "1"}]
    assert "timeout during wait for receipt" in events.errors[0]
    assert "timeout" in error_text(payload)


def test_framework_errors_without_status_key() -> None:
    """Flask's ``{"message": ...}`` answers become NotFound/ApiError by status code."""
    with pytest.raises(NotFound):
        parse_body(404, body({"message": "Not Found"}), what="GET /nope")
    with pytest.raises(ApiError, match="Payload too large"):
        parse_body(413, body({"message": "Payload too large"}), what="POST /artifacts")


@pytest.mark.parametrize("raw", [b"<html>bad gateway</html>", b"[1, 2]", b'{"foo": 1}', b"\xff\xfe"])
def test_non_envelope_bodies_are_malformed(raw: bytes) -> None:
    """HTML, bare lists, unknown objects and undecodable bytes raise MalformedResponse."""
    with pytest.raises(MalformedResponse):
        parse_body(200, raw, what="GET /status")


def test_bounty_parameters_parse_big_ints_and_reject_missing_fields() -> None:
    """Parameters keep big ints exactly; a missing field is MalformedResponse."""
    data = {**PARAMETERS, "bounty_fee": BIG}
    assert BountyParameters.from_json(data).bounty_fee == BIG
    del data["max_duration"]
    with pytest.raises(MalformedResponse, match="max_duration"):
        BountyParameters.from_json(data)
    with pytest.raises(MalformedResponse):
        BountyParameters.from_json(["not", "an", "object"])


def test_unsigned_transactions_parse_and_reject_bad_shapes() -> None:
    """Unsigned txs need to/data/value/chainId and hex data; an empty list is malformed."""
    txs = parse_transactions({"transactions": [unsigned(TOKEN, b"\x01\x02")]}, "POST /x")
    assert txs[0].data == b"\x01\x02" and txs[0].chain_id == 1338
    bad = unsigned(TOKEN, b"")
    del bad["chainId"]
    with pytest.raises(MalformedResponse, match="chainId"):
        UnsignedTransaction.from_json(bad)
    with pytest.raises(MalformedResponse, match="hex"):
        UnsignedTransaction.from_json({**unsigned(TOKEN, b""), "data": "0xzz"})
    with pytest.raises(MalformedResponse):
        parse_transactions({"transactions": []}, "POST /x")
    with pytest.raises(MalformedResponse):
        parse_transactions("nope", "POST /x")


def test_post_results_reject_entries_without_message() -> None:
    """A POST /transactions answer that is not a list of {is_error, message} is malformed."""
    with pytest.raises(MalformedResponse):
        PostResult.parse_list({"is_error": False})
    with pytest.raises(MalformedResponse):
        PostResult.parse_list([{"is_error": False}])


def test_events_parse_with_wire_types() -> None:
    """Events turn into typed values: string amounts/expirations and bid lists become ints."""
    bounty = parse_event(
        {
            "event": "bounty",
            "data": {
                "guid": GUID,
                "artifact_type": "file",
                "author": TOKEN,
                "amount": str(BIG),
                "uri": "Qm",
                "expiration": "118",
                "metadata": "",
            },
            "block_number": 100,
            "txhash": "0xab",
        },
        "side",
    )
    assert isinstance(bounty, NewBounty) and bounty.amount == BIG and bounty.expiration == 118
    assert bounty.block_number == 100 and bounty.chain == "side"
    assertion = parse_event(
        {
            "event": "assertion",
            "data": {
                "bounty_guid": GUID,
                "author": TOKEN,
                "index": 0,
                "bid": ["1", "2"],
                "mask": [True, False, True],
                "commitment": "99",
            },
        },
        "side",
    )
    assert isinstance(assertion, NewAssertion) and assertion.bid == (1, 2)
    settled = parse_event(
        {"event": "settled_bounty", "data": {"bounty_guid": GUID, "settler": TOKEN, "payout": BIG}}, "home"
    )
    assert isinstance(settled, SettledBounty) and settled.payout == BIG


def test_unknown_events_are_values_not_errors() -> None:
    """An event type this version does not know becomes UnknownEvent."""
    event = parse_event({"event": "brand_new", "data": {"x": 1}}, "side")
    assert isinstance(event, UnknownEvent) and event.name == "brand_new"


@pytest.mark.parametrize(
    "message",
    [
        {"data": {}},
        [1, 2],
        {"event": "block"},
        {"event": "block", "data": {"number": "many"}},
        {"event": "assertion", "data": {"bounty_guid": GUID}},
        {"event": "vote", "data": {"bounty_guid": GUID, "voter": TOKEN, "votes": "yes"}},
    ],
)
def test_malformed_events_raise_malformed_response(message: Any) -> None:
    """Messages without a name, without data or with wrong field types are MalformedResponse."""
    with pytest.raises(MalformedResponse):
        parse_event(message, "side")


def test_block_messages_round_trip_without_envelope_extras() -> None:
    """A rendered block carries only ``number`` and parses back to the same value."""
    message = to_message(Block(number=7, chain="side"))
    assert message == {"event": "block", "data": {"number": 7}}
    assert parse_event(message, "side") == Block(number=7, chain="side")


def test_non_ascii_digits_in_a_number_field_are_malformed_not_a_crash() -> None:
    """A parameter such as "²" (a Unicode digit int() rejects) raises MalformedResponse, not ValueError."""
    data: dict[str, Any] = dict.fromkeys([f.name for f in dataclasses.fields(BountyParameters)], 1)
    data["max_duration"] = "²"
    with pytest.raises(MalformedResponse, match="max_duration"):
        BountyParameters.from_json(data)


AUTHOR = "0x34E583cf9C1789c3141538EeC77D9F0B8F7E89f2"


def _assertion_json(nonce: Any, verdicts: Any) -> dict[str, Any]:
    return {"author": AUTHOR, "bid": ["1"], "mask": [True, True], "commitment": str(BIG), "nonce": nonce,
            "verdicts": verdicts, "metadata": ""}  # fmt: skip


@pytest.mark.parametrize(
    ("nonce", "verdicts", "revealed", "seen"),
    [
        ("0", [None, None], False, None),  # HEAD list route, unrevealed
        ("0", [False, False], False, None),  # seed, or the single-item route: stored bits mean nothing yet
        (str(BIG), [True, False], True, (True, False)),  # revealed (a nonce above 2**53, kept exact)
        (7, [False, False], True, (False, False)),  # a revealed all-benign answer, nonce as a JSON number
        (None, [None, None], False, None),  # no nonce: the nulls say unrevealed
        (None, [True, False], True, (True, False)),  # no nonce: real verdicts say revealed
    ],
)
def test_assertions_tell_revealed_from_unrevealed_in_every_shape(
    nonce: Any, verdicts: Any, revealed: bool, seen: tuple[bool, ...] | None
) -> None:
    """The nonce (non-zero once revealed) decides; without one, HEAD's ``[null]*n`` verdicts mean unrevealed."""
    data = _assertion_json(nonce, verdicts)
    if nonce is None:
        del data["nonce"]
    [assertion] = Assertion.list_from_json([data])
    assert (assertion.revealed, assertion.verdicts) == (revealed, seen)
    assert (assertion.index, assertion.author, assertion.commitment) == (0, AUTHOR, BIG)


def test_assertions_without_nonce_or_verdicts_read_as_unrevealed() -> None:
    """An entry with only author and commitment (an older or sparse server) is an unrevealed assertion."""
    [assertion] = Assertion.list_from_json([{"author": AUTHOR, "commitment": "5"}])
    assert assertion == Assertion(0, AUTHOR, 5) and not assertion.revealed


@pytest.mark.parametrize(
    "bad", [{"nonce": "-1", "verdicts": [True]}, {"nonce": "1", "verdicts": "yes"}, {"nonce": "1", "verdicts": [1]}]
)
def test_malformed_assertion_nonce_or_verdicts_raise_malformed_response(bad: dict[str, Any]) -> None:
    """A nonce that is not a non-negative decimal, or verdicts that are not booleans/nulls, are refused."""
    with pytest.raises(MalformedResponse):
        Assertion.list_from_json([{"author": AUTHOR, "commitment": "5", **bad}])
