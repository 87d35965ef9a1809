"""Bounty and assertion metadata (spec §2.5, §6), validated loosely, and resolved from the artifact store.

The checks follow the shape of the polyswarm-artifact schemas without their detail: a list of 1–256
objects, where an assertion entry carries ``malware_family`` and a bounty entry carries ``mimetype`` or
``uri``. A single object is accepted too (and treated as a list of one) so that a peer that posts one
verdict object is not refused (spec pitfall 26).
"""

from __future__ import annotations

import json
from typing import Any

from polyswarmclient.devnet.artifacts import ArtifactStore, is_valid_hash

MAX_ENTRIES = 256


def _entries(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ENTRIES:
        return None
    if not all(isinstance(entry, dict) for entry in value):
        return None
    return value


def is_assertion_metadata(value: Any) -> bool:
    entries = _entries(value)
    return entries is not None and all(isinstance(e.get("malware_family"), str) for e in entries)


def is_bounty_metadata(value: Any) -> bool:
    entries = _entries(value)
    return entries is not None and all(
        isinstance(e.get("mimetype"), str) or isinstance(e.get("uri"), str) for e in entries
    )


def is_valid_metadata(value: Any) -> bool:
    return is_assertion_metadata(value) or is_bounty_metadata(value)


def parse_posted(body: Any) -> Any:
    """The metadata of a ``POST /bounties/metadata`` body (a JSON value, or a string holding one)."""
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return None
    return body


def _fetch(store: ArtifactStore, raw: str) -> Any:
    if not is_valid_hash(raw):
        return None
    content = store.read_json_bytes(raw)
    if content is None:
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def resolve_bounty_metadata(store: ArtifactStore, raw: str) -> Any:
    """For ``bounty`` events: the JSON when ``raw`` points at (or is) valid bounty metadata, else ``raw``."""
    if not raw:
        return ""
    fetched = _fetch(store, raw)
    if fetched is not None and is_bounty_metadata(fetched):
        return fetched
    try:
        inline = json.loads(raw)
    except ValueError:
        return raw
    return inline if is_bounty_metadata(inline) else raw


def resolve_bounty_dict_metadata(store: ArtifactStore, raw: str) -> Any:
    """For ``GET /bounties/<g>``: ``None`` when empty, the JSON when it points at valid metadata, else raw."""
    if not raw:
        return None
    fetched = _fetch(store, raw)
    if fetched is not None and is_bounty_metadata(fetched):
        return fetched
    return raw


def resolve_assertion_metadata(store: ArtifactStore, raw: str) -> Any:
    """For reveals and assertion dicts: the fetched JSON when ``raw`` is an IPFS URI of valid
    *assertion* metadata (polyswarmd validates these against the Assertion schema only), else ``raw``."""
    fetched = _fetch(store, raw) if raw else None
    if fetched is not None and is_assertion_metadata(fetched):
        return fetched
    return raw
