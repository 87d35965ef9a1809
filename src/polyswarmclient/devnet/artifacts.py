"""A content-addressed, IPFS-shaped artifact store for the devnet (spec §2.8, §6).

Objects are addressed by CIDv0 strings (``Qm…``): base58btc of the sha2-256 multihash
``0x12 0x20 || digest``. A file's digest is ``sha256(content)``; a directory's digest is ``sha256`` of a
domain-separated canonical listing, so a directory never collides with a file. Uploads become a directory
whose entries are named ``000000``, ``000001``, … in upload order, like polyswarmd HEAD (spec §6).

Everything lives in memory: the devnet is throw-away by design. The store holds at most
``max_store_size`` bytes of file content: when an upload would not fit, the least recently used objects
are dropped first, but only those last used ``min_age_blocks`` or more blocks ago on every chain of
``clock`` (the devnet passes its retention, so an open bounty's artifacts stay); when that does not make
room (or there is no clock), the upload is refused with 413 ``Artifact store full``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}

DEFAULT_MAX_FILE_SIZE = 10 * 1024 * 1024
DEFAULT_MAX_FILES = 256
#: Most bytes one upload may carry, all its files together.
DEFAULT_MAX_UPLOAD_SIZE = 64 * 1024 * 1024
#: Most bytes of file content the whole (in-memory) store holds; see the module docstring for eviction.
DEFAULT_MAX_STORE_SIZE = 512 * 1024 * 1024
#: polyswarmd accepts URIs shorter than this (spec §6)
MAX_URI_LENGTH = 100
_DIR_PREFIX = b"polyswarm-kit devnet directory v1\x00"


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, rem = divmod(number, 58)
        out.append(_B58_ALPHABET[rem])
    pad = len(data) - len(data.lstrip(b"\x00"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Raises ``ValueError`` on a character outside the base58btc alphabet."""
    number = 0
    for char in text:
        if char not in _B58_INDEX:
            raise ValueError(f"{char!r} is not a base58 character")
        number = number * 58 + _B58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    pad = len(text) - len(text.lstrip("1"))
    return b"\x00" * pad + body


def cid_v0(digest: bytes) -> str:
    """CIDv0 of a sha2-256 digest."""
    if len(digest) != 32:
        raise ValueError("a sha2-256 digest has 32 bytes")
    return b58encode(b"\x12\x20" + digest)


def is_valid_hash(text: object) -> bool:
    """What polyswarmd accepts as an IPFS URI: a base58 string under 100 characters (spec §6)."""
    if not isinstance(text, str) or not text or len(text) >= MAX_URI_LENGTH:
        return False
    try:
        b58decode(text)
    except ValueError:
        return False
    return True


