"""An external Ethereum node behind the ``EmbeddedChain`` interface, through web3.py (``--home-rpc``/``--side-rpc``).

The devnet drives every chain through one synchronous interface (``transact``, ``call``, ``get_logs``, ...)
on the chain's own worker thread, because the embedded py-evm chain is synchronous. ``Web3Chain`` keeps that
interface and does the work with ``AsyncWeb3`` over its HTTP provider on a private event loop (one thread
per node, one HTTP session kept alive), so the devnet's own loop never waits on a node.

Node errors become ``ChainError`` with the node's own message (``nonce too low``, ``execution reverted:
...``), so clients see what they would see from polyswarmd. ``fund`` needs a development node (anvil's or
hardhat's ``*_setBalance``, or an unlocked ``eth_accounts[0]`` as geth ``--dev`` has); ``mine_block``
needs ``evm_mine``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, TypeVar

from aiohttp import ClientTimeout
from eth_utils import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception, Web3RPCError
from web3.types import RPCEndpoint, Wei

from polyswarmclient.devnet.evm import ChainError, Log, Receipt, decode_revert_reason
from polyswarmclient.eth.rawtx import address_of, sign_transaction

T = TypeVar("T")


class NodeUnreachable(ChainError):
    """The URL does not answer as an Ethereum JSON-RPC node."""


def _raw(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


def _log(item: Any) -> Log:
    return Log(
        address=to_checksum_address(item["address"]),
        topics=[bytes(t) for t in item["topics"]],
        data=bytes(item["data"]),
        block_number=int(item["blockNumber"]),
        tx_hash=bytes(item["transactionHash"]),
        log_index=int(item["logIndex"]),
    )


def _receipt(item: Any) -> Receipt:
    contract = item.get("contractAddress")
    return Receipt(
        tx_hash=bytes(item["transactionHash"]),
        block_number=int(item["blockNumber"]),
        block_hash=bytes(item["blockHash"]),
        status=int(item.get("status", 1)),
        gas_used=int(item.get("gasUsed", 0)),
        logs=[_log(entry) for entry in item.get("logs", [])],
        to=to_checksum_address(item["to"]) if item.get("to") else None,
        sender=to_checksum_address(item["from"]),
        contract_address=to_checksum_address(contract) if contract else None,
    )


def _node_error(exc: Exception) -> ChainError:
    """The node's own words for ``exc``, with the revert data when there is some."""
    if isinstance(exc, ContractLogicError):
        data = _raw(exc.data) if isinstance(exc.data, str | bytes) else b""
        reason = decode_revert_reason(data)
        message = f"execution reverted: {reason}" if reason is not None else "execution reverted"
        return ChainError(message, reason=reason, data=data)
    if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        error = exc.rpc_response.get("error")
        if isinstance(error, dict):
            return _rpc_error(error)
    return ChainError(getattr(exc, "user_message", None) or str(exc) or type(exc).__name__)


def _rpc_error(error: Any) -> ChainError:
    """A JSON-RPC error object as the node's own words (and revert data, when there is some)."""
    if not isinstance(error, dict):
        return ChainError(str(error))
    detail = error.get("data")
    raw = _raw(detail) if isinstance(detail, str) and detail.startswith("0x") else b""
    return ChainError(str(error.get("message", error)), reason=decode_revert_reason(raw), data=raw)


