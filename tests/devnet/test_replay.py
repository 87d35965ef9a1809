"""The embedded chain is a real chain: every block it mined re-imports into a fresh py-evm chain.

``EmbeddedChain`` mines with less of py-evm's repeated work (it validates a block once, does not read it
back after persisting it, and does not check a signature a second time once the sender was recovered);
these tests replay what it mined through py-evm's ``import_block``, which executes every transaction again
and checks every signature, the state root, the transaction and receipt roots, the bloom and the gas, and
compare what the replay computed with what the devnet answers.
"""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.vm.forks.cancun import CancunState
from eth_account import Account
from eth_keys.constants import SECPK1_N
from eth_utils import keccak

from polyswarmclient.devnet.deploy import NCT, deploy_community, fund_account
from polyswarmclient.devnet.evm import ChainError, EmbeddedChain
from polyswarmclient.eth import abi

KEYS = [keccak(f"replay sender {i}".encode()) for i in range(3)]
SENDERS = [Account.from_key(k).address for k in KEYS]


def _signed(key: bytes, chain_id: int, nonce: int, to: str, data: bytes = b"", **extra: Any) -> bytes:
    tx = {"to": to, "data": data, "value": 0, "gas": 300_000, "gasPrice": 0, "nonce": nonce, "chainId": chain_id}
    tx.update(extra)
    if "maxFeePerGas" in tx:  # a typed (EIP-1559) transaction
        del tx["gasPrice"]
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def _replay(chain: EmbeddedChain) -> Any:
    """A fresh py-evm chain of the same kind, from the same genesis, with every block imported (validated).

    Its VM reads storage with py-evm's own state classes, not through the devnet's ``StorageSlots``."""
    (number, vm_class), *_ = type(chain._chain).vm_configuration
    plain = type("PlainVM", (vm_class,), {"_state_class": CancunState})
    fresh = (
        type(chain._chain)
        .configure(vm_configuration=((number, plain),))
        .from_genesis(AtomicDB(MemoryDB()), *chain._genesis)
    )
    assert plain.get_state_class().account_db_class is AccountDB
    for number in range(1, chain.block_number() + 1):
        fresh.import_block(chain._chain.get_canonical_block_by_number(number))
    return fresh


@pytest.fixture(scope="module")
def mined() -> tuple[EmbeddedChain, list[bytes]]:
    """Contracts deployed, accounts funded, then batches of token transfers, a reverted call, a typed
    transaction and empty blocks; returns the side chain and the hashes of the batched transactions."""
    home, side = EmbeddedChain(1337), EmbeddedChain(1338)
    community = deploy_community(home, side)
    for address in SENDERS:
        fund_account(home, side, community, address, eth=NCT, nct_home=0, nct_side=1000 * NCT)
    token, registry = community.side.nectar_token, community.side.bounty_registry
    nonces = {key: side.get_nonce(Account.from_key(key).address) for key in KEYS}
    hashes: list[bytes] = []

    def batch(items: list[tuple[bytes, str, bytes, dict[str, Any]]]) -> None:
        raws = []
        for key, to, data, extra in items:
            raws.append(_signed(key, side.chain_id, nonces[key], to, data, **extra))
            nonces[key] += 1
        results, receipts = side.submit_batch(raws, [side.decode_transaction(raw) for raw in raws])
        assert all(isinstance(r, bytes) for r in results) and len(receipts) == len(raws)
        hashes.extend(r for r in results if isinstance(r, bytes))

    for round_ in range(3):
        batch(
            [
                (key, token, abi.TRANSFER.encode(SENDERS[(i + 1) % 3], NCT + round_), {})
                for i, key in enumerate(KEYS)
                for _ in range(4)
            ]
        )
        side.mine_block()
    typed = {"type": 2, "maxFeePerGas": 0, "maxPriorityFeePerGas": 0}
    batch(
        [
            (KEYS[0], token, abi.APPROVE.encode(registry, 5 * NCT), {}),
            (KEYS[1], token, abi.TRANSFER.encode(SENDERS[2], 10**40), {}),  # more than it has: reverts
            (KEYS[2], token, abi.TRANSFER.encode(SENDERS[0], 7), typed),
        ]
    )
    return side, hashes


def test_every_mined_block_reimports_into_a_fresh_chain_with_the_same_roots(mined) -> None:
    chain, _hashes = mined
    fresh = _replay(chain)
    for number in range(chain.block_number() + 1):
        ours = chain._chain.get_canonical_block_header_by_number(number)
        theirs = fresh.get_canonical_block_header_by_number(number)
        assert theirs == ours  # state, transaction and receipt roots, bloom, gas used, hash
    assert fresh.get_canonical_head().hash == chain.block_hash(chain.block_number())


