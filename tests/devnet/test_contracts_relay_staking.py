"""ERC20Relay approvals and fees, ArbiterStaking deposit/withdraw rules, NectarToken, deploy_community."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_abi import decode

from polyswarmclient.devnet.contracts.compile import load_artifact
from polyswarmclient.devnet.deploy import (
    NCT,
    CommunityConfig,
    contract_call,
    contract_transact,
    deploy_chain,
    deploy_community,
    devnet_address,
    devnet_key,
    encode_deploy,
    event_topic,
    fund_account,
    register_arbiter,
)
from polyswarmclient.devnet.evm import EmbeddedChain

TX_HASH = b"\x11" * 32
BLOCK_HASH = b"\x22" * 32


def _setup_relay(env, rate: int):
    """Set the relay's exchange rate, give it 1000 NCT and return the verifier as a test user."""
    env.ok(env.deployer, "ERC20Relay", "setNctEthExchangeRate", rate)
    env.ok(env.deployer, "NectarToken", "mint", env.addr("ERC20Relay"), 1_000 * NCT)
    verifier = env.user("unused")
    verifier.key, verifier.address = devnet_key("relay"), devnet_address("relay")
    return verifier


def test_relay_fee_formula(env) -> None:
    """fees() = (54301 * verifiers + 73458) * 20 gwei * nctEthExchangeRate."""
    assert env.call("ERC20Relay", "fees") == 0  # sidechain rate 0
    env.ok(env.deployer, "ERC20Relay", "setNctEthExchangeRate", 98)
    assert env.call("ERC20Relay", "fees") == (54301 * 1 + 73458) * 20 * 10**9 * 98
    assert env.call("ERC20Relay", "requiredVerifiers") == 1


def test_approve_withdrawal_pays_amount_minus_fees(env) -> None:
    """One verifier approval pays amount - fees to the destination and fees to the fee wallet, once."""
    verifier = _setup_relay(env, 98)
    fee = env.call("ERC20Relay", "fees")
    dest = env.user("dest")
    args = (dest.address, 10 * NCT, TX_HASH, BLOCK_HASH, 7)
    receipt = env.ok(verifier, "ERC20Relay", "approveWithdrawal", *args)
    assert env.balance(dest) == 10 * NCT - fee
    assert env.balance(devnet_address("relay-fees")) == fee
    abi = load_artifact("ERC20Relay")["abi"]
    [log] = [log for log in receipt.logs if log.topics[0] == event_topic(abi, "WithdrawalProcessed")]
    assert log.topics[1][-20:].hex() == dest.address[2:].lower()
    assert decode(["uint256", "bytes32", "bytes32", "uint256"], log.data) == (10 * NCT - fee, *args[2:])
    assert env.fails(verifier, "ERC20Relay", "approveWithdrawal", *args) == "Withdrawal already processed"


def test_approve_withdrawal_reverts(env) -> None:
    """approveWithdrawal requires a verifier and amount > fees."""
    verifier = _setup_relay(env, 98)
    fee = env.call("ERC20Relay", "fees")
    dest, stranger = env.user("dest"), env.user("stranger")
    args = (dest.address, 10 * NCT, TX_HASH, BLOCK_HASH, 7)
    assert env.fails(stranger, "ERC20Relay", "approveWithdrawal", *args) == "Not a verifier"
    small = (dest.address, fee, TX_HASH, BLOCK_HASH, 7)
    assert env.fails(verifier, "ERC20Relay", "approveWithdrawal", *small) == "Withdrawal amount below fees"
    assert env.balance(dest) == 0


