"""Keystores and signing. The private key never leaves this module, and never reaches a log or repr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak, to_checksum_address

from polyswarmclient.errors import KeyfileError
from polyswarmclient.wire.models import UnsignedTransaction


class Signer:
    """Signs transactions for one account. ``repr`` shows the address only."""

    __slots__ = ("_key", "_private", "address")

    def __init__(self, private_key: bytes) -> None:
        self._key = bytes(private_key)
        #: Parsed once: eth-account given raw bytes would derive the public key again for every signature.
        self._private = PrivateKey(self._key)
        self.address: str = self._private.public_key.to_checksum_address()

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # refuse to be pickled with its key
        raise TypeError("a Signer cannot be pickled")

    def sign(self, tx: UnsignedTransaction) -> tuple[bytes, str]:
        """EIP-155 legacy signature with the tx's own chain id. Returns (raw tx, 0x-prefixed hash)."""
        fields = {
            "to": to_checksum_address(tx.to),
            "data": tx.data,
            "value": tx.value,
            "gas": tx.gas,
            "gasPrice": tx.gas_price,
            "nonce": tx.nonce,
            "chainId": tx.chain_id,
        }
        signed = Account.sign_transaction(fields, self._private)
        raw = bytes(signed.raw_transaction)
        return raw, "0x" + keccak(raw).hex()


def load_keyfile(path: str | Path, password: str) -> Signer:
    """Open a geth v3 keystore. Every failure becomes one clear :class:`KeyfileError`."""
    p = Path(path)
    if not p.exists():
        raise KeyfileError(
            f"keyfile {p} does not exist; pass --keyfile (or KEYFILE) with the path to a geth v3 keystore"
        )
    if p.is_dir():
        raise KeyfileError(f"keyfile {p} is a directory; pass the path of the keystore file itself")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyfileError(f"cannot read keyfile {p}: {exc.__class__.__name__}") from None
    try:
        keystore = json.loads(text)
    except ValueError:
        raise KeyfileError(f"keyfile {p} is not JSON; it must be a geth v3 keystore") from None
    if not isinstance(keystore, dict) or "crypto" not in {k.lower() for k in keystore}:
        raise KeyfileError(f"keyfile {p} is not a geth v3 keystore (no 'crypto' section)")
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeyfileError(
                f"wrong password for keyfile {p}; check --password, --password-file or PASSWORD"
            ) from None
        raise KeyfileError(f"keyfile {p} is corrupt: {exc.__class__.__name__}") from None
    except Exception as exc:  # eth-keyfile raises KeyError/TypeError/... on damaged files
        raise KeyfileError(f"keyfile {p} is corrupt or unsupported ({exc.__class__.__name__})") from None
    return Signer(bytes(key))
