"""Decoding raw signed transactions (what the devnet checks in ``POST /transactions``)."""

from __future__ import annotations

import pytest
from eth_account import Account

from polyswarmclient.eth.rawtx import address_of, decode_raw_transaction, sign_transaction

KEY = bytes(range(1, 33))
TO = "0x" + "11" * 20


def test_legacy_transaction_fields_and_sender() -> None:
    """An EIP-155 legacy tx decodes to its sender, recipient, value, data, nonce and chain id."""
    raw = sign_transaction(
        KEY,
        {
            "to": TO,
            "data": b"\x01\x02",
            "value": 3,
            "gas": 90_000,
            "gasPrice": 0,
            "nonce": 4,
            "chainId": 1338,
        },
    )
    tx = decode_raw_transaction(raw)
    assert tx.sender == address_of(KEY) == Account.from_key(KEY).address
    assert (tx.to, tx.value, tx.data, tx.nonce, tx.gas, tx.chain_id) == (TO, 3, b"\x01\x02", 4, 90_000, 1338)


def test_typed_transaction_is_decoded_too() -> None:
    """An EIP-1559 tx decodes to the same fields."""
    fields = {
        "to": TO,
        "data": b"\xaa",
        "value": 0,
        "gas": 50_000,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
    }
    raw = bytes(Account.sign_transaction({**fields, "nonce": 9, "chainId": 1337}, KEY).raw_transaction)
    tx = decode_raw_transaction(raw)
    assert (tx.sender, tx.to, tx.data, tx.nonce, tx.chain_id) == (address_of(KEY), TO, b"\xaa", 9, 1337)


@pytest.mark.parametrize("raw", [b"", b"\xde\xad\xbe\xef", b"\xc0"])
def test_garbage_is_a_value_error(raw: bytes) -> None:
    """Bytes that are not a signed transaction raise ``ValueError``."""
    with pytest.raises(ValueError):
        decode_raw_transaction(raw)
