"""Who signs: the key in this process (``--keyfile``) or a signer process (``--signer``).

The transaction pipeline sees one :class:`TransactionSigner`: an address and an async ``sign``. It
verifies every transaction polyswarmd built before asking for a signature either way, so a remote signer
is a second, independent check, not a replacement for the first.

:class:`RemoteSigner` speaks clef's external API (``account_version``, ``account_list``,
``account_signTransaction``) through :mod:`polyswarmclient.transport.jsonrpc`, so it works with
``polyswarm-signer`` and with go-ethereum's clef alike. It checks what comes back: the raw transaction
must decode to exactly the fields asked for, signed by the account in use. While the signer cannot be
reached (restarting, say) a signature request waits, with capped backoff, up to ``SignerSettings.wait``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from eth_utils import to_checksum_address

from polyswarmclient.errors import (
    MalformedResponse,
    SignerConfigError,
    SignerRefused,
    SignerUnavailable,
    VerificationError,
)
from polyswarmclient.eth.keys import Signer
from polyswarmclient.eth.rawtx import decode_raw_transaction
from polyswarmclient.transport.backoff import Backoff
from polyswarmclient.transport.jsonrpc import METHOD_NOT_FOUND, JsonRpcClient, RpcFault, SignerEndpoint
from polyswarmclient.wire.models import UnsignedTransaction

log = logging.getLogger(__name__)


class TransactionSigner(Protocol):
    """Signs transactions for one account."""

    @property
    def address(self) -> str: ...

    async def sign(self, tx: UnsignedTransaction) -> tuple[bytes, str]:
        """The raw signed transaction and its ``0x`` hash."""
        ...


class KeySigner:
    """The key held in this process (``--keyfile``)."""

    def __init__(self, key: Signer) -> None:
        self._key = key

    def __repr__(self) -> str:
        return f"KeySigner(address={self.address})"

    @property
    def address(self) -> str:
        return self._key.address

    async def sign(self, tx: UnsignedTransaction) -> tuple[bytes, str]:
        return self._key.sign(tx)


def as_transaction_signer(signer: Signer | TransactionSigner) -> TransactionSigner:
    return KeySigner(signer) if isinstance(signer, Signer) else signer


@dataclass(frozen=True)
class SignerSettings:
    """How a role talks to its signer."""

    #: Seconds one request may take (clef asking its operator to confirm can take a while).
    timeout: float = 30.0
    #: Seconds a signature request waits for a signer that cannot be reached before it fails.
    wait: float = 300.0
    #: Backoff between attempts to reach it again.
    retry_base: float = 0.5
    retry_cap: float = 5.0


def _quantity(value: int) -> str:
    return hex(value)


class RemoteSigner:
    """A signer process reached over clef's external API. Make one with :meth:`connect`."""

    def __init__(self, rpc: JsonRpcClient, address: str, settings: SignerSettings | None = None) -> None:
        self._rpc = rpc
        self._address = str(to_checksum_address(address))
        self._settings = settings or SignerSettings()

    def __repr__(self) -> str:
        return f"RemoteSigner({self._rpc.endpoint}, address={self._address})"

    @property
    def address(self) -> str:
        return self._address

    @property
    def endpoint(self) -> SignerEndpoint:
        return self._rpc.endpoint

    @classmethod
    def connect(
        cls, endpoint: SignerEndpoint, token: str | None = None, settings: SignerSettings | None = None
    ) -> RemoteSigner:
        """Reach the signer now (blocking, before any event loop) and learn the account it signs for.

        Everything that goes wrong here is a :class:`SignerConfigError` (exit 2): the command cannot start.
        """
        settings = settings or SignerSettings()
        rpc = JsonRpcClient(endpoint, token, timeout=settings.timeout)
        hint = "start polyswarm-signer (or clef) first, or check --signer (SIGNER)"
        try:
            try:
                version = rpc.call("account_version")
            except RpcFault as fault:
                if fault.code != METHOD_NOT_FOUND:
                    raise
                version = "unknown"
            accounts = rpc.call("account_list")
        except SignerUnavailable as exc:
            raise SignerConfigError(f"{exc}; {hint}") from None
        except RpcFault as fault:
            raise SignerConfigError(f"the signer at {endpoint} refused to list its accounts: {fault.message}") from None
        except MalformedResponse as exc:
            raise SignerConfigError(f"{exc}; is {endpoint} a clef-compatible signer?") from None
        if not isinstance(accounts, list) or not all(isinstance(a, str) and len(a) == 42 for a in accounts):
            raise SignerConfigError(
                f"the signer at {endpoint} answered account_list with something not a list of addresses"
            )
        held = [str(to_checksum_address(a)) for a in accounts]
        if endpoint.account is not None:
            wanted = str(to_checksum_address(endpoint.account))
            if wanted not in held:
                raise SignerConfigError(f"the signer at {endpoint} does not hold account {wanted} (it holds {held})")
            address = wanted
        elif len(held) == 1:
            address = held[0]
        elif not held:
            raise SignerConfigError(f"the signer at {endpoint} holds no account (or its operator refused to list them)")
        else:
            raise SignerConfigError(
                f"the signer at {endpoint} holds {len(held)} accounts; "
                "name one with ?account=0x... at the end of --signer"
            )
        log.info("signing through the signer at %s (API version %s) for %s", endpoint, version, address)
        return cls(rpc, address, settings)

    async def sign(self, tx: UnsignedTransaction) -> tuple[bytes, str]:
        request = {
            "from": self._address,
            "to": str(to_checksum_address(tx.to)),
            "gas": _quantity(tx.gas),
            "gasPrice": _quantity(tx.gas_price),
            "value": _quantity(tx.value),
            "nonce": _quantity(tx.nonce),
            "data": "0x" + tx.data.hex(),
            "chainId": _quantity(tx.chain_id),
        }
        result = await self._call_waiting(
            "account_signTransaction", [request], f"the transaction with nonce {tx.nonce}"
        )
        return self._check(tx, result)

    async def _call_waiting(self, method: str, params: list[Any], what: str) -> Any:
        backoff = Backoff(self._settings.retry_base, self._settings.retry_cap)
        deadline = time.monotonic() + self._settings.wait
        while True:
            try:
                return await asyncio.to_thread(self._rpc.call, method, params)
            except RpcFault as fault:
                raise SignerRefused(f"the signer refused to sign {what}: {fault.message}. Nothing was signed") from None
            except SignerUnavailable as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SignerUnavailable(
                        f"{exc}; gave up on {what} after waiting {self._settings.wait:.0f} s for the signer"
                    ) from None
                pause = min(backoff.delay(), left)
                log.warning("%s; asking again in %.1f s (waiting up to %.0f s more)", exc, pause, left)
                await asyncio.sleep(pause)

    def _check(self, tx: UnsignedTransaction, result: Any) -> tuple[bytes, str]:
        raw_hex = result.get("raw") if isinstance(result, dict) else result if isinstance(result, str) else None
        if not isinstance(raw_hex, str):
            raise MalformedResponse(f"the signer at {self.endpoint} answered account_signTransaction without 'raw'")
        try:
            raw = bytes.fromhex(raw_hex.removeprefix("0x"))
            got = decode_raw_transaction(raw)
        except ValueError as exc:
            raise MalformedResponse(f"the signer at {self.endpoint} returned no signed transaction: {exc}") from None
        wanted = {
            "sender": self._address,
            "to": str(to_checksum_address(tx.to)),
            "value": tx.value,
            "data": tx.data,
            "nonce": tx.nonce,
            "gas": tx.gas,
            "gas price": tx.gas_price,
            "chain id": tx.chain_id,
        }
        seen = {
            "sender": got.sender,
            "to": got.to,
            "value": got.value,
            "data": got.data,
            "nonce": got.nonce,
            "gas": got.gas,
            "gas price": got.gas_price,
            "chain id": got.chain_id,
        }
        wrong = [name for name in wanted if wanted[name] != seen[name]]
        if wrong:
            raise VerificationError(
                f"the signer at {self.endpoint} returned a transaction whose {', '.join(wrong)} differ from what was "
                "asked; not posting it"
            )
        return raw, "0x" + got.tx_hash.hex()