def test_multiple_verifiers_need_two_thirds(env) -> None:
    """With three verifiers two matching approvals are needed; mismatched details are refused."""
    chain = env.chain
    keys = [devnet_key(f"v{i}") for i in range(3)]
    addrs = [devnet_address(f"v{i}") for i in range(3)]
    init = encode_deploy("ERC20Relay", (env.addr("NectarToken"), 0, devnet_address("relay-fees"), addrs))
    relay = chain.transact(env.deployer.key, None, init).contract_address
    env.ok(env.deployer, "NectarToken", "mint", relay, 100 * NCT)
    assert contract_call(chain, relay, "ERC20Relay", "requiredVerifiers") == 2
    dest = env.user("dest")

    def approve(key, amount, check=True):
        args = (dest.address, amount, TX_HASH, BLOCK_HASH, 1)
        return contract_transact(chain, key, relay, "ERC20Relay", "approveWithdrawal", *args, check=check)

    approve(keys[0], NCT)
    assert env.balance(dest) == 0
    bad = approve(keys[1], 2 * NCT, check=False)
    assert bad.status == 0 and chain.revert_reason(bad.tx_hash) == "Withdrawal mismatch"
    approve(keys[1], NCT)
    assert env.balance(dest) == NCT


@pytest.mark.parametrize("config", [replace(CommunityConfig(), minimum_stake=1_000 * NCT)])
def test_staking_deposit_and_withdraw_rules(env) -> None:
    """Only arbiters deposit; deposits unlock after stakeDuration blocks and are withdrawn oldest first."""
    cfg = env.config
    arb, outsider = env.user("arb", 5_000 * NCT), env.user("outsider", 5_000 * NCT)
    staking = env.addr("ArbiterStaking")
    env.ok(outsider, "NectarToken", "approve", staking, 5_000 * NCT)
    assert env.fails(outsider, "ArbiterStaking", "deposit", 1_000 * NCT) == "Not an arbiter"
    env.ok(env.deployer, "BountyRegistry", "addArbiter", arb.address, 1)
    assert env.fails(arb, "ArbiterStaking", "deposit", 1_000 * NCT) == "Insufficient allowance"
    env.ok(arb, "NectarToken", "approve", staking, 5_000 * NCT)
    r1 = env.ok(arb, "ArbiterStaking", "deposit", 600 * NCT)
    abi = load_artifact("ArbiterStaking")["abi"]
    assert r1.logs[-1].topics[0] == event_topic(abi, "NewDeposit")
    assert env.call("ArbiterStaking", "isEligible", arb.address) is False
    env.ok(arb, "ArbiterStaking", "deposit", 400 * NCT)
    assert env.call("ArbiterStaking", "balanceOf", arb.address) == 1_000 * NCT
    assert env.call("ArbiterStaking", "isEligible", arb.address) is True
    assert env.call("ArbiterStaking", "withdrawableBalanceOf", arb.address) == 0
    assert env.fails(arb, "ArbiterStaking", "withdraw", 1) == "Exceeds withdrawable balance"

    env.next_tx_block(r1.block_number + cfg.stake_duration)
    # views run at the head block; the next tx is one block later and sees the first deposit unlocked
    assert env.call("ArbiterStaking", "withdrawableBalanceOf", arb.address) == 0
    r = env.ok(arb, "ArbiterStaking", "withdraw", 100 * NCT)
    assert r.logs[-1].topics[0] == event_topic(abi, "NewWithdrawal")
    assert env.call("ArbiterStaking", "withdrawableBalanceOf", arb.address) == 500 * NCT
    env.chain.mine_block()
    assert env.call("ArbiterStaking", "withdrawableBalanceOf", arb.address) == 900 * NCT
    env.ok(arb, "ArbiterStaking", "withdraw", 900 * NCT)
    assert env.call("ArbiterStaking", "balanceOf", arb.address) == 0
    assert env.balance(arb) == 5_000 * NCT
    assert env.call("ArbiterStaking", "VOTE_RATIO_NUMERATOR") == 9
    assert env.call("ArbiterStaking", "VOTE_RATIO_DENOMINATOR") == 10


