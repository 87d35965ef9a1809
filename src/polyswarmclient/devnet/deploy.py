"""Deploy and wire a devnet community (NectarToken, ArbiterStaking, BountyRegistry, ERC20Relay)
on a homechain and a sidechain.

Only the ``EmbeddedChain`` interface (``transact``, ``call``, ``fund``, ...) is used, so any object
implementing it (for example a JSON-RPC backed chain) works.

Keys are derived, never written down: ``devnet_key(label) = keccak256(b"polyswarm-kit devnet " + label)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import eth_abi
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from polyswarmclient.devnet.contracts.compile import load_artifact

NCT = 10**18
ETH = 10**18
# The whole NCT supply, as minted to the sidechain relay by the original migrations.
NCT_TOTAL_SUPPLY = 1_885_913_075_851_542_181_982_426_285


class ChainLike(Protocol):
    chain_id: int

    def transact(self, private_key: bytes, to: str | None, data: bytes, value: int = 0) -> Any: ...

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: int | None = None) -> bytes: ...

    def fund(self, address: str, wei: int) -> None: ...

    def revert_reason(self, tx_hash: bytes) -> str | None: ...

    def block_number(self) -> int: ...


class DeployError(RuntimeError):
    """A deployment or setup transaction failed."""


# ---------------------------------------------------------------- ABI helpers


def _abi_type(param: dict[str, Any]) -> str:
    typ: str = param["type"]
    if typ.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){typ[5:]}"
    return typ


def find_function(abi: list[dict[str, Any]], fn_name: str) -> dict[str, Any]:
    for item in abi:
        if item.get("type") == "function" and item.get("name") == fn_name:
            return item
    raise KeyError(f"function {fn_name!r} not in ABI")


def function_signature(item: dict[str, Any]) -> str:
    """``name(type,type,...)`` of an ABI function or event entry."""
    return f"{item['name']}({','.join(_abi_type(p) for p in item.get('inputs', []))})"


def selector(abi: list[dict[str, Any]], fn_name: str) -> bytes:
    return keccak(text=function_signature(find_function(abi, fn_name)))[:4]


def event_topic(abi: list[dict[str, Any]], event_name: str) -> bytes:
    for item in abi:
        if item.get("type") == "event" and item.get("name") == event_name:
            return keccak(text=function_signature(item))
    raise KeyError(f"event {event_name!r} not in ABI")


def encode_call(abi: list[dict[str, Any]], fn_name: str, args: tuple[Any, ...] | list[Any]) -> bytes:
    """Calldata: selector + ABI-encoded ``args``."""
    item = find_function(abi, fn_name)
    types = [_abi_type(p) for p in item["inputs"]]
    return selector(abi, fn_name) + eth_abi.encode(types, list(args))


def decode_output(abi: list[dict[str, Any]], fn_name: str, data: bytes) -> Any:
    """Decode a call result: a single value unwrapped, several as a tuple.

    Addresses come back checksummed and arrays as lists.
    """
    item = find_function(abi, fn_name)
    types = [_abi_type(p) for p in item["outputs"]]
    values = [_checksum(t, v) for t, v in zip(types, eth_abi.decode(types, data), strict=True)]
    return values[0] if len(values) == 1 else tuple(values)


def _checksum(typ: str, value: Any) -> Any:
    if typ == "address":
        return to_checksum_address(value)
    if typ.startswith("address["):
        return [to_checksum_address(v) for v in value]
    if typ.endswith("]"):
        return list(value)
    return value


def encode_deploy(name: str, args: tuple[Any, ...] | list[Any] = ()) -> bytes:
    """Init code of contract ``name`` with ABI-encoded constructor ``args``."""
    artifact = load_artifact(name)
    code = bytes.fromhex(artifact["bytecode"].removeprefix("0x"))
    ctor = next((i for i in artifact["abi"] if i.get("type") == "constructor"), None)
    if ctor is None:
        if args:
            raise ValueError(f"{name} takes no constructor arguments")
        return code
    types = [_abi_type(p) for p in ctor["inputs"]]
    return code + eth_abi.encode(types, list(args))


def contract_call(
    chain: ChainLike,
    address: str,
    abi: list[dict[str, Any]] | str,
    fn_name: str,
    *args: Any,
    sender: str | None = None,
    block: int | None = None,
) -> Any:
    """eth_call ``fn_name(*args)`` and decode the result. ``abi`` may be a contract name."""
    abi_list = load_artifact(abi)["abi"] if isinstance(abi, str) else abi
    out = chain.call(address, encode_call(abi_list, fn_name, args), sender=sender, block=block)
    return decode_output(abi_list, fn_name, out)


def contract_transact(
    chain: ChainLike,
    private_key: bytes,
    address: str,
    abi: list[dict[str, Any]] | str,
    fn_name: str,
    *args: Any,
    check: bool = True,
) -> Any:
    """Send ``fn_name(*args)`` signed by ``private_key``; with ``check`` a failed tx raises DeployError."""
    abi_list = load_artifact(abi)["abi"] if isinstance(abi, str) else abi
    receipt = chain.transact(private_key, address, encode_call(abi_list, fn_name, args))
    if check and receipt.status != 1:
        reason = chain.revert_reason(receipt.tx_hash)
        raise DeployError(f"{fn_name} failed: {reason or 'reverted'}")
    return receipt


# ---------------------------------------------------------------- keys and config


def devnet_key(label: str) -> bytes:
    """Deterministic private key ``keccak256(b"polyswarm-kit devnet " + label)``."""
    return keccak(b"polyswarm-kit devnet " + label.encode("utf-8"))


def devnet_address(label: str) -> str:
    return str(Account.from_key(devnet_key(label)).address)


@dataclass(frozen=True)
class CommunityConfig:
    bounty_fee: int = 62_500_000_000_000_000  # 0.0625 NCT
    assertion_fee: int = 31_250_000_000_000_000  # 0.03125 NCT
    bounty_amount_minimum: int = 2 * NCT  # per artifact
    assertion_bid_minimum: int = 62_500_000_000_000_000  # per artifact bid
    assertion_bid_maximum: int = 1 * NCT  # per artifact bid
    assertion_reveal_window: int = 10
    arbiter_vote_window: int = 10
    max_duration: int = 100
    arbiter_lookback_range: int = 100
    page_size: int = 25
    # ArbiterStaking 1.2's values; the devnet lowers the minimum (see DevnetConfig.minimum_stake)
    minimum_stake: int = 10_000_000 * NCT
    maximum_stake: int = 100_000_000 * NCT
    stake_duration: int = 100
    # fees() = (54301 * verifiers + 73458) * 20 gwei * rate: with one verifier and rate 98
    # a homechain payout (side -> home withdrawal) costs 0.2504 NCT; sidechain payouts are free.
    home_nct_eth_rate: int = 98
    side_nct_eth_rate: int = 0
    nct_supply: int = NCT_TOTAL_SUPPLY  # minted on each chain
    home_relay_liquidity: int = 100_000_000 * NCT  # moved from the deployer to the home relay
    operator_eth: int = 1_000 * ETH  # ETH for the deployer and the relay verifier on each chain


@dataclass(frozen=True)
class ChainContracts:
    nectar_token: str
    bounty_registry: str
    erc20_relay: str
    arbiter_staking: str


@dataclass(frozen=True)
class Community:
    home: ChainContracts
    side: ChainContracts
    relay_verifier: str  # address of devnet_key("relay")
    deployer: str = ""  # address of devnet_key("deployer"): owner of every contract
    fee_wallet: str = ""  # address of devnet_key("relay-fees"): receives relay fees


# ---------------------------------------------------------------- deployment


def _deploy(chain: ChainLike, key: bytes, name: str, *args: Any) -> str:
    receipt = chain.transact(key, None, encode_deploy(name, args))
    if receipt.status != 1 or not receipt.contract_address:
        reason = chain.revert_reason(receipt.tx_hash)
        raise DeployError(f"deploying {name} on chain {chain.chain_id} failed: {reason or 'reverted'}")
    return str(receipt.contract_address)


def _staking_args(config: CommunityConfig, token: str) -> tuple[Any, ...]:
    """ArbiterStaking's constructor arguments."""
    return (token, config.minimum_stake, config.maximum_stake, config.stake_duration)


