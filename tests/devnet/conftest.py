"""Fixtures for the devnet contract and chain tests: one freshly deployed sidechain per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from eth_account import Account
from eth_utils import keccak

from polyswarmclient.devnet.contracts.compile import load_artifact
from polyswarmclient.devnet.deploy import (
    ChainContracts,
    CommunityConfig,
    contract_call,
    deploy_chain,
    devnet_key,
    encode_call,
)
from polyswarmclient.devnet.evm import EmbeddedChain, Receipt

SIDE_CHAIN_ID = 1338

_CONTRACT_ATTR = {
    "NectarToken": "nectar_token",
    "BountyRegistry": "bounty_registry",
    "ERC20Relay": "erc20_relay",
    "ArbiterStaking": "arbiter_staking",
}


def commitment(nonce: int, verdicts: int, sender: str) -> int:
    """Spec §5.5: keccak256(be32(verdicts ^ keccak256(be32(nonce)) ^ uint160(sender)))."""
    h = int.from_bytes(keccak(nonce.to_bytes(32, "big")), "big")
    x = verdicts ^ h ^ int(sender, 16)
    return int.from_bytes(keccak(x.to_bytes(32, "big")), "big")


@dataclass
class User:
    key: bytes
    address: str


@dataclass
class Env:
    chain: EmbeddedChain
    contracts: ChainContracts
    config: CommunityConfig
    deployer: User
    current_guid: int = 0

    commitment = staticmethod(commitment)

    def addr(self, contract: str) -> str:
        return str(getattr(self.contracts, _CONTRACT_ATTR[contract]))

    def user(self, label: str, nct: int = 0) -> User:
        key = devnet_key("test " + label)
        user = User(key, Account.from_key(key).address)
        if nct:
            self.ok(self.deployer, "NectarToken", "mint", user.address, nct)
        return user

    def arbiter(self, label: str = "arbiter", stake: int | None = None) -> User:
        """A registered arbiter with ``stake`` NCT-wei staked (default: the minimum stake), so it may vote."""
        user = self.user(label)
        self.ok(self.deployer, "BountyRegistry", "addArbiter", user.address, self.chain.block_number())
        amount = self.config.minimum_stake if stake is None else stake
        if amount:
            self.ok(self.deployer, "NectarToken", "mint", user.address, amount)
            self.ok(user, "NectarToken", "approve", self.addr("ArbiterStaking"), amount)
            self.ok(user, "ArbiterStaking", "deposit", amount)
        return user

    def call(self, contract: str, fn: str, *args: Any, sender: str | None = None) -> Any:
        return contract_call(self.chain, self.addr(contract), contract, fn, *args, sender=sender)

    def tx(self, who: User, contract: str, fn: str, *args: Any) -> Receipt:
        data = encode_call(load_artifact(contract)["abi"], fn, args)
        return self.chain.transact(who.key, self.addr(contract), data)

    def ok(self, who: User, contract: str, fn: str, *args: Any) -> Receipt:
        receipt = self.tx(who, contract, fn, *args)
        assert receipt.status == 1, self.chain.revert_reason(receipt.tx_hash)
        return receipt

    def fails(self, who: User, contract: str, fn: str, *args: Any) -> str | None:
        """Mine the tx, expect status 0 and return its revert reason."""
        receipt = self.tx(who, contract, fn, *args)
        assert receipt.status == 0, f"{fn} unexpectedly succeeded"
        return self.chain.revert_reason(receipt.tx_hash)

    def balance(self, who: User | str) -> int:
        address = who.address if isinstance(who, User) else who
        return int(self.call("NectarToken", "balanceOf", address))

    def next_tx_block(self, number: int) -> None:
        """Mine empty blocks so that the next transaction lands in block ``number``."""
        assert self.chain.block_number() < number, "already past that block"
        while self.chain.block_number() < number - 1:
            self.chain.mine_block()

    # -- bounty helpers -------------------------------------------------------------

    def post_bounty(
        self,
        who: User,
        *,
        amount: int | None = None,
        num_artifacts: int = 1,
        duration: int = 5,
        guid: int | None = None,
        bloom: list[int] | None = None,
        artifact_type: int = 0,
        uri: str = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
        metadata: str = "",
    ) -> tuple[int, int]:
        """Approve + postBounty; returns (guid, expirationBlock)."""
        guid = guid if guid is not None else uuid.uuid4().int
        amount = amount if amount is not None else self.config.bounty_amount_minimum * num_artifacts
        self.ok(who, "NectarToken", "approve", self.addr("BountyRegistry"), amount + self.config.bounty_fee)
        receipt = self.ok(
            who,
            "BountyRegistry",
            "postBounty",
            guid,
            artifact_type,
            amount,
            uri,
            num_artifacts,
            duration,
            bloom or [0] * 8,
            metadata,
        )
        return guid, receipt.block_number + duration

    def approve_assertion(self, who: User, bids: list[int]) -> None:
        total = sum(bids) + self.config.assertion_fee
        self.ok(who, "NectarToken", "approve", self.addr("BountyRegistry"), total)

    def assert_on(self, who: User, guid: int, bids: list[int], mask: int, verdicts: int, nonce: int = 7) -> int:
        """Approve + postAssertion with a real commitment; returns the assertion index."""
        self.approve_assertion(who, bids)
        self.ok(who, "BountyRegistry", "postAssertion", guid, bids, mask, commitment(nonce, verdicts, who.address))
        return int(self.call("BountyRegistry", "getNumberOfAssertions", guid)) - 1

    def reveal(self, who: User, guid: int, index: int, verdicts: int, nonce: int = 7) -> Receipt:
        return self.ok(who, "BountyRegistry", "revealAssertion", guid, index, nonce, verdicts, "")


@pytest.fixture
def config() -> CommunityConfig:
    return CommunityConfig()


@pytest.fixture
def env(config: CommunityConfig) -> Env:
    chain = EmbeddedChain(SIDE_CHAIN_ID)
    contracts = deploy_chain(chain, config, home=False)
    deployer_key = devnet_key("deployer")
    return Env(chain, contracts, config, User(deployer_key, Account.from_key(deployer_key).address))


# --- a running devnet server (HTTP + WS on an ephemeral port); see tests/fixtures_devnet.py ----------


@pytest.fixture
async def running_devnet_server() -> Any:
    """A fresh in-process devnet (0.2 s blocks) for one test: yields ``RunningDevnet(url, devnet)``.

    Test modules that need several tests against one devnet use ``tests.fixtures_devnet.running_devnet``
    in a module-scoped fixture instead (see ``test_server_api.py``).
    """
    from tests.fixtures_devnet import running_devnet

    async with running_devnet(block_time=0.2) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def api(net: Any) -> AsyncIterator[Any]:
    """A hand-signing ``DevnetApi`` on the module's devnet: modules that use it define a ``net`` fixture."""
    import aiohttp

    from tests.fixtures_devnet import DevnetApi

    async with aiohttp.ClientSession() as session:
        yield DevnetApi(session, net.url)