class ArtifactError(Exception):
    """An upload or lookup was refused. ``status`` and ``message`` are what the HTTP route answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Link:
    name: str
    hash: str
    size: int


@dataclass(frozen=True)
class _File:
    content: bytes


@dataclass(frozen=True)
class _Directory:
    links: tuple[Link, ...]
    listing: bytes  # the canonical bytes the hash is taken over


class ArtifactStore:
    """Thread-safe in-memory store. ``max_file_size``, ``max_files`` and ``max_upload_size`` limit one
    upload; ``max_store_size`` limits what all uploads together hold (see the module docstring)."""

    def __init__(
        self,
        *,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
        max_files: int = DEFAULT_MAX_FILES,
        max_upload_size: int = DEFAULT_MAX_UPLOAD_SIZE,
        max_store_size: int = DEFAULT_MAX_STORE_SIZE,
        clock: Callable[[], tuple[int, ...]] | None = None,
        min_age_blocks: int = 0,
    ) -> None:
        if not 1 <= max_files <= 256:
            raise ValueError("max_files must be between 1 and 256")
        self.max_file_size = max_file_size
        self.max_files = max_files
        self.max_upload_size = max_upload_size
        self.max_store_size = max_store_size
        self._objects: dict[str, _File | _Directory] = {}
        self._stored = 0  # bytes of file content held
        self._lock = threading.RLock()
        self.clock = clock
        self.min_age_blocks = min_age_blocks
        self._used: OrderedDict[str, tuple[int, ...]] = OrderedDict()  # least recently used first, with when
        self._links: dict[str, int] = {}  # file hash -> how many stored directories link to it
        self.evicted = 0  # objects dropped to make room

    def _now(self) -> tuple[int, ...]:
        return self.clock() if self.clock is not None else ()

    def _touch(self, key: str, now: tuple[int, ...]) -> None:
        self._used[key] = now
        self._used.move_to_end(key)

    def _make_room(self, size: int) -> bool:
        """Drop least recently used objects old enough until ``size`` more bytes fit (call with the lock).

        Without a ``clock`` nothing is ever old enough: a full store refuses.
        """
        now = self._now()
        progress = self.clock is not None
        while progress and self._stored + size > self.max_store_size:
            progress = False  # a directory dropped frees its files for the next pass
            for key, used in list(self._used.items()):
                if self._stored + size <= self.max_store_size:
                    break
                if any(n - u < self.min_age_blocks for n, u in zip(now, used, strict=False)):
                    break  # this one and everything after it were used too recently
                obj = self._objects[key]
                if isinstance(obj, _File):
                    if self._links.get(key):
                        continue  # a directory still kept needs it
                    self._stored -= len(obj.content)
                else:
                    for link in obj.links:
                        self._links[link.hash] -= 1
                        if not self._links[link.hash]:
                            del self._links[link.hash]
                del self._objects[key]
                del self._used[key]
                self.evicted += 1
                progress = True
        return self._stored + size <= self.max_store_size

    @property
    def stored_bytes(self) -> int:
        with self._lock:
            return self._stored

    # --- writing ----------------------------------------------------------------------------------

    def add_file(self, content: bytes) -> str:
        """Store one blob and return its hash (no limits applied)."""
        digest = hashlib.sha256(content).digest()
        key = cid_v0(digest)
        now = self._now()
        with self._lock:
            if key not in self._objects:
                self._make_room(len(content))
                self._objects[key] = _File(bytes(content))
                self._stored += len(content)
            self._touch(key, now)
        return key

    def add_directory(self, entries: list[tuple[str, str]]) -> str:
        """Store a directory of ``(name, hash)`` entries (each hash already stored); links keep this order."""
        links = []
        now = self._now()
        with self._lock:
            for name, key in entries:
                obj = self._objects.get(key)
                if obj is None:
                    raise KeyError(key)
                links.append(Link(name, key, self._size(obj)))
                self._touch(key, now)
            listing = _DIR_PREFIX + b"".join(f"{ln.name}\x00{ln.hash}\x00{ln.size}\n".encode() for ln in links)
            key = cid_v0(hashlib.sha256(listing).digest())
            if key not in self._objects:
                self._objects[key] = _Directory(tuple(links), listing)
                for link in links:
                    self._links[link.hash] = self._links.get(link.hash, 0) + 1
            self._touch(key, now)
        return key

    def upload(self, files: list[bytes]) -> str:
        """An HTTP upload: check the limits, then wrap the files in a directory named by upload order.

        Raises :class:`ArtifactError` with polyswarmd's statuses and messages (spec §2.8).
        """
        if not files:
            raise ArtifactError(400, "No artifacts")
        if len(files) > self.max_files:
            raise ArtifactError(400, "Too many artifacts")
        for content in files:
            if len(content) > self.max_file_size:
                raise ArtifactError(413, "Artifact too large")
            if not content:
                raise ArtifactError(400, "Artifact empty")
        total = sum(len(content) for content in files)
        if total > self.max_upload_size:
            raise ArtifactError(413, "Upload too large")
        with self._lock:
            new = {cid_v0(hashlib.sha256(c).digest()): len(c) for c in files}
            if not self._make_room(sum(n for key, n in new.items() if key not in self._objects)):
                raise ArtifactError(413, "Artifact store full")
            hashes = [self.add_file(content) for content in files]
            return self.add_directory([(f"{i:06d}", h) for i, h in enumerate(hashes)])

    # --- reading ----------------------------------------------------------------------------------

    def exists(self, key: str) -> bool:
        with self._lock:
            return key in self._objects

    def _get(self, key: str) -> _File | _Directory:
        if not is_valid_hash(key):
            raise ArtifactError(400, "Invalid artifact hash")
        with self._lock:
            obj = self._objects.get(key)
        if obj is None:
            raise ArtifactError(404, f"Artifact with URI {key} not found")
        return obj

    def ls(self, key: str) -> list[tuple[str, str]]:
        """The ``(name, hash)`` links of ``key``; a plain file is ``[("", key)]``."""
        obj = self._get(key)
        if isinstance(obj, _File):
            return [("", key)]
        return [(ln.name, ln.hash) for ln in obj.links]

    def cat(self, key: str) -> bytes:
        """The content of a plain file."""
        obj = self._get(key)
        if isinstance(obj, _Directory):
            raise ArtifactError(400, f"{key} is a directory")
        return obj.content

    def artifact(self, key: str, index: int) -> tuple[str, str]:
        """``(name, hash)`` of link ``index``; 404 when out of range."""
        links = self.ls(key)
        if not 0 <= index < len(links) or index > 256:
            raise ArtifactError(404, f"Artifact with URI {key}/{index} not found")
        return links[index]

    def stat(self, key: str) -> dict[str, int | str]:
        """An IPFS ``object stat`` in snake_case (without ``name``)."""
        obj = self._get(key)
        if isinstance(obj, _File):
            size = len(obj.content)
            return {
                "hash": key,
                "num_links": 0,
                "block_size": size,
                "links_size": 0,
                "data_size": size,
                "cumulative_size": size,
            }
        links_size = len(obj.listing) - len(_DIR_PREFIX)
        return {
            "hash": key,
            "num_links": len(obj.links),
            "block_size": len(obj.listing),
            "links_size": links_size,
            "data_size": len(_DIR_PREFIX),
            "cumulative_size": len(obj.listing) + sum(ln.size for ln in obj.links),
        }

    def read_json_bytes(self, key: str) -> bytes | None:
        """The content of a small plain file at ``key``, or ``None`` when it is not one."""
        if not is_valid_hash(key):
            return None
        with self._lock:
            obj = self._objects.get(key)
        if isinstance(obj, _File) and len(obj.content) <= 1024 * 1024:
            return obj.content
        return None

    @staticmethod
    def _size(obj: _File | _Directory) -> int:
        if isinstance(obj, _File):
            return len(obj.content)
        return len(obj.listing) + sum(ln.size for ln in obj.links)
