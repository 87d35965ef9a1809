"""Token amounts: integers in NCT-wei inside the package, ``Decimal`` only at the CLI edge.

Never float. Parsing is exact to the 18 decimals of NCT and refuses zero, negatives and extra precision.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

NCT_DECIMALS = 18
WEI_PER_NCT = 10**NCT_DECIMALS

#: The denominations ``--denomination`` accepts, as decimal places below one NCT.
DENOMINATIONS: dict[str, int] = {"nct": 18, "nct-gwei": 9, "nct-wei": 0}


#: The largest amount a contract can hold, in wei.
MAX_UINT256 = 2**256 - 1
#: Digits with at most one decimal point: no sign, no exponent, no "NaN" or "Infinity".
_MAX_DIGITS = 100
_PLAIN = re.compile(r"^(\d+(\.\d*)?|\.\d+)$", re.ASCII)

#: Ether has 18 decimals too, but it is not NCT: gas costs are parsed and shown with their own names.
ETHER_DECIMALS = 18


def parse_amount(text: str, denomination: str = "nct", *, allow_zero: bool = False) -> int:
    """Turn ``text`` (in ``denomination``) into NCT-wei, exactly.

    Raises ``ValueError`` with a message fit for the user when the text is not a number, is not
    positive, or has more decimal places than the denomination allows.
    """
    if denomination not in DENOMINATIONS:
        raise ValueError(f"unknown denomination {denomination!r}; use one of {', '.join(DENOMINATIONS)}")
    return _parse_decimal(text, DENOMINATIONS[denomination], denomination, allow_zero=allow_zero)


def parse_ether(text: str) -> int:
    """Turn ``text`` (in ether, zero allowed) into wei of ether, exactly; ``ValueError`` when it is not one."""
    return _parse_decimal(text, ETHER_DECIMALS, "ether", allow_zero=True)


def format_ether(wei: int) -> str:
    """Render wei of ether in ether without losing precision (``0.05``)."""
    return _format_decimal(wei, ETHER_DECIMALS)


def _parse_decimal(text: str, places: int, denomination: str, *, allow_zero: bool) -> int:
    stripped = text.strip() if isinstance(text, str) else ""
    if stripped.startswith("-") and _PLAIN.match(stripped[1:]):
        raise ValueError(f"{text} is negative; amounts must be positive")
    if not _PLAIN.match(stripped):
        raise ValueError(f"{text!r} is not a number (digits with at most one '.': no exponent, NaN or Infinity)")
    if len(stripped) > _MAX_DIGITS:
        raise ValueError(f"{text[:20]}... is out of range (more than any token amount can be)")
    with localcontext() as exact:
        exact.prec = _MAX_DIGITS + places  # scaleb rounds to the context precision: never let it
        try:
            value = Decimal(stripped)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a number") from None
        scaled = value.scaleb(places)
    if value == 0 and not allow_zero:
        raise ValueError("amount must be greater than 0")
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text} has more than {places} decimal places, the precision of {denomination}")
    if scaled > MAX_UINT256:
        raise ValueError(f"{text} {denomination} is out of range (more than any token amount can be)")
    return int(scaled)


def format_amount(wei: int, denomination: str = "nct") -> str:
    """Render NCT-wei in ``denomination`` without losing precision (``1.5``, ``0.0625``, ``3``)."""
    return _format_decimal(wei, DENOMINATIONS[denomination])


def _format_decimal(wei: int, places: int) -> str:
    value = Decimal(wei).scaleb(-places)
    text = format(value.normalize(), "f") if value != 0 else "0"
    return text


def nct(value: str | int) -> int:
    """Whole or decimal NCT to NCT-wei; a convenience for code and tests (``nct("0.0625")``)."""
    return parse_amount(str(value), "nct", allow_zero=True)
