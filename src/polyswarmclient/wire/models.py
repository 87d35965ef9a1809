"""Typed REST payloads (spec §2), with parsing from and rendering to the wire shapes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Self

from polyswarmclient.errors import MalformedResponse


def _require(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MalformedResponse(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def _int(data: dict[str, Any], key: str, what: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or value is None:
        raise MalformedResponse(f"{what}: field {key!r} is missing or not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise MalformedResponse(f"{what}: field {key!r} is not an integer: {value!r}")


def _bools(data: dict[str, Any], key: str, what: str) -> tuple[bool, ...]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, bool) or v is None for v in value):
        raise MalformedResponse(f"{what}: field {key!r} is not a list of booleans")
    return tuple(bool(v) for v in value)


def _str(data: dict[str, Any], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise MalformedResponse(f"{what}: field {key!r} is missing or not a string")
    return value


class _Integers:
    """A payload whose fields are all integers, sent as JSON numbers or decimal strings."""

    WHAT: ClassVar[str]

    @classmethod
    def from_json(cls, data: Any) -> Self:
        d = _require(data, cls.WHAT)
        return cls(**{f.name: _int(d, f.name, cls.WHAT) for f in fields(cls)})  # type: ignore[arg-type]

    def to_json(self) -> dict[str, int]:
        values: dict[str, int] = asdict(self)  # type: ignore[call-overload]  # every subclass is a dataclass
        return values


@dataclass(frozen=True)
class BountyParameters(_Integers):
    """``GET /bounties/parameters``: all amounts in NCT-wei, windows in blocks."""

    WHAT = "bounty parameters"

    bounty_fee: int
    assertion_fee: int
    bounty_amount_minimum: int
    assertion_bid_minimum: int
    assertion_bid_maximum: int
    arbiter_lookback_range: int
    max_duration: int
    assertion_reveal_window: int
    arbiter_vote_window: int


@dataclass(frozen=True)
class StakingParameters(_Integers):
    """``GET /staking/parameters``: stake bounds in NCT-wei and the vote ratio."""

    WHAT = "staking parameters"

    minimum_stake: int
    maximum_stake: int
    vote_ratio_numerator: int
    vote_ratio_denominator: int


@dataclass(frozen=True)
class Bounty:
    """``GET /bounties/<guid>``. ``quorum_reached_block`` is relative to expiration (spec pitfall 20)."""

    guid: str
    artifact_type: str
    author: str
    amount: int
    uri: str
    num_artifacts: int
    expiration: int
    assigned_arbiter: str
    quorum_reached: bool
    quorum_reached_block: int
    quorum_mask: tuple[bool, ...]
    metadata: Any

    @classmethod
    def from_json(cls, data: Any) -> Bounty:
        what = "bounty"
        d = _require(data, what)
        return cls(
            guid=_str(d, "guid", what),
            artifact_type=str(d.get("artifact_type", "file")),
            author=_str(d, "author", what),
            amount=_int(d, "amount", what),
            uri=_str(d, "uri", what),
            num_artifacts=_int(d, "num_artifacts", what),
            expiration=_int(d, "expiration", what),
            assigned_arbiter=str(d.get("assigned_arbiter", "")),
            quorum_reached=bool(d.get("quorum_reached", False)),
            quorum_reached_block=int(d.get("quorum_reached_block", 0) or 0),
            quorum_mask=_bools(d, "quorum_mask", what) if "quorum_mask" in d else (),
            metadata=d.get("metadata"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "guid": self.guid,
            "artifact_type": self.artifact_type,
            "author": self.author,
            "amount": str(self.amount),
            "uri": self.uri,
            "num_artifacts": self.num_artifacts,
            "expiration": self.expiration,
            "assigned_arbiter": self.assigned_arbiter,
            "quorum_reached": self.quorum_reached,
            "quorum_reached_block": self.quorum_reached_block,
            "quorum_mask": list(self.quorum_mask),
            "metadata": self.metadata,
        }


def _decimal_field(data: dict[str, Any], key: str, what: str) -> int:
    """A non-negative integer sent as a JSON number or a decimal string (never a bool)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isascii():
        raise MalformedResponse(f"{what}: field {key!r} is missing or not a non-negative decimal")
    if not str(value).isdigit():
        raise MalformedResponse(f"{what}: field {key!r} is not a non-negative decimal: {str(value)[:80]!r}")
    return int(value)


