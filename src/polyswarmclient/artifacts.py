"""Artifact types (contract ``enum ArtifactType {FILE, URL}``) and how their content is decoded.

A minimal stand-in for polyswarm-artifact's ``ArtifactType`` (installed by the ``[compat]`` extra, not
needed by the toolkit itself); a member compares equal to polyswarm-artifact's member of the same name. Anything
"ArtifactType-like" (our enum, the wire strings ``"file"``/``"url"``, the ints 0/1, or another enum with
a matching ``name``/``value``) is accepted by :meth:`ArtifactType.coerce`.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from typing import Any


class ArtifactType(IntEnum):
    FILE = 0
    URL = 1

    def __eq__(self, other: object) -> bool:
        """Equal to its int and, for engines that compare with polyswarm-artifact's enum
        (``artifact_type == polyswarmartifact.ArtifactType.FILE``), to the member of that name."""
        if isinstance(other, Enum) and not isinstance(other, ArtifactType) and type(other).__name__ == "ArtifactType":
            return self.name == other.name
        return int(self) == other if isinstance(other, int) else NotImplemented

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = IntEnum.__hash__

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
