"""An embedded, in-process EVM chain for the devnet (py-evm, Cancun rules).

``EmbeddedChain`` behaves like a tiny geth node with instant mining:

* by default every transaction with the sender's next nonce is mined at once in its own block;
  with ``mine=False`` it joins the pending block instead, and ``mine_pending()`` mines everything
  pending into one block (the devnet server batches the transactions that arrive within a few
  milliseconds this way, see ``ChainNode``);
* a transaction with a future nonce waits in a per-sender queue (like geth's txpool) and joins the
  pending block as soon as the nonce gap closes;
* the base fee stays 0, so legacy transactions with ``gasPrice`` 0 are accepted;
* only EIP-155 replay-protected transactions (or typed ones) signed for this chain id are
  accepted; rejections raise ``ChainError`` with geth's wording.

Reads (balances, nonces, ``call``) answer from the state of the latest block, built once per block
and reused until the next one.

``retain_blocks`` bounds memory: receipts, revert reasons and logs of blocks older than that many
blocks are forgotten, and so are the block headers and the state tries that no retained block uses
(see ``prune``). The live state itself (every contract's storage) is never pruned; with ``retain_blocks``
it is kept on disk (``statestore.TieredDB``: recent writes in memory, the rest in a sqlite file), so that
it does not grow the process.

All public methods take one internal lock, so the chain can be shared between an asyncio
thread and executor threads.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eth_abi
import rlp
from eth.chains.base import MiningChain
from eth.constants import BLANK_ROOT_HASH
from eth.db.accesslog import KeyAccessLoggerDB
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.db.backends.memory import MemoryDB
from eth.db.batch import BatchDB
from eth.db.cache import CacheDB
from eth.db.hash_trie import HashTrie
from eth.db.journal import JournalDB
from eth.db.schema import SchemaV1
from eth.db.storage import AccountStorageDB, StorageLookup
from eth.exceptions import Revert, VMError
from eth.vm.forks.cancun import CancunState, CancunVM
from eth.vm.forks.cancun.computation import CancunComputation
from eth.vm.forks.cancun.headers import create_cancun_header_from_parent
from eth.vm.spoof import SpoofTransaction
from eth_account import Account
from eth_utils import keccak, to_canonical_address, to_checksum_address

from polyswarmclient.devnet.statestore import ACCOUNTS, RAW, TRIE, TieredDB, mark_trie
from polyswarmclient.devnet.trienodes import DevnetHexaryTrie
from polyswarmclient.eth.abi import checksum
from polyswarmclient.heap import release_freed_memory

__all__ = [
    "ChainError",
    "EmbeddedChain",
    "Log",
    "Receipt",
    "StorageSlots",
    "decode_revert_reason",
]

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_FAUCET_BALANCE = 10**36
_MAX_QUEUED_PER_SENDER = 64
_REPLACEMENT_BUMP_PERCENT = 10
#: Most transactions in one block. Each may use the whole per-transaction gas limit, so the block's own
#: gas limit is that many times larger.
MAX_BATCH = 256
#: How many of the latest blocks keep their whole state once old state is pruned (eth_call at a past block).
STATE_BLOCKS = 64
#: Headers kept whatever ``retain_blocks`` says: BLOCKHASH reaches back 256 blocks.
_MIN_HEADERS = 257
_EMPTY_CODE = keccak(b"")
#: With the state on disk: sweep once this many entries were written since the last sweep.
_HOT_ENTRIES = 10_000
#: With the state on disk: compact the file once this many rows (and at least as many as it kept at its
#: last compaction) were written to it since.
_COMPACT_ROWS = 100_000
#: Trie nodes a compaction copies per sweep (a slice of about half a second on a busy 2-core machine).
_COMPACT_STEP = 20_000
#: Storage slots ``StorageSlots`` keeps across blocks (all of them are dropped when there are more).
_SLOT_CACHE_SIZE = 16_384

log = logging.getLogger(__name__)


def use_fast_keccak() -> str:
    """Make eth-hash (py-evm, the trie, eth-utils) hash with safe-pysha3 when it is installed; return the backend.

    eth-hash takes pycryptodome first when both are installed, and pycryptodome pays for a new hash object
    on every call: about 6 times slower per 100-byte hash here, and keccak is a large share of mining.
    ``ETH_HASH_BACKEND``, when set, wins (eth-hash reads it itself).
    """
    chosen = os.environ.get("ETH_HASH_BACKEND")
    if chosen:
        return chosen
    try:
        from eth_hash.backends import pysha3
    except ImportError:
        return "pycryptodome"
    from eth_hash.auto import keccak as auto_keccak

    if auto_keccak.hasher is not pysha3.keccak256:
        if pysha3.keccak256(b"") != _EMPTY_CODE:  # pragma: no cover - a broken build
            return "pycryptodome"
        auto_keccak.hasher = pysha3.keccak256  # type: ignore[assignment]  # eth-hash types it as its first-run hook
        auto_keccak.preimage = pysha3.preimage  # type: ignore[assignment]
    return "pysha3"


@dataclass(frozen=True)
class Log:
    address: str  # checksum address of the emitting contract
    topics: list[bytes]  # 32 bytes each
    data: bytes
    block_number: int
    tx_hash: bytes
    log_index: int  # position in the block


@dataclass(frozen=True)
class Receipt:
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    status: int  # 1 success, 0 failure (reverted or out of gas)
    gas_used: int
    logs: list[Log]
    to: str | None
    sender: str
    contract_address: str | None = None  # set for a successful contract creation


class ChainError(Exception):
    """A refused transaction or a failed call.

    ``message`` uses geth's wording ("nonce too low", "known transaction: <hash>", ...).
    For a reverted ``call`` it is ``"execution reverted: <reason>"`` (or ``"execution reverted"``),
    ``reason`` holds the decoded ``Error(string)`` and ``data`` the raw revert data.
    """

    def __init__(self, message: str, *, reason: str | None = None, data: bytes = b"") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.data = data


def decode_revert_reason(data: bytes) -> str | None:
    """Decode ``Error(string)`` revert data; None for anything else."""
    if len(data) < 4 or data[:4] != _ERROR_SELECTOR:
        return None
    try:
        (reason,) = eth_abi.decode(["string"], data[4:])
    except Exception:
        return None
    return str(reason)


class StorageSlots:
    """Contract storage slots as the latest states read or wrote them, shared by every state of one chain.

    py-evm builds a fresh account database for each block and reads each storage slot a block touches from
    the contract's storage trie (a walk of several trie nodes, each fetched and decoded). The devnet's blocks
    are small and touch the same slots again and again (token balances and allowances, the registry's
    counters and fees, a bounty's fields from the block that posted it), so those walks are a good part of
    its mining time. This keeps, per contract, the slots read or written at one storage root: a read at that
    root answers from here, and when a block commits the contract's storage its writes move the entry on to
    the new root. Everything is keyed by root, so a state at any other root (an ``eth_call`` at an older
    block, a block that failed and was mined again) reads the trie as before; a contract whose storage was
    wiped (self-destruct, re-creation) starts again empty. At most ``limit`` slots are kept; past that
    everything is dropped and the hot slots come back with the next reads.
    """

    def __init__(self, limit: int = _SLOT_CACHE_SIZE) -> None:
        self._by_address: dict[bytes, tuple[bytes, dict[bytes, bytes]]] = {}
        self._limit = limit
        self.size = 0
        self.hits = 0
        self.misses = 0

    def get(self, address: bytes, root: bytes, slot: bytes) -> bytes | None:
        """The encoded value of hashed ``slot`` at storage ``root`` (``b""``: empty), or ``None`` if not kept."""
        entry = self._by_address.get(address)
        if entry is not None and entry[0] == root:
            value = entry[1].get(slot)
            if value is not None:
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, address: bytes, root: bytes, slot: bytes, value: bytes) -> None:
        """Remember what the trie at ``root`` holds for ``slot``; a contract's other root is forgotten."""
        entry = self._by_address.get(address)
        if entry is None or entry[0] != root:
            self._drop(address)
            entry = (root, {})
            self._by_address[address] = entry
        slots = entry[1]
        if slot not in slots:
            self.size += 1
        slots[slot] = value
        if self.size > self._limit:
            self.clear()

    def advance(self, address: bytes, old_root: bytes, new_root: bytes, written: dict[bytes, bytes] | None) -> None:
        """A contract's storage went from ``old_root`` to ``new_root`` by ``written`` (hashed slot -> encoded
        value, ``b""`` deleted); ``None``: by a wipe, which forgets the contract."""
        entry = self._by_address.get(address)
        if written is None or entry is None or entry[0] != old_root:
            self._drop(address)
            if written is None:
                return
            entry = (new_root, {})
        slots = entry[1]
        for slot, value in written.items():
            if slot not in slots:
                self.size += 1
            slots[slot] = value
        self._by_address[address] = (new_root, slots)
        if self.size > self._limit:
            self.clear()

    def _drop(self, address: bytes) -> None:
        entry = self._by_address.pop(address, None)
        if entry is not None:
            self.size -= len(entry[1])

    def clear(self) -> None:
        self._by_address.clear()
        self.size = 0


class _SlotCachingLookup(StorageLookup):
    """py-evm's storage trie lookup for one contract, reading through and updating a chain's ``StorageSlots``."""

    def __init__(self, db: Any, storage_root: Any, address: Any, slots: StorageSlots) -> None:
        self._slots = slots
        super().__init__(db, storage_root, address)

    def _initialize_to_root_hash(self, root_hash: Any) -> None:
        super()._initialize_to_root_hash(root_hash)
        self._written: dict[bytes, bytes] = {}
        self._wiped = False

    def __getitem__(self, key: bytes) -> bytes:
        if self._write_trie is not None:  # written since the starting root: the trie has it
            return bytes(super().__getitem__(key))
        slot = self._decode_key(key)
        root = bytes(self._starting_root_hash)
        found = self._slots.get(self._address, root, slot)
        if found is None:
            found = bytes(super().__getitem__(key))
            self._slots.put(self._address, root, slot, found)
        return found

    def __setitem__(self, key: bytes, value: bytes) -> None:
        super().__setitem__(key, value)
        self._written[self._decode_key(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        super().__delitem__(key)
        self._written[self._decode_key(key)] = b""

    def new_trie(self) -> int:
        self._wiped = True
        return super().new_trie()

    # py-evm's two trie constructors, with the devnet's node codec (``trienodes``)
    def _get_write_trie(self) -> Any:
        if self._trie_nodes_batch is None:
            self._trie_nodes_batch = BatchDB(self._db, read_through_deletes=True)
        if self._write_trie is None:
            self._write_trie = DevnetHexaryTrie(self._trie_nodes_batch, root_hash=self._starting_root_hash, prune=True)
        return self._write_trie

    def _get_read_trie(self) -> Any:
        if self._write_trie is not None:
            return self._write_trie
        return DevnetHexaryTrie(self._db, root_hash=self._starting_root_hash)

    def commit_to(self, db: Any) -> None:
        old_root, written, wiped = bytes(self._starting_root_hash), self._written, self._wiped
        super().commit_to(db)  # starts over at the new root
        self._slots.advance(self._address, old_root, bytes(self._starting_root_hash), None if wiped else written)


class _SlotCachingStorageDB(AccountStorageDB):
    def __init__(self, db: Any, storage_root: Any, address: Any, slots: StorageSlots) -> None:
        super().__init__(db, storage_root, address)
        # py-evm's pipeline (lookup -> cache -> locked changes -> journal) with the caching lookup at its root
        self._storage_lookup = _SlotCachingLookup(db, storage_root, address, slots)
        self._storage_cache = CacheDB(self._storage_lookup)
        self._locked_changes = JournalDB(self._storage_cache)
        self._journal_storage = JournalDB(self._locked_changes)


def _make_account_db_class(slots: StorageSlots) -> type[AccountDB]:
    def _get_address_store(self: Any, address: Any) -> Any:
        store = self._account_stores.get(address)
        if store is None:
            store = _SlotCachingStorageDB(self._raw_store_db, self._get_storage_root(address), address, slots)
            self._account_stores[address] = store
        return store

    def __init__(self: Any, db: Any, state_root: Any = BLANK_ROOT_HASH) -> None:
        AccountDB.__init__(self, db, state_root)
        # py-evm's account trie pipeline (trie -> access log -> cache -> journal), on the devnet's trie
        self._trie = HashTrie(DevnetHexaryTrie(self._batchtrie, state_root, prune=True))
        self._trie_logger = KeyAccessLoggerDB(self._trie, log_missing_keys=False)
        self._trie_cache = CacheDB(self._trie_logger)
        self._journaltrie = JournalDB(self._trie_cache)

    return type("DevnetAccountDB", (AccountDB,), {"__init__": __init__, "_get_address_store": _get_address_store})


#: At most this many contracts' jump destinations are kept (``_DevnetComputation``).
_JUMPDEST_CODES = 64


class _DevnetComputation(CancunComputation):
    """py-evm's Cancun computation, with which code positions are valid jump destinations kept per contract
    code rather than worked out again by every call (a call into the bounty registry checked the same
    positions each time; at most ``_JUMPDEST_CODES`` codes, all dropped past that)."""

    _jumpdests: dict[bytes, tuple[set[int], set[int]]] = {}
    _jumpdests_lock = threading.Lock()

    def __init__(self, state: Any, message: Any, transaction_context: Any) -> None:
        super().__init__(state, message, transaction_context)
        code = self.code._raw_code_bytes
        if len(code) < 64:  # no contract worth keeping (or no code at all)
            return
        cls = _DevnetComputation
        known = cls._jumpdests.get(code)
        if known is None:
            with cls._jumpdests_lock:
                if len(cls._jumpdests) >= _JUMPDEST_CODES:
                    cls._jumpdests.clear()
                known = cls._jumpdests.setdefault(code, (set(), set()))
        self.code.valid_positions, self.code.invalid_positions = known


def _make_vm_class(gas_limit: int, slots: StorageSlots | None = None) -> type[CancunVM]:
    """Cancun rules with a fixed block gas limit and a base fee pinned to 0; with ``slots``, storage reads
    go through that ``StorageSlots``."""

    def create_header_from_parent(parent_header: Any, **header_params: Any) -> Any:
        header_params.pop("base_fee_per_gas", None)
        if parent_header is not None:
            header_params.setdefault("gas_limit", gas_limit)
            header = create_cancun_header_from_parent(parent_header, **header_params)
        else:
            header = create_cancun_header_from_parent(None, base_fee_per_gas=0, **header_params)
        return header.copy(base_fee_per_gas=0)

    def validate_gas(cls: Any, header: Any, parent_header: Any) -> None:
        if header.gas_limit != parent_header.gas_limit:
            raise VMError("gas limit changed")

    attributes: dict[str, Any] = {
        "create_header_from_parent": staticmethod(create_header_from_parent),
        "validate_gas": classmethod(validate_gas),
    }
    if slots is not None:
        attributes["_state_class"] = type(
            "DevnetState",
            (CancunState,),
            {"account_db_class": _make_account_db_class(slots), "computation_class": _DevnetComputation},
        )
    return type("DevnetVM", (CancunVM,), attributes)


def _signature_recovered() -> None:
    """A decoded transaction's signature check: done when its sender was recovered (``decode_transaction``).

    py-evm's own check recovers the public key from the signature and then verifies the signature with the
    key it recovered, which cannot fail once the recovery succeeded; the checks of ``r`` and ``s`` (their
    range, and ``s`` in the lower half since Homestead) are separate and still run.
    """


@dataclass
class _Queued:
    tx: Any
    raw: bytes


@dataclass
class _SenderQueue:
    by_nonce: dict[int, _Queued] = field(default_factory=dict)


#: eth_call results kept for the latest block: the getters that building transactions asks for
#: (fees, windows, a bounty's fields) are the same calls many times within one block.
_CALL_CACHE_SIZE = 4096


class EmbeddedChain:
    """An in-process chain with instant or batched mining; see the module docstring.

    ``gas_limit`` is what one transaction may use (and what ``block_gas_limit()`` reports); a block
    holds up to ``max_batch`` such transactions. With ``retain_blocks``, py-evm's database lives in a
    ``TieredDB`` in a private directory under ``state_dir`` (default: the system's temporary directory)
    unless ``state_on_disk`` is False; ``close()`` releases it. ``slot_cache=False`` reads storage with
    py-evm's own state classes (no ``StorageSlots``; the benchmarks' floor).
    """

    def __init__(
        self,
        chain_id: int,
        *,
        gas_limit: int = 50_000_000,
        max_batch: int = MAX_BATCH,
        retain_blocks: int | None = None,
        state_dir: Path | None = None,
        state_on_disk: bool = True,
        slot_cache: bool = True,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.chain_id = chain_id
        self._gas_limit = gas_limit
        self.max_batch = max_batch
        self.retain_blocks = retain_blocks
        self._lock = threading.RLock()
        self.keccak_backend = use_fast_keccak()
        self._faucet_key = keccak(b"polyswarm-kit devnet faucet " + str(chain_id).encode())
        faucet = to_canonical_address(Account.from_key(self._faucet_key).address)

        block_gas_limit = gas_limit * max_batch
        #: storage slots kept across blocks (see ``StorageSlots``); ``None`` with ``slot_cache=False``
        self.storage_slots = StorageSlots() if slot_cache else None
        vm_class = _make_vm_class(block_gas_limit, self.storage_slots)
        chain_class = MiningChain.configure(
            __name__="DevnetChain",
            vm_configuration=((0, vm_class),),
            chain_id=chain_id,
        )
        genesis_params = {
            "difficulty": 0,
            "gas_limit": block_gas_limit,
            "timestamp": int(time.time()),
            "coinbase": b"\x00" * 20,
            "extra_data": b"polyswarm-kit devnet",
        }
        genesis_state = {faucet: {"balance": _FAUCET_BALANCE, "nonce": 0, "code": b"", "storage": {}}}
        #: py-evm's whole database, which ``prune`` sweeps: on disk with a retention, else a plain dict.
        self._store = TieredDB(state_dir) if retain_blocks is not None and state_on_disk else None
        self._kv = MemoryDB() if self._store is None else None
        base = self._store if self._store is not None else self._kv
        self._chain = chain_class.from_genesis(AtomicDB(base), genesis_params, genesis_state)
        self._genesis = (genesis_params, genesis_state)  # for replaying the chain elsewhere (tests)
        self._head = self._chain.get_canonical_head()
        # The fork's transaction class: decoding is pure, so the server's route may decode on its own
        # thread and hand the object over (one decode and one sender recovery per transaction).
        self._tx_builder = self._chain.get_vm().get_transaction_builder()
        self._read: tuple[Any, Any, Any] | None = None  # (head header, vm, state) for reads
        # eth_call results at the latest block, by (to, data, sender); emptied when the head moves
        self._calls: dict[tuple[str, bytes, str | None], bytes | ChainError] = {}
        self._calls_head: Any = None

        self._receipts: dict[bytes, Receipt] = {}
        self._revert_reasons: dict[bytes, str | None] = {}
        self._logs_by_block: dict[int, list[Log]] = {}
        self._log_blocks: list[int] = []  # ascending block numbers that have logs
        self._block_txs: deque[tuple[int, tuple[bytes, ...]]] = deque()  # mined tx hashes by block
        self._queues: dict[bytes, _SenderQueue] = {}
        self._queued_hashes: set[bytes] = set()
        self._pending: list[Any] = []  # validated transactions waiting for the next block, in order
        self._pending_hashes: set[bytes] = set()
        self._pending_nonces: dict[bytes, int] = {}  # sender -> its next nonce after its pending txs
        self.oldest_retained_block = 0
        self._kv_after_prune = len(self._kv.kv_store) if self._kv is not None else 0
        self._swept_head = -1  # the head at the last sweep
        self.prunes = 0  # how many times old state was swept (for tests and logs)

    def close(self) -> None:
        """Release the on-disk state (the chain is unusable afterwards); a no-op for an in-memory one."""
        with self._lock:
            if self._store is not None:
                self._store.close()

    # ------------------------------------------------------------------ blocks

    def block_number(self) -> int:
        with self._lock:
            return int(self._head.block_number)

    def block_hash(self, number: int) -> bytes:
        with self._lock:
            self._check_block(number)
            return bytes(self._chain.get_canonical_block_hash(number))

    def block_timestamp(self, number: int) -> int:
        with self._lock:
            self._check_block(number)
            return int(self._chain.get_canonical_block_header_by_number(number).timestamp)

    def _check_block(self, number: int) -> None:
        if number < 0 or number > self._head.block_number:
            raise ChainError(f"unknown block {number}")
        if number < self.oldest_retained_block:
            raise ChainError(f"block {number} is older than the {self.retain_blocks} blocks the devnet keeps")

    def block_gas_limit(self) -> int:
        return self._gas_limit

    def _refresh_timestamp(self) -> None:
        parent = self._head
        ts = max(parent.timestamp + 1, int(time.time()))
        self._chain.header = self._chain.header.copy(timestamp=ts)

    def mine_block(self) -> int:
        """Mine the pending transactions (an empty block when there are none) now; return its number."""
        with self._lock:
            if self._pending:
                self.mine_pending()
            else:
                self._refresh_timestamp()
                block, _receipts, _computations = self._mine([])
                self._record_block(block, [], [], [])
            return int(self._head.block_number)

    # ------------------------------------------------------------------ state

    def _read_state(self) -> tuple[Any, Any]:
        """The VM and state of the latest block, built once per block."""
        head = self._head
        if self._read is None or self._read[0] is not head:
            vm = self._chain.get_vm(head)
            state = vm.build_state(self._chain.chaindb.db, head, vm.chain_context, vm.previous_hashes)
            self._read = (head, vm, state)
        return self._read[1], self._read[2]

    def _state(self) -> Any:
        return self._read_state()[1]

    def eth_balance(self, address: str) -> int:
        with self._lock:
            return int(self._state().get_balance(to_canonical_address(address)))

    def get_code(self, address: str) -> bytes:
        with self._lock:
            return bytes(self._state().get_code(to_canonical_address(address)))

    def get_nonce(self, address: str, *, pending: bool = False) -> int:
        with self._lock:
            addr = to_canonical_address(address)
            if not pending:
                return int(self._state().get_nonce(addr))
            nonce = self._next_nonce(addr)
            queue = self._queues.get(addr)
            while queue is not None and nonce in queue.by_nonce:
                nonce += 1
            return nonce

    def _next_nonce(self, sender: bytes) -> int:
        """The nonce the sender's next transaction into the pending block must have."""
        pending = self._pending_nonces.get(sender)
        return pending if pending is not None else int(self._state().get_nonce(sender))

    def pending_nonces(self, address: str) -> list[int]:
        with self._lock:
            queue = self._queues.get(to_canonical_address(address))
            return sorted(queue.by_nonce) if queue else []

    @property
    def pending_count(self) -> int:
        """Transactions waiting for ``mine_pending()``."""
        with self._lock:
            return len(self._pending)

    # ------------------------------------------------------------------ transactions

    def decode_transaction(self, raw: bytes) -> Any:
        """py-evm's transaction object for ``raw``, its sender recovered; safe on any thread.

        Raises ``ChainError`` when ``raw`` is not a signed transaction. The object may be passed to
        :meth:`send_raw_transaction` or :meth:`submit_batch` with its ``raw`` so that it is not decoded
        and its signature not checked a second time.
        """
        try:
            tx = self._tx_builder.decode(bytes(raw))
        except Exception as exc:
            raise ChainError(f"invalid transaction: {exc}") from exc
        try:
            _ = tx.chain_id
            _ = tx.sender
        except Exception as exc:
            raise ChainError("invalid sender") from exc
        # py-evm checks a legacy transaction's signature again when it applies it, recovering the key once
        # more and verifying the signature with that key (two elliptic-curve operations, about 5% of a busy
        # devnet's time): the recovery above was that check. Its range and low-s checks still run.
        vars(tx)["check_signature_validity"] = _signature_recovered
        return tx

    def send_raw_transaction(self, raw: bytes, *, mine: bool = True, decoded: Any = None) -> bytes:
        """Validate, then add to the pending block (next nonce) or queue (future nonce); return the hash.

        With ``mine`` (the default) the pending block is mined before returning, so the receipt is there.
        ``decoded`` is :meth:`decode_transaction`'s object for ``raw``, when the caller has it.
        """
        with self._lock:
            tx = self._decode(raw, decoded)
            tx_hash = bytes(tx.hash)
            sender = bytes(tx.sender)
            if tx_hash in self._receipts or tx_hash in self._queued_hashes or tx_hash in self._pending_hashes:
                raise ChainError(f"known transaction: {tx_hash.hex()}")
            state = self._state()
            next_nonce = self._next_nonce(sender)
            if tx.nonce < next_nonce:
                raise ChainError("nonce too low")
            if tx.gas > self._gas_limit:
                raise ChainError("exceeds block gas limit")
            if tx.gas < tx.intrinsic_gas:
                raise ChainError("intrinsic gas too low")
            if not self._can_pay(state, sender, tx):
                raise ChainError("insufficient funds for gas * price + value")
            if tx.nonce > next_nonce:
                self._enqueue(sender, tx, raw)
                return tx_hash
            self._add_pending(sender, tx)
            self._release_queued(sender)
            if mine:
                self.mine_pending()
            return tx_hash

    def _add_pending(self, sender: bytes, tx: Any) -> None:
        if len(self._pending) >= self.max_batch:
            self.mine_pending()  # a full block goes out at once; this transaction starts the next one
        self._pending.append(tx)
        self._pending_hashes.add(bytes(tx.hash))
        self._pending_nonces[sender] = int(tx.nonce) + 1

    def _decode(self, raw: bytes, decoded: Any = None) -> Any:
        tx = decoded if decoded is not None else self.decode_transaction(raw)
        chain_id = tx.chain_id
        if chain_id is None:
            raise ChainError("only replay-protected (EIP-155) transactions allowed over RPC")
        if chain_id != self.chain_id:
            raise ChainError("invalid sender")
        return tx

    @staticmethod
    def _can_pay(state: Any, sender: bytes, tx: Any) -> bool:
        cost = tx.gas * tx.max_fee_per_gas + tx.value
        return bool(state.get_balance(sender) >= cost)

    def _enqueue(self, sender: bytes, tx: Any, raw: bytes) -> None:
        queue = self._queues.setdefault(sender, _SenderQueue())
        old = queue.by_nonce.get(tx.nonce)
        if old is not None:
            old_price = old.tx.max_fee_per_gas
            new_price = tx.max_fee_per_gas
            threshold = old_price * (100 + _REPLACEMENT_BUMP_PERCENT) // 100
            if new_price <= old_price or new_price < threshold:
                raise ChainError("replacement transaction underpriced")
            self._queued_hashes.discard(bytes(old.tx.hash))
        elif len(queue.by_nonce) >= _MAX_QUEUED_PER_SENDER:
            raise ChainError("txpool is full")
        queue.by_nonce[tx.nonce] = _Queued(tx=tx, raw=raw)
        self._queued_hashes.add(bytes(tx.hash))

    def _release_queued(self, sender: bytes) -> None:
        """Move the sender's queued transactions whose nonce gap has closed into the pending block."""
        queue = self._queues.get(sender)
        while queue is not None and queue.by_nonce:
            nonce = self._next_nonce(sender)
            # drop anything stale (cannot normally happen)
            for stale in [n for n in queue.by_nonce if n < nonce]:
                self._queued_hashes.discard(bytes(queue.by_nonce.pop(stale).tx.hash))
            item = queue.by_nonce.pop(nonce, None)
            if item is None:
                break
            self._queued_hashes.discard(bytes(item.tx.hash))
            if not self._can_pay(self._state(), sender, item.tx):
                continue  # dropped, like a txpool would; the nonce gap stays
            self._add_pending(sender, item.tx)
        if queue is not None and not queue.by_nonce:
            self._queues.pop(sender, None)

    def mine_pending(self) -> tuple[list[Receipt], dict[bytes, str]]:
        """Mine every pending transaction into one block.

        Returns the receipts, in block order, and the transactions py-evm refused (hash -> reason): a
        transaction that passed the checks on arrival can still fail once the ones before it in the same
        block ran (say, a balance they spent). Those are dropped, as a txpool drops them, and the others
        are mined, still in one block. Nothing pending: no block, ``([], {})``.
        """
        with self._lock:
            txs, self._pending = self._pending, []
            self._pending_hashes.clear()
            self._pending_nonces.clear()
            if not txs:
                return [], {}
            self._refresh_timestamp()
            refused: dict[bytes, str] = {}
            try:
                block, receipts, computations = self._mine(txs)
            except Exception:
                txs, refused = self._sort_out(txs)
                if not txs:
                    return [], refused
                block, receipts, computations = self._mine(txs)
            return self._record_block(block, txs, receipts, computations), refused

    def _mine(self, txs: list[Any]) -> tuple[Any, Any, Any]:
        """py-evm's ``MiningChain.mine_all`` without the work it repeats: apply ``txs`` on top of the head,
        build the block (transaction and receipt tries, state root), validate it once and persist it.

        ``mine_all`` goes on to ``MiningChain.persist_block``, which validates the block's header a second
        time (the VM's ``mine_block`` just did) and then reads the block it was handed back from the
        database, decoding every transaction again, for a result nobody here uses. Nothing is persisted
        when applying or validating fails (the caller sorts the transactions out and tries again).
        """
        chain = self._chain
        base = chain.header
        vm = chain.get_vm(base)
        header, receipts, computations = vm.apply_all_transactions(txs, base)
        filled = vm.set_block_transactions_and_withdrawals(vm.get_block(), header, txs, receipts)
        block = vm.mine_block(filled).block  # packs, finalizes the state root, validates the block
        chain.chaindb.persist_block(block)
        chain.header = chain.create_header_from_parent(block.header)
        return block, receipts, computations

    def _sort_out(self, txs: list[Any]) -> tuple[list[Any], dict[bytes, str]]:
        """The slow path of ``mine_pending``: apply the block's transactions one at a time on a scratch VM
        and split them into the ones py-evm accepts and the ones it refuses (nothing is persisted)."""
        header = self._chain.header
        vm = self._chain.get_vm(header)
        accepted: list[Any] = []
        refused: dict[bytes, str] = {}
        for tx in txs:
            try:
                receipt, _computation = vm.apply_transaction(header, tx)
            except Exception as exc:
                refused[bytes(tx.hash)] = f"invalid transaction: {exc}"
                log.warning("chain %d: dropped transaction 0x%s: %s", self.chain_id, bytes(tx.hash).hex(), exc)
                continue
            header = vm.add_receipt_to_header(header, receipt)
            accepted.append(tx)
        return accepted, refused

    def _record_block(self, block: Any, txs: list[Any], receipts: Any, computations: Any) -> list[Receipt]:
        """Keep what a mined block brought (receipts, revert reasons, logs) and move the head."""
        number = int(block.number)
        block_hash = bytes(block.hash)
        out: list[Receipt] = []
        block_logs: list[Log] = []
        cumulative_gas = 0  # a receipt's gas_used is the block's running total
        for tx, raw_receipt, computation in zip(txs, receipts, computations, strict=True):
            tx_hash = bytes(tx.hash)
            logs = [
                Log(
                    address=checksum(bytes(entry.address)),
                    topics=[int(t).to_bytes(32, "big") for t in entry.topics],
                    data=bytes(entry.data),
                    block_number=number,
                    tx_hash=tx_hash,
                    log_index=len(block_logs) + i,
                )
                for i, entry in enumerate(raw_receipt.logs)
            ]
            block_logs += logs
            status = 0 if computation.is_error else 1
            contract_address = None
            if not tx.to and status == 1:
                contract_address = to_checksum_address(computation.msg.storage_address)
            receipt = Receipt(
                tx_hash=tx_hash,
                block_number=number,
                block_hash=block_hash,
                status=status,
                gas_used=int(raw_receipt.gas_used) - cumulative_gas,
                logs=logs,
                to=checksum(bytes(tx.to)) if tx.to else None,
                sender=checksum(bytes(tx.sender)),
                contract_address=contract_address,
            )
            cumulative_gas = int(raw_receipt.gas_used)
            self._receipts[tx_hash] = receipt
            if computation.is_error:
                error = computation.error
                data = bytes(error.args[0]) if isinstance(error, Revert) and error.args else b""
                self._revert_reasons[tx_hash] = decode_revert_reason(data)
            out.append(receipt)
        if block_logs:
            self._logs_by_block[number] = block_logs
            self._log_blocks.append(number)
        if txs:
            self._block_txs.append((number, tuple(r.tx_hash for r in out)))
        self._head = self._chain.get_canonical_head()
        self._read = None
        self._forget_old_blocks()
        self._maybe_prune()
        return out

    def _forget_old_blocks(self) -> None:
        """Drop receipts, revert reasons and logs of blocks older than ``retain_blocks``."""
        if self.retain_blocks is None:
            return
        oldest = int(self._head.block_number) - self.retain_blocks + 1
        if oldest <= self.oldest_retained_block:
            return
        self.oldest_retained_block = oldest
        while self._block_txs and self._block_txs[0][0] < oldest:
            for tx_hash in self._block_txs.popleft()[1]:
                self._receipts.pop(tx_hash, None)
                self._revert_reasons.pop(tx_hash, None)
        cut = bisect.bisect_left(self._log_blocks, oldest)
        for number in self._log_blocks[:cut]:
            self._logs_by_block.pop(number, None)
        del self._log_blocks[:cut]

    # ------------------------------------------------------------------ pruning py-evm's database

    def _maybe_prune(self) -> None:
        """Sweep once enough was written: with the state on disk, ``_HOT_ENTRIES`` entries since the last
        sweep; in memory, once the database has grown by half since the last sweep (and by 20,000 entries)."""
        if self.retain_blocks is None:
            return
        if self._store is not None:
            if len(self._store.hot) >= _HOT_ENTRIES:
                self.prune()
            return
        assert self._kv is not None
        size = len(self._kv.kv_store)
        if size - self._kv_after_prune >= max(20_000, self._kv_after_prune // 2):
            self.prune()

    def prune(self, *, compact: bool | None = None) -> int:
        """Drop from py-evm's database everything no retained block needs; returns the entries dropped.

        py-evm never deletes anything: every block adds its header, transaction and receipt tries and the
        trie nodes of every account and storage slot it changed, and the old nodes stay. This keeps:
        the headers (with their number and score entries) of the last ``retain_blocks`` blocks (at least
        257, for BLOCKHASH); the transaction, receipt and withdrawal tries and transaction lookups of
        those blocks; the state of the last ``STATE_BLOCKS`` blocks (every node reachable from their state
        roots, with contract code); and py-evm's own bookkeeping. Everything else is unreachable garbage.

        With the state on disk, a sweep walks only the entries written since the last one: what is
        reachable moves to the sqlite file, the rest is dropped. Old states pile up in the file until a
        compaction copies what is reachable into a fresh file: it starts once ``_COMPACT_ROWS`` rows, and
        as many as the last compaction kept, were written since, and copies ``_COMPACT_STEP`` nodes per
        sweep; ``compact=True`` runs a whole one (or the rest of one) now, ``False`` none. The sweep that
        ends a compaction returns the rows dropped from the file too.
        """
        with self._lock:
            head = int(self._head.block_number)
            keep_headers = max(self.retain_blocks or 0, _MIN_HEADERS)
            first = max(0, head - keep_headers + 1)
            store = self._store
            if store is None:
                dropped = self._prune_memory(head, first)
            else:
                keep, roots = self._retained(head, max(first, self._swept_head + 1))
                hot = store.hot
                for root, kind in roots:
                    mark_trie(hot.get, root, keep, kind == ACCOUNTS)
                moved, dropped = store.flush(lambda k, v: k in keep or self._kept_unmarked(k, v, first))
                if not store.compacting and (
                    compact or (compact is None and store.cold_written >= max(_COMPACT_ROWS, store.cold_compacted))
                ):
                    keep, roots = self._retained(head, first)
                    store.start_compaction(
                        [*roots, *((key, RAW) for key in keep)],
                        lambda k, v: k in keep or self._kept_unmarked(k, v, first),
                    )
                if store.compacting:
                    done = store.compact_step(None if compact else _COMPACT_STEP)
                    if done is not None:
                        dropped += done[1]
                        steps, busy = store.last_compaction
                        log.info(
                            "chain %d: compacted the state file to %d entries (%.1f MB) in %d step(s), %.2f s",
                            self.chain_id,
                            done[0],
                            store.disk_bytes() / 1e6,
                            steps,
                            busy,
                        )
                log.debug("chain %d: swept %d new database entries to disk, dropped %d", self.chain_id, moved, dropped)
            self._swept_head = head
            self._read = None
            self.prunes += 1
            release_freed_memory()
            return dropped

    def _retained(self, head: int, start: int) -> tuple[set[bytes], list[tuple[bytes, int]]]:
        """What the retained blocks from ``start`` on need, as keys kept as they are (a header with its number
        and score entries, its uncles) and trie roots (``TRIE`` for their transaction, receipt and
        withdrawal tries, ``ACCOUNTS`` for the state roots of the last ``STATE_BLOCKS`` blocks)."""
        keep: set[bytes] = set()
        roots: list[tuple[bytes, int]] = []
        db = self._chain.chaindb
        raw: Any = self._store if self._store is not None else self._kv.kv_store if self._kv is not None else {}
        for number in range(start, head + 1):
            number_key = SchemaV1.make_block_number_to_hash_lookup_key(number)
            encoded_hash = raw.get(number_key)
            if encoded_hash is None:
                continue
            block_hash = rlp.decode(encoded_hash)
            header = db.get_block_header_by_hash(block_hash)
            keep.update((number_key, block_hash, SchemaV1.make_block_hash_to_score_lookup_key(block_hash)))
            keep.add(bytes(header.uncles_hash))
            for root in (header.transaction_root, header.receipt_root, getattr(header, "withdrawals_root", None)):
                if root is not None:
                    roots.append((bytes(root), TRIE))
        for number in range(max(0, head - STATE_BLOCKS + 1), head + 1):
            header = db.get_canonical_block_header_by_number(number)
            roots.append((bytes(header.state_root), ACCOUNTS))
        return keep, roots

    @staticmethod
    def _kept_unmarked(key: bytes, value: bytes, first: int) -> bool:
        """Whether an entry the mark did not reach stays: py-evm's bookkeeping and the lookups of retained
        transactions do; trie nodes, code, headers and number and score entries (32 bytes or those prefixes)
        do not."""
        if len(key) == 32 or key.startswith((b"block-number-to-hash:", b"block-hash-to-score:")):
            return False
        if key.startswith(b"transaction-hash-to-block:"):
            return EmbeddedChain._lookup_is_recent(value, first)
        return True

    def _prune_memory(self, head: int, first: int) -> int:
        """``prune`` for the in-memory database: mark everything retained, delete the rest."""
        assert self._kv is not None
        kv = self._kv.kv_store
        before = len(kv)
        keep, roots = self._retained(head, first)
        for root, kind in roots:
            mark_trie(kv.get, root, keep, kind == ACCOUNTS)
        for key in [k for k in kv if k not in keep]:
            if not self._kept_unmarked(key, kv[key], first):
                del kv[key]
        self._kv_after_prune = len(kv)
        log.debug("chain %d: pruned %d of %d database entries", self.chain_id, before - len(kv), before)
        return before - len(kv)

    @staticmethod
    def _lookup_is_recent(value: bytes, first: int) -> bool:
        """Whether a transaction lookup entry points at a retained block."""
        try:
            number = rlp.decode(value)[0]
        except Exception:
            return False
        return int.from_bytes(number, "big") >= first

    def submit_batch(
        self, raws: list[bytes], decoded: list[Any] | None = None
    ) -> tuple[list[bytes | ChainError], list[Receipt]]:
        """Validate each raw transaction, then mine everything pending into one block.

        ``decoded`` holds, per raw transaction, :meth:`decode_transaction`'s object or ``None``.
        Returns, per raw transaction, its hash or the ``ChainError`` that refused it (a transaction
        py-evm refused while mining gets its error too), and the receipts of the mined block.
        """
        with self._lock:
            results: list[bytes | ChainError] = []
            for raw, tx in zip(raws, decoded or [None] * len(raws), strict=True):
                try:
                    results.append(self.send_raw_transaction(raw, mine=False, decoded=tx))
                except ChainError as exc:
                    results.append(exc)
            receipts, refused = self.mine_pending()
            if refused:
                results = [ChainError(refused[r]) if isinstance(r, bytes) and r in refused else r for r in results]
            return results, receipts

    def submit_and_scan(
        self, raws: list[bytes], decoded: list[Any] | None, since: int
    ) -> tuple[list[bytes | ChainError], int, list[Log], list[Receipt]]:
        """One round of the server's batcher: mine ``raws`` into one block (none: mine a block anyway, with
        whatever is pending), then :meth:`scan` from ``since``.

        ``decoded`` is as for :meth:`submit_batch`. Returns the per-transaction results of
        :meth:`submit_batch` and what :meth:`scan` returns.
        """
        with self._lock:
            results: list[bytes | ChainError] = []
            if raws:
                results, _receipts = self.submit_batch(raws, decoded)
            else:
                self.mine_block()
            return (results, *self.scan(since))

    def scan(self, since: int) -> tuple[int, list[Log], list[Receipt]]:
        """The head, the logs of blocks ``since + 1`` to the head, and the receipts of those blocks that are
        still retained (the watcher's scan)."""
        with self._lock:
            head = int(self._head.block_number)
            if head <= since:
                return head, [], []
            receipts: list[Receipt] = []
            for number, hashes in reversed(self._block_txs):
                if number <= since:
                    break
                receipts[:0] = [self._receipts[h] for h in hashes if h in self._receipts]
            return head, self.get_logs(since + 1, head), receipts

    def call_many(self, to: str, datas: list[bytes]) -> list[bytes]:
        """Several :meth:`call` s at the latest block, all against the same block; raises the first error."""
        with self._lock:
            return [bytes(self.call(to, data)) for data in datas]

    def logs_between(self, from_block: int, to_block: int) -> list[Log]:
        """Every log of blocks ``from_block`` to ``to_block``, in order (the watcher's scan)."""
        return self.get_logs(from_block, to_block)

    def peek_receipt(self, tx_hash: bytes) -> Receipt | None:
        """``get_receipt`` without the lock: one dict read, safe from any thread (for the event loop)."""
        return self._receipts.get(bytes(tx_hash))

    def get_receipt(self, tx_hash: bytes) -> Receipt | None:
        with self._lock:
            return self._receipts.get(bytes(tx_hash))

    def revert_reason(self, tx_hash: bytes) -> str | None:
        with self._lock:
            return self._revert_reasons.get(bytes(tx_hash))

    def transact(self, private_key: bytes, to: str | None, data: bytes, value: int = 0) -> Receipt:
        """Sign with ``private_key`` (next pending nonce, gasPrice 0), mine and return the receipt.

        ``to=None`` deploys ``data`` as init code; see ``Receipt.contract_address``.
        A reverted transaction is returned with ``status == 0``; nothing is raised.
        """
        with self._lock:
            account = Account.from_key(private_key)
            tx: dict[str, Any] = {
                "nonce": self.get_nonce(account.address, pending=True),
                "gasPrice": 0,
                "gas": self._gas_limit,
                "value": value,
                "data": bytes(data),
                "chainId": self.chain_id,
            }
            if to is not None:
                tx["to"] = to_checksum_address(to)
            signed = account.sign_transaction(tx)
            tx_hash = self.send_raw_transaction(bytes(signed.raw_transaction))
            receipt = self._receipts.get(tx_hash)
            if receipt is None:  # pragma: no cover - only if the key has a nonce gap or py-evm refused it
                raise ChainError("transaction queued behind a nonce gap")
            return receipt

    def fund(self, address: str, wei: int) -> None:
        """Send ``wei`` ETH from the built-in faucet to ``address`` (one mined block)."""
        receipt = self.transact(self._faucet_key, address, b"", wei)
        if receipt.status != 1:  # pragma: no cover
            raise ChainError("faucet transfer failed")

    # ------------------------------------------------------------------ reading

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: int | None = None) -> bytes:
        """eth_call against the state after ``block`` (default: latest).

        As in geth, the code runs with ``block.number`` equal to that block's number, so a
        transaction sent now sees ``block.number + 1``. Raises ChainError on revert.
        """
        with self._lock:
            latest = block is None or block == self._head.block_number
            if not latest:
                return self._call(to, data, sender, block)
            if self._calls_head is not self._head or len(self._calls) >= _CALL_CACHE_SIZE:
                self._calls.clear()
                self._calls_head = self._head
            key = (to, bytes(data), sender)
            found = self._calls.get(key)
            if found is None:
                try:
                    found = self._call(to, data, sender, None)
                except ChainError as exc:
                    found = exc
                self._calls[key] = found
            if isinstance(found, ChainError):
                raise ChainError(str(found), reason=found.reason, data=found.data)
            return found

    def _call(self, to: str, data: bytes, sender: str | None, block: int | None) -> bytes:
        with self._lock:
            if block is None:
                vm, state = self._read_state()
            else:
                self._check_block(block)
                header = self._chain.get_canonical_block_header_by_number(block)
                if block <= self._swept_head - STATE_BLOCKS:
                    raise ChainError(f"the state of block {block} is pruned (the devnet keeps {STATE_BLOCKS} blocks)")
                vm = self._chain.get_vm(header)
                # Like geth's eth_call: the state after block N, executed with block.number == N.
                state = vm.build_state(self._chain.chaindb.db, header, vm.chain_context, vm.previous_hashes)
            from_ = to_canonical_address(sender) if sender else b"\x00" * 20
            unsigned = vm.create_unsigned_transaction(
                nonce=state.get_nonce(from_),
                gas_price=0,
                gas=self._gas_limit,
                to=to_canonical_address(to),
                value=0,
                data=bytes(data),
            )
            spoofed = SpoofTransaction(unsigned, from_=from_)
            snapshot = state.snapshot()
            try:
                computation = state.costless_execute_transaction(spoofed)
            finally:
                state.revert(snapshot)
            try:
                computation.raise_if_error()
                return bytes(computation.output)
            except Revert as exc:
                raw = bytes(exc.args[0]) if exc.args else b""
                reason = decode_revert_reason(raw)
                message = f"execution reverted: {reason}" if reason is not None else "execution reverted"
                raise ChainError(message, reason=reason, data=raw) from exc
            except VMError as exc:
                raise ChainError(str(exc) or type(exc).__name__) from exc

    def get_logs(
        self, from_block: int, to_block: int, *, address: str | None = None, topic0: bytes | None = None
    ) -> list[Log]:
        with self._lock:
            want_address = to_checksum_address(address) if address else None
            lo = bisect.bisect_left(self._log_blocks, from_block)
            hi = bisect.bisect_right(self._log_blocks, to_block)
            out: list[Log] = []
            for number in self._log_blocks[lo:hi]:
                for log in self._logs_by_block[number]:
                    if want_address is not None and log.address != want_address:
                        continue
                    if topic0 is not None and (not log.topics or log.topics[0] != topic0):
                        continue
                    out.append(log)
            return out
