"""EmbeddedChain: automining, nonce queueing, geth-like rejections, revert reasons, calls and logs."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak

from polyswarmclient.devnet.contracts.compile import load_artifact
from polyswarmclient.devnet.deploy import NCT, contract_call, encode_call, encode_deploy
from polyswarmclient.devnet.evm import ChainError, EmbeddedChain

CHAIN_ID = 1338
KEY = keccak(b"test evm sender")
SENDER = Account.from_key(KEY).address
OTHER = Account.from_key(keccak(b"test evm other")).address


def _raw(
    nonce: int,
    *,
    to: str = OTHER,
    value: int = 0,
    gas: int = 21_000,
    gas_price: int = 0,
    chain_id: int = CHAIN_ID,
    data: bytes = b"",
    key: bytes = KEY,
) -> bytes:
    tx = {
        "nonce": nonce,
        "gasPrice": gas_price,
        "gas": gas,
        "to": to,
        "value": value,
        "data": data,
        "chainId": chain_id,
    }
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


@pytest.fixture
def chain() -> EmbeddedChain:
    return EmbeddedChain(CHAIN_ID)


def test_next_nonce_is_mined_immediately_in_its_own_block(chain) -> None:
    """A tx with the next nonce is mined at once, one block per tx, with a successful receipt."""
    start = chain.block_number()
    h = chain.send_raw_transaction(_raw(0))
    receipt = chain.get_receipt(h)
    assert receipt is not None and receipt.status == 1 and receipt.block_number == start + 1
    assert receipt.sender == SENDER and receipt.to == OTHER and receipt.gas_used == 21_000
    assert receipt.block_hash == chain.block_hash(start + 1)
    assert chain.get_nonce(SENDER) == 1


def test_future_nonce_is_queued_and_released_when_the_gap_closes(chain) -> None:
    """Future nonces wait in the queue (pending_nonces) and are mined in order, in the block that closes the gap."""
    h2 = chain.send_raw_transaction(_raw(2))
    h1 = chain.send_raw_transaction(_raw(1))
    assert chain.get_receipt(h1) is None and chain.get_receipt(h2) is None
    assert chain.pending_nonces(SENDER) == [1, 2]
    assert chain.get_nonce(SENDER) == 0 and chain.get_nonce(SENDER, pending=True) == 0
    h0 = chain.send_raw_transaction(_raw(0))
    receipts = [chain.get_receipt(h) for h in (h0, h1, h2)]
    assert {r.block_number for r in receipts} == {chain.block_number()}
    assert [r.gas_used for r in receipts] == [21_000] * 3
    assert chain.pending_nonces(SENDER) == [] and chain.get_nonce(SENDER) == 3


def test_known_transaction_and_nonce_too_low(chain) -> None:
    """Resending a mined or queued tx is 'known transaction: <hash>'; an old nonce is 'nonce too low'."""
    raw = _raw(0)
    h = chain.send_raw_transaction(raw)
    with pytest.raises(ChainError, match=f"known transaction: {h.hex()}"):
        chain.send_raw_transaction(raw)
    queued = _raw(5)
    chain.send_raw_transaction(queued)
    with pytest.raises(ChainError, match="known transaction"):
        chain.send_raw_transaction(queued)
    with pytest.raises(ChainError, match="nonce too low"):
        chain.send_raw_transaction(_raw(0, value=1))


def test_chain_id_is_enforced(chain) -> None:
    """A tx signed for another chain id is refused as 'invalid sender' and not mined."""
    with pytest.raises(ChainError) as info:
        chain.send_raw_transaction(_raw(0, chain_id=1337))
    assert info.value.message == "invalid sender"
    assert chain.get_nonce(SENDER) == 0


def test_geth_like_rejections(chain) -> None:
    """Gas above the block limit, gas below intrinsic, unaffordable gas price and underpriced replacements."""
    with pytest.raises(ChainError, match="exceeds block gas limit"):
        chain.send_raw_transaction(_raw(0, gas=chain.block_gas_limit() + 1))
    with pytest.raises(ChainError, match="intrinsic gas too low"):
        chain.send_raw_transaction(_raw(0, gas=20_000))
    with pytest.raises(ChainError, match=r"insufficient funds for gas \* price \+ value"):
        chain.send_raw_transaction(_raw(0, gas_price=10**9))
    chain.send_raw_transaction(_raw(3))
    with pytest.raises(ChainError, match="replacement transaction underpriced"):
        chain.send_raw_transaction(_raw(3, gas=30_000))
    with pytest.raises(ChainError, match="invalid transaction"):
        chain.send_raw_transaction(b"\x01\x02garbage")


def test_zero_gas_price_full_block_gas_is_accepted(chain) -> None:
    """A legacy tx with gasPrice 0 and gas = block gas limit from an unfunded account is mined."""
    h = chain.send_raw_transaction(_raw(0, gas=chain.block_gas_limit()))
    assert chain.get_receipt(h).status == 1


def test_reverted_tx_is_mined_with_reason_and_call_raises(chain) -> None:
    """A reverting tx is mined with status 0 and its Error(string) reason; call raises ChainError with it."""
    deploy = chain.transact(KEY, None, encode_deploy("NectarToken"))
    token = deploy.contract_address
    assert deploy.status == 1 and token is not None and chain.get_code(token)
    abi = load_artifact("NectarToken")["abi"]
    data = encode_call(abi, "transfer", (OTHER, NCT))
    h = chain.send_raw_transaction(_raw(1, to=token, data=data, gas=200_000))
    receipt = chain.get_receipt(h)
    assert receipt.status == 0 and chain.revert_reason(h) == "Insufficient balance"
    with pytest.raises(ChainError) as info:
        chain.call(token, data, sender=SENDER)
    assert info.value.reason == "Insufficient balance"
    assert info.value.message == "execution reverted: Insufficient balance"
    assert chain.revert_reason(chain.send_raw_transaction(_raw(2))) is None


def test_call_at_past_block_and_logs_filter(chain) -> None:
    """call(block=n) reads historical state; get_logs filters by block range, address and topic0."""
    token = chain.transact(KEY, None, encode_deploy("NectarToken")).contract_address
    abi = load_artifact("NectarToken")["abi"]
    r1 = chain.transact(KEY, token, encode_call(abi, "mint", (OTHER, 5)))
    r2 = chain.transact(KEY, token, encode_call(abi, "approve", (OTHER, 7)))
    assert contract_call(chain, token, abi, "balanceOf", OTHER, block=r1.block_number - 1) == 0
    assert contract_call(chain, token, abi, "balanceOf", OTHER) == 5
    transfer = keccak(text="Transfer(address,address,uint256)")
    logs = chain.get_logs(0, chain.block_number(), address=token, topic0=transfer)
    assert [(log.block_number, log.tx_hash) for log in logs] == [(r1.block_number, r1.tx_hash)]
    assert logs[0].topics[2][-20:] == bytes.fromhex(OTHER[2:]) and logs[0].log_index == 0
    assert len(chain.get_logs(r2.block_number, r2.block_number)) == 1
    assert chain.get_logs(r2.block_number + 1, r2.block_number + 100) == []
    assert chain.get_logs(0, chain.block_number(), address=OTHER) == []


def test_latest_block_calls_answer_the_new_state_after_each_block(chain) -> None:
    """A call repeated at the latest block answers from the block it is asked at: a mint mined in
    between shows, and a call that reverted before succeeds after the state changed."""
    token = chain.transact(KEY, None, encode_deploy("NectarToken")).contract_address
    abi = load_artifact("NectarToken")["abi"]
    assert contract_call(chain, token, abi, "balanceOf", OTHER) == 0
    assert contract_call(chain, token, abi, "balanceOf", OTHER) == 0
    send = encode_call(abi, "transfer", (SENDER, 3))
    with pytest.raises(ChainError, match="Insufficient balance"):
        chain.call(token, send, sender=OTHER)
    chain.transact(KEY, token, encode_call(abi, "mint", (OTHER, 5)))
    assert contract_call(chain, token, abi, "balanceOf", OTHER) == 5
    assert chain.call(token, send, sender=OTHER) == (1).to_bytes(32, "big")  # now OTHER can pay
    with pytest.raises(ChainError, match="Insufficient balance"):
        chain.call(token, send, sender=SENDER)  # the same call from another sender is its own answer


def test_submit_and_scan_hands_over_one_round_of_the_batcher(chain) -> None:
    """submit_and_scan mines a batch into one block and returns each transaction's hash or refusal, the new
    head, and the logs and receipts of every block after ``since`` (a block mined by transact included);
    with no transactions it mines an empty block; call_many answers each call at one block."""
    token = chain.transact(KEY, None, encode_deploy("NectarToken")).contract_address
    abi = load_artifact("NectarToken")["abi"]
    since = chain.block_number()
    minted = chain.transact(KEY, token, encode_call(abi, "mint", (OTHER, 5)))
    raws = [_raw(2, to=token, data=encode_call(abi, "mint", (SENDER, 7)), gas=200_000), _raw(3, chain_id=1337)]
    results, head, logs, receipts = chain.submit_and_scan(raws, None, since)
    assert isinstance(results[0], bytes) and isinstance(results[1], ChainError)
    assert results[1].message == "invalid sender"
    assert head == since + 2 and [r.tx_hash for r in receipts] == [minted.tx_hash, results[0]]
    assert [(log.block_number, log.tx_hash) for log in logs] == [(since + 1, minted.tx_hash), (head, results[0])]
    assert chain.scan(head) == (head, [], [])
    assert chain.submit_and_scan([], None, head) == ([], head + 1, [], [])
    balance = encode_call(abi, "balanceOf", (OTHER,))
    assert chain.call_many(token, [balance, encode_call(abi, "balanceOf", (SENDER,))]) == [
        (5).to_bytes(32, "big"),
        (7).to_bytes(32, "big"),
    ]
    with pytest.raises(ChainError, match="Insufficient balance"):
        chain.call_many(token, [balance, encode_call(abi, "transfer", (SENDER, 3))])


def test_mine_block_fund_and_balances(chain) -> None:
    """mine_block advances one block; fund sends ETH from the faucet."""
    n = chain.block_number()
    assert chain.mine_block() == n + 1 == chain.block_number()
    chain.fund(OTHER, 123)
    assert chain.eth_balance(OTHER) == 123
    assert chain.block_timestamp(chain.block_number()) > chain.block_timestamp(0) - 1


def test_concurrent_senders_are_serialised(chain) -> None:
    """Threads sending and mining at once lose no transactions."""
    keys = [keccak(f"test evm thread {i}".encode()) for i in range(4)]
    errors: list[BaseException] = []

    def send(key: bytes) -> None:
        try:
            for nonce in range(10):
                chain.send_raw_transaction(_raw(nonce, key=key))
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(k,)) for k in keys]
    threads.append(threading.Thread(target=lambda: [chain.mine_block() for _ in range(10)]))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [chain.get_nonce(Account.from_key(k).address) for k in keys] == [10] * 4


def test_typed_eip1559_transaction_is_accepted(chain) -> None:
    """A type-2 transaction with zero fees for this chain id is mined like a legacy one."""
    tx = {
        "type": 2,
        "nonce": 0,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
        "gas": 21_000,
        "to": OTHER,
        "value": 0,
        "data": b"",
        "chainId": CHAIN_ID,
    }
    h = chain.send_raw_transaction(bytes(Account.sign_transaction(tx, KEY).raw_transaction))
    assert chain.get_receipt(h).status == 1
    wrong = dict(tx, nonce=1, chainId=1)
    with pytest.raises(ChainError, match="invalid sender"):
        chain.send_raw_transaction(bytes(Account.sign_transaction(wrong, KEY).raw_transaction))


def _storage_trie_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A counter of reads that walk a contract's storage trie (py-evm's ``StorageLookup`` opening its trie)."""
    from eth.db.storage import StorageLookup

    from polyswarmclient.devnet.evm import _SlotCachingLookup

    reads = [0]
    for cls in (StorageLookup, _SlotCachingLookup):  # py-evm's, and the devnet's on its own trie class
        real = cls.__dict__["_get_read_trie"]

        def counted(self: StorageLookup, real: Any = real) -> object:
            reads[0] += 1
            return real(self)

        monkeypatch.setattr(cls, "_get_read_trie", counted)
    return reads