def _registry_args(config: CommunityConfig, token: str, staking: str) -> tuple[Any, ...]:
    """BountyRegistry's constructor arguments: the token, the staking contract, fees, bid range and windows."""
    return (
        token,
        staking,
        config.bounty_fee,
        config.assertion_fee,
        config.bounty_amount_minimum,
        config.assertion_bid_minimum,
        config.assertion_bid_maximum,
        config.assertion_reveal_window,
        config.arbiter_vote_window,
        config.max_duration,
        config.arbiter_lookback_range,
        config.page_size,
    )


def deploy_chain(chain: ChainLike, config: CommunityConfig, *, home: bool, verifier: str = "") -> ChainContracts:
    """Deploy and wire the four contracts on one chain (see ``deploy_community``); ``verifier`` is the
    relay's (default: ``devnet_address("relay")``)."""
    rate = config.home_nct_eth_rate if home else config.side_nct_eth_rate
    deployer_key = devnet_key("deployer")
    deployer = devnet_address("deployer")
    verifier = verifier or devnet_address("relay")
    fee_wallet = devnet_address("relay-fees")
    chain.fund(deployer, config.operator_eth)
    chain.fund(verifier, config.operator_eth)

    token = _deploy(chain, deployer_key, "NectarToken")
    staking = _deploy(chain, deployer_key, "ArbiterStaking", *_staking_args(config, token))
    registry = _deploy(chain, deployer_key, "BountyRegistry", *_registry_args(config, token, staking))
    contract_transact(chain, deployer_key, staking, "ArbiterStaking", "setBountyRegistry", registry)
    relay = _deploy(chain, deployer_key, "ERC20Relay", token, rate, fee_wallet, [verifier])

    if home:
        contract_transact(chain, deployer_key, token, "NectarToken", "mint", deployer, config.nct_supply)
        if config.home_relay_liquidity:
            contract_transact(chain, deployer_key, token, "NectarToken", "transfer", relay, config.home_relay_liquidity)
    else:
        contract_transact(chain, deployer_key, token, "NectarToken", "mint", relay, config.nct_supply)
    return ChainContracts(
        nectar_token=to_checksum_address(token),
        bounty_registry=to_checksum_address(registry),
        erc20_relay=to_checksum_address(relay),
        arbiter_staking=to_checksum_address(staking),
    )


