"""Trust-on-first-use pins of chain ids and contract addresses, like SSH ``known_hosts``.

polyswarmd has no config endpoint: contract addresses appear only as the ``to`` of the transactions it
builds, and the chain id only as their ``chainId``. The first time a (polyswarmd base URL, chain)
shows a chain id or a contract role, and only after the transactions passed the internal checks of
:mod:`polyswarmclient.eth.verify`, the value is written to ``known_contracts.json`` in the state
directory (atomically). Later, a different value raises :class:`PinMismatch` before anything is
signed, naming what changed and how to reset the pin.

File shape::

    {"version": 1,
     "servers": {"https://api.example/v1/default": {
         "side": {"chain_id": 1338, "contracts": {"nectar_token": "0x..", "bounty_registry": "0x.."}}}}}

The file is re-read on every check, so processes sharing a state directory see each other's pins;
a check holds an advisory lock on the directory (POSIX only) from the read to the write, so two
processes learning at once cannot overwrite each other's pins.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from polyswarmclient.errors import ConfigError, PinMismatch, StateError, VerificationError

log = logging.getLogger(__name__)

FILENAME = "known_contracts.json"
#: How far the gas price of a paid chain may rise above the price pinned at first contact.
GAS_PRICE_GROWTH = 10
VERSION = 1


class PinStore:
    """The pins in ``path``; ``expected`` (from :func:`load_expected`) are the operator's own values, which
    win over trust on first use: a chain id or contract that differs from them is refused."""

    def __init__(self, path: Path, expected: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.expected = dict(expected or {})
        #: The file's identity when last read, and what it held (never handed out to be changed).
        self._cache: tuple[tuple[int, ...], dict[str, Any]] | None = None

    @classmethod
    def in_state_dir(cls, state_dir: Path, expected: Mapping[str, Mapping[str, Any]] | None = None) -> PinStore:
        return cls(Path(state_dir) / FILENAME, expected)

    def __repr__(self) -> str:
        return f"PinStore({self.path})"

    def validate(self) -> None:
        """Check at start that the state directory can be made and the pins read, so a damaged file or an
        unusable --state-dir is a configuration error before anything runs (:class:`ConfigError`, exit 2)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the state directory {self.path.parent}: {exc.strerror or exc}; "
                "check --state-dir (STATE_DIR)"
            ) from None
        try:
            self._load()
        except StateError as exc:
            raise ConfigError(str(exc)) from None

    def pinned(self, server: str, chain: str) -> dict[str, Any]:
        """``{"chain_id": int | None, "contracts": {role: address}}`` for one server and chain."""
        entry = self._load()["servers"].get(server, {}).get(chain, {})
        return {"chain_id": entry.get("chain_id"), "contracts": dict(entry.get("contracts", {}))}

    def check_and_learn(
        self,
        server: str,
        chain: str,
        chain_id: int,
        contracts: Mapping[str, str],
        gas_price: int | None = None,
    ) -> None:
        """Raise :class:`PinMismatch` if anything differs from the pins; pin what is new.

        ``gas_price`` (the highest of the action's transactions) is pinned at first contact too: a chain
        first seen free (price 0) must stay free, and elsewhere the price may not rise above
        :data:`GAS_PRICE_GROWTH` times the pinned one.

        Once everything is pinned (every transaction after first contact), the check reads the pins as last
        parsed while the file is unchanged (same inode, size and times), without the lock: only learning
        writes. Anything new, and any mismatch, is decided again under the lock from the file itself.
        """
        cached = self._unchanged()
        if cached is not None:
            try:
                if self._news(cached, server, chain, chain_id, contracts, gas_price) is None:
                    return
            except (PinMismatch, VerificationError):
                pass  # decided below from the file itself
        with self._locked():
            data = self._load()
            news = self._news(data, server, chain, chain_id, contracts, gas_price)
            if news is None:
                return
            learned, new_price = news
            entry = data["servers"].setdefault(server, {}).setdefault(chain, {})
            old_id = entry.get("chain_id")
            entry["chain_id"] = chain_id
            if new_price:
                entry["gas_price"] = gas_price
                log.info(
                    "pinned the gas price of the %s chain of %s: %d wei (in %s)", chain, server, gas_price, self.path
                )
            entry.setdefault("contracts", {}).update(learned)
            for role, address in learned.items():
                log.info("pinned the %s of the %s chain of %s: %s (in %s)", role, chain, server, address, self.path)
            if old_id is None:
                log.info("pinned the chain id of the %s chain of %s: %d (in %s)", chain, server, chain_id, self.path)
            self._save(data)

    def _news(
        self,
        data: Mapping[str, Any],
        server: str,
        chain: str,
        chain_id: int,
        contracts: Mapping[str, str],
        gas_price: int | None,
    ) -> tuple[dict[str, str], bool] | None:
        """Check against the pins in ``data`` (read only): raise on a mismatch; else None when everything is
        pinned already, or (the contracts to pin, whether to pin the gas price)."""
        entry = data["servers"].get(server, {}).get(chain, {})
        pinned_contracts: Mapping[str, str] = entry.get("contracts", {})
        reset = (
            f"If the community really changed it, delete the {chain!r} entry under {server!r} in {self.path} "
            "(or the whole file) to trust the new value."
        )
        self._check_expected(server, chain, chain_id, contracts)
        pinned_price = entry.get("gas_price")
        if gas_price is not None and pinned_price is not None:
            if pinned_price == 0 and gas_price > 0:
                raise PinMismatch(
                    f"the {chain} chain of {server} was free (gas price 0) when first seen, but polyswarmd now "
                    f"prices gas at {gas_price} wei. Nothing was signed. {reset}"
                )
            if gas_price > pinned_price * GAS_PRICE_GROWTH:
                raise PinMismatch(
                    f"polyswarmd prices gas on the {chain} chain of {server} at {gas_price} wei, more than "
                    f"{GAS_PRICE_GROWTH}x the {pinned_price} wei first seen. Nothing was signed. {reset}"
                )
        old_id = entry.get("chain_id")
        if old_id is not None and old_id != chain_id:
            raise PinMismatch(
                f"the chain id of the {chain} chain of {server} changed: pinned {old_id}, "
                "polyswarmd now builds "
                f"transactions for {chain_id}. Nothing was signed. {reset}"
            )
        for role, address in contracts.items():
            old = pinned_contracts.get(role)
            if old is not None and old.lower() != address.lower():
                raise PinMismatch(
                    f"the {role} contract on the {chain} chain of {server} changed: pinned {old}, "
                    "polyswarmd now "
                    f"uses {address}. Nothing was signed. {reset}"
                )
        learned = {role: a for role, a in contracts.items() if role not in pinned_contracts}
        for role, address in learned.items():
            for other, other_address in pinned_contracts.items():
                if other_address.lower() == address.lower():
                    raise VerificationError(
                        f"polyswarmd presents {address} as the {role} on the {chain} chain of {server}, "
                        "but that is "
                        f"the pinned {other}; refusing to sign"
                    )
        new_price = gas_price is not None and pinned_price is None
        if old_id is not None and not learned and not new_price:
            return None
        return learned, new_price

    def _check_expected(self, server: str, chain: str, chain_id: int, contracts: Mapping[str, str]) -> None:
        given = self.expected.get(chain)
        if given is None:
            return
        where = f"the {chain} chain of {server}"
        want_id = given.get("chain_id")
        if want_id is not None and want_id != chain_id:
            raise PinMismatch(
                f"polyswarmd builds transactions for chain id {chain_id} on {where}, but --contracts says "
                f"{want_id}. Nothing was signed. Check --contracts (CONTRACTS) and --polyswarmd-addr"
            )
        for role, address in contracts.items():
            want = given.get("contracts", {}).get(role)
            if want is not None and want.lower() != address.lower():
                raise PinMismatch(
                    f"polyswarmd uses {address} as the {role} on {where}, but --contracts says {want}. "
                    "Nothing was signed. Check --contracts (CONTRACTS) and --polyswarmd-addr"
                )

    # --- file -----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive advisory lock on the file's directory (a no-op where ``fcntl`` is missing)."""
        if sys.platform == "win32":
            yield
            return
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The directory itself is locked, so no lock file is left next to the pins.
            fd = os.open(self.path.parent, os.O_RDONLY)
        except OSError as exc:
            raise StateError(f"cannot lock the contract pins in {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _unchanged(self) -> Mapping[str, Any] | None:
        """The pins as last read, if the file has not changed since (else None: read it under the lock)."""
        cached = self._cache
        if cached is None:
            return None
        try:
            seen = _identity(os.stat(self.path))
        except OSError:
            return None
        return cached[1] if seen == cached[0] else None

    def _load(self) -> dict[str, Any]:
        try:
            seen = _identity(os.stat(self.path))  # before the read: a newer file read under it is only re-read
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {"version": VERSION, "servers": {}}
        except OSError as exc:
            raise StateError(f"cannot read the contract pins in {self.path}: {exc.strerror or exc}") from exc
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:  # UnicodeDecodeError is a ValueError too
            raise StateError(
                f"the contract pins in {self.path} are not valid JSON; delete the file to re-learn them "
                "(the next action will trust polyswarmd's contracts again)"
            ) from None
        if not isinstance(data, dict) or not _well_formed(data.get("servers")):
            raise StateError(
                f"the contract pins in {self.path} have an unknown layout; delete the file to re-learn them"
            )
        self._cache = (seen, copy.deepcopy(data))
        return data

    def _save(self, data: dict[str, Any]) -> None:
        try:
            write_json_atomically(self.path, data)
        except OSError as exc:
            raise StateError(f"cannot write the contract pins to {self.path}: {exc.strerror or exc}") from exc


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    """What changes when the file is replaced or rewritten (a replacement is a new inode)."""
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that a crash leaves the old file or the new one, never half of
    either: a temporary file beside it, flushed to disk, renamed over it, and the directory synced.
    Raises ``OSError``; callers wrap it in their own :class:`StateError`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return  # not every platform opens directories
    try:
        os.fsync(directory)  # so that the rename itself survives a power loss
    except OSError:
        pass
    finally:
        os.close(directory)


def load_expected(path: Path) -> dict[str, dict[str, Any]]:
    """The operator's contract file: ``{"home"|"side": {"chain_id": int?, "contracts": {role: address}?}}``
    (the shape of one server's entry in the pin file, so a pin file's entry can be copied in).

    Raises :class:`ConfigError` naming the file when it cannot be read or has another shape.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read --contracts file {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ConfigError(f"--contracts file {path} is not valid JSON") from None
    if not isinstance(data, dict) or not set(data) <= {"home", "side"} or not _well_formed({"file": data}):
        raise ConfigError(
            f'--contracts file {path} must look like {{"side": {{"chain_id": 1338, "contracts": '
            '{"bounty_registry": "0x...", "nectar_token": "0x..."}}, "home": {...}}'
        )
    for chain, entry in data.items():
        for role, address in entry.get("contracts", {}).items():
            if not _ADDRESS.match(address):
                raise ConfigError(f"--contracts file {path}: the {chain} {role} {address!r} is not an address")
    return data


_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _well_formed(servers: object) -> bool:
    """``{server: {chain: {"chain_id": int?, "contracts": {role: address}?}}}``."""
    if not isinstance(servers, dict):
        return False
    for chains in servers.values():
        if not isinstance(chains, dict):
            return False
        for entry in chains.values():
            if not isinstance(entry, dict):
                return False
            for number in (entry.get("chain_id"), entry.get("gas_price")):
                if number is not None and (isinstance(number, bool) or not isinstance(number, int)):
                    return False
            contracts = entry.get("contracts", {})
            if not isinstance(contracts, dict) or not all(isinstance(a, str) for a in contracts.values()):
                return False
    return True
