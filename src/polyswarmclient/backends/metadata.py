"""The verdict metadata our backends put in a reveal: a JSON object in polyswarm-artifact's ``Verdict`` shape.

``{"malware_family": "...", "scanner": {"version": ..., "vendor_version": ..., "signatures_version": ...,
"environment": {"operating_system": ..., "architecture": ...}}}`` plus backend-specific keys (the rules a
YARA scan matched, the members of ``multi``). polyswarm-artifact's ``Verdict().json()`` produces the same
shape, so engines that build their metadata with it and ours read alike.
"""

from __future__ import annotations

import json
import platform
from typing import Any

from polyswarmclient import __version__


def scanner_info(vendor_version: str | None = None, signatures_version: str | None = None) -> dict[str, Any]:
    """The ``scanner`` object: our version, the scan engine's and its signatures', and the platform."""
    info: dict[str, Any] = {"version": __version__, "vendor_version": vendor_version or __version__}
    if signatures_version:
        info["signatures_version"] = signatures_version
    info["environment"] = {"operating_system": platform.system(), "architecture": platform.machine()}
    return info


def verdict_metadata(
    family: str, *, vendor_version: str | None = None, signatures_version: str | None = None, **extra: Any
) -> str:
    """The metadata string of one verdict: ``malware_family`` (empty when benign), ``scanner`` and ``extra``."""
    body: dict[str, Any] = {"malware_family": family}
    body.update(extra)
    body["scanner"] = scanner_info(vendor_version, signatures_version)
    return json.dumps(body, separators=(",", ":"))


def family_of(metadata: str) -> str:
    """The ``malware_family`` a verdict's metadata names, or ``""`` (not JSON, or no family)."""
    try:
        value = json.loads(metadata)
    except (TypeError, ValueError):
        return ""
    family = value.get("malware_family") if isinstance(value, dict) else None
    return family if isinstance(family, str) else ""
