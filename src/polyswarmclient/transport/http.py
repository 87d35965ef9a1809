"""REST transport: the only module that speaks HTTP (aiohttp) to polyswarmd.

One :class:`aiohttp.ClientSession` for the client's whole life. Every status code and every aiohttp
exception becomes a package exception here, and nowhere else:

* 401 -> :class:`Unauthorized` (fatal; retrying cannot help);
* 429 -> every request of this transport waits at one gate (:mod:`.ratelimit`: Retry-After honoured,
  one escalation per burst, gradual release, reveals and settles first), then the request is
  retried; after ``rate_limit.retries`` pauses -> :class:`RateLimited`. A 429 means the
  gateway refused the request, so retrying is safe for any method;
* connection refused / DNS / connect timeout (the request never left) -> retried for any method;
* 5xx and broken connections after the request was sent -> retried only for idempotent requests
  (GETs, and POSTs the caller marks idempotent such as transaction *building*, which signs nothing);
  a non-idempotent request raises :class:`ConnectionLost` instead (``POST /transactions`` callers
  re-post the same signed bytes and rely on ``known transaction``);
* retries are bounded and use capped, jittered backoff; then :class:`ConnectionFailed`, whose message
  names the address and the flags to check.

JSON envelopes are parsed by :func:`polyswarmclient.wire.envelope.parse_body`. The API key is sent as
``Authorization: <key>`` only when one is set, and never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypedDict, Unpack

import aiohttp

from polyswarmclient.errors import (
    ConnectionFailed,
    ConnectionLost,
    MalformedResponse,
    RateLimited,
    ReplyTooLarge,
    Unauthorized,
)
from polyswarmclient.transport.address import PolyswarmdAddress
from polyswarmclient.transport.backoff import Backoff
from polyswarmclient.transport.ratelimit import NORMAL, RateGate
from polyswarmclient.transport.settings import HttpSettings as HttpSettings  # re-exported
from polyswarmclient.transport.settings import RateLimitSettings as RateLimitSettings
from polyswarmclient.wire.envelope import parse_body

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
RETRYABLE_STATUS: Final = frozenset({500, 502, 503, 504})


class _NoBody:
    def __repr__(self) -> str:
        return "NO_BODY"


#: Marker for "send no JSON body" (``None`` would send ``null``).
NO_BODY: Final = _NoBody()


class RequestOptions(TypedDict, total=False):
    """What a caller may say about one request besides its method and path."""

    #: The query string.
    params: Mapping[str, str] | None
    #: The JSON body (``NO_BODY`` for none).
    json: Any
    #: Safe to send again after a failure that may have reached the server (default: by method).
    idempotent: bool | None
    #: Seconds the whole request may take (default ``request_timeout``).
    time_limit: float | None
    #: Order among requests waiting out a rate limit: ``URGENT`` (reveals, settles) go first.
    priority: int


class _ExchangeOptions(RequestOptions, total=False):
    #: A multipart body, made afresh for each attempt.
    form: Callable[[], aiohttp.FormData] | None
    #: Most bytes of the answer (default ``max_reply_bytes``) and the option that raises it.
    limit: int | None
    limit_option: str | None


@dataclass(frozen=True)
class Upload:
    """One part of a multipart upload."""

    filename: str
    content: bytes


class HttpTransport:
    """Talks REST to one polyswarmd. Use ``async with`` (or :meth:`open`/:meth:`close`)."""

    def __init__(
        self,
        address: PolyswarmdAddress,
        api_key: str | None = None,
        settings: HttpSettings | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.address = address
        self.settings = settings or HttpSettings()
        self._headers: dict[str, str] = {"Authorization": api_key} if api_key else {}
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        limits = self.settings.rate_limit
        self._gate = RateGate(limits.base, limits.cap, limits.spacing, rng=self._rng)
        #: First attempts' time limits, by seconds: one object per distinct limit (a handful, from settings).
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def __repr__(self) -> str:
        key = "set" if self._headers else "none"
        return f"HttpTransport({self.address.base}, api_key={key})"

    @property
    def has_api_key(self) -> bool:
        return bool(self._headers)

    # --- lifecycle ------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._session is None or self._session.closed:
            # Decompression is ours (see _read_capped), so a small compressed bomb cannot grow unbounded.
            self._session = aiohttp.ClientSession(
                timeout=self._timeout(self.settings.request_timeout),
                auto_decompress=False,
                headers={"Accept-Encoding": "gzip, deflate"},
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpTransport:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the calls ------------------------------------------------------------------------------

    async def request(self, method: str, path: str, **options: Unpack[RequestOptions]) -> Any:
        """Send one request and return the envelope's ``result`` (or raise). See :class:`RequestOptions`."""
        status, body = await self._exchange(method, path, **options)
        return parse_body(status, body, what=f"{method} {path}")

    async def fetch_bytes(self, path: str, *, params: Mapping[str, str] | None = None) -> bytes | None:
        """A raw-bytes route (``GET /artifacts/<uri>/<i>``): the body on HTTP 200, else ``None``.

        A body over ``max_artifact_bytes`` raises :class:`ReplyTooLarge` naming --max-artifact-size.
        """
        status, body = await self._exchange(
            "GET", path, params=params, limit=self.settings.max_artifact_bytes, limit_option="--max-artifact-size"
        )
        if status == 200:
            return body
        log.debug("GET %s answered HTTP %d; treating it as no content", path, status)
        return None

    async def status_of(self, method: str, path: str, *, params: Mapping[str, str] | None = None) -> int:
        """Only the status code (``OPTIONS /wallets/`` server-type probe)."""
        status, _ = await self._exchange(method, path, params=params)
        return status

    async def upload(self, path: str, files: Sequence[Upload], *, params: Mapping[str, str] | None = None) -> Any:
        """ONE multipart POST with every file as a part named ``file``; returns ``result``."""
        if not files:
            raise ValueError("nothing to upload")

        def form() -> aiohttp.FormData:
            data = aiohttp.FormData()
            for item in files:
                data.add_field("file", item.content, filename=item.filename, content_type="application/octet-stream")
            return data

        status, body = await self._exchange(
            "POST", path, params=params, form=form, idempotent=True, time_limit=self.settings.upload_timeout
        )
        return parse_body(status, body, what=f"POST {path}")

    # --- internals ------------------------------------------------------------------------------

    def _timeout(self, total: float) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=total, sock_connect=self.settings.connect_timeout)

    def _first_timeout(self, total: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(total)
        if timeout is None:
            timeout = self._timeout(total)
            if len(self._timeouts) < 16:  # callers' own limits could be many: keep the first few
                self._timeouts[total] = timeout
        return timeout

    def _backoff(self) -> Backoff:
        return Backoff(self.settings.retry_base, self.settings.retry_cap, rng=self._rng)

    def _unauthorized(self, what: str) -> Unauthorized:
        if self._headers:
            return Unauthorized(
                f"polyswarmd at {self.address} refused the API key (HTTP 401 on {what}). "
                "Check --api-key (API_KEY): it must be a valid key for this community"
            )
        return Unauthorized(
            f"polyswarmd at {self.address} requires an API key (HTTP 401 on {what}). Pass --api-key or set API_KEY"
        )

    def _unreachable(self, what: str, exc: BaseException, attempts: int) -> ConnectionFailed:
        return ConnectionFailed(
            f"cannot reach polyswarmd at {self.address} ({what}: {_describe(exc)}; {attempts} attempt(s)). "
            "Check that it is running and that --polyswarmd-addr (POLYSWARMD_ADDR) is right; "
            "a server speaking plain http needs --insecure-transport"
        )

    async def _exchange(self, method: str, path: str, **options: Unpack[_ExchangeOptions]) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("the HTTP transport is not open; use `async with PolyswarmClient(...)`")
        method = method.upper()
        what = f"{method} {path}"
        url = self.address.url(path)
        idempotent, priority = options.get("idempotent"), options.get("priority", NORMAL)
        safe_to_repeat = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        per_attempt = options.get("time_limit") or self.settings.request_timeout
        loop = asyncio.get_running_loop()
        # The whole request, retries included, ends by this time (rate-limit pauses do not count).
        budget = max(self.settings.total_timeout, per_attempt)
        deadline = loop.time() + budget
        backoff: Backoff | None = None  # made on the first retry
        failures = 0
        rate_limited = 0
        while True:
            await self._gate.wait(priority)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise ConnectionFailed(
                    f"polyswarmd at {self.address} did not answer {what} within {budget:.0f} s "
                    f"({failures + 1} attempt(s)); check that it is healthy and that --polyswarmd-addr "
                    "(POLYSWARMD_ADDR) is right"
                )
            kwargs: dict[str, Any] = {
                "headers": self._headers,
                # The first attempt gets its whole time limit; retries get what is left of the budget.
                "timeout": self._first_timeout(per_attempt)
                if not failures
                else self._timeout(min(per_attempt, remaining)),
            }
            if params := options.get("params"):
                kwargs["params"] = params
            if (payload := options.get("json", NO_BODY)) is not NO_BODY:
                kwargs["json"] = payload
            if (form := options.get("form")) is not None:
                kwargs["data"] = form()
            problem: BaseException
            try:
                async with self._session.request(method, url, **kwargs) as response:
                    cap = options.get("limit") or self.settings.max_reply_bytes
                    body = await _read_capped(response, cap, what, options.get("limit_option"))
                    status = response.status
                    retry_after = response.headers.get("Retry-After")
            except aiohttp.ClientSSLError as exc:
                private_ca = (
                    " (signed by a private CA? point SSL_CERT_FILE at the CA's certificate)"
                    if isinstance(exc, aiohttp.ClientConnectorCertificateError)
                    else ""
                )
                raise ConnectionFailed(
                    f"TLS with polyswarmd at {self.address} failed ({what}: {_describe(exc)}). "
                    "If the server speaks plain http, pass --insecure-transport; "
                    f"otherwise check its certificate{private_ca}"
                ) from exc
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                problem = exc  # the request never left: safe to repeat whatever the method
            except (aiohttp.ClientError, TimeoutError) as exc:
                if not safe_to_repeat:
                    raise ConnectionLost(
                        f"the connection to polyswarmd at {self.address} broke during {what} "
                        f"({_describe(exc)}); the server may or may not have acted on it"
                    ) from exc
                problem = exc
            else:
                if status == 401:
                    raise self._unauthorized(what)
                if status == 429:
                    rate_limited += 1
                    if rate_limited > self.settings.rate_limit.retries:
                        raise RateLimited(
                            f"polyswarmd at {self.address} kept answering HTTP 429 (rate limited) to {what} "
                            f"after {rate_limited - 1} pauses; lower the request rate or ask the operator "
                            "for a higher limit"
                        )
                    self._gate.limited(retry_after, what, self.address)
                    continue
                self._gate.passed()
                if status in RETRYABLE_STATUS and safe_to_repeat and failures < self.settings.max_retries:
                    failures += 1
                    backoff = backoff or self._backoff()
                    delay = backoff.delay()
                    log.info(
                        "%s answered HTTP %d; retrying in %.1f s (retry %d of %d)",
                        what,
                        status,
                        delay,
                        failures,
                        self.settings.max_retries,
                    )
                    await asyncio.sleep(delay)
                    continue
                return status, body
            if failures >= self.settings.max_retries:
                raise self._unreachable(what, problem, failures + 1) from problem
            failures += 1
            backoff = backoff or self._backoff()
            delay = backoff.delay()
            slow = isinstance(problem, TimeoutError) and not isinstance(problem, aiohttp.ConnectionTimeoutError)
            # A server that accepted the request but is slow to answer is worth a word at the default level;
            # a refused connection is retried quietly and reported once, if it never comes back.
            log.log(
                logging.WARNING if slow else logging.INFO,
                "%s to %s failed (%s); retrying in %.1f s (retry %d of %d)",
                what,
                self.address,
                _describe(problem),
                delay,
                failures,
                self.settings.max_retries,
            )
            await asyncio.sleep(delay)


_CHUNK = 64 * 1024


async def _read_capped(response: aiohttp.ClientResponse, cap: int, what: str, option: str | None) -> bytes:
    """The body, decompressed here in bounded steps; :class:`ReplyTooLarge` once it passes ``cap`` bytes."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
        raise MalformedResponse(f"{what}: polyswarmd answered in content encoding {encoding!r}, not asked for")
    if encoding in ("", "identity"):
        length = response.content_length
        if length is not None and length <= cap:
            # The parser delivers exactly Content-Length bytes: one read, already within the cap.
            return await response.read()
    inflater = None
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    body = bytearray()

    def take(piece: bytes) -> None:
        body.extend(piece)
        if len(body) > cap:
            how = f"; raise {option} if that is expected" if option else ""
            raise ReplyTooLarge(f"{what}: the answer is larger than {cap} bytes, so it was not read{how}")

    async for chunk in response.content.iter_chunked(_CHUNK):
        if inflater is None:
            take(chunk)
            continue
        data = chunk
        try:
            while data:
                take(inflater.decompress(data, _CHUNK))
                data = inflater.unconsumed_tail
        except zlib.error as exc:
            raise MalformedResponse(f"{what}: the {encoding} body does not decompress ({exc})") from None
    if inflater is not None:
        take(inflater.flush())
    return bytes(body)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
