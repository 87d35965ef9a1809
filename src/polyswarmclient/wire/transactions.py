"""Decoded events of ``GET /transactions`` (spec §2.3) and the per-tx results of ``POST /transactions``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from polyswarmclient.errors import MalformedResponse

#: Keys ``GET /transactions`` may return, besides ``errors``.
EVENT_KEYS = (
    "transfers",
    "bounties",
    "assertions",
    "reveals",
    "votes",
    "withdrawals",
    "deposits",
)


@dataclass(frozen=True)
class PostResult:
    """One entry of the ``POST /transactions`` answer."""

    is_error: bool
    message: str

    @classmethod
    def parse_list(cls, data: Any) -> list[PostResult]:
        if not isinstance(data, list):
            raise MalformedResponse("POST /transactions: expected a list of {is_error, message}")
        out = []
        for item in data:
            if not isinstance(item, dict) or "message" not in item:
                raise MalformedResponse("POST /transactions: an entry lacks 'message'")
            out.append(cls(is_error=bool(item.get("is_error")), message=str(item["message"])))
        return out


@dataclass(frozen=True)
class TransactionEvents:
    """What the mined transactions emitted, keyed as on the wire (``assertions``, ``transfers``...)."""

    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: Any) -> TransactionEvents:
        if not isinstance(data, dict):
            raise MalformedResponse("GET /transactions: expected a JSON object")
        errors = data.get("errors", [])
        if not isinstance(errors, list):
            errors = [str(errors)]
        events = {k: v for k, v in data.items() if k != "errors" and isinstance(v, list)}
        return cls(events=events, errors=tuple(str(e) for e in errors))

    def get(self, key: str) -> list[dict[str, Any]]:
        return self.events.get(key, [])
