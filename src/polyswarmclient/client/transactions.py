"""The transaction pipeline (spec §4.1): build -> verify -> pin -> reserve nonces -> sign -> post -> confirm.

1. **Build**: ``POST <route>?account=&chain=&base_nonce=0`` (safe to retry: nothing is signed yet).
2. **Verify** every transaction against the action's expected calls (:mod:`polyswarmclient.eth.verify`),
   then against the pinned chain id and contracts (:mod:`polyswarmclient.client.pins`). Any mismatch
   raises before anything is signed.
3. **Reserve** nonces (:mod:`polyswarmclient.client.nonces`), overwrite each tx's nonce, **sign**.
4. **Post** one transaction per ``POST /transactions`` (hex without ``0x``), in order:
   ``known transaction`` counts as submitted; ``nonce too low`` / ``invalid transaction error`` resync
   the nonces and re-run the whole action (re-build, re-verify) a bounded number of times. A broken
   connection after sending is never guessed at: the same signed bytes are posted again, and
   ``known transaction`` (or ``nonce too low``, which then means it was already mined) says it arrived.
5. **Confirm** with ``GET /transactions`` (JSON body of hashes, long timeout): ``transaction failed``
   -> :class:`TransactionFailed` (never retried); receipt timeouts are re-polled a bounded number of
   times, then :class:`ReceiptTimeout` with a nonce resync (the action is not re-run: the transaction
   may still be mined).

The result is an :class:`Outcome`; :meth:`Outcome.require` checks for the action's event (§4.6).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from polyswarmclient.client.nonces import NonceBook, NonceManager
from polyswarmclient.client.pins import PinStore
from polyswarmclient.client.settings import TransactionSettings as TransactionSettings  # re-exported
from polyswarmclient.client.signing import TransactionSigner, as_transaction_signer
from polyswarmclient.errors import (
    ApiError,
    ConnectionLost,
    InsufficientFunds,
    MalformedResponse,
    NonceError,
    ReceiptTimeout,
    SignerRefused,
    TransactionError,
    TransactionFailed,
)
from polyswarmclient.eth.keys import Signer
from polyswarmclient.eth.verify import Call, Verified, verify
from polyswarmclient.transport.backoff import Backoff
from polyswarmclient.transport.http import NO_BODY, HttpTransport
from polyswarmclient.transport.ratelimit import NORMAL, URGENT
from polyswarmclient.wire.bits import bools_to_int
from polyswarmclient.wire.models import UnsignedTransaction, parse_transactions
from polyswarmclient.wire.transactions import PostResult, TransactionEvents

log = logging.getLogger(__name__)

#: A node's words for "this transaction is already in my pool": geth ("known transaction", and "already
#: known" since 1.9.x), anvil ("transaction already imported"); the devnet answers as geth does.
_KNOWN = ("known transaction", "already known", "transaction already imported")
_NONCE_TROUBLE = ("nonce too low", "invalid transaction error", "replacement transaction underpriced")
_FAILED = ("transaction failed", "out of gas")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class Action:
    """One user action: where to build it, with what body, and the calls it must consist of."""

    name: str
    path: str
    chain: str
    expected: tuple[Call, ...]
    body: Any = NO_BODY
    #: Its block window closes (reveal, settle): its requests go first after a rate-limit pause.
    urgent: bool = False
    #: Called with each transaction's hash once it is signed, before it is posted (to record it durably).
    on_signed: Callable[[str], None] | None = field(default=None, compare=False)

    @property
    def priority(self) -> int:
        return URGENT if self.urgent else NORMAL


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _norm(value: Any) -> Any:
    """Make wire values and request values comparable (decimal strings, padded bool lists, case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if value.isascii() and value.isdigit():  # "²".isdigit() is True, but int("²") fails
            return int(value)
        if _ADDRESS.match(value) or _UUID.match(value):
            return value.lower()
        return value
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, bool) for v in value):
            return ("bits", bools_to_int(value))
        return tuple(_norm(v) for v in value)
    return value