def test_staking_maximum(config) -> None:
    """A deposit taking the stake above MAXIMUM_STAKE reverts; reaching exactly the maximum is fine."""
    chain = EmbeddedChain(1338)
    contracts = deploy_chain(chain, replace(config, minimum_stake=NCT, maximum_stake=2_000 * NCT), home=False)
    key, arb = devnet_key("test arb"), devnet_address("test arb")
    register_arbiter(chain, contracts, arb, chain.block_number())
    staking = contracts.arbiter_staking
    token = contracts.nectar_token
    contract_transact(chain, devnet_key("deployer"), token, "NectarToken", "mint", arb, 5 * 10**21)
    contract_transact(chain, key, token, "NectarToken", "approve", staking, 5 * 10**21)
    contract_transact(chain, key, staking, "ArbiterStaking", "deposit", 1_500 * NCT)
    r = contract_transact(chain, key, staking, "ArbiterStaking", "deposit", 501 * NCT, check=False)
    assert r.status == 0 and chain.revert_reason(r.tx_hash) == "Exceeds maximum stake"
    contract_transact(chain, key, staking, "ArbiterStaking", "deposit", 500 * NCT)
    assert contract_call(chain, staking, "ArbiterStaking", "balanceOf", arb) == 2_000 * NCT


def test_token_basics(env) -> None:
    """NectarToken is Nectar/NCT with 18 decimals; transfer checks balance; only the owner mints."""
    a, b = env.user("a", 5 * NCT), env.user("b")
    assert env.call("NectarToken", "name") == "Nectar"
    assert env.call("NectarToken", "symbol") == "NCT"
    assert env.call("NectarToken", "decimals") == 18
    assert env.fails(a, "NectarToken", "transfer", b.address, 6 * NCT) == "Insufficient balance"
    assert env.fails(a, "NectarToken", "mint", a.address, 1) == "Only minter"
    r = env.ok(a, "NectarToken", "transfer", b.address, 2 * NCT)
    assert r.logs[0].topics[0].hex() == "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    assert env.balance(b) == 2 * NCT


def test_deploy_community_wires_both_chains() -> None:
    """deploy_community funds both relays and the verifier; fund_account and register_arbiter work."""
    home, side = EmbeddedChain(1337), EmbeddedChain(1338)
    cfg = CommunityConfig()
    community = deploy_community(home, side, cfg)
    h, s = community.home, community.side
    assert community.relay_verifier == devnet_address("relay")
    assert home.eth_balance(community.relay_verifier) > 0 and side.eth_balance(community.relay_verifier) > 0
    assert contract_call(side, s.nectar_token, "NectarToken", "balanceOf", s.erc20_relay) == cfg.nct_supply
    home_relay = contract_call(home, h.nectar_token, "NectarToken", "balanceOf", h.erc20_relay)
    assert home_relay == cfg.home_relay_liquidity
    assert 0 < contract_call(home, h.erc20_relay, "ERC20Relay", "fees") < NCT
    assert contract_call(side, s.erc20_relay, "ERC20Relay", "fees") == 0
    user = devnet_address("test user")
    fund_account(home, side, community, user, eth=10**18, nct_home=3 * NCT, nct_side=4 * NCT)
    assert home.eth_balance(user) == side.eth_balance(user) == 10**18
    assert contract_call(home, h.nectar_token, "NectarToken", "balanceOf", user) == 3 * NCT
    assert contract_call(side, s.nectar_token, "NectarToken", "balanceOf", user) == 4 * NCT
    register_arbiter(side, s, user, side.block_number())
    assert contract_call(side, s.bounty_registry, "BountyRegistry", "isArbiter", user) is True
    # the staking contract asks this registry who is an arbiter: the new arbiter may deposit there
    user_key = devnet_key("test user")
    contract_transact(side, user_key, s.nectar_token, "NectarToken", "approve", s.arbiter_staking, NCT)
    contract_transact(side, user_key, s.arbiter_staking, "ArbiterStaking", "deposit", NCT)
    assert contract_call(side, s.arbiter_staking, "ArbiterStaking", "balanceOf", user) == NCT
