"""WebSocket event messages (spec §3): typed, frozen values, parsed and rendered in one place.

``to_message`` renders exactly the ``data`` keys of spec §3.3, so the devnet server and the client
share one definition and peers such as polyswarm-client 2.13.3 (which splat ``data`` into
fixed-signature callbacks) keep working.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polyswarmclient.errors import MalformedResponse


@dataclass(frozen=True, kw_only=True)
class Event:
    """Common envelope fields. ``chain`` is the stream the event came from."""

    chain: str = "side"
    block_number: int | None = None
    txhash: str | None = None


@dataclass(frozen=True, kw_only=True)
class Connected(Event):
    start_time: str


@dataclass(frozen=True, kw_only=True)
class Block(Event):
    number: int


@dataclass(frozen=True, kw_only=True)
class FeeUpdate(Event):
    bounty_fee: int
    assertion_fee: int


@dataclass(frozen=True, kw_only=True)
class WindowUpdate(Event):
    assertion_reveal_window: int
    arbiter_vote_window: int


@dataclass(frozen=True, kw_only=True)
class NewBounty(Event):
    guid: str
    artifact_type: str
    author: str
    amount: int
    uri: str
    expiration: int
    metadata: Any = ""


@dataclass(frozen=True, kw_only=True)
class NewAssertion(Event):
    bounty_guid: str
    author: str
    index: int
    bid: tuple[int, ...]
    mask: tuple[bool, ...]
    commitment: int


@dataclass(frozen=True, kw_only=True)
class Revealed(Event):
    bounty_guid: str
    author: str
    index: int
    nonce: int
    verdicts: tuple[bool, ...]
    metadata: Any = ""


@dataclass(frozen=True, kw_only=True)
class NewVote(Event):
    bounty_guid: str
    voter: str
    votes: tuple[bool, ...]


@dataclass(frozen=True, kw_only=True)
class QuorumReached(Event):
    bounty_guid: str


@dataclass(frozen=True, kw_only=True)
class SettledBounty(Event):
    bounty_guid: str
    settler: str
    payout: int


@dataclass(frozen=True, kw_only=True)
class Deprecated(Event):
    rollover: bool


@dataclass(frozen=True, kw_only=True)
class Undeprecated(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class InitializedChannel(Event):
    ambassador: str
    expert: str
    guid: str
    multi_signature: str


@dataclass(frozen=True, kw_only=True)
class Reconnected(Event):
    """Not a polyswarmd message: the client's marker that the stream of ``chain`` was re-established.

    polyswarmd replays nothing, so events emitted while the stream was down are gone: re-fetch
    parameters and catch up (page ``GET /bounties``) before trusting local state.
    """


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """A message type this version does not know. Logged, never fatal."""

    name: str
    data: Any = field(default=None)


#: wire name -> class
EVENT_NAMES: dict[str, type[Event]] = {
    "connected": Connected,
    "block": Block,
    "fee_update": FeeUpdate,
    "window_update": WindowUpdate,
    "bounty": NewBounty,
    "assertion": NewAssertion,
    "reveal": Revealed,
    "vote": NewVote,
    "quorum": QuorumReached,
    "settled_bounty": SettledBounty,
    "deprecated": Deprecated,
    "undeprecated": Undeprecated,
    "initialized_channel": InitializedChannel,
}
_NAME_OF = {cls: name for name, cls in EVENT_NAMES.items()}


def _bools(value: Any) -> tuple[bool, ...]:
    if not isinstance(value, list) or not all(isinstance(v, bool) for v in value):
        raise ValueError("expected a list of booleans")
    return tuple(value)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def parse_event(message: Any, chain: str) -> Event:
    """Turn one decoded JSON message into an :class:`Event`.

    Raises :class:`MalformedResponse` when a known event has the wrong shape; unknown event names
    become :class:`UnknownEvent`.
    """
    if not isinstance(message, dict) or not isinstance(message.get("event"), str):
        raise MalformedResponse(f"websocket message without an event name: {str(message)[:120]}")
    name = message["event"]
    data = message.get("data")
    common: dict[str, Any] = {"chain": chain}
    if isinstance(message.get("block_number"), int):
        common["block_number"] = message["block_number"]
    if isinstance(message.get("txhash"), str):
        common["txhash"] = message["txhash"]
    if name not in EVENT_NAMES:
        return UnknownEvent(name=name, data=data, **common)
    if not isinstance(data, dict):
        raise MalformedResponse(f"websocket {name!r} event without a data object")
    try:
        return _build(name, data, common)
    except (KeyError, ValueError, TypeError) as exc:
        raise MalformedResponse(f"websocket {name!r} event with bad data ({exc}): {str(data)[:200]}") from None


def _build(name: str, d: dict[str, Any], common: dict[str, Any]) -> Event:
    match name:
        case "connected":
            return Connected(start_time=str(d["start_time"]), **common)
        case "block":
            return Block(number=_int(d["number"]), **common)
        case "fee_update":
            return FeeUpdate(bounty_fee=_int(d["bounty_fee"]), assertion_fee=_int(d["assertion_fee"]), **common)
        case "window_update":
            return WindowUpdate(
                assertion_reveal_window=_int(d["assertion_reveal_window"]),
                arbiter_vote_window=_int(d["arbiter_vote_window"]),
                **common,
            )
        case "bounty":
            return NewBounty(
                guid=_str(d["guid"]),
                artifact_type=_str(d.get("artifact_type", "file")),
                author=_str(d["author"]),
                amount=_int(d["amount"]),
                uri=_str(d["uri"]),
                expiration=_int(d["expiration"]),
                metadata=d.get("metadata", ""),
                **common,
            )
        case "assertion":
            bid = d["bid"]
            bids = tuple(_int(b) for b in (bid if isinstance(bid, list) else [bid]))
            return NewAssertion(
                bounty_guid=_str(d["bounty_guid"]),
                author=_str(d["author"]),
                index=_int(d["index"]),
                bid=bids,
                mask=_bools(d["mask"]),
                commitment=_int(d["commitment"]),
                **common,
            )
        case "reveal":
            return Revealed(
                bounty_guid=_str(d["bounty_guid"]),
                author=_str(d["author"]),
                index=_int(d["index"]),
                nonce=_int(d["nonce"]),
                verdicts=_bools(d["verdicts"]),
                metadata=d.get("metadata", ""),
                **common,
            )
        case "vote":
            return NewVote(
                bounty_guid=_str(d["bounty_guid"]), voter=_str(d["voter"]), votes=_bools(d["votes"]), **common
            )
        case "quorum":
            return QuorumReached(bounty_guid=_str(d["bounty_guid"]), **common)
        case "settled_bounty":
            return SettledBounty(
                bounty_guid=_str(d["bounty_guid"]), settler=_str(d["settler"]), payout=_int(d["payout"]), **common
            )
        case "deprecated":
            return Deprecated(rollover=bool(d.get("rollover", False)), **common)
        case "undeprecated":
            return Undeprecated(**common)
        case "initialized_channel":
            return InitializedChannel(
                ambassador=_str(d["ambassador"]),
                expert=_str(d["expert"]),
                guid=_str(d["guid"]),
                multi_signature=_str(d["multi_signature"]),
                **common,
            )
    raise KeyError(name)  # pragma: no cover - EVENT_NAMES and the match agree


def event_data(event: Event) -> dict[str, Any]:
    """The exact ``data`` object of spec §3.3 for ``event`` (types as on the wire)."""
    match event:
        case Connected():
            return {"start_time": event.start_time}
        case Block():
            return {"number": event.number}
        case FeeUpdate():
            return {"bounty_fee": event.bounty_fee, "assertion_fee": event.assertion_fee}
        case WindowUpdate():
            return {
                "assertion_reveal_window": event.assertion_reveal_window,
                "arbiter_vote_window": event.arbiter_vote_window,
            }
        case NewBounty():
            return {
                "guid": event.guid,
                "artifact_type": event.artifact_type,
                "author": event.author,
                "amount": str(event.amount),
                "uri": event.uri,
                "expiration": str(event.expiration),
                "metadata": event.metadata,
            }
        case NewAssertion():
            return {
                "bounty_guid": event.bounty_guid,
                "author": event.author,
                "index": event.index,
                "bid": [str(b) for b in event.bid],
                "mask": list(event.mask),
                "commitment": str(event.commitment),
            }
        case Revealed():
            return {
                "bounty_guid": event.bounty_guid,
                "author": event.author,
                "index": event.index,
                "nonce": str(event.nonce),
                "verdicts": list(event.verdicts),
                "metadata": event.metadata,
            }
        case NewVote():
            return {"bounty_guid": event.bounty_guid, "voter": event.voter, "votes": list(event.votes)}
        case QuorumReached():
            return {"bounty_guid": event.bounty_guid}
        case SettledBounty():
            return {"bounty_guid": event.bounty_guid, "settler": event.settler, "payout": event.payout}
        case Deprecated():
            return {"rollover": event.rollover}
        case Undeprecated():
            return {}
        case InitializedChannel():
            return {
                "ambassador": event.ambassador,
                "expert": event.expert,
                "guid": event.guid,
                "multi_signature": event.multi_signature,
            }
        case UnknownEvent():
            return event.data if isinstance(event.data, dict) else {}
    raise TypeError(f"not an event: {event!r}")


def to_message(event: Event) -> dict[str, Any]:
    """The full websocket message for ``event``: ``block`` and ``connected`` carry no block/txhash."""
    name = event.name if isinstance(event, UnknownEvent) else _NAME_OF[type(event)]
    message: dict[str, Any] = {"event": name, "data": event_data(event)}
    if not isinstance(event, Block | Connected):
        message["block_number"] = event.block_number
        message["txhash"] = event.txhash
    return message