def matches(item: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """True when every field of ``fields`` equals the item's, after :func:`_norm`."""
    return all(key in item and _norm(item[key]) == _norm(want) for key, want in fields.items())


@dataclass(frozen=True)
class Outcome:
    """What a confirmed action produced."""

    action: str
    events: TransactionEvents
    verified: Verified
    tx_hashes: tuple[str, ...]

    def require(self, key: str, **fields: Any) -> Mapping[str, Any]:
        """The first ``key`` event matching ``fields`` (spec §4.6), or :class:`TransactionError`."""
        for item in self.events.get(key):
            if isinstance(item, Mapping) and matches(item, fields):
                return item
        raise TransactionError(
            f"{self.action}: the transactions were mined, but polyswarmd reported no matching {key!r} event "
            f"(expected {fields}, got {self.events.get(key)})"
        )


class _NonceTrouble(Exception):
    """Internal: the node refused a nonce; resync and re-run the action."""


class _HttpNonceSource:
    def __init__(self, http: HttpTransport, account: str, chain: str) -> None:
        self._http = http
        self._params = {"chain": chain, "account": account}

    async def confirmed_nonce(self) -> int:
        result = await self._http.request("GET", "/nonce", params={**self._params, "ignore_pending": "1"})
        if isinstance(result, bool) or not isinstance(result, int | str) or not _is_decimal(str(result)):
            raise MalformedResponse(f"GET /nonce: expected a non-negative integer, got {result!r}")
        return int(result)

    async def pending_nonces(self) -> list[int]:
        result = await self._http.request("GET", "/pending", params=self._params)
        if not isinstance(result, list) or not all(
            not isinstance(v, bool) and isinstance(v, int | str) and _is_decimal(str(v)) for v in result
        ):
            raise MalformedResponse(f"GET /pending: expected a list of decimal nonces, got {str(result)[:200]}")
        return sorted(int(v) for v in result)


class TransactionPipeline:
    """Runs :class:`Action` values for one account against one polyswarmd."""

    def __init__(
        self,
        http: HttpTransport,
        signer: Signer | TransactionSigner,
        pins: PinStore,
        settings: TransactionSettings | None = None,
        *,
        nonces: NonceBook | None = None,
    ) -> None:
        settings = settings or TransactionSettings()
        self._max_fee = settings.max_fee
        self._http = http
        self._signer = as_transaction_signer(signer)
        self._pins = pins
        self._attempts = settings.attempts
        self._receipt_polls = settings.receipt_polls
        self._post_retries = settings.post_retries
        #: One sequence per (chain id, account), shared with the other communities' clients of this wallet.
        self._nonce_book = nonces if nonces is not None else NonceBook()
        #: Chain name -> the chain id its transactions carried last (the key into the book).
        self._chain_ids: dict[str, int] = {}
        self._sources: dict[str, _HttpNonceSource] = {}

    @property
    def account(self) -> str:
        return self._signer.address

    def _source(self, chain: str) -> _HttpNonceSource:
        source = self._sources.get(chain)
        if source is None:
            source = self._sources[chain] = _HttpNonceSource(self._http, self.account, chain)
        return source

    def nonce_manager(self, chain: str, chain_id: int | None = None) -> NonceManager:
        """The nonce sequence of ``chain`` (by its chain id: given, or as last seen on this chain's transactions)."""
        if chain_id is None:
            chain_id = self._chain_ids.get(chain)
            if chain_id is None:
                raise LookupError(f"no transaction on the {chain} chain yet: its chain id is unknown")
        return self._nonce_book.sequence(chain_id, self.account, self._source(chain))

    async def inspect(self, action: Action) -> tuple[Verified, int]:
        """Have polyswarmd build ``action`` and verify it, without pinning, signing or posting anything.

        Returns what the transactions showed and their highest gas price (first contact learns from it).
        """
        txs = await self._build(action)
        verified = verify(txs, action.expected, action=action.name, max_fee=self._max_fee)
        return verified, max(tx.gas_price for tx in txs)

    async def run(self, action: Action) -> Outcome:
        problem = ""
        for attempt in range(1, self._attempts + 1):
            txs = await self._build(action)
            verified = verify(txs, action.expected, action=action.name, max_fee=self._max_fee)
            self._pins.check_and_learn(
                self._http.address.pin_key,
                action.chain,
                verified.chain_id,
                verified.contracts,
                gas_price=max(tx.gas_price for tx in txs),
            )
            # The pinned chain id names the sequence: clients sharing the book share it per chain id.
            self._chain_ids[action.chain] = verified.chain_id
            nonces = self.nonce_manager(action.chain, verified.chain_id)
            try:
                hashes = await self._sign_and_post(action, txs, nonces)
            except _NonceTrouble as exc:
                nonces.mark_resync()
                problem = str(exc)
                log.warning(
                    "%s: %s; resyncing nonces (attempt %d of %d)",
                    action.name,
                    problem,
                    attempt,
                    self._attempts,
                )
                continue
            events = await self._confirm(action, hashes, nonces)
            return Outcome(action=action.name, events=events, verified=verified, tx_hashes=tuple(hashes))
        raise NonceError(
            f"{action.name}: the {action.chain} chain kept refusing our nonces "
            f"after {self._attempts} attempts "
            f"({problem}). Another client may be using account {self.account}"
        )

    # --- steps ----------------------------------------------------------------------------------

    def _params(self, chain: str) -> dict[str, str]:
        return {"account": self.account, "chain": chain}

    async def _build(self, action: Action) -> list[UnsignedTransaction]:
        result = await self._http.request(
            "POST",
            action.path,
            params={**self._params(action.chain), "base_nonce": "0"},
            json=action.body,
            idempotent=True,  # building signs nothing
            priority=action.priority,
        )
        return parse_transactions(result, f"POST {action.path}")

    async def _sign_and_post(
        self, action: Action, txs: Sequence[UnsignedTransaction], nonces: NonceManager
    ) -> list[str]:
        reserved = await nonces.reserve(len(txs), source=self._source(action.chain))
        hashes: list[str] = []
        try:
            for tx, nonce in zip(txs, reserved, strict=True):
                try:
                    raw, tx_hash = await self._signer.sign(replace(tx, nonce=nonce))
                except SignerRefused as exc:
                    raise SignerRefused(f"{action.name}: {exc}") from None
                if action.on_signed is not None:
                    action.on_signed(tx_hash)
                await self._post(action, raw, tx_hash)
                hashes.append(tx_hash)
        except BaseException:
            nonces.mark_resync()  # some reserved nonces were never used: refill the gap next time
            raise
        finally:
            nonces.release(reserved)
        return hashes

    async def _post(self, action: Action, raw: bytes, tx_hash: str) -> None:
        """Post one signed transaction; return when it is submitted."""
        backoff = Backoff(self._http.settings.retry_base, self._http.settings.retry_cap)
        resent = False
        last: Exception | None = None
        for attempt in range(self._post_retries + 1):
            if attempt:
                await asyncio.sleep(backoff.delay())
            try:
                result = await self._http.request(
                    "POST",
                    "/transactions",
                    params=self._params(action.chain),
                    json={"transactions": [raw.hex()]},
                    idempotent=False,
                    priority=action.priority,
                )
                results = PostResult.parse_list(result)
            except ConnectionLost as exc:
                log.warning("%s: %s; posting the same signed transaction %s again", action.name, exc, tx_hash)
                resent = True
                last = exc
                continue
            except ApiError as exc:
                if isinstance(exc.errors, list):
                    results = PostResult.parse_list(exc.errors)
                elif exc.status >= 500:
                    log.warning("%s: %s; posting the same signed transaction %s again", action.name, exc, tx_hash)
                    resent = True
                    last = exc
                    continue
                else:
                    raise TransactionError(f"{action.name}: polyswarmd refused transaction {tx_hash}: {exc}") from exc
            self._classify(action, results, tx_hash, resent)
            return
        assert last is not None
        raise last

    def _classify(self, action: Action, results: Sequence[PostResult], tx_hash: str, resent: bool) -> None:
        if len(results) != 1:
            raise TransactionError(
                f"{action.name}: polyswarmd answered {len(results)} results for one transaction {tx_hash}; "
                "it may not have decoded it"
            )
        result = results[0]
        text = result.message.lower()
        if not result.is_error:
            if result.message.lower().removeprefix("0x") != tx_hash.lower().removeprefix("0x"):
                log.warning(
                    "%s: polyswarmd reports hash %s for our transaction %s",
                    action.name,
                    result.message,
                    tx_hash,
                )
            return
        if any(k in text for k in _KNOWN):
            log.info(
                "%s: transaction %s was already known to the node; counting it as submitted",
                action.name,
                tx_hash,
            )
            return
        if "insufficient funds" in text:
            raise InsufficientFunds(
                f"{action.name}: the {action.chain} chain refused transaction {tx_hash} for lack of funds "
                f"({result.message}); fund {self.account} with ETH for gas on that chain"
            )
        if "nonce too low" in text and resent:
            # Our first post may have arrived and been mined already; the receipt will tell.
            log.info("%s: %s after a re-post; checking for a receipt", action.name, result.message)
            return
        if any(k in text for k in _NONCE_TROUBLE):
            raise _NonceTrouble(result.message)
        raise TransactionError(f"{action.name}: polyswarmd rejected transaction {tx_hash}: {result.message}")

    async def _confirm(self, action: Action, hashes: Sequence[str], nonces: NonceManager) -> TransactionEvents:
        waiting: list[str] = []
        for poll in range(self._receipt_polls + 1):
            try:
                result = await self._http.request(
                    "GET",
                    "/transactions",
                    params=self._params(action.chain),
                    json={"transactions": list(hashes)},
                    time_limit=self._http.settings.receipt_timeout,
                    priority=action.priority,
                )
                events = TransactionEvents.from_json(result)
            except ApiError as exc:
                if not isinstance(exc.errors, dict):
                    raise
                events = TransactionEvents.from_json(exc.errors)
            failed = [e for e in events.errors if any(k in e.lower() for k in _FAILED)]
            if failed:
                raise TransactionFailed(
                    f"{action.name}: the transaction was mined but reverted: {'; '.join(failed)} "
                    "(for example a missed window or a bid out of range); not retried"
                )
            waiting = [e for e in events.errors if "receipt" in e.lower()]
            others = [e for e in events.errors if e not in waiting]
            if others:
                raise TransactionError(f"{action.name}: GET /transactions reported: {'; '.join(others)}")
            if not waiting:
                return events
            log.warning("%s: %s (poll %d of %d)", action.name, "; ".join(waiting), poll + 1, self._receipt_polls + 1)
        nonces.mark_resync()
        raise ReceiptTimeout(
            f"{action.name}: no receipt for {', '.join(hashes)} ({'; '.join(waiting)}). The transaction may "
            "still be mined, or its nonce left a gap; nonces will be resynced before the next action"
        )