def create_address(sender: str, nonce: int) -> str:
    """The address a contract created by ``sender`` with ``nonce`` gets (``keccak(rlp([sender, nonce]))``)."""
    if nonce == 0:
        encoded_nonce = b"\x80"
    elif nonce < 0x80:
        encoded_nonce = bytes([nonce])
    else:
        raw = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
        encoded_nonce = bytes([0x80 + len(raw)]) + raw
    payload = b"\x94" + bytes.fromhex(sender.removeprefix("0x")) + encoded_nonce
    return to_checksum_address(keccak(bytes([0xC0 + len(payload)]) + payload)[12:])


#: The deployer's nonce of each contract in ``deploy_chain`` (nonce 3 is ``setBountyRegistry``).
DEPLOY_NONCES = {"NectarToken": 0, "ArbiterStaking": 1, "BountyRegistry": 2, "ERC20Relay": 4}


class ContractsMismatch(DeployError):
    """A node already holds a deployment by the devnet's deployer, but not this version's contracts."""

    def __init__(self, message: str, chain_id: int) -> None:
        super().__init__(message)
        self.chain_id = chain_id


def attach_chain(chain: Any, config: CommunityConfig, *, home: bool, verifier: str = "") -> ChainContracts:
    """The contracts an earlier ``deploy_chain`` left on ``chain`` (a node that keeps its state), checked.

    Each contract must sit at its deterministic address with the runtime code that this version's
    build, given the same constructor arguments, produces (``chain.create_code`` runs the init code as a
    call); ``ContractsMismatch`` says which one is missing or different.
    """
    deployer = devnet_address("deployer")
    sent = int(chain.get_nonce(deployer))
    addresses = {kind: create_address(deployer, nonce) for kind, nonce in DEPLOY_NONCES.items()}
    token, staking, registry = addresses["NectarToken"], addresses["ArbiterStaking"], addresses["BountyRegistry"]
    rate = config.home_nct_eth_rate if home else config.side_nct_eth_rate
    args: dict[str, tuple[Any, ...]] = {
        "NectarToken": (),
        "ArbiterStaking": _staking_args(config, token),
        "BountyRegistry": _registry_args(config, token, staking),
        "ERC20Relay": (token, rate, devnet_address("relay-fees"), [verifier or devnet_address("relay")]),
    }
    for kind, address in addresses.items():
        code = bytes(chain.get_code(address))
        if not code:
            raise ContractsMismatch(
                f"the devnet's deployer {deployer} has sent {sent} transactions on chain {chain.chain_id}, "
                f"but there is no {kind} at {address}: the contracts are missing (an unfinished deployment?)",
                chain.chain_id,
            )
        if code != bytes(chain.create_code(encode_deploy(kind, args[kind]), sender=deployer)):
            raise ContractsMismatch(
                f"the {kind} at {address} on chain {chain.chain_id} differs from this version's contracts "
                "(another polyswarm-kit version, or other --reveal-window/--vote-window/--minimum-stake)",
                chain.chain_id,
            )
    windows = (
        int(contract_call(chain, registry, "BountyRegistry", "assertionRevealWindow")),
        int(contract_call(chain, registry, "BountyRegistry", "arbiterVoteWindow")),
    )
    wanted = (config.assertion_reveal_window, config.arbiter_vote_window)
    if windows != wanted:
        raise ContractsMismatch(
            f"the BountyRegistry at {registry} on chain {chain.chain_id} has reveal and vote windows of "
            f"{windows[0]} and {windows[1]} blocks, not the {wanted[0]} and {wanted[1]} asked for "
            "(--reveal-window/--vote-window)",
            chain.chain_id,
        )
    return ChainContracts(
        nectar_token=token, bounty_registry=registry, erc20_relay=addresses["ERC20Relay"], arbiter_staking=staking
    )


