"""Artifact types (contract ``enum ArtifactType {FILE, URL}``) and how their content is decoded.

A minimal stand-in for polyswarm-artifact's ``ArtifactType``, which we do not ship. Anything
"ArtifactType-like" (our enum, the wire strings ``"file"``/``"url"``, the ints 0/1, or another enum with
a matching ``name``/``value``) is accepted by :meth:`ArtifactType.coerce`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ArtifactType(IntEnum):
    FILE = 0
    URL = 1

    @classmethod
    def from_string(cls, value: str) -> ArtifactType:
        """``"file"`` -> ``FILE``; raises ``ValueError`` on anything else."""
        try:
            return cls[value.strip().upper()]
        except (KeyError, AttributeError):
            raise ValueError(f"unknown artifact type {value!r}; use one of: file, url") from None

    @staticmethod
    def to_string(value: ArtifactType) -> str:
        return ArtifactType.coerce(value).name.lower()

    @classmethod
    def coerce(cls, value: Any) -> ArtifactType:
        """Accept our enum, ``"file"``/``"url"``, ``0``/``1`` or a foreign enum member with that name."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return cls.from_string(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        name = getattr(value, "name", None)
        if isinstance(name, str):
            return cls.from_string(name)
        raise ValueError(f"not an artifact type: {value!r}")

    def decode_content(self, content: bytes | None) -> bytes | str | None:
        """FILE content stays bytes; URL content is the UTF-8 text of the URL (``ValueError`` if not)."""
        if content is None:
            return None
        if self is ArtifactType.URL:
            try:
                return content.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"url artifact is not UTF-8 text ({exc.reason})") from None
        return content
