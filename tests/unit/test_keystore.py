"""New keystores open with eth-account and with the client's own loader; inspection shows no secret."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from polyswarmclient.errors import KeyfileError
from polyswarmclient.eth.keys import load_keyfile
from polyswarmclient.eth.keystore import (
    LIGHT_SCRYPT_N,
    inspect_keystore,
    new_keystore,
    write_new_keystore,
)


def test_a_new_keystore_opens_with_eth_account_and_the_client_loader(tmp_path: Path) -> None:
    """The same address comes out of eth-account's decrypt and load_keyfile; the file is mode 0600."""
    path = tmp_path / "wallet.json"
    keystore = new_keystore("correct horse", light=True)
    write_new_keystore(path, keystore)
    key = Account.decrypt(json.loads(path.read_text()), "correct horse")
    address = Account.from_key(key).address
    assert load_keyfile(path, "correct horse").address == address
    assert keystore["address"] == address.lower()[2:]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keystore["version"] == 3 and keystore["crypto"]["kdfparams"]["n"] == LIGHT_SCRYPT_N


def test_a_wrong_password_is_a_keyfile_error(tmp_path: Path) -> None:
    """The loader says the password is wrong, and shows neither password."""
    path = tmp_path / "wallet.json"
    write_new_keystore(path, new_keystore("right password", light=True))
    with pytest.raises(KeyfileError, match="wrong password") as caught:
        load_keyfile(path, "wrong password")
    assert "right password" not in str(caught.value) and "wrong password for" in str(caught.value)


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    """Writing over an existing file fails and leaves it untouched."""
    path = tmp_path / "wallet.json"
    path.write_text("precious")
    with pytest.raises(KeyfileError, match="never overwritten"):
        write_new_keystore(path, new_keystore("pw", light=True))
    assert path.read_text() == "precious"


def test_inspection_shows_the_public_parts_only(tmp_path: Path) -> None:
    """Address, KDF and cipher; never the ciphertext, the MAC or the salt."""
    path = tmp_path / "wallet.json"
    keystore = new_keystore("pw", light=True)
    write_new_keystore(path, keystore)
    text = "\n".join(inspect_keystore(path).lines())
    assert "scrypt" in text and "aes-128-ctr" in text and keystore["address"] in text.lower()
    for secret in (
        keystore["crypto"]["ciphertext"],
        keystore["crypto"]["mac"],
        keystore["crypto"]["kdfparams"]["salt"],
    ):
        assert secret not in text


def test_inspecting_something_else_is_a_keyfile_error(tmp_path: Path) -> None:
    """Not JSON, JSON without a crypto section, a missing file: one clear KeyfileError each."""
    (tmp_path / "a").write_text("nope")
    (tmp_path / "b").write_text("{}")
    for name, words in (("a", "not JSON"), ("b", "not a geth v3 keystore"), ("c", "does not exist")):
        with pytest.raises(KeyfileError, match=words):
            inspect_keystore(tmp_path / name)