def test_slots_a_block_wrote_are_read_in_later_blocks_without_walking_the_trie(chain, monkeypatch) -> None:
    """Storage a block wrote (a balance set, a balance emptied) is what the next blocks and calls read, from
    the chain's slot cache rather than the storage trie; a call at an older block still reads that block's
    values, and a call that would write leaves nothing behind."""
    token = chain.transact(KEY, None, encode_deploy("NectarToken")).contract_address
    abi = load_artifact("NectarToken")["abi"]
    other_key = keccak(b"test evm other")
    minted = chain.transact(KEY, token, encode_call(abi, "mint", (SENDER, 5)))
    sent = chain.transact(KEY, token, encode_call(abi, "transfer", (OTHER, 5)))  # SENDER's slot emptied
    reads = _storage_trie_reads(monkeypatch)
    assert contract_call(chain, token, abi, "balanceOf", SENDER) == 0
    assert contract_call(chain, token, abi, "balanceOf", OTHER) == 5
    assert reads[0] == 0
    assert contract_call(chain, token, abi, "balanceOf", SENDER, block=minted.block_number) == 5
    assert contract_call(chain, token, abi, "balanceOf", OTHER, block=minted.block_number) == 0
    assert reads[0] > 0  # an older state reads its own trie
    assert chain.call(token, encode_call(abi, "transfer", (SENDER, 2)), sender=OTHER) == (1).to_bytes(32, "big")
    assert contract_call(chain, token, abi, "balanceOf", OTHER) == 5
    back = chain.transact(other_key, token, encode_call(abi, "transfer", (SENDER, 2)))
    assert back.status == 1 and back.block_number == sent.block_number + 1
    assert contract_call(chain, token, abi, "balanceOf", SENDER) == 2
    assert contract_call(chain, token, abi, "balanceOf", OTHER) == 3
    assert chain.storage_slots is not None and chain.storage_slots.hits > 0


