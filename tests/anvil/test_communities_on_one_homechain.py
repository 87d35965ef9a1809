"""Two communities whose homechain is one node: two devnets on one anvil homechain, one wallet.

One anvil node is the homechain of both devnets (``--home-rpc URL --shared-home NAME``): they share its
NectarToken and each deploys a relay of its own there; each has its own embedded sidechain (chain ids 2338
and 3338). The wallet's homechain nonces then come from one sequence for two polyswarmds, and its home NCT
is one balance that both communities' refills draw from.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import eth_abi
import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from polyswarmclient.client.nonces import NonceBook
from polyswarmclient.devnet.anvil import AnvilNode
from polyswarmclient.devnet.deploy import create_address, devnet_key
from polyswarmclient.devnet.web3chain import Web3Chain
from tests.anvil.test_cli_on_anvil import _fails
from tests.devnet.test_shared_nonces import DEPOSITS, _client, _deposits
from tests.e2e.harness import (
    ARBITER_READY,
    NCT,
    PASSWORD,
    Cli,
    Devnet,
    DevnetOptions,
    address_of,
    assert_asserted_revealed_settled,
    assert_paid_as_the_only_right_expert,
    command,
    keyfile,
)
from tests.e2e.test_communities_e2e import DURATION, _engine, _one_guid

pytestmark = pytest.mark.anvil

HOME_CHAIN_ID = 1337
SIDE_CHAIN_IDS = {"a": 2338, "b": 3338}
TRANSFER = Web3.keccak(text="transfer(address,uint256)")[:4]


@pytest.fixture(scope="module")
def home_node(anvil_binary: Path) -> Iterator[AnvilNode]:
    """The shared homechain: one anvil node mining a block per transaction, as a user's node does."""
    node = AnvilNode(anvil_binary, HOME_CHAIN_ID, automine=True)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="module")
def communities(home_node: AnvilNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Devnet]]:
    """Devnets ``a`` and ``b`` on the shared homechain, started one after the other (the second attaches to
    the home contracts the first deployed and adds its own relay)."""
    nets: dict[str, Devnet] = {}
    try:
        for name, side_id in SIDE_CHAIN_IDS.items():
            options = DevnetOptions(
                chain_ids=(HOME_CHAIN_ID, side_id), extra=("--home-rpc", home_node.url, "--shared-home", name)
            )
            nets[name] = Devnet.start(tmp_path_factory.mktemp(f"devnet-{name}"), options)
        yield nets
    finally:
        codes = {}
        for name, net in nets.items():
            codes[name] = net.process.stop(timeout=20) if net.process.running else net.process.returncode
            net.process.cleanup()
    assert codes == {name: 0 for name in nets}, f"a devnet did not exit with 0 on SIGTERM: {codes}"


def _home_relay(name: str) -> str:
    return create_address(Account.from_key(devnet_key(f"deployer {name}")).address, 0)


