"""An external Ethereum JSON-RPC node behind the ``EmbeddedChain`` interface (``--home-rpc/--side-rpc``).

Deliberately small and synchronous (``urllib``): the devnet runs every chain call on the chain's worker
thread. Node errors become ``ChainError`` with the node's own message, so geth wording such as
``nonce too low`` or ``known transaction`` reaches clients unchanged. ``fund`` needs a dev node
(anvil/hardhat ``*_setBalance``, or an unlocked ``eth_accounts[0]``); ``mine_block`` needs ``evm_mine``.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request
from typing import Any

from eth_utils import to_checksum_address

from polyswarmclient.devnet.evm import ChainError, Log, Receipt, decode_revert_reason
from polyswarmclient.eth.rawtx import address_of, sign_transaction


def _hex(value: int) -> str:
    return hex(value)


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _bytes(value: str | None) -> bytes:
    if not value:
        return b""
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def _0x(data: bytes) -> str:
    return "0x" + bytes(data).hex()


class RpcChain:
    """The EmbeddedChain interface over HTTP JSON-RPC."""

    def __init__(self, url: str, *, timeout: float = 10.0, receipt_timeout: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout
        self.receipt_timeout = receipt_timeout
        self._ids = itertools.count(1)
        self.chain_id: int = _int(self.request("eth_chainId", []))

    # --- transport ---------------------------------------------------------------------------------

    def request(self, method: str, params: list[Any]) -> Any:
        payload = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        req = urllib.request.Request(
            self.url, data=payload.encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.URLError as exc:
            raise ChainError(f"cannot reach {self.url}: {exc.reason}") from None
        except ValueError:
            raise ChainError(f"{self.url} answered {method} with something that is not JSON") from None
        if not isinstance(body, dict):
            raise ChainError(f"{self.url} answered {method} with a bad JSON-RPC envelope")
        error = body.get("error")
        if error:
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            data = error.get("data") if isinstance(error, dict) else None
            raw = _bytes(data) if isinstance(data, str) and data.startswith("0x") else b""
            raise ChainError(str(message), reason=decode_revert_reason(raw), data=raw)
        return body.get("result")

    # --- blocks ------------------------------------------------------------------------------------

    def block_number(self) -> int:
        return _int(self.request("eth_blockNumber", []))

    def _block(self, tag: str) -> dict[str, Any]:
        block = self.request("eth_getBlockByNumber", [tag, False])
        if not block:
            raise ChainError(f"unknown block {tag}")
        return dict(block)

    def block_hash(self, number: int) -> bytes:
        return _bytes(self._block(_hex(number))["hash"])

    def block_gas_limit(self) -> int:
        return _int(self._block("latest")["gasLimit"])

    def mine_block(self) -> int:
        self.request("evm_mine", [])
        return self.block_number()

    # --- state -------------------------------------------------------------------------------------

    def eth_balance(self, address: str) -> int:
        return _int(self.request("eth_getBalance", [to_checksum_address(address), "latest"]))

    def get_nonce(self, address: str, *, pending: bool = False) -> int:
        tag = "pending" if pending else "latest"
        return _int(self.request("eth_getTransactionCount", [to_checksum_address(address), tag]))

    def pending_nonces(self, address: str) -> list[int]:
        """Nonces in the node's txpool (pending and queued); ``[]`` when it has no txpool API."""
        try:
            pool = self.request("txpool_content", [])
        except ChainError:
            return []
        wanted = address.lower()
        nonces: set[int] = set()
        for section in ("pending", "queued"):
            for sender, by_nonce in (pool or {}).get(section, {}).items():
                if sender.lower() == wanted:
                    nonces.update(int(n) for n in by_nonce)
        return sorted(nonces)

    def call(self, to: str, data: bytes, *, sender: str | None = None, block: int | None = None) -> bytes:
        tx: dict[str, Any] = {"to": to_checksum_address(to), "data": _0x(data)}
        if sender:
            tx["from"] = to_checksum_address(sender)
        return _bytes(self.request("eth_call", [tx, "latest" if block is None else _hex(block)]))

    def get_logs(
        self, from_block: int, to_block: int, *, address: str | None = None, topic0: bytes | None = None
    ) -> list[Log]:
        flt: dict[str, Any] = {"fromBlock": _hex(from_block), "toBlock": _hex(to_block)}
        if address:
            flt["address"] = to_checksum_address(address)
        if topic0 is not None:
            flt["topics"] = [_0x(topic0)]
        return [self._log(item) for item in self.request("eth_getLogs", [flt]) or []]

    @staticmethod
    def _log(item: dict[str, Any]) -> Log:
        return Log(
            address=to_checksum_address(item["address"]),
            topics=[_bytes(t) for t in item.get("topics", [])],
            data=_bytes(item.get("data")),
            block_number=_int(item["blockNumber"]),
            tx_hash=_bytes(item["transactionHash"]),
            log_index=_int(item.get("logIndex", "0x0")),
        )

    # --- transactions --------------------------------------------------------------------------------

    def send_raw_transaction(self, raw: bytes) -> bytes:
        return _bytes(self.request("eth_sendRawTransaction", [_0x(raw)]))

    def get_receipt(self, tx_hash: bytes) -> Receipt | None:
        item = self.request("eth_getTransactionReceipt", [_0x(tx_hash)])
        if not item or item.get("blockNumber") is None:
            return None
        return Receipt(
            tx_hash=_bytes(item["transactionHash"]),
            block_number=_int(item["blockNumber"]),
            block_hash=_bytes(item["blockHash"]),
            status=_int(item.get("status", "0x1")),
            gas_used=_int(item.get("gasUsed", "0x0")),
            logs=[self._log(entry) for entry in item.get("logs", [])],
            to=to_checksum_address(item["to"]) if item.get("to") else None,
            sender=to_checksum_address(item["from"]),
            contract_address=to_checksum_address(item["contractAddress"]) if item.get("contractAddress") else None,
        )

    def revert_reason(self, tx_hash: bytes) -> str | None:
        """Replay a failed transaction as a call on its parent block and decode ``Error(string)``."""
        tx = self.request("eth_getTransactionByHash", [_0x(tx_hash)])
        if not tx or tx.get("blockNumber") is None:
            return None
        call = {
            "from": tx["from"],
            "to": tx.get("to"),
            "data": tx.get("input", "0x"),
            "value": tx.get("value", "0x0"),
        }
        try:
            self.request("eth_call", [call, _hex(_int(tx["blockNumber"]) - 1)])
        except ChainError as exc:
            return exc.reason or str(exc)
        return None

    def transact(self, private_key: bytes, to: str | None, data: bytes, value: int = 0) -> Receipt:
        sender = address_of(private_key)
        fields: dict[str, Any] = {
            "nonce": self.get_nonce(sender, pending=True),
            "gasPrice": _int(self.request("eth_gasPrice", [])),
            "gas": self.block_gas_limit(),
            "value": value,
            "data": bytes(data),
            "chainId": self.chain_id,
        }
        if to is not None:
            fields["to"] = to_checksum_address(to)
        tx_hash = self.send_raw_transaction(sign_transaction(private_key, fields))
        deadline = time.monotonic() + self.receipt_timeout
        while time.monotonic() < deadline:
            receipt = self.get_receipt(tx_hash)
            if receipt is not None:
                return receipt
            time.sleep(0.1)
        raise ChainError(f"transaction {_0x(tx_hash)} was not mined within {self.receipt_timeout} s")

    def fund(self, address: str, wei: int) -> None:
        """Give ``address`` at least ``wei`` more ETH, with whatever dev API the node has."""
        target = to_checksum_address(address)
        new_balance = _hex(self.eth_balance(target) + wei)
        for method in ("anvil_setBalance", "hardhat_setBalance"):
            try:
                self.request(method, [target, new_balance])
                return
            except ChainError:
                continue
        accounts = self.request("eth_accounts", []) or []
        if not accounts:
            raise ChainError(f"{self.url} has no dev funding API and no unlocked account; fund {target} yourself")
        tx_hash = self.request("eth_sendTransaction", [{"from": accounts[0], "to": target, "value": _hex(wei)}])
        deadline = time.monotonic() + self.receipt_timeout
        while self.get_receipt(_bytes(tx_hash)) is None:
            if time.monotonic() > deadline:
                raise ChainError(f"funding {target} was not mined within {self.receipt_timeout} s")
            time.sleep(0.1)