def test_storage_slots_are_kept_per_storage_root_and_bounded() -> None:
    """The slot cache answers a slot only at the storage root it was read or written at, moves a contract's
    slots on with the writes of a commit from that root, forgets a wiped contract, and keeps at most its
    limit."""
    from polyswarmclient.devnet.evm import StorageSlots

    slots = StorageSlots(limit=4)
    a, b = b"a" * 20, b"b" * 20
    r1, r2, r3, r4 = (bytes([n]) * 32 for n in range(1, 5))
    k1, k2, k3 = b"k1", b"k2", b"k3"
    slots.put(a, r1, k1, b"\x05")
    assert slots.get(a, r1, k1) == b"\x05" and slots.get(a, r2, k1) is None and slots.get(b, r1, k1) is None
    slots.put(a, r1, k2, b"\x06")
    slots.advance(a, r1, r2, {k1: b"", k3: b"\x07"})  # k1 emptied, k3 set, k2 unchanged
    assert (slots.get(a, r2, k1), slots.get(a, r2, k2), slots.get(a, r2, k3)) == (b"", b"\x06", b"\x07")
    assert slots.get(a, r1, k2) is None
    slots.advance(a, r3, r4, {k1: b"\x01"})  # from a root it does not hold: only the writes are known
    assert slots.get(a, r4, k1) == b"\x01" and slots.get(a, r4, k2) is None
    slots.advance(a, r4, r1, None)  # wiped
    assert slots.get(a, r1, k1) is None and slots.size == 0
    for n in range(10):
        slots.put(b, r1, bytes([n]), b"\x01")
        assert slots.size <= 4


