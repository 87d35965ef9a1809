"""Check the transactions polyswarmd built before anything is signed (spec §4.5, stricter). Pure.

For each action the caller states the exact list of calls it expects (:class:`Call`): the function
(selector and ABI types), the contract *role* the transaction must go to, and a value for EVERY
argument. :func:`verify` then requires

* as many transactions as expected calls;
* ``value == 0`` on each, and one chain id for all of them;
* the selector and a canonical ABI encoding (``Function.decode`` re-encodes and compares);
* every decoded argument equal to the expected one (lists with their length);
* internal consistency of contract roles: an address argument that names a role (an approve
  spender, a relay transfer recipient) must equal every other appearance of that role in the action,
  so an approval can only go to the contract the next transaction calls, and no two roles may share
  an address.

It returns what it saw (chain id, role -> address) so the caller can compare it with the pins
(trust on first use) before signing. A mismatch raises :class:`VerificationError`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from polyswarmclient.errors import VerificationError
from polyswarmclient.eth.abi import (
    APPROVE,
    POST_ASSERTION,
    POST_BOUNTY,
    REVEAL_ASSERTION,
    SETTLE_BOUNTY,
    STAKE_DEPOSIT,
    STAKE_WITHDRAW,
    TRANSFER,
    VOTE_ON_BOUNTY,
    Function,
    checksum,
    guid_to_int,
    int_to_guid,
)
from polyswarmclient.wire.models import UnsignedTransaction

NECTAR_TOKEN = "nectar_token"
BOUNTY_REGISTRY = "bounty_registry"
ERC20_RELAY = "erc20_relay"
ARBITER_STAKING = "arbiter_staking"
ROLES = (NECTAR_TOKEN, BOUNTY_REGISTRY, ERC20_RELAY, ARBITER_STAKING)

ARTIFACT_TYPES = {"file": 0, "url": 1}

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_ZERO = "0x" + "0" * 40


@dataclass(frozen=True)
class Role:
    """Expected value of an address argument: the contract playing ``name`` in this action."""

    name: str


@dataclass(frozen=True)
class ServerChosenGuid:
    """Expected value of a server-chosen ``uint128`` GUID: any canonical version-4 UUID."""


@dataclass(frozen=True)
class Call:
    """One expected transaction: ``function`` on the contract of role ``to`` with exactly ``args``."""

    function: Function
    to: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.to not in ROLES:
            raise ValueError(f"unknown contract role {self.to!r}")
        if set(self.args) != set(self.function.arg_names):
            raise ValueError(f"{self.function.signature}: expectations must cover exactly {self.function.arg_names}")


@dataclass(frozen=True)
class Verified:
    """What the verified transactions showed: to be checked against (and added to) the pins."""

    chain_id: int
    contracts: Mapping[str, str]
    calls: tuple[Mapping[str, Any], ...]


def is_v4_guid(value: int) -> bool:
    """True when the uint128 is a version-4, RFC 4122 variant UUID (spec pitfall 7)."""
    if not 0 <= value < 2**128:
        return False
    guid = uuid.UUID(int=value)
    return guid.version == 4 and guid.variant == uuid.RFC_4122


def _address(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise VerificationError(f"{what} is not an address: {value!r}; refusing to sign")
    if value.lower() == _ZERO:
        raise VerificationError(f"{what} is the zero address; refusing to sign")
    return checksum(value)  # cached: a participant meets few addresses


def _show(value: Any) -> str:
    if isinstance(value, Role):
        return f"the {value.name.replace('_', ' ')}"
    return repr(value)


#: Most gas a call may ask for where gas costs ether (free chains set gas to the block gas limit, at price 0).
DEFAULT_MAX_GAS = 2_000_000
MAX_GAS = {"settleBounty": 10_000_000}


def verify(
    txs: Sequence[UnsignedTransaction], expected: Sequence[Call], *, action: str, max_fee: int | None = None
) -> Verified:
    """Check ``txs`` against ``expected`` (see the module doc); raise :class:`VerificationError`.

    ``max_fee`` caps what one transaction may cost in gas (``gas × gasPrice``, wei): free chains build
    with gasPrice 0, and a hostile server must not spend the account's ether on a paid chain.
    """
    if len(txs) != len(expected):
        raise VerificationError(
            f"{action}: polyswarmd built {len(txs)} transaction(s), expected {len(expected)} "
            f"({', '.join(c.function.name for c in expected)}); refusing to sign"
        )
    chain_ids = {tx.chain_id for tx in txs}
    if len(chain_ids) != 1:
        raise VerificationError(
            f"{action}: the transactions name different chain ids {sorted(chain_ids)}; refusing to sign"
        )
    chain_id = chain_ids.pop()
    if chain_id <= 0:
        raise VerificationError(f"{action}: chain id {chain_id} is not valid; refusing to sign")

    seen: dict[str, str] = {}

    def observe(role: str, address: str, where: str) -> None:
        previous = seen.get(role)
        if previous is not None and previous != address:
            raise VerificationError(
                f"{action}: {where} is {address}, "
                f"but the {role.replace('_', ' ')} elsewhere in this action is "
                f"{previous}; refusing to sign"
            )
        for other, other_address in seen.items():
            if other != role and other_address == address:
                raise VerificationError(
                    f"{action}: {where} is {address}, the same address as the "
                    f"{other.replace('_', ' ')}; refusing to sign"
                )
        seen[role] = address

    decoded_calls: list[Mapping[str, Any]] = []
    for position, (tx, call) in enumerate(zip(txs, expected, strict=True), start=1):
        fn = call.function
        label = f"transaction {position} ({fn.name})"
        if tx.value != 0:
            raise VerificationError(f"{action}: {label} sends {tx.value} wei of ether; expected 0; refusing to sign")
        gas_cap = MAX_GAS.get(fn.name, DEFAULT_MAX_GAS)
        if tx.gas_price > 0 and tx.gas > gas_cap:
            raise VerificationError(
                f"{action}: {label} asks for {tx.gas} gas at a price of {tx.gas_price} wei; {fn.name} never "
                f"needs more than {gas_cap}; refusing to sign"
            )
        if max_fee is not None and tx.gas * tx.gas_price > max_fee:
            raise VerificationError(
                f"{action}: {label} could cost {tx.gas * tx.gas_price} wei in gas "
                f"({tx.gas} gas at {tx.gas_price} wei), above the --max-tx-fee limit of {max_fee} wei; "
                "refusing to sign"
            )
        to = _address(tx.to, f"{action}: the recipient of {label}")
        try:
            decoded = fn.decode(tx.data)
        except ValueError as exc:
            raise VerificationError(f"{action}: {label} is not the expected call: {exc}; refusing to sign") from None
        observe(call.to, to, f"the contract {label} calls")
        for name in fn.arg_names:
            want = call.args[name]
            got = decoded[name]
            if isinstance(want, Role):
                observe(want.name, _address(got, f"{action}: {label} argument {name}"), f"{label} argument {name}")
            elif isinstance(want, ServerChosenGuid):
                if not is_v4_guid(got):
                    raise VerificationError(
                        f"{action}: {label} argument {name} is {int_to_guid(got)}, "
                        "not a version-4 UUID; refusing to sign"
                    )
            elif type(want) is bool or type(got) is bool:
                if type(want) is not type(got) or want != got:
                    raise VerificationError(
                        f"{action}: {label} argument {name}: expected {want!r}, got {got!r}; refusing to sign"
                    )
            elif want != got:
                raise VerificationError(
                    f"{action}: {label} argument {name}: expected {_show(want)}, got {got!r}; refusing to sign"
                )
        decoded_calls.append(decoded)
    return Verified(chain_id=chain_id, contracts=dict(seen), calls=tuple(decoded_calls))


# --- expectations per action (spec §2.5-§2.7) ----------------------------------------------------


def expect_post_bounty(
    *,
    amount: int,
    bounty_fee: int,
    artifact_type: str,
    uri: str,
    num_artifacts: int,
    duration: int,
    bloom: Sequence[int],
    metadata: str,
) -> list[Call]:
    """[approve(registry, amount + bounty_fee),
    postBounty(v4 guid, type, amount, uri, n, duration, bloom, metadata)]."""
    return [
        Call(APPROVE, NECTAR_TOKEN, {"spender": Role(BOUNTY_REGISTRY), "value": amount + bounty_fee}),
        Call(
            POST_BOUNTY,
            BOUNTY_REGISTRY,
            {
                "guid": ServerChosenGuid(),
                "artifactType": ARTIFACT_TYPES[artifact_type],
                "amount": amount,
                "artifactURI": uri,
                "numArtifacts": num_artifacts,
                "durationBlocks": duration,
                "bloom": list(bloom),
                "metadata": metadata,
            },
        ),
    ]


def expect_post_assertion(
    *, guid: str, bids: Sequence[int], mask: int, commitment: int, assertion_fee: int
) -> list[Call]:
    """[approve(registry, Σbid + assertion_fee), postAssertion(guid, bids, mask, commitment)]."""
    return [
        Call(APPROVE, NECTAR_TOKEN, {"spender": Role(BOUNTY_REGISTRY), "value": sum(bids) + assertion_fee}),
        Call(
            POST_ASSERTION,
            BOUNTY_REGISTRY,
            {"bountyGuid": guid_to_int(guid), "bid": list(bids), "mask": mask, "commitment": commitment},
        ),
    ]


def expect_reveal(*, guid: str, index: int, nonce: int, verdicts: int, metadata: str) -> list[Call]:
    return [
        Call(
            REVEAL_ASSERTION,
            BOUNTY_REGISTRY,
            {
                "bountyGuid": guid_to_int(guid),
                "assertionId": index,
                "nonce": nonce,
                "verdicts": verdicts,
                "metadata": metadata,
            },
        )
    ]


def expect_vote(*, guid: str, votes: int, valid_bloom: bool) -> list[Call]:
    return [
        Call(
            VOTE_ON_BOUNTY,
            BOUNTY_REGISTRY,
            {"bountyGuid": guid_to_int(guid), "votes": votes, "validBloom": valid_bloom},
        )
    ]


def expect_settle(*, guid: str) -> list[Call]:
    return [Call(SETTLE_BOUNTY, BOUNTY_REGISTRY, {"bountyGuid": guid_to_int(guid)})]


def expect_relay_transfer(*, amount: int) -> list[Call]:
    """A relay deposit or withdrawal: [transfer(relay, amount)] on the NectarToken of that chain."""
    return [Call(TRANSFER, NECTAR_TOKEN, {"to": Role(ERC20_RELAY), "value": amount})]


def expect_stake_deposit(*, amount: int) -> list[Call]:
    return [
        Call(APPROVE, NECTAR_TOKEN, {"spender": Role(ARBITER_STAKING), "value": amount}),
        Call(STAKE_DEPOSIT, ARBITER_STAKING, {"value": amount}),
    ]


def expect_stake_withdraw(*, amount: int) -> list[Call]:
    return [Call(STAKE_WITHDRAW, ARBITER_STAKING, {"value": amount})]