def _sent_since(w3: Web3, sender: str, first_block: int) -> list[Any]:
    """Every transaction ``sender`` got mined on the node from ``first_block`` on, in block order."""
    sent = []
    for number in range(first_block, w3.eth.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        sent += [tx for tx in block["transactions"] if tx["from"] == sender]
    return sent


_HOME_BANNER = re.compile(
    r"homechain +chain id (\d+), .*\n +NectarToken +(0x[0-9a-fA-F]{40})\n.*\n +ERC20Relay +(0x[0-9a-fA-F]{40})"
)


def test_the_two_devnets_share_the_home_token_and_keep_a_relay_each(communities: dict[str, Devnet]) -> None:
    home = {}
    for name, net in communities.items():
        found = _HOME_BANNER.search(net.process.output())
        assert found, net.process.output()
        home[name] = (int(found.group(1)), found.group(2), found.group(3))
    assert home["a"][0] == home["b"][0] == HOME_CHAIN_ID
    assert home["a"][1] == home["b"][1], "the second devnet deployed a home NectarToken of its own"
    assert (home["a"][2], home["b"][2]) == (_home_relay("a"), _home_relay("b"))


def test_one_balancemanager_refills_both_sidechains_from_one_home_balance(
    home_node: AnvilNode, communities: dict[str, Devnet], tmp_path: Path
) -> None:
    """maintain 10005 10 over a and b: one deposit to each community's own relay, home NCT debited by
    exactly the two deposits, the two home transactions mined with consecutive nonces."""
    a, b = communities["a"], communities["b"]
    who = "balancemanager_keyfile"
    sender = Web3.to_checksum_address(address_of(who))
    w3 = Web3(HTTPProvider(home_node.url))
    home_before = a.nct(who, "home")
    assert b.nct(who, "home") == home_before  # one token, one balance
    sides_before = {name: net.nct(who, "side") for name, net in communities.items()}
    nonce_before = w3.eth.get_transaction_count(sender)
    first_block = w3.eth.block_number + 1

    cli = Cli(a, tmp_path)
    try:
        argv = [
            *command("balancemanager"), "maintain", "10005", "10", "--testing", "2",
            "--community", f"a={a.addr}", "--community", f"b={b.addr}",
            "--insecure-transport",
            "--keyfile", str(keyfile(who)),
            "--password", PASSWORD,
            "--state-dir", str(tmp_path / "state"),
            "--log", "info",
        ]  # fmt: skip
        maintain = cli.spawn("maintain-shared-home", argv)
        maintain.expect_exit(0, timeout=120)
    finally:
        cli.cleanup()

    log = maintain.output()
    assert re.search(r"communities [ab], [ab] share homechain 1337: one nonce sequence and one home balance", log), log
    assert not re.search(r"resync|refused|too low", log), log  # no nonce handed out twice, none re-read
    for name, net in communities.items():
        assert len(re.findall(rf"\[{name}\] side balance .* is below MINIMUM .*: depositing 10 NCT", log)) == 1, log
        assert re.search(rf"\[{name}\] deposit of 10 NCT sent at home block \d+ has arrived", log), log
        assert net.nct(who, "side") == sides_before[name] + 10 * NCT - net.relay_fee("side")
    assert a.nct(who, "home") == b.nct(who, "home") == home_before - 20 * NCT, "the home NCT was not debited once each"

    sent = _sent_since(w3, sender, first_block)
    assert [tx["nonce"] for tx in sent] == [nonce_before, nonce_before + 1]
    assert all(w3.eth.get_transaction_receipt(tx["hash"])["status"] == 1 for tx in sent)
    assert w3.eth.get_transaction_count(sender, "pending") == nonce_before + 2
    recipients = {eth_abi.decode(["address", "uint256"], bytes(tx["input"])[4:])[0].lower() for tx in sent}
    assert all(bytes(tx["input"])[:4] == TRANSFER for tx in sent)
    assert recipients == {_home_relay("a").lower(), _home_relay("b").lower()}, "each deposit goes to its own relay"


async def _deposit_through_both(communities: dict[str, Devnet], tmp_path: Path, *, shared: bool) -> list[Any]:
    book = NonceBook() if shared else None
    a = _client(communities["a"].addr, tmp_path / "a", book)
    b = _client(communities["b"].addr, tmp_path / "b", book if shared else None)
    async with a, b:
        runs = await asyncio.gather(_deposits(a, NCT), _deposits(b, 2 * NCT))
    return [error for run in runs for error in run]


async def test_two_communities_on_one_homechain_clash_without_a_shared_nonce_book(
    communities: dict[str, Devnet], tmp_path: Path
) -> None:
    """Clients of a and b for one wallet depositing at once: with one book every home deposit goes through;
    with a book each, they hand out the same homechain nonces and the node refuses some."""
    assert await _deposit_through_both(communities, tmp_path / "shared", shared=True) == [None] * (2 * DEPOSITS)
    refused = [e for e in await _deposit_through_both(communities, tmp_path / "apart", shared=False) if e]
    assert refused, "two nonce books for one account on one chain never clashed"


@pytest.mark.parametrize("left", ["other code", "nothing"])
def test_a_community_relay_missing_or_different_on_the_shared_node_is_one_line(home_node: AnvilNode, left: str) -> None:
    """The community's relay deployer has used the node, but its relay is not there or is other code: exit 2."""
    name = "other" if left == "other code" else "missing"
    chain = Web3Chain(home_node.url)
    try:
        deployer = devnet_key(f"deployer {name}")
        chain.fund(chain.w3.eth.account.from_key(deployer).address, 10**18)
        if left == "other code":
            one_byte_contract = bytes.fromhex("600160005360016000f3")  # its runtime code is 0x01
            assert chain.transact(deployer, None, one_byte_contract).status == 1
        else:
            assert chain.transact(deployer, "0x000000000000000000000000000000000000dEaD", b"").status == 1
    finally:
        chain.close()
    settings = DevnetOptions(chain_ids=(HOME_CHAIN_ID, 4338)).argv()  # the windows the home contracts have
    lines = _fails(*settings, "--home-rpc", home_node.url, "--shared-home", name)
    assert len(lines) == 1 and lines[0].startswith(f"Error: --home-rpc {home_node.url}: "), lines
    expected = "differs from this version's contracts" if left == "other code" else "there is no ERC20Relay at"
    assert f"community '{name}'" in lines[0] and expected in lines[0], lines


def test_shared_home_needs_a_home_node_and_a_plain_name() -> None:
    lines = _fails("--shared-home", "a")
    assert lines == [
        "Error: --shared-home a shares a homechain node with other devnets; give that node with --home-rpc"
    ]
    lines = _fails("--shared-home", "a b", "--home-rpc", "http://127.0.0.1:1")
    assert lines == ["Error: --shared-home 'a b': a name is 1 to 64 letters, digits, '-' and '_'"]


@pytest.fixture(scope="module")
def arbiters(communities: dict[str, Devnet], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each devnet's registered arbiter, voting on its bounties."""
    runners = [Cli(net, tmp_path_factory.mktemp(f"arbiter-{name}")) for name, net in communities.items()]
    try:
        processes = [runner.arbiter(testing=0) for runner in runners]
        for runner, process in zip(runners, processes, strict=True):
            runner.ready(process, ARBITER_READY)
        yield
    finally:
        for runner in runners:
            runner.cleanup()


def test_one_engine_asserts_reveals_and_settles_in_both_communities_on_one_homechain(
    communities: dict[str, Devnet], arbiters: None, tmp_path: Path
) -> None:
    """One bounty in each community, one engine and one wallet: both settled and paid, --testing 2 counts both.
    (The engine works on the sidechains; it reads no homechain unless told to with --chains.)"""
    keystore = "spare1_keyfile"
    before = {name: net.balances(keystore) for name, net in communities.items()}
    state = tmp_path / "state"
    runners = {name: Cli(net, tmp_path / name) for name, net in communities.items()}
    try:
        engine = _engine(
            runners["a"], keystore, state, {name: net.addr for name, net in communities.items()}, testing=2
        )
        posters = {name: runner.ambassador(bounties=1, duration=DURATION) for name, runner in runners.items()}
        engine.expect_exit(0, timeout=120)
        for ambassador in posters.values():
            ambassador.expect_exit(0, timeout=60)
        log = engine.output()
        for name, net in communities.items():
            guid = _one_guid(posters[name])
            assert_asserted_revealed_settled(engine, guid)
            assert f"[{name}] bounty {guid}: settled" in log, f"the settle of {guid} is not logged for {name}"
            assert_paid_as_the_only_right_expert(net, guid, keystore, before[name])
        assert log.count("asserting verdicts=[malicious]") == 2, log
    finally:
        for runner in runners.values():
            runner.cleanup()