def _deploy(chain: EmbeddedChain, runtime: bytes) -> str:
    init = bytes([0x60, len(runtime), 0x80, 0x60, 0x0B, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3]) + runtime
    receipt = chain.transact(KEY, None, init)
    assert receipt.status == 1
    return str(receipt.contract_address)


_JUMP = bytes([0x60, 0x00, 0x35, 0x56])  # PUSH1 0 CALLDATALOAD JUMP: to the position the calldata names
_RETURN_ONE = bytes([0x5B, 0x60, 0x01, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xF3])  # JUMPDEST, RETURN 1


def _push32_hiding_a_jumpdest() -> bytes:
    data = bytearray(32)
    data[10] = 0x5B  # looks like a JUMPDEST, but is PUSH32 data
    return bytes([0x7F]) + bytes(data)


def _jump_contracts(chain: EmbeddedChain) -> tuple[str, str]:
    """Two contracts of the same length that jump where their calldata says: in the first the JUMPDEST is
    at 37 and a 0x5b inside PUSH32 data at 15; in the second the other way round."""
    first = _JUMP + _push32_hiding_a_jumpdest() + _RETURN_ONE + bytes(20)  # PUSH32 at 4: 0x5b at 15, JUMPDEST 37
    second = _JUMP + bytes(11) + _RETURN_ONE + _push32_hiding_a_jumpdest()  # JUMPDEST 15, PUSH32 at 26: 0x5b at 37
    second += bytes(len(first) - len(second))
    assert len(first) == len(second) >= 64  # long enough for the devnet to keep its jump destinations
    return _deploy(chain, first), _deploy(chain, second)


@pytest.mark.parametrize("invalid_first", [False, True])
def test_jumps_into_push_data_fail_every_time_with_jump_destinations_kept(invalid_first) -> None:
    """The devnet keeps each contract code's checked jump destinations across calls: a jump to a JUMPDEST
    works every time, and one into PUSH32 data fails every time, whichever was checked first, and in two
    contracts of one length whose valid and invalid positions are swapped."""
    chain = EmbeddedChain(CHAIN_ID)
    first, second = _jump_contracts(chain)
    at_15, at_37 = (15).to_bytes(32, "big"), (37).to_bytes(32, "big")
    cases = [(first, at_37, True), (first, at_15, False), (second, at_15, True), (second, at_37, False)]
    if invalid_first:
        cases.reverse()
    for _ in range(3):
        for target, data, valid in cases:
            if valid:
                assert chain.call(target, data) == (1).to_bytes(32, "big")
            else:
                with pytest.raises(ChainError):
                    chain.call(target, data)
    mined = chain.transact(KEY, first, at_15)  # in a block, too
    assert mined.status == 0
    assert chain.transact(KEY, second, at_15).status == 1
