"""One chain of the devnet as the server sees it: the chain, its contracts, a lock, and a head watcher.

Every chain operation runs on the chain's own single worker thread, which is the chain's lock and keeps
the event loop responsive even when an EVM call or a JSON-RPC round trip is slow. One watcher task per
chain notices new blocks and fans ``ChainUpdate`` values (the new head plus the contract logs it brought)
out to subscriber queues: the websocket hub and the relay daemon each own one.

On an embedded chain, transactions are batched: ``send_raw_transaction`` waits ``batch_window`` seconds
for others to arrive, then one job on the worker validates them all, mines them into one block and
reads the logs it brought, and the node publishes that update itself (one hand-off per block, not one
per transaction plus the watcher's two). Updates are published under one lock, in block order, each
block once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from polyswarmclient.devnet.abicall import ContractAbi

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTRACT_KINDS = ("NectarToken", "BountyRegistry", "ERC20Relay", "ArbiterStaking")
#: Getters of values a contract fixes when it is deployed (vyper ``immutable``), by contract kind.
IMMUTABLE_GETTERS = {
    "BountyRegistry": frozenset(
        {
            "BOUNTY_AMOUNT_MINIMUM",
            "ASSERTION_BID_ARTIFACT_MINIMUM",
            "ASSERTION_BID_ARTIFACT_MAXIMUM",
            "MAX_DURATION",
            "ARBITER_LOOKBACK_RANGE",
            "PAGE_SIZE",
        }
    )
}


class LogLike(Protocol):
    address: str
    topics: list[bytes]
    data: bytes
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class ContractAddresses:
    """Checksummed addresses of one chain's contracts."""

    nectar_token: str
    bounty_registry: str
    erc20_relay: str
    arbiter_staking: str

    @classmethod
    def of(cls, contracts: Any) -> ContractAddresses:
        """Accept the contracts helper's ``ChainContracts`` (attributes may be addresses or objects)."""

        def addr(value: Any) -> str:
            return str(getattr(value, "address", value))

        return cls(
            nectar_token=addr(contracts.nectar_token),
            bounty_registry=addr(contracts.bounty_registry),
            erc20_relay=addr(contracts.erc20_relay),
            arbiter_staking=addr(contracts.arbiter_staking),
        )

    def all(self) -> tuple[str, ...]:
        return (self.nectar_token, self.bounty_registry, self.erc20_relay, self.arbiter_staking)


@dataclass(frozen=True)
class ChainUpdate:
    """What one watcher round saw: the new head and the logs of our contracts since the last round."""

    chain: str
    head: int
    logs: tuple[Any, ...]


@functools.cache
def contract_abi(kind: str) -> ContractAbi:
    from polyswarmclient.devnet.contracts.compile import load_artifact

    return ContractAbi.from_abi(kind, load_artifact(kind)["abi"])


