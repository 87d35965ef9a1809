"""The rolling 24-hour window of what the signer signed away, kept on disk so a restart forgets nothing.

Amounts are added up in one-minute buckets: ``{minute: (NCT-wei, gas wei)}``. A bucket counts until a whole
window has passed since the *end* of its minute, so the window errs towards refusing, never towards
letting more out. Buckets that left the window are dropped at every write, so the file holds at most
1441 of them, however many transactions a day the roles send.

The file is rewritten atomically (a temporary file, fsync, rename) *before* the signature is returned:
a crash after signing leaves the spending counted, never forgotten.
"""

from __future__ import annotations

import json
from pathlib import Path

from polyswarmclient.client.pins import write_json_atomically
from polyswarmclient.errors import ConfigError, StateError
from polyswarmclient.signer.policy import Spent

WINDOW_SECONDS = 24 * 3600
BUCKET_SECONDS = 60
VERSION = 1


class SpendingWindow:
    """The buckets in ``path`` (created on the first write)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._buckets: dict[int, tuple[int, int]] = self._load()

    def __repr__(self) -> str:
        return f"SpendingWindow({self.path}, {len(self._buckets)} buckets)"

    def _live(self, now: float) -> dict[int, tuple[int, int]]:
        oldest = now - WINDOW_SECONDS
        return {m: v for m, v in self._buckets.items() if (m + 1) * BUCKET_SECONDS > oldest}

    def spent(self, now: float) -> Spent:
        live = self._live(now).values()
        return Spent(nct=sum(n for n, _ in live), gas=sum(g for _, g in live))

    def record(self, now: float, nct: int, gas: int) -> None:
        """Add a signed transaction's amounts and write the window; :class:`StateError` if it cannot be kept."""
        if nct == 0 and gas == 0:
            return
        minute = int(now // BUCKET_SECONDS)
        buckets = self._live(now)
        old_nct, old_gas = buckets.get(minute, (0, 0))
        buckets[minute] = (old_nct + nct, old_gas + gas)
        data = {
            "version": VERSION,
            "bucket_seconds": BUCKET_SECONDS,
            "buckets": {str(m): [str(n), str(g)] for m, (n, g) in sorted(buckets.items())},
        }
        try:
            write_json_atomically(self.path, data)
        except OSError as exc:
            raise StateError(f"cannot write the spending window {self.path}: {exc.strerror or exc}") from exc
        self._buckets = buckets

    def __len__(self) -> int:
        return len(self._buckets)

    def _load(self) -> dict[int, tuple[int, int]]:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read the spending window {self.path}: {exc.strerror or exc}") from None
        damaged = ConfigError(
            f"the spending window {self.path} is damaged; the signer will not start without knowing what it "
            "signed in the last 24 hours. Restore it, or delete it to start the window from zero"
        )
        try:
            data = json.loads(raw)
        except ValueError:
            raise damaged from None
        if not isinstance(data, dict) or data.get("bucket_seconds") != BUCKET_SECONDS:
            raise damaged
        buckets = data.get("buckets")
        if not isinstance(buckets, dict):
            raise damaged
        loaded: dict[int, tuple[int, int]] = {}
        for minute, pair in buckets.items():
            if (
                not isinstance(minute, str)
                or not minute.isdigit()
                or not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(x, str) and x.isdigit() for x in pair)
            ):
                raise damaged
            loaded[int(minute)] = (int(pair[0]), int(pair[1]))
        return loaded
