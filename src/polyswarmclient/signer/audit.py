"""The signer's audit log: one JSON object per line for every request, appended and synced to disk.

Each line says when, which method, the outcome (``signed``, ``refused``, ``answered``, ``invalid``), the
reason for a refusal, and for transactions the chain, contract, function, decoded arguments (numbers
as decimal strings), the NCT it lets leave the wallet, its gas cost, nonce and, once signed, its hash.
It never holds a key, a password, a token or a signature: only what anyone watching the chain could see.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from polyswarmclient.errors import ConfigError, StateError


def _plain(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


class AuditLog:
    """Appends to ``path`` (created mode 0600; an existing file is only ever appended to)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open the audit log {self.path}: {exc.strerror or exc}") from None

    def __repr__(self) -> str:
        return f"AuditLog({self.path})"

    def write(self, entry: Mapping[str, Any]) -> None:
        """Append one line and sync it; :class:`StateError` when it cannot (the caller then signs nothing)."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
        line = json.dumps({"time": now, **_plain(dict(entry))}, sort_keys=True) + "\n"
        try:
            os.write(self._fd, line.encode("utf-8"))
            os.fsync(self._fd)
        except OSError as exc:
            raise StateError(f"cannot append to the audit log {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
