"""JSON-RPC 2.0 between a role and its signer, framed as go-ethereum's clef frames its external API.

Two carriers, as clef has them:

* **IPC**: a unix socket carrying a stream of JSON objects (this side writes one object per line; a reader
  accepts any whitespace between objects, as geth's does). The socket file is the access control: the
  server creates it mode 0600 and a client refuses one that its group or others may open.
* **HTTP**: ``POST /`` of one JSON object, plain http to a loopback address only (https anywhere), with
  an optional ``Authorization: Bearer <token>`` (our signer demands one on TCP; clef ignores it).

The client is blocking (stdlib ``socket`` and ``http.client``): a command checks its signer before any event
loop runs, and async callers run a call in a worker thread (a signature is a few requests per bounty).
The server is asyncio for IPC and aiohttp for HTTP. Nothing here knows what the methods mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import http.client
import ipaddress
import itertools
import json
import logging
import os
import socket
import stat
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from polyswarmclient.errors import MalformedResponse, PolyswarmError, SignerConfigError, SignerUnavailable

log = logging.getLogger(__name__)

#: Largest request or answer either side reads (a signed transaction is well under 1 KiB).
MAX_MESSAGE = 1 << 20
#: JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
#: What clef answers when a request is denied; our signer's refusals use it too.
REQUEST_DENIED = -32000
UNAUTHORIZED = -32001

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class RpcFault(PolyswarmError):
    """The peer answered a JSON-RPC error object (or a handler raises one to answer it)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SignerEndpoint:
    """Where a signer listens: a unix socket (``path``) or an http(s) URL (``url``); ``account`` picks one
    of several accounts the signer holds (``?account=0x...`` on either form)."""

    kind: Literal["ipc", "http"]
    path: Path | None = None
    url: str | None = None
    account: str | None = None

    def __str__(self) -> str:
        return f"unix://{self.path}" if self.kind == "ipc" else str(self.url)


def parse_endpoint(text: str) -> SignerEndpoint:
    """``unix:///run/signer.sock``, ``ipc:///...``, a bare path, ``http://127.0.0.1:8550`` or ``https://...``.

    Plain http must name a loopback address: a bearer token (and the transactions) would otherwise cross
    the network in clear; reach a signer on another host through an SSH tunnel or https.
    """
    raw = text.strip()
    if not raw:
        raise SignerConfigError("--signer (SIGNER) is empty; give a unix socket path or an http://127.0.0.1:PORT URL")
    parsed = urllib.parse.urlsplit(raw)
    query = urllib.parse.parse_qs(parsed.query)
    unknown = set(query) - {"account"}
    if unknown:
        raise SignerConfigError(f"--signer {raw}: unknown parameter {sorted(unknown)[0]!r} (only account=0x...)")
    account = query.get("account", [None])[-1]
    if account is not None and not (len(account) == 42 and account.startswith("0x")):
        raise SignerConfigError(f"--signer {raw}: account={account!r} is not an address")
    if parsed.scheme in ("unix", "ipc"):
        path = urllib.parse.unquote(parsed.netloc + parsed.path)
        if not path:
            raise SignerConfigError(f"--signer {raw}: no socket path")
        return SignerEndpoint("ipc", path=Path(path), account=account)
    if parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise SignerConfigError(f"--signer {raw}: no host")
        if parsed.username or parsed.password:
            raise SignerConfigError(
                f"--signer: put no credentials in the URL (they show in process lists); "
                f"use --signer-token-file (SIGNER_TOKEN_FILE) for {parsed.scheme}://{parsed.hostname}"
            )
        if parsed.scheme == "http" and not is_loopback(parsed.hostname):
            raise SignerConfigError(
                f"--signer {parsed.scheme}://{parsed.netloc}: plain http only to a loopback address; "
                "reach a signer on another host through an SSH tunnel or https"
            )
        url = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path or "/", "", ""))
        return SignerEndpoint("http", url=url, account=account)
    if parsed.scheme and "://" in raw:
        raise SignerConfigError(f"--signer {raw}: unknown scheme {parsed.scheme!r}; use unix://, http:// or https://")
    return SignerEndpoint("ipc", path=Path(parsed.path), account=account)


def check_socket(path: Path) -> None:
    """The socket exists (else :class:`SignerUnavailable`), is a socket, and only its owner may open it (mode
    0600 or stricter); else :class:`SignerConfigError`."""
    try:
        info = path.stat()
    except FileNotFoundError:  # not started yet, or restarting (it removes the socket when it stops)
        raise SignerUnavailable(f"no signer socket at {path}") from None
    except OSError as exc:
        raise SignerConfigError(f"cannot inspect the signer socket {path}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise SignerConfigError(f"{path} is not a unix socket; check --signer (SIGNER)")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise SignerConfigError(
            f"the signer socket {path} has mode {mode:04o}: its group or others can ask for signatures; "
            "it must be 0600 (polyswarm-signer creates it so; chmod 600 it or fix the signer's umask)"
        )


