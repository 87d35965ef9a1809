"""Keystores and signatures."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from eth_account import Account

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
