"""Contract logs rendered the two ways polyswarmd renders them.

* ``ws_event``: a log as a typed websocket event (``wire.events``), for the ``/events`` stream (spec §3.3).
* ``transaction_events``: a receipt as the ``GET /transactions`` event lists (spec §2.3): only the first
  log of each event type per transaction, ``SettledBounty`` never.
"""

from __future__ import annotations

from typing import Any

from polyswarmclient.devnet.artifacts import ArtifactStore
from polyswarmclient.devnet.chainnode import ChainNode
from polyswarmclient.devnet.metadata import resolve_assertion_metadata, resolve_bounty_metadata
from polyswarmclient.eth import abi
from polyswarmclient.wire import events as ev
from polyswarmclient.wire.bits import int_to_bools

ARTIFACT_TYPES = {0: "file", 1: "url"}

_REGISTRY_EVENTS = {
    sig.topic: sig
    for sig in (
        abi.NEW_BOUNTY,
        abi.NEW_ASSERTION,
        abi.REVEALED_ASSERTION,
        abi.NEW_VOTE,
        abi.QUORUM_REACHED,
        abi.SETTLED_BOUNTY,
        abi.FEES_UPDATED,
        abi.WINDOWS_UPDATED,
        abi.DEPRECATED,
        abi.UNDEPRECATED,
    )
}
_STAKING_EVENTS = {sig.topic: sig for sig in (abi.NEW_DEPOSIT, abi.NEW_WITHDRAWAL)}


def bool_list(value: int, num_artifacts: int) -> list[bool]:
    """A bitset as polyswarmd renders it: padded to ``num_artifacts``, never cut (spec §3.3).

    A reveal may set verdict bits at or above ``num_artifacts``; polyswarmd keeps them, so the list is
    then longer than ``num_artifacts`` and still equals what the revealer sent.
    """
    return int_to_bools(value, max(num_artifacts, int(value).bit_length()))


def hex0x(value: bytes) -> str:
    return "0x" + bytes(value).hex()


def guid_str(value: int) -> str:
    return abi.int_to_guid(value)


#: Logs decoded lately, by what the decoding reads (the contract kind, topics and data): the websocket
#: renders a block's logs, and ``GET /transactions`` renders the same logs again once the block has one
#: more on top.
_DECODED: dict[tuple[str | None, tuple[bytes, ...], bytes], tuple[str, dict[str, Any]] | None] = {}
DECODED_KEPT = 4096


def _decode(node: ChainNode, log: Any) -> tuple[str, dict[str, Any]] | None:
    """``(event name, args)`` of one of our contracts' logs, or ``None`` for anything else.

    The result is shared between callers (they read it, never change it).
    """
    if not log.topics:
        return None
    topics = tuple(bytes(t) for t in log.topics)
    key = (node.kind_of(str(log.address)), topics, bytes(log.data))
    try:
        return _DECODED[key]
    except KeyError:
        pass
    decoded = _decode_new(key[0], topics, key[2])
    if len(_DECODED) >= DECODED_KEPT:
        del _DECODED[next(iter(_DECODED))]
    _DECODED[key] = decoded
    return decoded


def _decode_new(kind: str | None, topics: tuple[bytes, ...], data: bytes) -> tuple[str, dict[str, Any]] | None:
    topic0 = topics[0]
    sig = None
    if kind == "BountyRegistry":
        sig = _REGISTRY_EVENTS.get(topic0)
    elif kind == "ArbiterStaking":
        sig = _STAKING_EVENTS.get(topic0)
    elif kind == "NectarToken" and topic0 == abi.TRANSFER_EVENT.topic:
        sig = abi.TRANSFER_EVENT
    if sig is None:
        return None
    try:
        return sig.name, sig.decode(list(topics), data)
    except Exception:
        return None