def read_token_file(path: Path, what: str = "--signer-token-file (SIGNER_TOKEN_FILE)") -> str:
    """The bearer token: the file's first line. The file must be readable by its owner only."""
    try:
        info = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SignerConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise SignerConfigError(
            f"{what} {path} has mode {stat.S_IMODE(info.st_mode):04o}; others could read the token: chmod 600 it"
        )
    lines = text.splitlines()
    token = lines[0].strip() if lines else ""
    if len(token) < 16:
        raise SignerConfigError(f"{what} {path} holds no token of at least 16 characters on its first line")
    return token


_ids = itertools.count(1)


def _parse_answer(body: bytes, request_id: int, where: str) -> Any:
    try:
        answer = json.loads(body)
    except ValueError:
        raise MalformedResponse(f"the signer at {where} answered something that is not JSON") from None
    if not isinstance(answer, dict) or answer.get("id") != request_id:
        raise MalformedResponse(f"the signer at {where} answered something that is not our JSON-RPC answer")
    error = answer.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise MalformedResponse(f"the signer at {where} answered a malformed JSON-RPC error")
        code = error.get("code")
        return_code = code if isinstance(code, int) and not isinstance(code, bool) else INTERNAL_ERROR
        raise RpcFault(return_code, str(error.get("message", ""))[:500])
    if "result" not in answer:
        raise MalformedResponse(f"the signer at {where} answered neither a result nor an error")
    return answer["result"]


