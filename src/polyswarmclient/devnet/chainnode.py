"""One chain of the devnet as the server sees it: the chain, its contracts, a lock, and a head watcher.

Every chain operation runs on the chain's own single worker thread, which is the chain's lock and keeps
the event loop responsive even when an EVM call or a JSON-RPC round trip is slow. One watcher task per
chain notices new blocks and fans ``ChainUpdate`` values (the new head plus the contract logs it brought)
out to subscriber queues: the websocket hub and the relay daemon each own one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from polyswarmclient.devnet.abicall import ContractAbi

log = logging.getLogger(__name__)

T = TypeVar("T")

CONTRACT_KINDS = ("NectarToken", "BountyRegistry", "ERC20Relay", "ArbiterStaking")


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
        data = abi.encode_call(function, *args)
        raw = await self.run(self.chain.call, self.address_of(kind), data)
        return abi.decode_result(function, bytes(raw))

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
        head = int(await self.run(self.chain.block_number))
        if head <= self._last_scanned:
            return
        logs = await self.run(self.chain.get_logs, self._last_scanned + 1, head)
        ours = tuple(lg for lg in logs if str(lg.address).lower() in self._lower)
        self._last_scanned = head
        update = ChainUpdate(self.name, head, ours)
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(update)
            except asyncio.QueueFull:
                log.warning("%s chain: a subscriber is not keeping up; dropping an update", self.name)
        assert self._head_changed is not None
        async with self._head_changed:
            self.head = head
            self._head_changed.notify_all()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
