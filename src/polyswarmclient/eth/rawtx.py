"""Raw signed transactions: decode what a client sent, and sign one for a devnet-side key.

Used by the devnet server (``POST /transactions`` checks the sender and recipient) and by the devnet's
JSON-RPC chain. Keeps eth-account inside ``eth/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth_account import Account
from eth_utils import keccak, to_checksum_address


@dataclass(frozen=True)
class DecodedTransaction:
    """The fields of a signed transaction that a server checks. ``to`` is ``None`` for a deployment."""

    tx_hash: bytes
    sender: str
    to: str | None
    value: int
    data: bytes
    nonce: int
    gas: int
    chain_id: int | None
    #: legacy transactions' gasPrice; a typed transaction's maxFeePerGas (or gasPrice)
    gas_price: int = 0


def _int(item: bytes) -> int:
    return int.from_bytes(item, "big")


def _as_bytes(value: Any) -> bytes:
    if not value:
        return b""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def decode_raw_transaction(raw: bytes) -> DecodedTransaction:
    """RLP-decode ``raw`` (legacy or typed EIP-2718) and recover its sender.

    Raises ``ValueError`` with a short reason when the bytes are not a signed transaction.
    """
    if not raw:
        raise ValueError("empty transaction")
    try:
        sender = to_checksum_address(Account.recover_transaction(raw))
    except Exception as exc:  # eth-account raises many unrelated types on garbage
        raise ValueError(f"cannot recover the sender ({exc.__class__.__name__})") from None
    try:
        if raw[0] >= 0xC0:  # legacy: rlp list [nonce, gasPrice, gas, to, value, data, v, r, s]
            items = rlp.decode(raw)
            if not isinstance(items, list) or len(items) != 9:
                raise ValueError("a legacy transaction has 9 fields")
            nonce, price, gas, to, value, data, v = (bytes(x) for x in items[:7])
            v_int = _int(v)
            chain_id = (v_int - 35) // 2 if v_int >= 35 else None
        else:
            from eth_account.typed_transactions.typed_transaction import TypedTransaction
            from hexbytes import HexBytes

            fields: dict[str, Any] = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            nonce = int(fields["nonce"]).to_bytes(32, "big")
            price = int(fields.get("maxFeePerGas", fields.get("gasPrice", 0))).to_bytes(32, "big")
            gas = int(fields["gas"]).to_bytes(32, "big")
            to = _as_bytes(fields.get("to"))
            value = int(fields.get("value", 0)).to_bytes(32, "big")
            data = _as_bytes(fields.get("data"))
            chain_id = int(fields["chainId"])
    except ValueError:
        raise
    except Exception as exc:
        raise ValueError(f"not a transaction ({exc.__class__.__name__})") from None
    return DecodedTransaction(
        tx_hash=keccak(raw),
        sender=sender,
        to=to_checksum_address(to) if len(to) == 20 else None,
        value=_int(value),
        data=data,
        nonce=_int(nonce),
        gas=_int(gas),
        chain_id=chain_id,
        gas_price=_int(price),
    )


def sign_transaction(private_key: bytes, fields: dict[str, Any]) -> bytes:
    """EIP-155 legacy signature of ``fields`` (``to``, ``data``, ``value``, ``gas``, ``gasPrice``,
    ``nonce``, ``chainId``); returns the raw transaction."""
    signed = Account.sign_transaction(fields, private_key)
    return bytes(signed.raw_transaction)


def address_of(private_key: bytes) -> str:
    """The checksummed address of ``private_key``."""
    return str(Account.from_key(private_key).address)