def ws_event(node: ChainNode, log: Any, store: ArtifactStore) -> ev.Event | None:
    """The websocket event for ``log``, or ``None`` when the stream does not carry it."""
    decoded = _decode(node, log)
    if decoded is None:
        return None
    name, a = decoded
    common: dict[str, Any] = {
        "chain": node.name,
        "block_number": int(log.block_number),
        "txhash": hex0x(log.tx_hash),
    }
    match name:
        case "NewBounty":
            return ev.NewBounty(
                guid=guid_str(a["guid"]),
                artifact_type=ARTIFACT_TYPES.get(a["artifactType"], str(a["artifactType"])),
                author=a["author"],
                amount=a["amount"],
                uri=a["artifactURI"],
                expiration=a["expirationBlock"],
                metadata=resolve_bounty_metadata(store, a["metadata"]),
                **common,
            )
        case "NewAssertion":
            n = a["numArtifacts"]
            return ev.NewAssertion(
                bounty_guid=guid_str(a["bountyGuid"]),
                author=a["author"],
                index=a["index"],
                bid=tuple(a["bid"]),
                mask=tuple(bool_list(a["mask"], n)),
                commitment=a["commitment"],
                **common,
            )
        case "RevealedAssertion":
            return ev.Revealed(
                bounty_guid=guid_str(a["bountyGuid"]),
                author=a["author"],
                index=a["index"],
                nonce=a["nonce"],
                verdicts=tuple(bool_list(a["verdicts"], a["numArtifacts"])),
                metadata=resolve_assertion_metadata(store, a["metadata"]),
                **common,
            )
        case "NewVote":
            return ev.NewVote(
                bounty_guid=guid_str(a["bountyGuid"]),
                voter=a["voter"],
                votes=tuple(bool_list(a["votes"], a["numArtifacts"])),
                **common,
            )
        case "QuorumReached":
            return ev.QuorumReached(bounty_guid=guid_str(a["bountyGuid"]), **common)
        case "SettledBounty":
            return ev.SettledBounty(
                bounty_guid=guid_str(a["bountyGuid"]), settler=a["settler"], payout=a["payout"], **common
            )
        case "FeesUpdated":
            return ev.FeeUpdate(bounty_fee=a["bountyFee"], assertion_fee=a["assertionFee"], **common)
        case "WindowsUpdated":
            return ev.WindowUpdate(
                assertion_reveal_window=a["assertionRevealWindow"],
                arbiter_vote_window=a["arbiterVoteWindow"],
                **common,
            )
        case "Deprecated":
            return ev.Deprecated(rollover=bool(a["rollover"]), **common)
        case "Undeprecated":
            return ev.Undeprecated(**common)
    return None


def _transaction_item(name: str, a: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    match name:
        case "Transfer":
            return "transfers", {"from": a["from"], "to": a["to"], "value": str(a["value"])}
        case "NewBounty":
            return "bounties", {
                "guid": guid_str(a["guid"]),
                "artifact_type": ARTIFACT_TYPES.get(a["artifactType"], str(a["artifactType"])),
                "author": a["author"],
                "amount": str(a["amount"]),
                "uri": a["artifactURI"],
                "expiration": str(a["expirationBlock"]),
                "metadata": a["metadata"],
            }
        case "NewAssertion":
            return "assertions", {
                "bounty_guid": guid_str(a["bountyGuid"]),
                "author": a["author"],
                "index": a["index"],
                "bid": [str(b) for b in a["bid"]],
                "mask": bool_list(a["mask"], a["numArtifacts"]),
                "commitment": str(a["commitment"]),
            }
        case "RevealedAssertion":
            return "reveals", {
                "bounty_guid": guid_str(a["bountyGuid"]),
                "author": a["author"],
                "index": a["index"],
                "nonce": str(a["nonce"]),
                "verdicts": bool_list(a["verdicts"], a["numArtifacts"]),
                "metadata": a["metadata"],
            }
        case "NewVote":
            return "votes", {
                "bounty_guid": guid_str(a["bountyGuid"]),
                "voter": a["voter"],
                "votes": bool_list(a["votes"], a["numArtifacts"]),
            }
        case "NewWithdrawal":
            return "withdrawals", {"to": a["to"], "value": a["value"]}
        case "NewDeposit":
            return "deposits", {"from": a["from"], "value": a["value"]}
    return None


def transaction_events(node: ChainNode, logs: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The ``GET /transactions`` lists of one receipt: the first log of each event type only."""
    out: dict[str, list[dict[str, Any]]] = {}
    for log in logs:
        decoded = _decode(node, log)
        if decoded is None:
            continue
        item = _transaction_item(*decoded)
        if item is None:
            continue
        key, value = item
        if key not in out:
            out[key] = [value]
    return out
