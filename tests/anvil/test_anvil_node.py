"""``AnvilNode``: the devnet's anvil keeps a bounded history and mines only when the devnet says so."""

from __future__ import annotations

from pathlib import Path

from polyswarmclient.devnet.anvil import TX_GAS, AnvilNode
from polyswarmclient.devnet.deploy import devnet_key
from polyswarmclient.devnet.web3chain import MinedWeb3Chain
from polyswarmclient.eth.rawtx import sign_transaction

DEAD = "0x000000000000000000000000000000000000dEaD"


def test_a_node_forgets_what_is_older_than_its_retention(anvil_binary: Path) -> None:
    """With ``retain_blocks=10``, a transaction's receipt is gone from the node 30 blocks later."""
    node = AnvilNode(anvil_binary, 1337, retain_blocks=10)
    node.start()
    chain = MinedWeb3Chain(node.url, tx_gas=TX_GAS, receipt_cache=1)
    try:
        key = devnet_key("retention test")
        chain.fund(chain.w3.eth.account.from_key(key).address, 10**18)
        receipt = chain.transact(key, DEAD, b"")
        other = chain.transact(key, DEAD, b"")  # pushes the first out of the devnet's own cache (size 1)
        assert chain.get_receipt(receipt.tx_hash) is not None  # the node still has it
        for _ in range(30):
            chain.mine_block()
        assert chain.get_receipt(receipt.tx_hash) is None
        assert other.block_number == receipt.block_number + 1
    finally:
        chain.close()
        node.stop()


def test_the_devnets_node_mines_only_on_evm_mine(anvil_binary: Path) -> None:
    """Sent transactions wait in the pool until ``submit_batch`` mines them, all into one block."""
    node = AnvilNode(anvil_binary, 1338)
    node.start()
    chain = MinedWeb3Chain(node.url, tx_gas=TX_GAS)
    try:
        head = chain.block_number()
        assert chain.block_number() == head  # nothing happens by itself
        keys = [devnet_key(f"batch test {i}") for i in range(3)]
        for key in keys:
            chain.fund(chain.w3.eth.account.from_key(key).address, 10**18)
        raws = [
            sign_transaction(key, {"nonce": 0, "gasPrice": 0, "gas": 21_000, "to": DEAD, "value": 1, "data": b"",
                                   "chainId": 1338})
            for key in keys
        ]  # fmt: skip
        results, receipts = chain.submit_batch(raws)
        assert all(isinstance(r, bytes) for r in results)
        assert chain.block_number() == head + 1
        assert {r.block_number for r in receipts} == {head + 1} and len(receipts) == 3
        assert all(chain.peek_receipt(h) is not None for h in results if isinstance(h, bytes))
    finally:
        chain.close()
        node.stop()
