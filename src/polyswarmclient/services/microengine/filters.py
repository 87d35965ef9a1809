"""Bounty-metadata filters (``--filter``) and confidence modifiers (``--confidence``); pure.

Semantics follow polyswarm-client 2.x (reference §2.9): numeric comparisons cast both sides to float
(non-numeric means no match), string comparisons use ``str(value)``, a missing key or non-object
metadata never matches. OP may be a symbol or a word (``<`` or ``lt``): 2.x advertised the words but only
accepted the symbols.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from polyswarmclient.errors import ConfigError

#: canonical operator -> accepted spellings (case-insensitive for words)
OPERATORS: dict[str, tuple[str, ...]] = {
    "lt": ("<", "lt"),
    "lte": ("<=", "lte", "le"),
    "eq": ("==", "eq"),
    "gte": (">=", "gte", "ge"),
    "gt": (">", "gt"),
    "contains": ("contains",),
    "startswith": ("startswith",),
    "endswith": ("endswith",),
    "regex": ("regex",),
}
_SPELLINGS = {spelling: canonical for canonical, spellings in OPERATORS.items() for spelling in spellings}
#: Every spelling, for the CLI's choice list and help text.
OPERATOR_CHOICES: tuple[str, ...] = tuple(_SPELLINGS)
_NUMERIC = {"lt", "lte", "gte", "gt"}

#: Confidence factors of polyswarm-client 2.x; the result is clamped to [0, 1] (fixing defect 26).
FAVOR = 1.2
PENALIZE = 0.8


def parse_operator(text: str) -> str:
    canonical = _SPELLINGS.get(text.strip().lower()) or _SPELLINGS.get(text.strip())
    if canonical is None:
        raise ConfigError(f"unknown filter operator {text!r}; use one of: {' '.join(OPERATOR_CHOICES)}")
    return canonical


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Filter:
    """``KEY OP VALUE`` over one artifact's metadata object."""

    key: str
    op: str
    target: str

    @classmethod
    def parse(cls, key: str, op: str, target: str) -> Filter:
        canonical = parse_operator(op)
        if canonical == "regex":
            try:
                re.compile(target)
            except re.error as exc:
                raise ConfigError(f"bad regular expression {target!r} for key {key!r}: {exc}") from None
        elif canonical in _NUMERIC and _number(target) is None:
            raise ConfigError(f"filter {key} {op} {target}: {op} compares numbers, and {target!r} is not one")
        return cls(key, canonical, target)

    def matches(self, metadata: Any) -> bool:
        if not isinstance(metadata, dict) or self.key not in metadata:
            return False
        value = metadata[self.key]
        if self.op in _NUMERIC:
            left, right = _number(value), _number(self.target)
            if left is None or right is None:
                return False
            return {
                "lt": left < right,
                "lte": left <= right,
                "gte": left >= right,
                "gt": left > right,
            }[self.op]
        text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else str(value)
        match self.op:
            case "eq":
                return text == self.target
            case "contains":
                return self.target in text
            case "startswith":
                return text.startswith(self.target)
            case "endswith":
                return text.endswith(self.target)
            case "regex":
                return re.search(self.target, text) is not None
        return False  # pragma: no cover - parse() admits only the operators above


@dataclass(frozen=True)
class BountyFilter:
    """Allowed iff (no accept filter, or any accept matches) and no reject filter matches."""

    accept: tuple[Filter, ...] = ()
    reject: tuple[Filter, ...] = ()

    def allows(self, metadata: Any) -> bool:
        if self.accept and not any(f.matches(metadata) for f in self.accept):
            return False
        return not any(f.matches(metadata) for f in self.reject)


@dataclass(frozen=True)
class ConfidenceModifier:
    """Favored-only ×1.2, penalized-only ×0.8, both or neither unchanged; always clamped to [0, 1]."""

    favor: tuple[Filter, ...] = field(default=())
    penalize: tuple[Filter, ...] = field(default=())

    def apply(self, confidence: float, metadata: Any) -> float:
        favored = any(f.matches(metadata) for f in self.favor)
        penalized = any(f.matches(metadata) for f in self.penalize)
        value = float(confidence)
        if favored and not penalized:
            value *= FAVOR
        elif penalized and not favored:
            value *= PENALIZE
        if value != value:  # NaN
            return 0.0
        return max(0.0, min(1.0, value))


def parse_filters(rules: Iterable[Sequence[str]]) -> BountyFilter:
    """``[("accept", "mimetype", "startswith", "text/"), ...]`` -> :class:`BountyFilter`."""
    return BountyFilter(*_sorted_rules(rules, "--filter", ("accept", "reject")))


def parse_confidence(rules: Iterable[Sequence[str]]) -> ConfidenceModifier:
    """``[("favor", "mimetype", "==", "text/plain"), ...]`` -> :class:`ConfidenceModifier`."""
    return ConfidenceModifier(*_sorted_rules(rules, "--confidence", ("favor", "penalize")))


def _sorted_rules(
    rules: Iterable[Sequence[str]], flag: str, actions: tuple[str, str]
) -> tuple[tuple[Filter, ...], tuple[Filter, ...]]:
    """``ACTION KEY OP VALUE`` rules -> (filters of the first action, filters of the second)."""
    chosen: dict[str, list[Filter]] = {action: [] for action in actions}
    for rule in rules:
        action, key, op, target = _four(rule, flag)
        filt = Filter.parse(key, op, target)
        if action.lower() not in chosen:
            raise ConfigError(f"{flag} action must be {actions[0]} or {actions[1]}, not {action!r}")
        chosen[action.lower()].append(filt)
    first, second = (tuple(chosen[action]) for action in actions)
    return first, second


def _four(rule: Sequence[str], flag: str) -> tuple[str, str, str, str]:
    if len(rule) != 4:
        raise ConfigError(f"{flag} takes four values (ACTION KEY OP VALUE), got {len(rule)}: {' '.join(rule)}")
    return str(rule[0]), str(rule[1]), str(rule[2]), str(rule[3])


def artifact_metadata(bounty_metadata: Any, count: int) -> list[dict[str, Any]]:
    """Per-artifact metadata objects from a bounty's metadata, padded with ``{}`` to ``count``.

    polyswarmd gives a list of objects when the bounty metadata validated; anything else (a raw
    string, an IPFS hash it could not resolve, ``null``) means "nothing known".
    """
    value = bounty_metadata
    if isinstance(value, str) and value.strip().startswith(("[", "{")):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if isinstance(value, dict):
        value = [value]
    items = [item if isinstance(item, dict) else {} for item in value] if isinstance(value, list) else []
    items = items[:count]
    return items + [{} for _ in range(count - len(items))]
