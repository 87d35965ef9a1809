"""Exact token amounts at the CLI edge."""

from __future__ import annotations

import pytest

from polyswarmclient.amounts import format_amount, nct, parse_amount


def test_decimal_nct_is_exact_to_18_places() -> None:
    """0.000000000000000001 NCT is exactly one NCT-wei, and 1.5 NCT is 1.5e18 wei."""
    assert parse_amount("0.000000000000000001") == 1
    assert parse_amount("1.5") == 1_500_000_000_000_000_000
    assert parse_amount("123456789.123456789123456789") == 123456789123456789123456789


def test_denominations_scale_correctly() -> None:
    """nct-gwei and nct-wei scale by 1e9 and 1."""
    assert parse_amount("2", "nct-gwei") == 2_000_000_000
    assert parse_amount("7", "nct-wei") == 7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0", "greater than 0"),
        ("-1", "negative"),
        ("1.0000000000000000001", "decimal places"),
        ("abc", "not a number"),
        ("nan", "not a number"),
        ("1e999", "no exponent"),
        ("1" * 90, "out of range"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(text: str, message: str) -> None:
    """Zero, negatives, extra precision and non-numbers are refused with a message saying why."""
    with pytest.raises(ValueError, match=message):
        parse_amount(text)


def test_fractional_wei_is_refused() -> None:
    """A fraction of a wei cannot be sent."""
    with pytest.raises(ValueError, match="decimal places"):
        parse_amount("1.5", "nct-wei")


def test_format_round_trips() -> None:
    """Formatting shows every digit, without exponent notation."""
    assert format_amount(1) == "0.000000000000000001"
    assert format_amount(nct("0.0625")) == "0.0625"
    assert format_amount(nct(3)) == "3"
    assert format_amount(0) == "0"
    assert parse_amount(format_amount(123456789123456789123)) == 123456789123456789123


def test_long_amounts_are_exact_beyond_the_default_decimal_precision() -> None:
    """An amount with more than 28 significant digits is converted exactly, never rounded."""
    assert parse_amount("12345678901234567890123456789012345.123456789012345678") == (
        12345678901234567890123456789012345123456789012345678
    )
