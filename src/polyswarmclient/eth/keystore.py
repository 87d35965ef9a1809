"""Create and inspect geth v3 keystores: the wallet a production role (or its signer) signs with.

A new keystore is what ``geth account new`` writes: a fresh secp256k1 key encrypted with AES-128-CTR
under a key derived by scrypt at geth's standard strength (N = 2^18, r = 8, p = 1, 32 bytes), the MAC
keccak256(derived[16:32] + ciphertext), a random UUID ``id`` and the lower-case address without ``0x``.
``light=True`` uses geth's ``--lightkdf`` strength (N = 2^12, p = 6): quick, and only for tests and
throwaway devnet wallets. Inspection reads the public parts only and never decrypts.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from Crypto.Cipher import AES
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from polyswarmclient.errors import KeyfileError

#: geth's StandardScryptN / StandardScryptP, and the r and key length of every geth keystore.
STANDARD_SCRYPT_N = 1 << 18
STANDARD_SCRYPT_P = 1
LIGHT_SCRYPT_N = 1 << 12
LIGHT_SCRYPT_P = 6
SCRYPT_R = 8
SCRYPT_DKLEN = 32
#: The order of secp256k1: a private key is a number in [1, N).
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem)


def _new_private_key() -> bytes:
    while True:
        key = secrets.token_bytes(32)
        if 0 < int.from_bytes(key, "big") < _SECP256K1_N:
            return key


def new_keystore(password: str, *, light: bool = False) -> dict[str, Any]:
    """A new geth v3 keystore (as a JSON-ready dict) holding a fresh key encrypted with ``password``."""
    n, p = (LIGHT_SCRYPT_N, LIGHT_SCRYPT_P) if light else (STANDARD_SCRYPT_N, STANDARD_SCRYPT_P)
    key = _new_private_key()
    salt = secrets.token_bytes(32)
    iv = secrets.token_bytes(16)
    derived = _scrypt(password, salt, n, SCRYPT_R, p, SCRYPT_DKLEN)
    cipher = AES.new(derived[:16], AES.MODE_CTR, initial_value=iv, nonce=b"")
    ciphertext = cipher.encrypt(key)
    address = str(Account.from_key(key).address)
    return {
        "address": address.lower().removeprefix("0x"),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "kdf": "scrypt",
            "kdfparams": {"dklen": SCRYPT_DKLEN, "n": n, "p": p, "r": SCRYPT_R, "salt": salt.hex()},
            "mac": keccak(derived[16:32] + ciphertext).hex(),
        },
        "id": str(uuid.uuid4()),
        "version": 3,
    }


def write_new_keystore(path: Path, keystore: dict[str, Any]) -> None:
    """Write ``keystore`` to ``path``, created with mode 0600; an existing file is never replaced."""
    text = json.dumps(keystore, separators=(",", ":")) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyfileError(f"{path} already exists; a keyfile is never overwritten, choose another path") from None
    except OSError as exc:
        raise KeyfileError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # whatever the umask said
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise KeyfileError(f"cannot write {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class KeystoreInfo:
    """The public parts of a keystore: what ``polyswarm-keyfile inspect`` shows."""

    path: Path
    address: str
    version: int
    id: str | None
    kdf: str
    kdfparams: dict[str, Any]
    cipher: str

    def lines(self) -> list[str]:
        params = ", ".join(f"{k}={v}" for k, v in sorted(self.kdfparams.items()) if k != "salt")
        return [
            f"file:    {self.path}",
            f"address: {self.address}",
            f"version: {self.version}",
            f"id:      {self.id or '-'}",
            f"kdf:     {self.kdf} ({params})",
            f"cipher:  {self.cipher}",
        ]


def inspect_keystore(path: Path) -> KeystoreInfo:
    """Read the public parts of the geth v3 keystore at ``path``; raise :class:`KeyfileError` if it is not
    one. Needs no password and never decrypts anything."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeyfileError(f"keyfile {path} does not exist") from None
    except IsADirectoryError:
        raise KeyfileError(f"keyfile {path} is a directory; give the keystore file itself") from None
    except OSError as exc:
        raise KeyfileError(f"cannot read keyfile {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise KeyfileError(f"keyfile {path} is not JSON; it must be a geth v3 keystore") from None
    if not isinstance(data, dict):
        raise KeyfileError(f"keyfile {path} is not a geth v3 keystore")
    fields = {k.lower(): v for k, v in data.items()}
    crypto = fields.get("crypto")
    address = fields.get("address")
    if not isinstance(crypto, dict) or not isinstance(address, str):
        raise KeyfileError(f"keyfile {path} is not a geth v3 keystore (no 'crypto' section or 'address')")
    try:
        checksummed = str(to_checksum_address("0x" + address.lower().removeprefix("0x")))
    except ValueError:
        raise KeyfileError(f"keyfile {path}: 'address' {address!r} is not an address") from None
    kdf = crypto.get("kdf")
    kdfparams = crypto.get("kdfparams")
    cipher = crypto.get("cipher")
    if not isinstance(kdf, str) or not isinstance(kdfparams, dict) or not isinstance(cipher, str):
        raise KeyfileError(f"keyfile {path}: the 'crypto' section lacks kdf, kdfparams or cipher")
    version = fields.get("version")
    return KeystoreInfo(
        path=Path(path),
        address=checksummed,
        version=version if isinstance(version, int) else 0,
        id=str(fields["id"]) if "id" in fields else None,
        kdf=kdf,
        kdfparams=dict(kdfparams),
        cipher=cipher,
    )
