"""What the signer agrees to sign. Pure: :func:`decide` looks at one request and what was spent lately.

The signer trusts nobody who asks, so it decodes every transaction itself and signs only

* for its own account, legacy transactions with ``value == 0`` and a chain id it has pinned;
* to a pinned contract of that chain, calling a function the roles need there:

  ============== ==============================================================================
  contract       functions
  ============== ==============================================================================
  NectarToken    ``approve(spender, value)`` with spender the pinned BountyRegistry, ArbiterStaking
                 or ERC20Relay of the same chain; ``transfer(to, value)`` with ``to`` that chain's
                 pinned ERC20Relay (a relay deposit or withdrawal)
  BountyRegistry ``postBounty``, ``postAssertion``, ``revealAssertion``, ``voteOnBounty``,
                 ``settleBounty``
  ArbiterStaking ``deposit(value)``, ``withdraw(value)``
  ============== ==============================================================================

  the call data decoding to exactly the canonical (or polyswarmd 2.2.0's eth-abi 1.x) encoding;
* within the caps: NCT that can leave the wallet (the ``value`` of an approval or a transfer: bounty
  amounts, bids and fees are all drawn through an approval first) at most ``max_nct_per_tx`` per
  transaction and ``max_nct_per_day`` over any 24 hours, across both chains; ether spent on gas
  (``gas × gasPrice``) at most ``max_gas_per_tx`` and ``max_gas_per_day``.

Everything else is refused with a reason that names what was asked and which rule said no.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from polyswarmclient.amounts import format_amount, format_ether
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
)
from polyswarmclient.eth.verify import ARBITER_STAKING, BOUNTY_REGISTRY, ERC20_RELAY, NECTAR_TOKEN

NCT = 10**18
ETH = 10**18

#: The functions each contract role may be asked to run.
ALLOWED: Mapping[str, tuple[Function, ...]] = {
    NECTAR_TOKEN: (APPROVE, TRANSFER),
    BOUNTY_REGISTRY: (POST_BOUNTY, POST_ASSERTION, REVEAL_ASSERTION, VOTE_ON_BOUNTY, SETTLE_BOUNTY),
    ARBITER_STAKING: (STAKE_DEPOSIT, STAKE_WITHDRAW),
}
#: Who an approval may name as spender.
APPROVE_SPENDERS = (BOUNTY_REGISTRY, ARBITER_STAKING, ERC20_RELAY)


@dataclass(frozen=True)
class PinnedChain:
    """One chain the signer signs for: its name (``side``/``home``), id, and contract role -> address."""

    name: str
    chain_id: int
    contracts: Mapping[str, str] = field(default_factory=dict)

    def role_of(self, address: str) -> str | None:
        for role, pinned in self.contracts.items():
            if pinned.lower() == address.lower():
                return role
        return None


@dataclass(frozen=True)
class Limits:
    """The spending caps, in wei (NCT-wei for NCT, wei of ether for gas)."""

    max_nct_per_tx: int = 1_000 * NCT
    max_nct_per_day: int = 10_000 * NCT
    max_gas_per_tx: int = 5 * ETH // 100
    max_gas_per_day: int = 5 * ETH // 10


@dataclass(frozen=True)
class Spent:
    """What was signed away in the current 24-hour window."""

    nct: int = 0
    gas: int = 0


@dataclass(frozen=True)
class TxRequest:
    """An ``account_signTransaction`` request, parsed (clef encodes numbers and data as ``0x`` hex)."""

    sender: str | None
    to: str | None
    data: bytes
    value: int
    gas: int
    gas_price: int
    nonce: int
    chain_id: int | None

    @classmethod
    def from_clef(cls, args: Any) -> TxRequest:
        """Raises ``ValueError`` with a reason when ``args`` is not a legacy transaction request."""
        if not isinstance(args, Mapping):
            raise ValueError("the transaction argument is not an object")
        if "maxFeePerGas" in args or "maxPriorityFeePerGas" in args:
            raise ValueError("only legacy transactions (gasPrice) are signed")
        data = args.get("data", args.get("input"))
        if "data" in args and "input" in args and args["data"] != args["input"]:
            raise ValueError("'data' and 'input' differ")
        return cls(
            sender=_address_or_none(args.get("from"), "from"),
            to=_address_or_none(args.get("to"), "to"),
            data=_data(data),
            value=_quantity(args.get("value", "0x0"), "value"),
            gas=_quantity(args.get("gas"), "gas"),
            gas_price=_quantity(args.get("gasPrice"), "gasPrice"),
            nonce=_quantity(args.get("nonce"), "nonce"),
            chain_id=None if args.get("chainId") is None else _quantity(args.get("chainId"), "chainId"),
        )


def _quantity(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str) or not value.startswith("0x") or len(value) > 66:
        raise ValueError(f"'{name}' is missing or not a 0x hex number")
    try:
        return int(value, 16)
    except ValueError:
        raise ValueError(f"'{name}' is not a 0x hex number") from None


def _data(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ValueError("'data' is not 0x hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ValueError("'data' is not 0x hex") from None


def _address_or_none(value: Any, name: str) -> str | None:
    if value is None or value == "0x":
        return None
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise ValueError(f"'{name}' is not an address")
    try:
        int(value[2:], 16)
    except ValueError:
        raise ValueError(f"'{name}' is not an address") from None
    return value


@dataclass(frozen=True)
class Call:
    """What a request turned out to be, for the decision and the audit log."""

    chain: str
    contract: str
    function: str
    args: Mapping[str, Any]
    #: NCT-wei that this transaction lets leave the wallet (an approval's or a transfer's value).
    nct_out: int
    #: Wei of ether it may spend on gas (gas x gasPrice).
    gas_cost: int


@dataclass(frozen=True)
class Sign:
    call: Call


@dataclass(frozen=True)
class Refuse:
    reason: str
    call: Call | None = None


def nct(wei: int) -> str:
    return f"{format_amount(wei, 'nct')} NCT"


def eth(wei: int) -> str:
    return f"{format_ether(wei)} ETH"


def decide(tx: TxRequest, account: str, chains: Sequence[PinnedChain], limits: Limits, spent: Spent) -> Sign | Refuse:
    """Sign or refuse ``tx`` for ``account`` (see the module doc); ``spent`` is the last 24 hours' total."""
    if tx.sender is not None and tx.sender.lower() != account.lower():
        return Refuse(f"this signer signs for {account} only, not {tx.sender}")
    if tx.chain_id is None:
        return Refuse("the request names no chainId; the signer signs for pinned chain ids only")
    chain = next((c for c in chains if c.chain_id == tx.chain_id), None)
    if chain is None:
        pinned = ", ".join(f"{c.name} {c.chain_id}" for c in chains) or "none"
        return Refuse(f"chain id {tx.chain_id} is not a pinned chain (pinned: {pinned})")
    if tx.value != 0:
        return Refuse(f"the transaction sends {tx.value} wei of ether; the signer signs value 0 only")
    if tx.to is None:
        return Refuse("contract creation is never signed")
    role = chain.role_of(tx.to)
    if role is None:
        return Refuse(f"{tx.to} is not a pinned contract on the {chain.name} chain (chain id {chain.chain_id})")
    selector = tx.data[:4]
    function = next((f for f in ALLOWED.get(role, ()) if f.selector == selector), None)
    if function is None:
        allowed = ", ".join(f.name for f in ALLOWED.get(role, ())) or "nothing"
        return Refuse(
            f"selector 0x{selector.hex()} on the {role} ({tx.to}) is not a function the roles need "
            f"(allowed there: {allowed})"
        )
    try:
        args = function.decode(tx.data)
    except ValueError as exc:
        return Refuse(f"{function.name} on the {role}: {exc}")
    nct_out = int(args["value"]) if function in (APPROVE, TRANSFER) else 0
    call = Call(chain.name, role, function.name, args, nct_out, tx.gas * tx.gas_price)
    if function is APPROVE:
        spender_role = chain.role_of(str(args["spender"]))
        if spender_role not in APPROVE_SPENDERS:
            return Refuse(
                f"approve names spender {args['spender']}, which is not the pinned bounty registry, arbiter staking "
                f"or relay of the {chain.name} chain",
                call,
            )
    if function is TRANSFER:
        relay = chain.contracts.get(ERC20_RELAY)
        if relay is None or str(args["to"]).lower() != relay.lower():
            return Refuse(
                f"transfer to {args['to']}: NCT is transferred only to the pinned relay of the {chain.name} chain "
                f"({relay or 'not pinned'})",
                call,
            )
    if call.nct_out > limits.max_nct_per_tx:
        return Refuse(
            f"{function.name} of {nct(call.nct_out)} is above the per-transaction cap of {nct(limits.max_nct_per_tx)}",
            call,
        )
    if spent.nct + call.nct_out > limits.max_nct_per_day:
        return Refuse(
            f"{function.name} of {nct(call.nct_out)} would take the NCT signed away in 24 hours to "
            f"{nct(spent.nct + call.nct_out)}, above the cap of {nct(limits.max_nct_per_day)} "
            f"({nct(spent.nct)} already)",
            call,
        )
    if call.gas_cost > limits.max_gas_per_tx:
        return Refuse(
            f"{function.name} may cost {eth(call.gas_cost)} in gas, above the per-transaction cap of "
            f"{eth(limits.max_gas_per_tx)}",
            call,
        )
    if spent.gas + call.gas_cost > limits.max_gas_per_day:
        return Refuse(
            f"{function.name} may cost {eth(call.gas_cost)} in gas, which would take the 24-hour total to "
            f"{eth(spent.gas + call.gas_cost)}, above the cap of {eth(limits.max_gas_per_day)}",
            call,
        )
    return Sign(call)
