"""Contract function and event signatures of the HEAD API (spec §5.12), with ABI encode/decode."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address


@functools.lru_cache(maxsize=4096)
def checksum(address: str | bytes) -> str:
    """``address`` (20 bytes or hex) in EIP-55 form; the few addresses a participant meets are cached."""
    return str(to_checksum_address(address))


def _named(names: tuple[str, ...], types: tuple[str, ...], values: Any) -> dict[str, Any]:
    """Decoded values by argument name: addresses checksummed, arrays as lists."""
    out: dict[str, Any] = {}
    for name, typ, value in zip(names, types, values, strict=True):
        if typ == "address":
            value = checksum(value)
        elif typ.endswith("]"):
            value = list(value)
        out[name] = value
    return out


@dataclass(frozen=True)
class _Signature:
    """A named argument list, as a function or an event declares it."""

    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.arg_types)})"


@dataclass(frozen=True)
class Function(_Signature):
    @functools.cached_property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]

    def encode(self, *args: Any) -> bytes:
        return self.selector + abi_encode(list(self.arg_types), list(args))

    def encode_eth_abi_v1(self, *args: Any) -> bytes:
        """Call data as eth-abi 1.x (polyswarmd 2.2.0) encodes it: see :func:`encode_eth_abi_v1`."""
        return self.selector + encode_eth_abi_v1(list(self.arg_types), list(args))

    def decode(self, data: bytes) -> dict[str, Any]:
        """Decode call data; raises ``ValueError`` when the selector or the encoding is wrong.

        The arguments must be exactly one of two encodings of the values they decode to: the canonical
        one, or the one eth-abi 1.x makes (an empty ``string`` or ``bytes`` followed by one zero word,
        see :func:`encode_eth_abi_v1`), which polyswarmd 2.2.0 builds with. Anything else (other
        offsets, non-zero padding, trailing bytes) is refused, so what is signed is what was checked.
        """
        if data[:4] != self.selector:
            raise ValueError(f"selector 0x{data[:4].hex()} is not {self.signature}")
        types = list(self.arg_types)
        body = data[4:]
        try:
            values = abi_decode(types, body, strict=False)
        except Exception as exc:  # eth-abi raises several unrelated types
            raise ValueError(f"arguments do not decode as {self.signature}: {exc}") from None
        # The eth-abi 1.x form is built only when the canonical one differs (it rarely does).
        if body != abi_encode(types, list(values)) and body != encode_eth_abi_v1(types, list(values)):
            raise ValueError(f"call data for {self.signature} is neither the canonical nor the eth-abi 1.x encoding")
        return _named(self.arg_names, self.arg_types, values)


@functools.lru_cache(maxsize=64)
def _is_word(typ: str) -> bool:
    """Whether ``typ`` is encoded in exactly one 32-byte word (an address, a bool, an integer, ``bytes1``-``32``)."""
    return typ in ("address", "bool") or re.fullmatch(r"u?int\d*|bytes(?:[1-9]|[12]\d|3[0-2])", typ) is not None


def _is_dynamic(typ: str) -> bool:
    return typ in ("string", "bytes") or typ.endswith("[]")


def encode_eth_abi_v1(types: list[str], values: list[Any]) -> bytes:
    """The arguments as eth-abi 1.x encodes them: canonical, except that an empty ``string`` or
    ``bytes`` is its zero length word followed by one more zero word (eth-abi 2.0 dropped that word).
    Offsets of later dynamic arguments move accordingly. Only flat argument lists (no dynamic type
    inside an array or tuple), which is all the polyswarmd calls use."""
    heads: list[bytes | None] = []
    tails: list[bytes] = []
    for typ, value in zip(types, values, strict=True):
        if _is_dynamic(typ):
            tail = abi_encode([typ], [value])[32:]  # drop the offset word of the one-argument encoding
            if typ in ("string", "bytes") and len(value) == 0:
                tail += bytes(32)
            heads.append(None)
            tails.append(tail)
        else:
            heads.append(abi_encode([typ], [value]))
            tails.append(b"")
    offset = sum(32 if head is None else len(head) for head in heads)
    out = b""
    for head, tail in zip(heads, tails, strict=True):
        if head is None:
            out += offset.to_bytes(32, "big")
            offset += len(tail)
        else:
            out += head
    return out + b"".join(tails)


def _fn(name: str, *args: str) -> Function:
    pairs = [a.split() for a in args]
    return Function(name, tuple(p[1] for p in pairs), tuple(p[0] for p in pairs))


APPROVE = _fn("approve", "address spender", "uint256 value")
TRANSFER = _fn("transfer", "address to", "uint256 value")
POST_BOUNTY = _fn(
    "postBounty",
    "uint128 guid",
    "uint256 artifactType",
    "uint256 amount",
    "string artifactURI",
    "uint256 numArtifacts",
    "uint256 durationBlocks",
    "uint256[8] bloom",
    "string metadata",
)
POST_ASSERTION = _fn("postAssertion", "uint128 bountyGuid", "uint256[] bid", "uint256 mask", "uint256 commitment")
REVEAL_ASSERTION = _fn(
    "revealAssertion",
    "uint128 bountyGuid",
    "uint256 assertionId",
    "uint256 nonce",
    "uint256 verdicts",
    "string metadata",
)
VOTE_ON_BOUNTY = _fn("voteOnBounty", "uint128 bountyGuid", "uint256 votes", "bool validBloom")
SETTLE_BOUNTY = _fn("settleBounty", "uint128 bountyGuid")
STAKE_DEPOSIT = _fn("deposit", "uint256 value")
STAKE_WITHDRAW = _fn("withdraw", "uint256 value")

FUNCTIONS = (
    APPROVE,
    TRANSFER,
    POST_BOUNTY,
    POST_ASSERTION,
    REVEAL_ASSERTION,
    VOTE_ON_BOUNTY,
    SETTLE_BOUNTY,
    STAKE_DEPOSIT,
    STAKE_WITHDRAW,
)


@dataclass(frozen=True)
class EventSig(_Signature):
    indexed: tuple[bool, ...]

    @functools.cached_property
    def topic(self) -> bytes:
        return keccak(text=self.signature)

    @functools.cached_property
    def _split_types(self) -> tuple[list[str], list[str]]:
        """The indexed arguments' types and the others', each in declaration order."""
        indexed = [t for t, i in zip(self.arg_types, self.indexed, strict=True) if i]
        plain = [t for t, i in zip(self.arg_types, self.indexed, strict=True) if not i]
        return indexed, plain

    def decode(self, topics: list[bytes], data: bytes) -> dict[str, Any]:
        """Decode one log of this event into ``{arg_name: value}``."""
        indexed_types, plain_types = self._split_types
        plain = list(abi_decode(plain_types, data)) if plain_types else []
        rest = topics[1:]
        if len(rest) != len(indexed_types):
            raise ValueError(f"{self.name} has {len(indexed_types)} indexed arguments, the log {len(rest)} topics")
        if indexed_types and all(
            len(topic) == 32 and _is_word(t) for t, topic in zip(indexed_types, rest, strict=True)
        ):
            idx = list(abi_decode(indexed_types, b"".join(rest)))  # one word each: one decode for all
        else:
            idx = [abi_decode([t], topic)[0] for t, topic in zip(indexed_types, rest, strict=True)]
        values = [idx.pop(0) if is_indexed else plain.pop(0) for is_indexed in self.indexed]
        return _named(self.arg_names, self.arg_types, values)


def _ev(name: str, *args: str) -> EventSig:
    parts = [a.split() for a in args]
    return EventSig(
        name,
        tuple(p[-1] for p in parts),
        tuple(p[0] for p in parts),
        tuple(len(p) == 3 and p[1] == "indexed" for p in parts),
    )


TRANSFER_EVENT = _ev("Transfer", "address indexed from", "address indexed to", "uint256 value")
NEW_BOUNTY = _ev(
    "NewBounty",
    "uint128 guid",
    "uint256 artifactType",
    "address author",
    "uint256 amount",
    "string artifactURI",
    "uint256 expirationBlock",
    "string metadata",
)
NEW_ASSERTION = _ev(
    "NewAssertion",
    "uint128 bountyGuid",
    "address author",
    "uint256 index",
    "uint256[] bid",
    "uint256 mask",
    "uint256 numArtifacts",
    "uint256 commitment",
)
REVEALED_ASSERTION = _ev(
    "RevealedAssertion",
    "uint128 bountyGuid",
    "address author",
    "uint256 index",
    "uint256 nonce",
    "uint256 verdicts",
    "uint256 numArtifacts",
    "string metadata",
)
NEW_VOTE = _ev("NewVote", "uint128 bountyGuid", "uint256 votes", "uint256 numArtifacts", "address voter")
QUORUM_REACHED = _ev("QuorumReached", "uint128 bountyGuid")
SETTLED_BOUNTY = _ev("SettledBounty", "uint128 bountyGuid", "address settler", "uint256 payout")
FEES_UPDATED = _ev("FeesUpdated", "uint256 bountyFee", "uint256 assertionFee")
WINDOWS_UPDATED = _ev("WindowsUpdated", "uint256 assertionRevealWindow", "uint256 arbiterVoteWindow")
DEPRECATED = _ev("Deprecated", "bool rollover")
UNDEPRECATED = _ev("Undeprecated")
NEW_DEPOSIT = _ev("NewDeposit", "address indexed from", "uint256 value")
NEW_WITHDRAWAL = _ev("NewWithdrawal", "address indexed to", "uint256 value")
WITHDRAWAL_PROCESSED = _ev(
    "WithdrawalProcessed",
    "address indexed destination",
    "uint256 amount",
    "bytes32 txHash",
    "bytes32 blockHash",
    "uint256 blockNumber",
)

EVENTS = (
    TRANSFER_EVENT,
    NEW_BOUNTY,
    NEW_ASSERTION,
    REVEALED_ASSERTION,
    NEW_VOTE,
    QUORUM_REACHED,
    SETTLED_BOUNTY,
    FEES_UPDATED,
    WINDOWS_UPDATED,
    DEPRECATED,
    UNDEPRECATED,
    NEW_DEPOSIT,
    NEW_WITHDRAWAL,
    WITHDRAWAL_PROCESSED,
)


def guid_to_int(guid: str) -> int:
    """Canonical UUID string -> uint128."""
    import uuid

    return uuid.UUID(guid).int


def int_to_guid(value: int) -> str:
    """uint128 -> canonical UUID string (no version forcing: a non-v4 GUID stays visibly non-v4)."""
    import uuid

    return str(uuid.UUID(int=value))