def deploy_or_attach(chain: Any, config: CommunityConfig, *, home: bool, verifier: str = "") -> ChainContracts:
    """``deploy_chain`` on a node the deployer never used, else ``attach_chain`` to what it deployed there."""
    if int(chain.get_nonce(devnet_address("deployer"))) == 0:
        return deploy_chain(chain, config, home=home, verifier=verifier)
    return attach_chain(chain, config, home=home, verifier=verifier)


def relay_key(shared_home: str | None = None) -> bytes:
    """The relay verifier's key: ``devnet_key("relay")``, or one of its own for a community on a shared homechain."""
    return devnet_key(f"relay {shared_home}" if shared_home else "relay")


def relay_address(shared_home: str | None = None) -> str:
    return str(Account.from_key(relay_key(shared_home)).address)


def deploy_or_attach_home_relay(chain: Any, config: CommunityConfig, token: str, name: str) -> str:
    """The ERC20Relay of community ``name`` on a homechain node that several devnets share.

    It is created (nonce 0) by a deployer of its own, ``devnet_key("deployer " + name)``, on the shared
    ``token``, with the verifier ``relay_key(name)``; the devnet's deployer moves ``home_relay_liquidity``
    to its address first (so a deployment cut short is redone whole). A relay already there is checked as
    ``attach_chain`` checks the others (``ContractsMismatch``).
    """
    deployer_key = devnet_key(f"deployer {name}")
    deployer = str(Account.from_key(deployer_key).address)
    address = create_address(deployer, 0)
    args = (token, config.home_nct_eth_rate, devnet_address("relay-fees"), [relay_address(name)])
    if int(chain.get_nonce(deployer)) == 0:
        chain.fund(deployer, config.operator_eth)
        chain.fund(relay_address(name), config.operator_eth)
        if config.home_relay_liquidity:
            contract_transact(
                chain, devnet_key("deployer"), token, "NectarToken", "transfer", address, config.home_relay_liquidity
            )
        return _deploy(chain, deployer_key, "ERC20Relay", *args)
    code = bytes(chain.get_code(address))
    if not code:
        raise ContractsMismatch(
            f"the deployer {deployer} of community {name!r} has sent transactions on chain {chain.chain_id}, but "
            f"there is no ERC20Relay at {address}: it is missing (an unfinished deployment?)",
            chain.chain_id,
        )
    if code != bytes(chain.create_code(encode_deploy("ERC20Relay", args), sender=deployer)):
        raise ContractsMismatch(
            f"the ERC20Relay of community {name!r} at {address} on chain {chain.chain_id} differs from this "
            "version's contracts (another polyswarm-kit version?)",
            chain.chain_id,
        )
    return address


