"""A small asyncio client for clamd, the ClamAV daemon: ``PING``, ``VERSION`` and ``INSTREAM``.

Each command opens its own connection (TCP or a unix socket), sends the ``z``-prefixed, NUL-terminated
form of the command and reads clamd's NUL-terminated answer, all within one timeout. ``INSTREAM`` sends
the artifact as length-prefixed chunks (a 4-byte big-endian length, then the bytes) and a zero-length
chunk to end it. clamd refuses a stream longer than its ``StreamMaxLength`` with ``INSTREAM size limit
exceeded``: that becomes :class:`StreamTooLarge`, and the client remembers the size so that it never
sends an artifact at least that big again.

Why our own: aioclamd (1.1, the maintained asyncio library) was judged and does not fit: it connects
over TCP only, and a unix socket (``CLAMD_SOCKET``) is how clamd usually runs next to an engine (and
how the tests start it). The protocol needs little more than these lines.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
from dataclasses import dataclass

from polyswarmclient.errors import ConfigError, ScanError

#: Bytes per INSTREAM chunk: far below any sensible StreamMaxLength (clamd's default is 100 MiB), so no
#: single chunk is ever refused on its own.
CHUNK_SIZE = 64 * 1024
#: The most bytes of an answer we read: a verdict line is short, a VERSION line too.
MAX_REPLY = 64 * 1024

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 3310
DEFAULT_TIMEOUT = 30.0

_FOUND = re.compile(r"^(?:stream|\S+): (?P<signature>.+) FOUND$")


class ClamdError(ScanError):
    """clamd could not be reached, or answered something this client does not understand."""


class ClamdUnavailable(ClamdError):
    """No clamd answers at the configured address (refused, missing socket, timeout)."""


class StreamInterrupted(ClamdError):
    """clamd closed the connection while the stream was still going out, and its answer was lost with it."""


class StreamTooLarge(ClamdError):
    """clamd refused the artifact: it is longer than clamd's ``StreamMaxLength``."""

    def __init__(self, size: int) -> None:
        super().__init__(
            f"clamd refused a {size}-byte artifact: it exceeds clamd's StreamMaxLength (raise it in clamd.conf)"
        )
        self.size = size


@dataclass(frozen=True)
class ClamdAddress:
    """Where clamd listens: a unix ``socket`` path, else ``host``:``port``; ``timeout`` bounds each command."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    socket: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __str__(self) -> str:
        return f"unix:{self.socket}" if self.socket else f"{self.host}:{self.port}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ClamdAddress:
        """``CLAMD_SOCKET``, ``CLAMD_HOST``, ``CLAMD_PORT`` and ``CLAMD_TIMEOUT`` (a bad value is a ConfigError)."""
        values = dict(os.environ if env is None else env)
        port_text = values.get("CLAMD_PORT", "").strip() or str(DEFAULT_PORT)
        timeout_text = values.get("CLAMD_TIMEOUT", "").strip() or str(DEFAULT_TIMEOUT)
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            raise ConfigError(f"CLAMD_PORT must be a TCP port (1-65535), not {port_text!r}") from None
        try:
            timeout = float(timeout_text)
            if not timeout > 0:
                raise ValueError
        except ValueError:
            raise ConfigError(f"CLAMD_TIMEOUT must be a positive number of seconds, not {timeout_text!r}") from None
        return cls(
            host=values.get("CLAMD_HOST", "").strip() or DEFAULT_HOST,
            port=port,
            socket=values.get("CLAMD_SOCKET", "").strip() or None,
            timeout=timeout,
        )


@dataclass(frozen=True)
class ClamdVerdict:
    """clamd's answer on one stream: ``signature`` is the detection name when it found something."""

    signature: str | None

    @property
    def malicious(self) -> bool:
        return self.signature is not None


def parse_verdict(reply: str) -> ClamdVerdict:
    """``stream: OK`` or ``stream: <signature> FOUND``; anything else (an ``ERROR`` line) is a ClamdError."""
    if reply.endswith(": OK"):
        return ClamdVerdict(None)
    found = _FOUND.match(reply)
    if found is not None:
        return ClamdVerdict(found.group("signature"))
    if "size limit exceeded" in reply:
        raise ClamdError(reply)  # the caller knows the size and raises StreamTooLarge
    raise ClamdError(f"clamd answered {reply!r}")


