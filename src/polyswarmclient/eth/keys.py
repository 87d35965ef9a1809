"""Keystores and signing. The private key never leaves this module, and never reaches a log or repr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coincurve import PrivateKey as _SecpKey
from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak

from polyswarmclient.errors import KeyfileError
from polyswarmclient.eth.rlplength import LIST, STRING, length_prefix
from polyswarmclient.wire.models import UnsignedTransaction


class Signer:
    """Signs transactions for one account. ``repr`` shows the address only."""

    __slots__ = ("_key", "_secp", "address")

    def __init__(self, private_key: bytes) -> None:
        self._key = bytes(private_key)
        #: libsecp256k1's key object, made once: eth-keys makes a new one (deriving the public key again)
        #: for every signature.
        self._secp = _SecpKey(self._key)
        self.address: str = PrivateKey(self._key).public_key.to_checksum_address()

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # refuse to be pickled with its key
        raise TypeError("a Signer cannot be pickled")

    def sign(self, tx: UnsignedTransaction) -> tuple[bytes, str]:
        """EIP-155 legacy signature with the tx's own chain id. Returns (raw tx, 0x-prefixed hash).

        The bytes are eth-account's for the same fields (the same RLP list and the same deterministic
        signature of its hash, by the same key object), built here directly: eth-account's general path
        (field validation and formatting, typed-transaction dispatch) cost about as much as the signature.
        """
        to = _address_bytes(tx.to)
        for name, value in (
            ("nonce", tx.nonce),
            ("gasPrice", tx.gas_price),
            ("gas", tx.gas),
            ("value", tx.value),
            ("chainId", tx.chain_id),
        ):
            if type(value) is not int or not 0 <= value < _UINT256:
                raise ValueError(f"transaction field {name} must be an integer in [0, 2**256), not {value!r}")
        if tx.chain_id == 0:
            raise ValueError("transaction field chainId must be positive (EIP-155)")
        body = b"".join(
            (_rlp_int(tx.nonce), _rlp_int(tx.gas_price), _rlp_int(tx.gas), _rlp_bytes(to))
            + (_rlp_int(tx.value), _rlp_bytes(bytes(tx.data)))
        )
        digest = keccak(_rlp_list(body + _rlp_int(tx.chain_id) + b"\x80\x80"))
        # 65 bytes: r, s (libsecp256k1 gives the low s, as eth-keys and every Ethereum node expect), recovery id.
        signature = self._secp.sign_recoverable(digest, hasher=None)
        r, s, recovery = (
            int.from_bytes(signature[:32], "big"),
            int.from_bytes(signature[32:64], "big"),
            signature[64],
        )
        v = recovery + 35 + 2 * tx.chain_id
        raw = _rlp_list(body + _rlp_int(v) + _rlp_int(r) + _rlp_int(s))
        return raw, "0x" + keccak(raw).hex()


_UINT256 = 2**256


# RLP (the yellow paper's appendix B) of the only shapes a legacy transaction has: unsigned integers,
# byte strings, and one flat list of them.
def _rlp_bytes(value: bytes) -> bytes:
    if len(value) == 1 and value[0] < 0x80:
        return value
    return length_prefix(len(value), STRING) + value


def _rlp_int(value: int) -> bytes:
    return _rlp_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _rlp_list(payload: bytes) -> bytes:
    return length_prefix(len(payload), LIST) + payload


def _address_bytes(address: str) -> bytes:
    """The 20 bytes of a hex address (any case, ``0x`` optional); ``ValueError`` for anything else."""
    digits = address[2:] if address[:2] in ("0x", "0X") else address
    if len(digits) != 40:
        raise ValueError(f"transaction recipient {address!r} is not a 20-byte hex address")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        value = b""
    if len(value) != 20:  # fromhex also skips spaces
        raise ValueError(f"transaction recipient {address!r} is not a 20-byte hex address")
    return value


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
