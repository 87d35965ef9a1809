"""The signer process: pin the contracts, then answer clef's external API within the policy.

Start-up (:func:`pin_chains`): the contracts and chain ids the signer signs for come from ``--contracts``
(the operator's published values) and from polyswarmd at first contact, learned as the roles learn
them (polyswarmd builds, and nobody posts, one transaction of each kind) and pinned in the signer's own
state directory. From then on a polyswarmd that names other contracts is refused at start, and a
polyswarmd that cannot be reached does not matter once the pins are there.

Serving (:class:`SignerService`): ``account_version``, ``account_list`` and ``account_signTransaction``.
Each request goes to the audit log; a transaction is decoded and judged by
:func:`polyswarmclient.signer.policy.decide`; a signature is returned only after its amounts are in the
persisted spending window and the audit line is on disk.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyswarmclient.client.facade import FIRST_CONTACT, ClientConfig, PolyswarmClient
from polyswarmclient.client.pins import PinStore, load_expected
from polyswarmclient.errors import ConfigError, StateError, TransportError, VerificationError
from polyswarmclient.eth.keys import Signer
from polyswarmclient.signer.audit import AuditLog
from polyswarmclient.signer.policy import Limits, PinnedChain, Refuse, TxRequest, decide, eth, nct
from polyswarmclient.signer.spending import SpendingWindow
from polyswarmclient.transport.address import parse_address
from polyswarmclient.transport.jsonrpc import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    REQUEST_DENIED,
    JsonRpcServer,
    RpcFault,
    read_token_file,
)
from polyswarmclient.wire.models import UnsignedTransaction

log = logging.getLogger(__name__)

#: The version of clef's external API whose methods and shapes this signer follows.
API_VERSION = "6.0.0"
CHAIN_NAMES = ("side", "home")


@dataclass(frozen=True)
class SignerConfig:
    """Everything ``polyswarm-signer`` needs besides its key."""

    #: Pins, the spending window and (by default) the audit log and the socket live here.
    state_dir: Path = Path(".polyswarm-signer")
    #: Unix socket to listen on; ``None``: ``<state_dir>/signer.sock`` unless ``listen`` is given.
    socket: Path | None = None
    #: Loopback ``host:port`` to listen on (HTTP with a bearer token) instead of / besides the socket.
    listen: str | None = None
    #: The bearer token's file for ``listen`` (made, mode 0600, when missing).
    token_file: Path | None = None
    #: JSON-lines audit log; ``None``: ``<state_dir>/audit.jsonl``.
    audit_log: Path | None = None
    #: polyswarmd to learn the contracts from at first contact (``None``: ``contracts_file`` only).
    polyswarmd_addr: str | None = None
    api_key: str | None = field(default=None, repr=False)
    insecure_transport: bool = False
    allow_key_over_http: bool = False
    #: The community's published contract addresses and chain ids (JSON, the roles' ``--contracts`` shape).
    contracts_file: Path | None = None
    limits: Limits = field(default_factory=Limits)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in ("state_dir", "socket", "listen", "audit_log", "polyswarmd_addr", "contracts_file", "limits")
        )
        return f"SignerConfig({shown}, api_key={'<set>' if self.api_key else None})"

    @property
    def socket_path(self) -> Path | None:
        if self.socket is not None:
            return self.socket
        return None if self.listen else self.state_dir / "signer.sock"

    @property
    def audit_path(self) -> Path:
        return self.audit_log or self.state_dir / "audit.jsonl"

    @property
    def spending_path(self) -> Path:
        return self.state_dir / "spending.json"


def _chains_from(entries: Mapping[str, Mapping[str, Any]]) -> list[PinnedChain]:
    chains = []
    for name in CHAIN_NAMES:
        entry = entries.get(name) or {}
        chain_id = entry.get("chain_id")
        if isinstance(chain_id, int) and not isinstance(chain_id, bool):
            chains.append(PinnedChain(name, chain_id, dict(entry.get("contracts") or {})))
    return chains


async def pin_chains(config: SignerConfig, key: Signer) -> list[PinnedChain]:
    """The chains and contracts to sign for (see the module doc); :class:`ConfigError` when there are none."""
    expected = load_expected(config.contracts_file) if config.contracts_file is not None else {}
    entries: dict[str, dict[str, Any]] = {n: dict(e) for n, e in expected.items()}
    if config.polyswarmd_addr:
        address = parse_address(
            config.polyswarmd_addr,
            insecure_transport=config.insecure_transport,
            api_key=config.api_key,
            allow_key_over_http=config.allow_key_over_http,
        )
        client = PolyswarmClient(
            ClientConfig(
                polyswarmd_addr=config.polyswarmd_addr,
                api_key=config.api_key,
                insecure_transport=config.insecure_transport,
                allow_key_over_http=config.allow_key_over_http,
                state_dir=config.state_dir,
                contracts_file=config.contracts_file,
            ),
            key,
        )
        store = PinStore.in_state_dir(config.state_dir, expected)
        try:
            async with client:
                await client.check_server()
                await client.learn_contracts(FIRST_CONTACT)
        except VerificationError as exc:
            raise ConfigError(f"polyswarmd at {address.base} disagrees with the signer's pins: {exc}") from None
        except TransportError as exc:
            if not any(store.pinned(address.pin_key, n)["chain_id"] is not None for n in CHAIN_NAMES):
                raise ConfigError(
                    f"cannot reach polyswarmd at {address.base} to pin its contracts ({exc}); start it first, "
                    "or give the contracts with --contracts"
                ) from None
            log.warning(
                "polyswarmd at %s unreachable (%s); signing for the contracts pinned earlier", address.base, exc
            )
        for name in CHAIN_NAMES:
            pinned = store.pinned(address.pin_key, name)
            if pinned["chain_id"] is None:
                continue
            entry = entries.setdefault(name, {})
            entry.setdefault("chain_id", pinned["chain_id"])
            entry["contracts"] = {**pinned["contracts"], **(entry.get("contracts") or {})}
    chains = _chains_from(entries)
    if not chains:
        raise ConfigError(
            "the signer knows no chain to sign for: give --polyswarmd-addr (its contracts are pinned at first "
            "contact) or --contracts with each chain's chain_id and contracts"
        )
    return chains


class SignerService:
    """Answers clef's external API for one key, within ``limits``, on ``chains``."""

    def __init__(
        self,
        key: Signer,
        chains: list[PinnedChain],
        limits: Limits,
        spending: SpendingWindow,
        audit: AuditLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = key
        self.chains = chains
        self.limits = limits
        self._spending = spending
        self._audit = audit
        self._clock = clock

    def __repr__(self) -> str:
        return f"SignerService(address={self._key.address}, chains={[c.name for c in self.chains]})"

    @property
    def address(self) -> str:
        return self._key.address

    async def handle(self, method: str, params: list[Any]) -> Any:
        match method:
            case "account_version":
                return API_VERSION
            case "account_list":
                self._audit.write({"method": method, "outcome": "answered"})
                return [self._key.address]
            case "account_signTransaction":
                return self._sign_transaction(params)
        self._audit.write({"method": method, "outcome": "invalid", "reason": "method not available"})
        raise RpcFault(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")

    def _sign_transaction(self, params: list[Any]) -> dict[str, Any]:
        method = "account_signTransaction"
        if not params or len(params) > 2:
            self._audit.write({"method": method, "outcome": "invalid", "reason": "expected [transaction]"})
            raise RpcFault(INVALID_PARAMS, "expected one transaction object (and optionally a method signature)")
        try:
            tx = TxRequest.from_clef(params[0])
        except ValueError as exc:
            return self._refuse({"method": method}, str(exc))
        now = self._clock()
        spent = self._spending.spent(now)
        request: dict[str, Any] = {
            "method": method,
            "chain_id": tx.chain_id,
            "to": tx.to,
            "nonce": tx.nonce,
            "gas": tx.gas,
            "gas_price": tx.gas_price,
            "selector": "0x" + tx.data[:4].hex(),
        }
        decision = decide(tx, self._key.address, self.chains, self.limits, spent)
        call = decision.call
        if call is not None:
            request.update(
                chain=call.chain,
                contract=call.contract,
                function=call.function,
                args=call.args,
                nct_out=call.nct_out,
                gas_cost=call.gas_cost,
            )
        if isinstance(decision, Refuse):
            return self._refuse(request, decision.reason)
        assert call is not None and tx.to is not None and tx.chain_id is not None
        # Count it first: a crash between here and the answer leaves it counted, never forgotten.
        self._spending.record(now, call.nct_out, call.gas_cost)
        raw, tx_hash = self._key.sign(
            UnsignedTransaction(
                to=tx.to,
                data=tx.data,
                value=tx.value,
                gas=tx.gas,
                gas_price=tx.gas_price,
                nonce=tx.nonce,
                chain_id=tx.chain_id,
            )
        )
        try:
            self._audit.write({**request, "outcome": "signed", "tx_hash": tx_hash})
        except StateError as exc:
            log.error("%s; the signature is withheld", exc)
            raise RpcFault(REQUEST_DENIED, "Request denied: the signer cannot write its audit log") from None
        log.info(
            "signed %s on the %s %s (nonce %d, %s out, gas up to %s) as %s",
            call.function,
            call.chain,
            call.contract,
            tx.nonce,
            nct(call.nct_out),
            eth(call.gas_cost),
            tx_hash,
        )
        return {
            "raw": "0x" + raw.hex(),
            "tx": {
                "nonce": hex(tx.nonce),
                "gasPrice": hex(tx.gas_price),
                "gas": hex(tx.gas),
                "to": tx.to,
                "value": hex(tx.value),
                "input": "0x" + tx.data.hex(),
                "chainId": hex(tx.chain_id),
                "hash": tx_hash,
            },
        }

    def _refuse(self, request: dict[str, Any], reason: str) -> dict[str, Any]:
        self._audit.write({**request, "outcome": "refused", "reason": reason})
        log.warning("refused %s: %s", request.get("function", request["method"]), reason)
        raise RpcFault(REQUEST_DENIED, f"Request denied: {reason}")


def describe(chains: list[PinnedChain], limits: Limits) -> list[str]:
    """What the signer will sign for, for its start-up log."""
    lines = []
    for chain in chains:
        contracts = ", ".join(f"{role} {address}" for role, address in sorted(chain.contracts.items()))
        lines.append(f"{chain.name} chain {chain.chain_id}: {contracts or 'no contracts pinned'}")
    lines.append(
        f"caps: {nct(limits.max_nct_per_tx)} per transaction, {nct(limits.max_nct_per_day)} per 24 h; "
        f"gas {eth(limits.max_gas_per_tx)} per transaction, {eth(limits.max_gas_per_day)} per 24 h"
    )
    return lines


async def serve(
    config: SignerConfig,
    key: Signer,
    until_stopped: Callable[[], Awaitable[object]],
    announce: Callable[[str], None],
) -> None:
    """Pin, listen, serve until ``until_stopped()`` returns, then close the socket (the file is removed).

    ``announce`` gets what an operator should see at start: the chains, the caps, each address listened on.
    """
    try:
        config.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the state directory {config.state_dir}: {exc.strerror or exc}") from None
    chains = await pin_chains(config, key)
    for line in describe(chains, config.limits):
        announce(line)
    spending = SpendingWindow(config.spending_path)
    audit = AuditLog(config.audit_path)
    service = SignerService(key, chains, config.limits, spending, audit)
    server = JsonRpcServer(service.handle)
    try:
        socket_path = config.socket_path
        if socket_path is not None:
            announce(f"listening on {await server.listen_ipc(socket_path)}")
        if config.listen:
            host, _, port = config.listen.rpartition(":")
            if not port.isdigit() or not host:
                raise ConfigError(f"--listen {config.listen}: expected HOST:PORT, for example 127.0.0.1:8550")
            token = ensure_token(config.token_file or config.state_dir / "signer.token")
            announce(f"listening on {await server.listen_http(host.strip('[]'), int(port), token)}")
        await until_stopped()
    finally:
        await server.close()
        audit.close()


def ensure_token(path: Path) -> str:
    """The bearer token in ``path``; a new random one is written there (mode 0600) when the file is missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot create the token file {path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        log.warning("wrote a new bearer token to %s; give that file to the roles with --signer-token-file", path)
    return read_token_file(path, "the token file")