class JsonRpcClient:
    """Blocking JSON-RPC calls to one signer endpoint; one connection per call, so a restarted signer is
    simply reached again. ``repr`` never shows the token."""

    def __init__(self, endpoint: SignerEndpoint, token: str | None = None, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"JsonRpcClient({self.endpoint}, token={'<set>' if self._token else None})"

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        """The method's result. Raises :class:`SignerUnavailable` when the signer cannot be reached or
        hangs up, :class:`SignerConfigError` when it refuses us (token, socket permissions),
        :class:`RpcFault` for a JSON-RPC error, :class:`MalformedResponse` for anything else."""
        request_id = next(_ids)
        payload = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or []})
        if self.endpoint.kind == "ipc":
            body = self._call_ipc(payload.encode())
        else:
            body = self._call_http(payload.encode())
        return _parse_answer(body, request_id, str(self.endpoint))

    def _call_ipc(self, payload: bytes) -> bytes:
        assert self.endpoint.path is not None
        path = self.endpoint.path
        check_socket(path)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(path))
                sock.sendall(payload + b"\n")
                buffer = b""
                while True:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise SignerUnavailable(f"the signer at unix://{path} hung up before answering")
                    buffer += chunk
                    if len(buffer) > MAX_MESSAGE:
                        raise MalformedResponse(f"the signer at unix://{path} answered more than {MAX_MESSAGE} bytes")
                    try:
                        json.loads(buffer)
                    except ValueError:
                        continue
                    return buffer
        except PermissionError:
            raise SignerConfigError(
                f"no permission to open the signer socket {path}; run as the user the signer allows"
            ) from None
        except TimeoutError:
            raise SignerUnavailable(f"the signer at unix://{path} did not answer within {self.timeout:.0f} s") from None
        except OSError as exc:
            raise SignerUnavailable(f"cannot reach the signer at unix://{path}: {exc.strerror or exc}") from None

    def _call_http(self, payload: bytes) -> bytes:
        assert self.endpoint.url is not None
        url = urllib.parse.urlsplit(self.endpoint.url)
        conn_class = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        connection = conn_class(url.hostname or "", url.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            connection.request("POST", url.path or "/", body=payload, headers=headers)
            reply = connection.getresponse()
            body = reply.read(MAX_MESSAGE + 1)
        except TimeoutError:
            raise SignerUnavailable(
                f"the signer at {self.endpoint} did not answer within {self.timeout:.0f} s"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or exc.__class__.__name__
            raise SignerUnavailable(f"cannot reach the signer at {self.endpoint}: {reason}") from None
        finally:
            connection.close()
        if reply.status in (401, 403):
            what = "refused our token" if self._token else "wants a bearer token"
            raise SignerConfigError(
                f"the signer at {self.endpoint} {what} (HTTP {reply.status}); pass the file the signer "
                "wrote its token to with --signer-token-file (SIGNER_TOKEN_FILE)"
            )
        if reply.status != 200:
            raise MalformedResponse(f"the signer at {self.endpoint} answered HTTP {reply.status}")
        if len(body) > MAX_MESSAGE:
            raise MalformedResponse(f"the signer at {self.endpoint} answered more than {MAX_MESSAGE} bytes")
        return body


# --- the server -------------------------------------------------------------------------------------------

#: ``handler(method, params)`` -> the result; raises :class:`RpcFault` to answer an error.
Handler = Callable[[str, list[Any]], Awaitable[Any]]


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


async def answer(handler: Handler, request: Any) -> dict[str, Any]:
    """The JSON-RPC answer to one decoded request object (batches are not supported)."""
    if not isinstance(request, dict):
        return _error(None, INVALID_REQUEST, "expected one JSON-RPC request object (batches are not supported)")
    request_id = request.get("id")
    method = request.get("method")
    params = request.get("params", [])
    if not isinstance(method, str) or request.get("jsonrpc") != "2.0":
        return _error(request_id, INVALID_REQUEST, "not a JSON-RPC 2.0 request")
    if not isinstance(params, list):
        return _error(request_id, INVALID_PARAMS, "params must be a list")
    try:
        result = await handler(method, params)
    except RpcFault as fault:
        return _error(request_id, fault.code, fault.message)
    except Exception:
        log.exception("internal error answering %s", method)
        return _error(request_id, INTERNAL_ERROR, "internal error")
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


class JsonRpcServer:
    """Serves ``handler`` on a unix socket (0600) and/or a loopback TCP port with a bearer token."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._ipc: asyncio.Server | None = None
        self._ipc_path: Path | None = None
        self._runner: web.AppRunner | None = None
        self._token = ""

    def __repr__(self) -> str:
        return f"JsonRpcServer(ipc={self._ipc_path}, http={'on' if self._runner else 'off'})"

    async def listen_ipc(self, path: Path) -> str:
        """Listen on ``path``, created mode 0600; a stale socket left by a dead signer is replaced, a live one
        or any other file is not. Returns ``unix://<path>``."""
        path = Path(path)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise SignerConfigError(f"{path} exists and is not a socket; choose another --socket")
            if await _answers(path):
                raise SignerConfigError(f"a signer is already listening on {path}; stop it or choose another --socket")
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        old = os.umask(0o177)  # the socket is 0600 from its first moment, not after a chmod
        try:
            self._ipc = await asyncio.start_unix_server(self._serve_stream, path=str(path), limit=MAX_MESSAGE)
        except OSError as exc:
            raise SignerConfigError(f"cannot listen on {path}: {exc.strerror or exc}") from None
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._ipc_path = path
        return f"unix://{path}"

    async def listen_http(self, host: str, port: int, token: str) -> str:
        """Listen on loopback ``host:port`` (0 picks a port); every request must carry ``token``."""
        if not is_loopback(host):
            raise SignerConfigError(
                f"the signer listens on loopback addresses only, not {host}; reach it from another host through "
                "an SSH tunnel"
            )
        self._token = token
        app = web.Application(client_max_size=MAX_MESSAGE)
        app.router.add_post("/", self._serve_http)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise SignerConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self._runner = runner
        bound = port
        server = site._server  # the bound port when 0 was asked for
        if isinstance(server, asyncio.Server) and server.sockets:
            bound = server.sockets[0].getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{bound}"

    async def close(self) -> None:
        if self._ipc is not None:
            self._ipc.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ipc.wait_closed(), 5)
            self._ipc = None
        if self._ipc_path is not None:
            with contextlib.suppress(OSError):
                self._ipc_path.unlink()
            self._ipc_path = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        try:
            while chunk := await reader.read(65536):
                buffer += chunk.decode("utf-8", errors="replace")
                if len(buffer) > MAX_MESSAGE:
                    writer.write(json.dumps(_error(None, INVALID_REQUEST, "request too large")).encode() + b"\n")
                    break
                while True:
                    buffer = buffer.lstrip()
                    if not buffer:
                        break
                    try:
                        request, end = decoder.raw_decode(buffer)
                    except ValueError:
                        if buffer[0] not in "{[":
                            writer.write(json.dumps(_error(None, PARSE_ERROR, "parse error")).encode() + b"\n")
                            buffer = ""
                        break  # an incomplete object: read on
                    buffer = buffer[end:]
                    reply = await answer(self._handler, request)
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_http(self, request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
            return web.json_response(
                _error(None, UNAUTHORIZED, "unauthorized: wrong or missing bearer token"), status=401
            )
        try:
            decoded = json.loads(await request.read())
        except ValueError:
            return web.json_response(_error(None, PARSE_ERROR, "parse error"))
        return web.json_response(await answer(self._handler, decoded))


async def _answers(path: Path) -> bool:
    """True when something accepts connections on the unix socket ``path``."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 2)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True