class ChainNode:
    """``name`` is ``home`` or ``side``; ``chain`` implements the EmbeddedChain interface."""

    def __init__(
        self,
        name: str,
        chain: Any,
        contracts: Any,
        *,
        poll_interval: float = 0.5,
        batch_window: float = 0.005,
    ) -> None:
        self.name = name
        self.chain = chain
        self.chain_id: int = int(chain.chain_id)
        self.addresses = ContractAddresses.of(contracts)
        self.poll_interval = poll_interval
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"devnet-{name}")
        self.head: int = int(chain.block_number())
        self._last_scanned = self.head
        self._head_changed: asyncio.Condition | None = None
        self._kick: asyncio.Event | None = None
        self._subscribers: list[asyncio.Queue[ChainUpdate]] = []
        self._lower = {a.lower(): a for a in self.addresses.all()}
        self.gas_limit: int = int(chain.block_gas_limit())
        self.batch_window = batch_window
        self.batching: bool = hasattr(chain, "submit_batch")
        #: An embedded chain: one call mines a batch and scans the new blocks.
        self._scans: bool = hasattr(chain, "submit_and_scan")
        self._batch: list[tuple[bytes, Any, asyncio.Future[bytes]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._publish_lock: asyncio.Lock | None = None
        #: ``(kind, getter)`` -> value, for ``IMMUTABLE_GETTERS`` on an embedded chain
        self._fixed: dict[tuple[str, str], Any] = {}

    # --- running chain operations -----------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any, mutating: bool = False, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the chain's worker thread; ``mutating`` wakes the watcher."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))
        if mutating and self._kick is not None:
            self._kick.set()
        return result

    async def call(self, kind: str, function: str, *args: Any) -> Any:
        """A read-only call of ``function`` on this chain's ``kind`` contract (``BountyRegistry``…)."""
        abi = contract_abi(kind)
        if hasattr(self.chain, "contract_calls"):  # a node: web3 contract objects
            (result,) = await self.run(self.chain.contract_calls, kind, self.address_of(kind), [(function, *args)])
            return abi.shape_web3(function, result)
        data = abi.encode_call(function, *args)
        raw = await self.run(self.chain.call, self.address_of(kind), data)
        return abi.decode_result(function, bytes(raw))

    async def calls(self, kind: str, *calls: tuple[Any, ...]) -> list[Any]:
        """Several read-only calls on the ``kind`` contract, each ``(function, *args)``, in one job on the
        worker, all against the same block.

        On an embedded chain the getters of values fixed when the contract was deployed (``IMMUTABLE_GETTERS``)
        are read once and then answered from memory: the contracts there are the devnet's own and never
        replaced.
        """
        fixed = IMMUTABLE_GETTERS.get(kind, frozenset()) if self._scans else frozenset()
        known = [len(call) == 1 and (kind, call[0]) in self._fixed for call in calls]
        if not any(known):
            results = await self._calls(kind, calls)
        else:
            fetched = iter(await self._calls(kind, [c for c, k in zip(calls, known, strict=True) if not k]))
            results = [self._fixed[(kind, c[0])] if k else next(fetched) for c, k in zip(calls, known, strict=True)]
        for call, result in zip(calls, results, strict=True):
            if len(call) == 1 and call[0] in fixed:
                self._fixed[(kind, call[0])] = result
        return results

    async def _calls(self, kind: str, calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        if not calls:
            return []
        abi = contract_abi(kind)
        address = self.address_of(kind)
        if hasattr(self.chain, "contract_calls"):  # a node: one JSON-RPC batch at one block
            results = await self.run(self.chain.contract_calls, kind, address, list(calls))
            return [abi.shape_web3(call[0], result) for call, result in zip(calls, results, strict=True)]
        encoded = [abi.encode_call(function, *args) for function, *args in calls]
        raws = await self.run(self.chain.call_many, address, encoded)
        return [abi.decode_result(call[0], raw) for call, raw in zip(calls, raws, strict=True)]

    def receipt_now(self, tx_hash: bytes) -> Any:
        """The receipt if the embedded chain has it, read on the loop without waiting for the worker.

        ``None`` when not mined (or forgotten); only for batching chains, see :meth:`receipt`.
        """
        return self.chain.peek_receipt(tx_hash)

    async def receipt(self, tx_hash: bytes) -> Any:
        """The receipt of ``tx_hash`` or ``None``."""
        if self.batching:
            return self.receipt_now(tx_hash)
        return await self.run(self.chain.get_receipt, tx_hash)

    # --- sending and mining -----------------------------------------------------------------------

    async def send_raw_transaction(self, raw: bytes, decoded: Any = None) -> bytes:
        """Send one signed transaction; return its hash once it is mined (or queued behind a nonce gap).

        Raises the chain's ``ChainError`` when it is refused. On an embedded chain the transactions that
        arrive within ``batch_window`` seconds of each other go into one block; ``decoded`` is the
        chain's ``decode_transaction(raw)`` when the caller already has it.
        """
        if not self.batching:
            return bytes(await self.run(self.chain.send_raw_transaction, raw, mutating=True))
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._batch.append((bytes(raw), decoded, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name=f"devnet-{self.name}-batch")
        return await future

    async def _flush(self) -> None:
        """Mine the gathered transactions, one block per round, until none are left."""
        while self._batch:
            if self.batch_window > 0:
                await asyncio.sleep(self.batch_window)
            batch, self._batch = self._batch, []
            raws = [raw for raw, _decoded, _future in batch]
            try:
                results = await self._mine_and_publish(raws, [decoded for _raw, decoded, _future in batch])
            except BaseException as exc:
                for _raw, _decoded, future in batch:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("stopped"))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                log.exception("%s chain: mining a batch failed", self.name)
                continue
            for (_raw, _decoded, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def _mine_and_publish(self, raws: list[bytes], decoded: list[Any] | None = None) -> list[Any]:
        """One worker job: submit ``raws`` (none: an empty block), mine, read the new logs; then publish.

        ``decoded`` holds, per raw transaction, the chain's decoded transaction or ``None``.
        """

        def work(since: int) -> tuple[list[Any], int, list[Any]]:
            chain = self.chain
            if self._scans:
                results, head, logs, _receipts = chain.submit_and_scan(raws, decoded, since)
                return results, head, logs
            with chain._lock:  # a node the devnet mines (anvil)
                results = chain.submit_batch(raws)[0] if raws else []
                if not raws:
                    chain.mine_block()
                head = int(chain.block_number())
                return results, head, chain.get_logs(since + 1, head) if head > since else []

        async with self._publishing():
            results, head, logs = await self.run(work, self._last_scanned)
            await self._publish(head, logs)
        return results

    async def mine_block(self) -> int:
        """Mine one block now (with whatever is pending) and publish it; returns the new head."""
        if not self.batching:
            head = int(await self.run(self.chain.mine_block, mutating=True))
            return head
        await self._mine_and_publish([])
        return self.head

    def _publishing(self) -> asyncio.Lock:
        if self._publish_lock is None:
            self._publish_lock = asyncio.Lock()
        return self._publish_lock

    def address_of(self, kind: str) -> str:
        return {
            "NectarToken": self.addresses.nectar_token,
            "BountyRegistry": self.addresses.bounty_registry,
            "ERC20Relay": self.addresses.erc20_relay,
            "ArbiterStaking": self.addresses.arbiter_staking,
        }[kind]

    def kind_of(self, address: str | None) -> str | None:
        """Which of this chain's contracts ``address`` is, or ``None``."""
        if not address:
            return None
        known = self._lower.get(address.lower())
        if known is None:
            return None
        return {
            self.addresses.nectar_token: "NectarToken",
            self.addresses.bounty_registry: "BountyRegistry",
            self.addresses.erc20_relay: "ERC20Relay",
            self.addresses.arbiter_staking: "ArbiterStaking",
        }[known]

    # --- head tracking ----------------------------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[ChainUpdate]:
        queue: asyncio.Queue[ChainUpdate] = asyncio.Queue(maxsize=10_000)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[ChainUpdate]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)

    async def wait_for_head(self, target: int, limit: float) -> bool:
        """Wait up to ``limit`` seconds until the head is at least ``target``; ``False`` on timeout."""
        assert self._head_changed is not None, "the watcher is not running"
        cond = self._head_changed
        try:
            async with asyncio.timeout(limit):
                async with cond:
                    await cond.wait_for(lambda: self.head >= target)
        except TimeoutError:
            return self.head >= target
        return True

    def kick(self) -> None:
        """Tell the watcher that the chain may have moved."""
        if self._kick is not None:
            self._kick.set()

    async def watch(self) -> None:
        """The watcher task: one per chain, runs until cancelled."""
        self._head_changed = asyncio.Condition()
        self._kick = asyncio.Event()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._kick.wait()
            self._kick.clear()
            try:
                await self._scan()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s chain watcher: scanning new blocks failed; retrying", self.name)
                await asyncio.sleep(self.poll_interval)

    async def _scan(self) -> None:
        chain = self.chain

        def work(since: int) -> tuple[int, list[Any]]:
            if self._scans:
                head, logs, _receipts = chain.scan(since)
                return head, logs
            head = int(chain.block_number())
            return head, (chain.get_logs(since + 1, head) if head > since else [])

        async with self._publishing():
            head, logs = await self.run(work, self._last_scanned)
            await self._publish(head, logs)

    async def _publish(self, head: int, logs: list[Any]) -> None:
        """Fan the blocks after the last published one up to ``head`` out (call with the publish lock)."""
        if head <= self._last_scanned:
            return
        ours = tuple(lg for lg in logs if str(lg.address).lower() in self._lower)
        self._last_scanned = head
        update = ChainUpdate(self.name, head, ours)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(update)
            except asyncio.QueueFull:
                log.warning("%s chain: a subscriber is not keeping up; dropping an update", self.name)
        self.head = head
        cond = self._head_changed
        if cond is not None:
            async with cond:
                cond.notify_all()

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        self._executor.shutdown(wait=True, cancel_futures=True)
