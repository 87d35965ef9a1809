"""The relay daemon: moves NCT between the chains like the ERC20Relay verifiers do (spec §5.14).

A deposit is an NCT ``transfer`` to the homechain relay; a withdrawal is one to the sidechain relay.
After ``confirmations`` blocks on the source chain, the daemon calls
``approveWithdrawal(from, amount, txHash, blockHash, blockNumber)`` on the other chain's relay with the
verifier key; with one verifier that pays ``amount − fees`` at once. Each source transaction is handled
once (processed hashes are remembered), and transfers at or below the destination's fee are skipped with
a warning because the contract would refuse them (spec pitfall 21).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from polyswarmclient.devnet.chainnode import ChainNode, contract_abi
from polyswarmclient.eth import abi

log = logging.getLogger(__name__)

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: Transfers remembered as handled (a log is published once; this guards a rescan) and kept in ``history``.
REMEMBERED = 10_000


@dataclass(frozen=True)
class RelayedTransfer:
    """One transfer the daemon acted on (kept for tests and logs)."""

    source: str
    tx_hash: bytes
    destination: str
    amount: int
    paid: bool
    reason: str = ""


class RelayDaemon:
    """Watches both chains; ``run()`` is the daemon task (cancel it to stop)."""

    def __init__(
        self,
        home: ChainNode,
        side: ChainNode,
        verifier_key: bytes,
        *,
        confirmations: int = 3,
        ignore_senders: tuple[str, ...] = (),
    ) -> None:
        self.home = home
        self.side = side
        self._key = verifier_key
        self.confirmations = confirmations
        self._ignore = {ZERO_ADDRESS.lower(), *(a.lower() for a in ignore_senders)}
        self._processed: OrderedDict[tuple[str, bytes], None] = OrderedDict()
        self.history: deque[RelayedTransfer] = deque(maxlen=REMEMBERED)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._direction(self.home, self.side), name="relay-deposits")
            group.create_task(self._direction(self.side, self.home), name="relay-withdrawals")

    def _is_relay_transfer(self, source: ChainNode, entry: Any) -> bool:
        return (
            str(entry.address).lower() == source.addresses.nectar_token.lower()
            and len(entry.topics) == 3
            and bytes(entry.topics[0]) == abi.TRANSFER_EVENT.topic
            and bytes(entry.topics[2])[-20:].hex() == source.addresses.erc20_relay.lower()[2:]
        )

    async def _direction(self, source: ChainNode, dest: ChainNode) -> None:
        updates = source.subscribe()
        waiting: list[Any] = []
        try:
            while True:
                update = await updates.get()
                waiting.extend(e for e in update.logs if self._is_relay_transfer(source, e))
                ready = [e for e in waiting if update.head >= e.block_number + self.confirmations]
                for entry in ready:
                    waiting.remove(entry)
                    try:
                        await self._relay(source, dest, entry)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("relay %s->%s: handling a transfer failed", source.name, dest.name)
        finally:
            source.unsubscribe(updates)

    def _remember(self, key: tuple[str, bytes]) -> None:
        self._processed[key] = None
        while len(self._processed) > REMEMBERED:
            self._processed.popitem(last=False)

    async def _relay(self, source: ChainNode, dest: ChainNode, entry: Any) -> None:
        tx_hash = bytes(entry.tx_hash)
        key = (source.name, tx_hash)
        if key in self._processed:
            return
        args = abi.TRANSFER_EVENT.decode([bytes(t) for t in entry.topics], bytes(entry.data))
        sender, amount = str(args["from"]), int(args["value"])
        self._remember(key)
        if sender.lower() in self._ignore or sender.lower() == dest.addresses.erc20_relay.lower():
            return
        fees = int(await dest.call("ERC20Relay", "fees"))
        if amount <= fees:
            log.warning(
                "relay %s->%s: transfer 0x%s of %d is not above the %s relay fee %d; not paid out",
                source.name,
                dest.name,
                tx_hash.hex(),
                amount,
                dest.name,
                fees,
            )
            self.history.append(RelayedTransfer(source.name, tx_hash, sender, amount, False, "below fee"))
            return
        block_hash = await source.run(source.chain.block_hash, int(entry.block_number))
        data = contract_abi("ERC20Relay").encode_call(
            "approveWithdrawal", sender, amount, tx_hash, bytes(block_hash), int(entry.block_number)
        )
        receipt = await dest.run(dest.chain.transact, self._key, dest.addresses.erc20_relay, data, mutating=True)
        if receipt.status != 1:
            reason = await dest.run(dest.chain.revert_reason, receipt.tx_hash)
            log.error(
                "relay %s->%s: approveWithdrawal for 0x%s reverted: %s",
                source.name,
                dest.name,
                tx_hash.hex(),
                reason or "no reason",
            )
            self.history.append(RelayedTransfer(source.name, tx_hash, sender, amount, False, reason or "reverted"))
            return
        log.info(
            "relay %s->%s: paid %d (minus fee %d) to %s for 0x%s",
            source.name,
            dest.name,
            amount,
            fees,
            sender,
            tx_hash.hex(),
        )
        self.history.append(RelayedTransfer(source.name, tx_hash, sender, amount, True))