@dataclass(frozen=True)
class Assertion:
    """One entry of ``GET /bounties/<guid>/assertions``; ``index`` is its position in that list.

    ``nonce`` is the revealed nonce: ``0`` until the reveal is mined (the contract refuses a reveal with
    nonce 0), ``None`` when the server did not say. ``verdicts`` are the revealed verdicts, ``None`` while
    unrevealed (HEAD's list route sends ``[null]*n`` then; the seed and the single-item route send the
    stored, all-false bits with nonce ``"0"``) or when absent.
    """

    index: int
    author: str
    commitment: int
    nonce: int | None = None
    verdicts: tuple[bool, ...] | None = None

    @property
    def revealed(self) -> bool:
        """The reveal of this assertion is on chain (a non-zero nonce; without one, verdicts that are not null)."""
        if self.nonce is not None:
            return self.nonce != 0
        return self.verdicts is not None

    @classmethod
    def from_json(cls, index: int, data: Any, what: str) -> Assertion:
        d = _require(data, what)
        nonce = None if d.get("nonce") is None else _decimal_field(d, "nonce", what)
        raw = d.get("verdicts")
        if raw is not None and (not isinstance(raw, list) or not all(isinstance(v, bool) or v is None for v in raw)):
            raise MalformedResponse(f"{what}: field 'verdicts' is not a list of booleans or nulls")
        if nonce == 0 or raw is None or any(v is None for v in raw):
            verdicts = None  # unrevealed: whatever bits are stored mean nothing yet
        else:
            verdicts = tuple(raw)
        return cls(
            index=index,
            author=_str(d, "author", what),
            commitment=_decimal_field(d, "commitment", what),
            nonce=nonce,
            verdicts=verdicts,
        )

    @classmethod
    def list_from_json(cls, data: Any) -> list[Assertion]:
        what = "GET /bounties/<guid>/assertions"
        if not isinstance(data, list):
            raise MalformedResponse(f"{what}: expected a list of assertions")
        return [cls.from_json(index, item, f"{what} entry {index}") for index, item in enumerate(data)]


@dataclass(frozen=True)
class Bloom:
    """``GET /bounties/<guid>/bloom``: the on-chain bloom as 8 uint256 words, most significant first."""

    words: tuple[int, ...]

    @classmethod
    def from_json(cls, data: Any) -> Bloom:
        words = data.get("bloom") if isinstance(data, dict) else None
        if (
            not isinstance(words, list)
            or len(words) != 8
            or not all(isinstance(w, int) and not isinstance(w, bool) and 0 <= w < 2**256 for w in words)
        ):
            raise MalformedResponse('GET /bounties/<guid>/bloom: expected {"bloom": [8 uint256 integers]}')
        return cls(tuple(words))


@dataclass(frozen=True)
class ArtifactEntry:
    """One entry of ``GET /artifacts/<uri>``, in index order."""

    name: str
    hash: str

    @classmethod
    def list_from_json(cls, data: Any, uri: str) -> list[ArtifactEntry]:
        if not isinstance(data, list) or not all(
            isinstance(i, dict) and isinstance(i.get("name"), str) and isinstance(i.get("hash"), str) for i in data
        ):
            raise MalformedResponse(f"GET /artifacts/{uri}: expected a list of {{name, hash}}")
        return [cls(name=item["name"], hash=item["hash"]) for item in data]


@dataclass(frozen=True)
class ChainStatus:
    """One chain's section of ``GET /status``."""

    reachable: bool | None
    #: ``None`` when the section has no block number or one that is not a non-negative decimal.
    block: int | None


@dataclass(frozen=True)
class Status:
    """``GET /status``: the community name and, per chain, whether its node is reachable and its block."""

    community: str | None
    chains: dict[str, ChainStatus]

    @classmethod
    def from_json(cls, data: Any) -> Status:
        d = _require(data, "GET /status")
        chains: dict[str, ChainStatus] = {}
        for chain in ("home", "side"):
            entry = d.get(chain)
            if not isinstance(entry, dict):
                continue
            reachable = entry.get("reachable")
            raw = entry.get("block")
            block: int | None = None  # judged by whoever asks for this chain's block
            if not isinstance(raw, bool) and isinstance(raw, int | str) and str(raw).isascii() and str(raw).isdigit():
                block = int(raw)
            chains[chain] = ChainStatus(reachable=reachable if isinstance(reachable, bool) else None, block=block)
        community = d.get("community")
        return cls(community=community if isinstance(community, str) else None, chains=chains)


@dataclass(frozen=True)
class UnsignedTransaction:
    """One entry of ``result.transactions`` (spec §4.2). ``data`` is raw bytes, not hex."""

    to: str
    data: bytes
    value: int
    gas: int
    gas_price: int
    nonce: int
    chain_id: int

    @classmethod
    def from_json(cls, data: Any) -> UnsignedTransaction:
        what = "unsigned transaction"
        d = _require(data, what)
        for key in ("to", "data", "value", "chainId"):
            if key not in d:
                raise MalformedResponse(f"{what}: field {key!r} is missing")
        raw = _str(d, "data", what)
        try:
            payload = bytes.fromhex(raw[2:] if raw.startswith("0x") else raw)
        except ValueError:
            raise MalformedResponse(f"{what}: field 'data' is not hex") from None
        return cls(
            to=_str(d, "to", what),
            data=payload,
            value=_int(d, "value", what),
            gas=_int(d, "gas", what),
            gas_price=_int(d, "gasPrice", what),
            nonce=_int(d, "nonce", what) if "nonce" in d else 0,
            chain_id=_int(d, "chainId", what),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "to": self.to,
            "data": "0x" + self.data.hex(),
            "value": self.value,
            "gas": self.gas,
            "gasPrice": self.gas_price,
            "nonce": self.nonce,
            "chainId": self.chain_id,
        }


def parse_transactions(result: Any, what: str) -> list[UnsignedTransaction]:
    """``{"transactions": [...]}`` from a transaction-building route."""
    d = _require(result, what)
    txs = d.get("transactions")
    if not isinstance(txs, list) or not txs:
        raise MalformedResponse(f"{what}: the answer has no 'transactions' list")
    return [UnsignedTransaction.from_json(tx) for tx in txs]