def deploy_community(
    home: ChainLike, side: ChainLike, config: CommunityConfig | None = None, *, shared_home: str | None = None
) -> Community:
    """Deploy all four contracts on both chains from ``devnet_key("deployer")``.

    * the relay verifier is ``devnet_key("relay")`` (funded with ETH on both chains);
    * relay fees go to ``devnet_key("relay-fees")``;
    * side: the whole NCT supply is minted to the side relay (it pays out deposits);
    * home: the supply is minted to the deployer (who funds users), and
      ``home_relay_liquidity`` of it is moved to the home relay (it pays out withdrawals).

    With ``shared_home`` (a community name), the homechain node is shared with other devnets, as
    communities share the real homechain: the home NectarToken, ArbiterStaking and BountyRegistry are the
    ones the devnet's deployer left there (or deploys), and the community gets an ERC20Relay of its own
    (``deploy_or_attach_home_relay``) with a verifier of its own (``relay_key(shared_home)``) on both chains.
    """
    cfg = config or CommunityConfig()
    verifier = relay_address(shared_home)
    home_contracts = _deploy_on(home, cfg, home=True)
    if shared_home:
        relay = deploy_or_attach_home_relay(home, cfg, home_contracts.nectar_token, shared_home)
        home_contracts = replace(home_contracts, erc20_relay=to_checksum_address(relay))
    side_contracts = _deploy_on(side, cfg, home=False, verifier=verifier)
    return Community(
        home=home_contracts,
        side=side_contracts,
        relay_verifier=verifier,
        deployer=devnet_address("deployer"),
        fee_wallet=devnet_address("relay-fees"),
    )


def _deploy_on(chain: ChainLike, config: CommunityConfig, *, home: bool, verifier: str = "") -> ChainContracts:
    # An external node may keep an earlier run's deployment (it has create_code); the embedded chain never does.
    if hasattr(chain, "create_code"):
        return deploy_or_attach(chain, config, home=home, verifier=verifier)
    return deploy_chain(chain, config, home=home, verifier=verifier)


def fund_account(
    home: ChainLike,
    side: ChainLike,
    community: Community,
    address: str,
    *,
    eth: int,
    nct_home: int,
    nct_side: int,
) -> None:
    """Give ``address`` ETH on both chains, homechain NCT from the deployer's balance and
    sidechain NCT minted by the token owner (the deployer)."""
    key = devnet_key("deployer")
    if eth:
        home.fund(address, eth)
        side.fund(address, eth)
    if nct_home:
        token = community.home.nectar_token
        contract_transact(home, key, token, "NectarToken", "transfer", address, nct_home)
    if nct_side:
        contract_transact(side, key, community.side.nectar_token, "NectarToken", "mint", address, nct_side)


def register_arbiter(chain: ChainLike, contracts: ChainContracts, address: str, block_number: int) -> None:
    """Make ``address`` an arbiter of that chain's BountyRegistry (an arbiter manager's call, the
    deployer's); ``block_number`` is the block the decision was taken at, as ``AddedArbiter`` reports it."""
    registry = contracts.bounty_registry
    if contract_call(chain, registry, "BountyRegistry", "isArbiter", address):
        return  # an earlier run on this node registered it
    contract_transact(chain, devnet_key("deployer"), registry, "BountyRegistry", "addArbiter", address, block_number)