class ClamdClient:
    """The three commands a scanner needs, each on a fresh connection, each bounded by the address's timeout."""

    def __init__(self, address: ClamdAddress) -> None:
        self.address = address
        #: The smallest artifact size clamd has refused; anything at least this big is not sent again.
        self.refused_size: int | None = None

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            if self.address.socket:
                return await asyncio.open_unix_connection(self.address.socket, limit=MAX_REPLY)
            return await asyncio.open_connection(self.address.host, self.address.port, limit=MAX_REPLY)
        except OSError as exc:
            raise ClamdUnavailable(f"no clamd at {self.address}: {exc.strerror or exc}") from None

    async def _command(self, command: bytes, payload: bytes | None = None) -> str:
        try:
            async with asyncio.timeout(self.address.timeout):
                reader, writer = await self._open()
                try:
                    return await self._exchange(reader, writer, command, payload)
                finally:
                    writer.close()
                    try:
                        await writer.wait_closed()
                    except OSError:
                        pass
        except TimeoutError:
            raise ClamdUnavailable(
                f"clamd at {self.address} did not answer {command.decode()} within {self.address.timeout:g}s"
            ) from None

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: bytes, payload: bytes | None
    ) -> str:
        # Listen while sending: clamd answers as soon as a stream passes its StreamMaxLength and then
        # closes, so the answer must be read before a later write fails on the closed socket.
        answer = asyncio.ensure_future(reader.readuntil(b"\0"))
        sent = 0
        try:
            writer.write(b"z" + command + b"\0")
            if payload is not None:
                view = memoryview(payload)
                while sent < len(view) and not answer.done():
                    chunk = view[sent : sent + CHUNK_SIZE]
                    writer.write(struct.pack(">I", len(chunk)) + chunk)
                    await writer.drain()
                    sent += len(chunk)
                if not answer.done():
                    writer.write(struct.pack(">I", 0))
            await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            pass  # clamd stopped reading: its answer (read below) says why
        try:
            raw = await answer
        except asyncio.IncompleteReadError as exc:
            raw = exc.partial
        except asyncio.LimitOverrunError:
            raise ClamdError(f"clamd at {self.address} sent an answer longer than {MAX_REPLY} bytes") from None
        except OSError as exc:
            if payload is not None and 0 < sent:
                # the answer was lost with the connection while the stream was still going out
                raise StreamInterrupted(
                    f"clamd at {self.address} closed the connection after {sent} bytes of the stream"
                ) from None
            raise ClamdError(f"clamd at {self.address} dropped the connection: {exc.strerror or exc}") from None
        finally:
            answer.cancel()
        reply = raw.rstrip(b"\0").decode("utf-8", "replace").strip()
        if not reply:
            raise ClamdError(f"clamd at {self.address} closed the connection without an answer to {command.decode()}")
        return reply

    async def ping(self) -> None:
        """``PING``; a ClamdUnavailable when nothing answers ``PONG``."""
        reply = await self._command(b"PING")
        if reply != "PONG":
            raise ClamdUnavailable(f"clamd at {self.address} answered PING with {reply!r}, not PONG")

    async def version(self) -> str:
        """clamd's ``VERSION`` line, e.g. ``ClamAV 1.4.3/27000/Mon Nov 30 2026`` (engine/signatures/date)."""
        return await self._command(b"VERSION")

    async def instream(self, content: bytes) -> ClamdVerdict:
        """Scan ``content``; StreamTooLarge when clamd (now or before) refused an artifact this big."""
        size = len(content)
        if self.refused_size is not None and size >= self.refused_size:
            raise StreamTooLarge(size)
        try:
            return parse_verdict(await self._command(b"INSTREAM", content))
        except StreamInterrupted:
            # Over TCP, clamd's refusal can be lost when it resets a connection we were still sending on.
            # A clamd that still answers PING closed it on purpose: the stream was over its limit.
            await self.ping()
            self._refused(size)
        except ClamdError as exc:
            if "size limit exceeded" not in str(exc):
                raise
            self._refused(size)
        raise StreamTooLarge(size)

    def _refused(self, size: int) -> None:
        self.refused_size = size if self.refused_size is None else min(size, self.refused_size)


__all__ = [
    "ClamdAddress",
    "ClamdClient",
    "ClamdError",
    "ClamdUnavailable",
    "ClamdVerdict",
    "StreamInterrupted",
    "StreamTooLarge",
    "parse_verdict",
]
