"""Bounty and assertion metadata (spec §2.5, §6): validated as polyswarmd 2.2.0 does, and resolved from
the artifact store.

polyswarmd validates metadata with the JSON schemas of polyswarm-artifact 1.3.3, and so does the devnet,
rule for rule (without a JSON-schema library):

* **bounty metadata** is an array that is exactly one of (``oneOf``): every entry a file descriptor (an
  object with a string ``mimetype``; ``filename``, ``filesize``, ``sha256``, ``sha1`` and ``md5``, when
  present, strings or null; more keys allowed), or every entry a URL descriptor (an object with a string
  ``protocol``). ``filesize`` is therefore a *string*; an empty array, or entries that are both, match
  both branches and are refused;
* **assertion metadata** is an array of 1–256 verdict objects: a string ``malware_family``; ``domains``
  and ``ip_addresses`` arrays of strings or null; ``stix_signatures`` an array of objects (``schema`` a
  string or null, ``signature`` an object, string or null) or null; ``scanner`` an object or null whose
  ``version`` and ``polyswarmclient_version`` are null or strings matching ``^\\d+\\.\\d+\\.\\d+$``,
  ``vendor_version`` and ``signatures_version`` strings or null, ``environment`` an object or null with
  string-or-null ``operating_system`` and ``architecture``. Formats (``uri``, ``ipv4``) are not checked,
  as jsonschema does not check them by default.

``POST /bounties/metadata`` takes the JSON body itself: a JSON *string* holding metadata is refused, as
polyswarmd refuses it (polyswarm-client 2.13.3 parses such a string before posting it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from polyswarmclient.devnet.artifacts import ArtifactStore, is_valid_hash

MAX_ENTRIES = 256
_FILE_FIELDS = ("filename", "filesize", "sha256", "sha1", "md5")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def _str_or_null(entry: dict[str, Any], key: str) -> bool:
    return key not in entry or entry[key] is None or isinstance(entry[key], str)


def _is_file_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("mimetype"), str)
        and all(_str_or_null(entry, key) for key in _FILE_FIELDS)
    )


def _is_url_entry(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("protocol"), str)


def is_bounty_metadata(value: Any) -> bool:
    """polyswarm-artifact 1.3.3 ``Bounty.validate``: all file descriptors or all URL descriptors, not both."""
    if not isinstance(value, list):
        return False
    as_files = all(_is_file_entry(entry) for entry in value)
    as_urls = all(_is_url_entry(entry) for entry in value)
    return as_files != as_urls


def _strings_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(item, str) for item in value))


def _version(entry: dict[str, Any], key: str) -> bool:
    value = entry.get(key)
    return value is None or (isinstance(value, str) and _VERSION.search(value) is not None)


def _is_scanner(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, dict):
        return False
    environment = value.get("environment")
    return (
        _version(value, "version")
        and _version(value, "polyswarmclient_version")
        and _str_or_null(value, "vendor_version")
        and _str_or_null(value, "signatures_version")
        and (
            environment is None
            or (
                isinstance(environment, dict)
                and _str_or_null(environment, "operating_system")
                and _str_or_null(environment, "architecture")
            )
        )
    )


def _is_stix(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, list) and all(
        isinstance(item, dict)
        and _str_or_null(item, "schema")
        and (item.get("signature") is None or isinstance(item["signature"], (dict, str)))
        for item in value
    )


def is_verdict(entry: Any) -> bool:
    """polyswarm-artifact 1.3.3 ``Verdict.validate``."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("malware_family"), str)
        and _strings_or_null(entry.get("domains"))
        and _strings_or_null(entry.get("ip_addresses"))
        and _is_stix(entry.get("stix_signatures"))
        and _is_scanner(entry.get("scanner"))
    )


def is_assertion_metadata(value: Any) -> bool:
    """polyswarm-artifact 1.3.3 ``Assertion.validate``: 1–256 verdicts."""
    return isinstance(value, list) and 1 <= len(value) <= MAX_ENTRIES and all(is_verdict(e) for e in value)


def is_valid_metadata(value: Any) -> bool:
    """What ``POST /bounties/metadata`` stores: assertion or bounty metadata."""
    return is_assertion_metadata(value) or is_bounty_metadata(value)


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