class Web3Chain:
    """The EmbeddedChain interface over one node's HTTP JSON-RPC, through ``AsyncWeb3``."""

    def __init__(self, url: str, *, timeout: float = 10.0, receipt_timeout: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout
        self.receipt_timeout = receipt_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="devnet-web3", daemon=True)
        self._thread.start()
        provider = AsyncHTTPProvider(
            url, request_kwargs={"timeout": ClientTimeout(total=timeout)}, exception_retry_configuration=None
        )
        self.w3 = AsyncWeb3(provider)
        self._contracts: dict[tuple[str, str], Any] = {}
        try:
            self.chain_id: int = self._run(self._chain_id())
        except ChainError:
            self.close()
            raise

    async def _chain_id(self) -> int:
        try:
            return int(await self.w3.eth.chain_id)
        except Exception as exc:  # web3's, aiohttp's (web3 does not wrap them), a timeout, a bad answer
            detail = str(exc) or type(exc).__name__
            raise NodeUnreachable(f"{self.url} does not answer as an Ethereum JSON-RPC node ({detail})") from None

    # --- plumbing ------------------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this node's loop and wait for it; any web3 or transport error is a ChainError."""
        future = asyncio.run_coroutine_threadsafe(self._guard(coro), self._loop)
        return future.result()

    async def _guard(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            return await coro
        except ChainError:
            raise
        except (Web3Exception, ValueError) as exc:
            raise _node_error(exc) from None
        except (OSError, TimeoutError) as exc:
            raise ChainError(f"cannot reach {self.url}: {exc}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("aiohttp"):
                raise ChainError(f"cannot reach {self.url}: {exc}") from None
            raise

    async def _rpc(self, method: str, params: list[Any]) -> Any:
        """A method web3 has no wrapper for (``evm_mine``, ``anvil_setBalance``, ``txpool_content``)."""
        response = await self.w3.provider.make_request(RPCEndpoint(method), params)
        error = response.get("error")
        if error:
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            raise ChainError(str(message))
        return response.get("result")

    def close(self) -> None:
        """Close the HTTP session and stop this node's loop (idempotent)."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.w3.provider.disconnect(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    # --- blocks ------------------------------------------------------------------------------------

    def block_number(self) -> int:
        async def go() -> int:
            return int(await self.w3.eth.block_number)

        return self._run(go())

    def _block(self, ident: int | str) -> Any:
        async def go() -> Any:
            return await self.w3.eth.get_block(ident)  # type: ignore[arg-type]

        return self._run(go())

    def block_hash(self, number: int) -> bytes:
        return bytes(self._block(number)["hash"])

    def block_timestamp(self, number: int) -> int:
        return int(self._block(number)["timestamp"])

    def block_gas_limit(self) -> int:
        return int(self._block("latest")["gasLimit"])

    def mine_block(self) -> int:
        async def go() -> int:
            await self._rpc("evm_mine", [])
            return int(await self.w3.eth.block_number)

        return self._run(go())

    # --- state -------------------------------------------------------------------------------------

    def eth_balance(self, address: str) -> int:
        async def go() -> int:
            return int(await self.w3.eth.get_balance(to_checksum_address(address)))

        return self._run(go())

    def get_code(self, address: str) -> bytes:
        async def go() -> bytes:
            return bytes(await self.w3.eth.get_code(to_checksum_address(address)))

        return self._run(go())

    def get_nonce(self, address: str, *, pending: bool = False) -> int:
        async def go() -> int:
            tag: Literal["pending", "latest"] = "pending" if pending else "latest"
            return int(await self.w3.eth.get_transaction_count(to_checksum_address(address), tag))

        return self._run(go())

    def pending_nonces(self, address: str) -> list[int]:
        """Nonces in the node's txpool (pending and queued); ``[]`` when it has no txpool API."""

        async def go() -> list[int]:
            try:
                pool = await self._rpc("txpool_content", [])
            except ChainError:
                return []
            wanted = address.lower()
            nonces: set[int] = set()
            for section in ("pending", "queued"):
                for sender, by_nonce in (pool or {}).get(section, {}).items():
                    if sender.lower() == wanted:
                        nonces.update(int(n) for n in by_nonce)
            return sorted(nonces)

        return self._run(go())

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: int | None = None) -> bytes:
        async def go() -> bytes:
            tx: dict[str, Any] = {"to": to_checksum_address(to), "data": bytes(data)}
            if sender:
                tx["from"] = to_checksum_address(sender)
            return bytes(await self.w3.eth.call(tx, "latest" if block is None else block))  # type: ignore[arg-type]

        return self._run(go())

    def contract(self, kind: str, address: str) -> Any:
        """The web3 contract object of our compiled ``kind`` (``BountyRegistry``...) at ``address``."""
        key = (kind, address.lower())
        contract = self._contracts.get(key)
        if contract is None:
            from polyswarmclient.devnet.contracts.compile import load_artifact

            abi = load_artifact(kind)["abi"]
            contract = self._contracts[key] = self.w3.eth.contract(address=to_checksum_address(address), abi=abi)
        return contract

    def contract_calls(self, kind: str, address: str, calls: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Read-only calls ``(function, *args)`` of ``kind`` at ``address`` through its contract object: one
        JSON-RPC batch, all at the same block. Each result is web3's decoding: the output when there is one,
        else the list of outputs."""
        contract = self.contract(kind, address)

        async def go() -> list[Any]:
            block = int(await self.w3.eth.block_number)
            functions = [contract.functions[name](*args) for name, *args in calls]
            if len(functions) == 1:
                return [await functions[0].call(block_identifier=block)]
            async with self.w3.batch_requests() as batch:
                for function in functions:
                    batch.add(function.call(block_identifier=block))
                responses = await batch.async_execute()
            return list(responses)

        return self._run(go())

    def create_code(self, init_code: bytes, *, sender: str) -> bytes:
        """The runtime code ``init_code`` would leave behind, by calling it as a creation (nothing is sent)."""

        async def go() -> bytes:
            tx: dict[str, Any] = {"from": to_checksum_address(sender), "data": bytes(init_code)}
            return bytes(await self.w3.eth.call(tx))  # type: ignore[arg-type]

        return self._run(go())

    def get_logs(
        self, from_block: int, to_block: int, *, address: str | None = None, topic0: bytes | None = None
    ) -> list[Log]:
        async def go() -> list[Log]:
            flt: dict[str, Any] = {"fromBlock": from_block, "toBlock": to_block}
            if address:
                flt["address"] = to_checksum_address(address)
            if topic0 is not None:
                flt["topics"] = ["0x" + bytes(topic0).hex()]
            return [_log(item) for item in await self.w3.eth.get_logs(flt)]  # type: ignore[arg-type]

        return self._run(go())

    # --- transactions --------------------------------------------------------------------------------

    def send_raw_transaction(self, raw: bytes) -> bytes:
        async def go() -> bytes:
            return bytes(await self.w3.eth.send_raw_transaction(bytes(raw)))

        return self._run(go())

    async def _receipt(self, tx_hash: bytes) -> Receipt | None:
        try:
            item = await self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        if item.get("blockNumber") is None:
            return None
        return _receipt(item)

    def get_receipt(self, tx_hash: bytes) -> Receipt | None:
        return self._run(self._receipt(tx_hash))

    async def _wait_receipt(self, tx_hash: bytes) -> Receipt:
        deadline = time.monotonic() + self.receipt_timeout
        while time.monotonic() < deadline:
            receipt = await self._receipt(tx_hash)
            if receipt is not None:
                return receipt
            await asyncio.sleep(0.05)
        raise ChainError(f"transaction 0x{tx_hash.hex()} was not mined within {self.receipt_timeout} s")

    def revert_reason(self, tx_hash: bytes) -> str | None:
        """Replay a failed transaction as a call on its parent block and decode ``Error(string)``."""

        async def go() -> str | None:
            try:
                tx = await self.w3.eth.get_transaction(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None
            if tx.get("blockNumber") is None:
                return None
            call: dict[str, Any] = {"from": tx["from"], "data": tx.get("input", b""), "value": tx.get("value", 0)}
            if tx.get("to"):
                call["to"] = tx["to"]
            try:
                await self.w3.eth.call(call, int(tx["blockNumber"]) - 1)  # type: ignore[arg-type]
            except (Web3Exception, ValueError) as exc:
                error = _node_error(exc)
                return error.reason or error.message
            return None

        return self._run(go())

    async def _tx_gas(self) -> int:
        return int((await self.w3.eth.get_block("latest"))["gasLimit"]) // 2

    async def _send_signed(self, private_key: bytes, to: str | None, data: bytes, value: int) -> bytes:
        """Sign with ``private_key`` (next pending nonce, the node's gas price) and send; the hash."""
        sender = to_checksum_address(address_of(private_key))
        fields: dict[str, Any] = {
            "nonce": int(await self.w3.eth.get_transaction_count(sender, "pending")),
            "gasPrice": int(await self.w3.eth.gas_price),
            "gas": await self._tx_gas(),
            "value": value,
            "data": bytes(data),
            "chainId": self.chain_id,
        }
        if to is not None:
            fields["to"] = to_checksum_address(to)
        return bytes(await self.w3.eth.send_raw_transaction(sign_transaction(private_key, fields)))

    def transact(self, private_key: bytes, to: str | None, data: bytes, value: int = 0) -> Receipt:
        """Sign with ``private_key`` and send (see ``_send_signed``), then wait for the receipt."""

        async def go() -> Receipt:
            return await self._wait_receipt(await self._send_signed(private_key, to, data, value))

        return self._run(go())

    def fund(self, address: str, wei: int) -> None:
        """Give ``address`` ``wei`` more ETH, with whatever development API the node has."""

        async def go() -> None:
            target = to_checksum_address(address)
            balance = int(await self.w3.eth.get_balance(target))
            for method in ("anvil_setBalance", "hardhat_setBalance"):
                try:
                    await self._rpc(method, [target, hex(balance + wei)])
                    return
                except ChainError:
                    continue
            accounts = await self.w3.eth.accounts
            if not accounts:
                raise ChainError(f"{self.url} has no dev funding API and no unlocked account; fund {target} yourself")
            tx_hash = await self.w3.eth.send_transaction({"from": accounts[0], "to": target, "value": Wei(wei)})
            await self._wait_receipt(bytes(tx_hash))

        self._run(go())


class MinedWeb3Chain(Web3Chain):
    """A node whose blocks the devnet makes (anvil ``--no-mining``): the batching interface of the embedded chain.

    ``submit_batch`` sends the transactions that arrived together and mines them into one block with
    ``evm_mine`` (the ``ChainNode`` batches them as it does on py-evm, so a burst of traffic does not run
    the bounty windows down one block per transaction); ``transact`` and ``mine_block`` mine at once too.
    The receipts of every block mined here are kept (the last ``receipt_cache`` of them), for
    ``peek_receipt`` to answer from the event loop without I/O. ``block_gas_limit`` is what one transaction
    may use (``tx_gas``); the node's blocks hold many.
    """

    def __init__(self, url: str, *, tx_gas: int, receipt_cache: int = 50_000, **kwargs: Any) -> None:
        self._lock = threading.RLock()
        self.tx_gas = tx_gas
        self.receipt_cache = receipt_cache
        self._receipts: OrderedDict[bytes, Receipt] = OrderedDict()
        super().__init__(url, **kwargs)

    async def _tx_gas(self) -> int:
        return self.tx_gas

    def block_gas_limit(self) -> int:
        return self.tx_gas

    async def _mine(self) -> tuple[int, list[Receipt]]:
        """``evm_mine`` one block and keep its receipts; the new head and the receipts."""
        await self._rpc("evm_mine", [])
        head = int(await self.w3.eth.block_number)
        receipts = [_receipt(item) for item in await self.w3.eth.get_block_receipts(head)]
        for receipt in receipts:
            self._receipts[receipt.tx_hash] = receipt
        while len(self._receipts) > self.receipt_cache:
            self._receipts.popitem(last=False)
        return head, receipts

    def mine_block(self) -> int:
        with self._lock:
            head, _receipts = self._run(self._mine())
            return head

    def submit_batch(self, raws: list[bytes]) -> tuple[list[bytes | ChainError], list[Receipt]]:
        """Send each raw transaction, then mine one block; per transaction its hash or the node's refusal,
        and the receipts of the block (a transaction behind a nonce gap keeps its hash and waits)."""

        async def go() -> tuple[list[bytes | ChainError], list[Receipt]]:
            results = await self._send_all(raws)
            _head, receipts = await self._mine()
            return results, receipts

        with self._lock:
            return self._run(go())

    async def _send_all(self, raws: list[bytes]) -> list[bytes | ChainError]:
        """``eth_sendRawTransaction`` of each, in one JSON-RPC batch request; per transaction its hash or
        the node's refusal."""
        if not raws:
            return []
        requests = [(RPCEndpoint("eth_sendRawTransaction"), ["0x" + bytes(raw).hex()]) for raw in raws]
        responses = await self.w3.provider.make_batch_request(requests)
        if not isinstance(responses, list):  # the node refused the batch as a whole
            return [_rpc_error(responses.get("error", responses)) for _ in raws]
        if len(responses) != len(raws):
            raise ChainError(f"{self.url} answered {len(raws)} transactions with {len(responses)} results")
        results: list[bytes | ChainError] = []
        for response in responses:
            if response.get("error") is not None:
                results.append(_rpc_error(response["error"]))
            else:
                results.append(_raw(response.get("result")))
        return results

    def peek_receipt(self, tx_hash: bytes) -> Receipt | None:
        """A receipt of a block mined here, without I/O (safe on the event loop); ``None`` otherwise."""
        return self._receipts.get(bytes(tx_hash))

    def get_receipt(self, tx_hash: bytes) -> Receipt | None:
        return self.peek_receipt(tx_hash) or super().get_receipt(tx_hash)

    def transact(self, private_key: bytes, to: str | None, data: bytes, value: int = 0) -> Receipt:
        """Sign, send and mine at once (the node does not mine by itself); the receipt."""

        async def go() -> Receipt:
            tx_hash = await self._send_signed(private_key, to, data, value)
            await self._mine()
            receipt = self._receipts.get(tx_hash)
            return receipt if receipt is not None else await self._wait_receipt(tx_hash)

        with self._lock:
            return self._run(go())