def test_receipts_and_logs_are_what_the_replay_computes(mined) -> None:
    chain, hashes = mined
    fresh = _replay(chain)
    checked = 0
    for tx_hash in hashes:
        ours = chain.get_receipt(tx_hash)
        assert ours is not None
        block = fresh.get_canonical_block_by_number(ours.block_number)
        index = [bytes(tx.hash) for tx in block.transactions].index(tx_hash)
        theirs = fresh.chaindb.get_receipt_by_index(ours.block_number, index, block.receipt_builder)
        previous = (
            0
            if index == 0
            else fresh.chaindb.get_receipt_by_index(ours.block_number, index - 1, block.receipt_builder).gas_used
        )
        assert ours.block_hash == bytes(block.hash)
        assert bytes(theirs.state_root) == (b"\x01" if ours.status else b"")  # the status, since Byzantium
        assert ours.gas_used == theirs.gas_used - previous
        assert [(lg.address.lower(), lg.topics, lg.data) for lg in ours.logs] == [
            ("0x" + bytes(entry.address).hex(), [int(t).to_bytes(32, "big") for t in entry.topics], bytes(entry.data))
            for entry in theirs.logs
        ]
        checked += 1
    statuses = [chain.get_receipt(h).status for h in hashes]
    assert checked == len(hashes) and statuses.count(0) == 1  # the over-large transfer reverted
    assert chain.get_logs(0, chain.block_number())  # the transfers' events are there


def test_a_legacy_transaction_with_a_high_s_signature_is_still_refused() -> None:
    """Mining no longer checks a decoded transaction's signature twice; the lower-half ``s`` rule of
    Homestead, which that check does not carry, still refuses the malleated twin of a valid signature."""
    chain = EmbeddedChain(1338)
    key = KEYS[0]
    chain.fund(SENDERS[0], NCT)
    signed = Account.sign_transaction(
        {"to": SENDERS[1], "value": 1, "gas": 21_000, "gasPrice": 0, "nonce": 0, "chainId": 1338}, key
    )
    tx = chain.decode_transaction(bytes(signed.raw_transaction))
    # the same signature with s in the upper half (and the parity of v flipped): a valid ECDSA signature
    v = tx.v - 1 if tx.v % 2 == 0 else tx.v + 1
    raw_twin = rlp.encode(tx.copy(s=SECPK1_N - tx.s, v=v))
    decoded_twin = chain.decode_transaction(raw_twin)
    assert decoded_twin.sender == tx.sender  # it recovers to the same sender...
    results, receipts = chain.submit_batch([raw_twin], [decoded_twin])
    # ...and is refused
    assert isinstance(results[0], ChainError) and "Transaction.s" in results[0].message and receipts == []
    assert chain.get_nonce(SENDERS[0]) == 0
    results, receipts = chain.submit_batch([bytes(signed.raw_transaction)])
    assert isinstance(results[0], bytes) and receipts[0].status == 1


def test_a_transaction_signature_is_recovered_once(monkeypatch) -> None:
    """Decoding recovers the sender; mining the block does not recover it (or verify it) again."""
    from eth_keys.backends.coincurve import CoinCurveECCBackend

    chain = EmbeddedChain(1338)
    chain.fund(SENDERS[0], NCT)
    raws = [_signed(KEYS[0], 1338, nonce, SENDERS[1], gas=21_000) for nonce in range(3)]
    calls = {"recover": 0, "verify": 0}
    recover, verify = CoinCurveECCBackend.ecdsa_recover, CoinCurveECCBackend.ecdsa_verify

    def counting_recover(self: Any, *args: Any) -> Any:
        calls["recover"] += 1
        return recover(self, *args)

    def counting_verify(self: Any, *args: Any) -> Any:
        calls["verify"] += 1
        return verify(self, *args)

    monkeypatch.setattr(CoinCurveECCBackend, "ecdsa_recover", counting_recover)
    monkeypatch.setattr(CoinCurveECCBackend, "ecdsa_verify", counting_verify)
    results, receipts = chain.submit_batch(raws, [chain.decode_transaction(raw) for raw in raws])
    assert [r.status for r in receipts] == [1, 1, 1]
    assert calls == {"recover": 3, "verify": 0}
