"""Keystores and signatures."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from polyswarmclient.errors import KeyfileError
from polyswarmclient.eth.keys import Signer, load_keyfile
from polyswarmclient.wire.models import UnsignedTransaction

KEYFILES = Path(__file__).resolve().parents[2] / "keyfiles-testing"


def test_keystore_opens_with_the_right_password() -> None:
    """The published test keystore opens with `password` and yields its documented address."""
    signer = load_keyfile(KEYFILES / "microengine_keyfile", "password")
    expected = json.loads((KEYFILES / "microengine_keyfile").read_text())["address"]
    assert signer.address.lower() == "0x" + expected.lower()


def test_wrong_password_is_a_clear_keyfile_error() -> None:
    """A wrong password says so and names the flags to fix it, never echoing the password."""
    with pytest.raises(KeyfileError, match="wrong password") as info:
        load_keyfile(KEYFILES / "microengine_keyfile", "hunter2-wrong")
    assert "hunter2-wrong" not in str(info.value)


def test_missing_and_corrupt_keyfiles_are_clear(tmp_path: Path) -> None:
    """A missing file, a non-JSON file and a JSON file that is no keystore each get their own message."""
    with pytest.raises(KeyfileError, match="does not exist"):
        load_keyfile(tmp_path / "nope", "password")
    bad = tmp_path / "bad"
    bad.write_text("not json")
    with pytest.raises(KeyfileError, match="not JSON"):
        load_keyfile(bad, "password")
    bad.write_text('{"hello": 1}')
    with pytest.raises(KeyfileError, match="not a geth v3 keystore"):
        load_keyfile(bad, "password")
    damaged = json.loads((KEYFILES / "microengine_keyfile").read_text())
    damaged["crypto"]["ciphertext"] = "zz"
    bad.write_text(json.dumps(damaged))
    with pytest.raises(KeyfileError):
        load_keyfile(bad, "password")


def test_signer_never_shows_its_key(caplog: pytest.LogCaptureFixture) -> None:
    """repr, str and logging of a Signer show the address only."""
    account = Account.create()
    signer = Signer(bytes(account.key))
    logging.getLogger("polyswarmclient.test").warning("signer %s %r", signer, signer)
    key_hex = bytes(account.key).hex()
    assert key_hex not in repr(signer) and key_hex not in str(signer)
    assert key_hex not in caplog.text
    assert account.address in repr(signer)


def test_signature_recovers_to_the_signer_with_the_tx_chain_id() -> None:
    """A signed transaction recovers to the signer, with the chain id taken from the transaction."""
    account = Account.create()
    signer = Signer(bytes(account.key))
    tx = UnsignedTransaction(
        to="0x" + "11" * 20, data=b"\x01\x02", value=0, gas=100000, gas_price=0, nonce=7, chain_id=1338
    )
    raw, tx_hash = signer.sign(tx)
    assert Account.recover_transaction(raw) == account.address
    assert tx_hash.startswith("0x") and len(tx_hash) == 66


@pytest.mark.parametrize(
    ("to", "data", "value", "gas", "gas_price", "nonce", "chain_id"),
    [
        ("0x" + "11" * 20, b"\x01\x02", 0, 100000, 0, 7, 1338),
        ("0x" + "ab" * 20, b"", 0, 21000, 1, 0, 1),
        ("0x" + "Cd" * 20, bytes(range(256)) * 5, 10**18, 5_000_000, 2 * 10**9, 2**40, 1337),
        ("0x" + "00" * 20, b"\x00" * 68, 1, 1, 10**15, 1, 2**32 + 7),
        ("0x" + "ff" * 20, b"\x7f", 127, 128, 255, 256, 127),
        ("0x" + "ff" * 20, b"\x80", 2**256 - 1, 55, 56, 2**64, 2**63),
        ("0x" + "ff" * 20, b"\x00", 0, 0, 0, 0, 1),
        ("0x" + "ee" * 20, b"\x01" * 55, 0, 0, 0, 0, 1338),
        ("0x" + "ee" * 20, b"\x01" * 56, 0, 0, 0, 0, 1338),
        ("0x" + "ee" * 20, b"\x02" * 70000, 0, 0, 0, 0, 1338),
    ],
)
def test_signed_bytes_are_eth_accounts_for_the_same_fields(
    to: str, data: bytes, value: int, gas: int, gas_price: int, nonce: int, chain_id: int
) -> None:
    """The signer builds EIP-155 legacy transactions itself: byte for byte what eth-account signs, with
    the hash of those bytes, recovering to the signer."""
    account = Account.create()
    signer = Signer(bytes(account.key))
    tx = UnsignedTransaction(
        to=to, data=data, value=value, gas=gas, gas_price=gas_price, nonce=nonce, chain_id=chain_id
    )
    raw, tx_hash = signer.sign(tx)
    fields = {
        "to": to_checksum_address(to),
        "data": data,
        "value": value,
        "gas": gas,
        "gasPrice": gas_price,
        "nonce": nonce,
        "chainId": chain_id,
    }
    signed = Account.sign_transaction(fields, account.key)
    assert raw == bytes(signed.raw_transaction)
    assert tx_hash == "0x" + bytes(signed.hash).hex()
    assert Account.recover_transaction(raw) == account.address


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"to": "0x" + "11" * 19}, "20-byte hex address"),
        ({"to": "0x" + "zz" * 20}, "20-byte hex address"),
        ({"to": "0x" + "11 " * 13 + "1"}, "20-byte hex address"),
        ({"to": ""}, "20-byte hex address"),
        ({"value": -1}, "value must be an integer"),
        ({"nonce": 2**256}, "nonce must be an integer"),
        ({"gas": True}, "gas must be an integer"),
        ({"chain_id": 0}, "chainId must be positive"),
    ],
)
def test_a_transaction_that_cannot_be_signed_as_given_is_refused(change: dict[str, object], needle: str) -> None:
    """Fields eth-account would refuse are refused with a ValueError naming the field, never signed."""
    signer = Signer(bytes(Account.create().key))
    fields: dict[str, object] = {
        "to": "0x" + "11" * 20,
        "data": b"",
        "value": 0,
        "gas": 21000,
        "gas_price": 0,
        "nonce": 0,
        "chain_id": 1338,
    }
    fields.update(change)
    with pytest.raises(ValueError, match=needle):
        signer.sign(UnsignedTransaction(**fields))  # type: ignore[arg-type]
