"""The polyswarmd address: parsed and checked once, then used to build every URL by concatenation.

Accepted forms (spec §1.3):

* ``host:port`` (the seed form): the scheme is ``https``, or ``http`` with ``insecure_transport``;
* a full URL, optionally with a path prefix: ``https://api.example/v1/default``.

Decisions:

* An explicit ``http://`` URL is refused unless ``insecure_transport`` is set too, so plain http is
  always a deliberate choice made with one flag, whichever address form is used.
* An explicit ``https://`` URL stays https even with ``insecure_transport`` (the flag *allows* http,
  it never downgrades).
* An API key is never sent over http unless ``allow_key_over_http`` is set.
* URLs are ``base + path``, never ``urljoin`` (which drops a path prefix; spec pitfall 24).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from polyswarmclient.errors import ConfigError

CHAINS = ("home", "side")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")
#: Host names that all mean this machine: one pin entry for them (see ``PolyswarmdAddress.pin_key``).
_LOOPBACK = re.compile(r"^(localhost|127(\.\d{1,3}){3}|::1)$")


@dataclass(frozen=True)
class PolyswarmdAddress:
    """A checked base URL such as ``https://api.example/v1/default`` (never a trailing slash)."""

    base: str

    @property
    def secure(self) -> bool:
        return self.base.startswith("https://")

    def url(self, path: str) -> str:
        """``base + path``; ``path`` starts with ``/`` (``/bounties/parameters``)."""
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        return self.base + path

    def ws_url(self, chain: str) -> str:
        """The event stream of ``chain``: the base with http -> ws, plus ``/events/?chain=<chain>``."""
        check_chain(chain)
        return "ws" + self.base[len("http") :] + f"/events/?chain={chain}"

    @property
    def pin_key(self) -> str:
        """The key of this server's contract pins: the base URL, with every name of this machine
        (``localhost``, ``127.0.0.1``, ``[::1]``) spelled ``localhost``, so one server is one entry."""
        parts = urlsplit(self.base)
        host = parts.hostname or ""
        if not _LOOPBACK.match(host):
            return self.base
        netloc = "localhost" + (f":{parts.port}" if parts.port is not None else "")
        return f"{parts.scheme}://{netloc}{parts.path}"

    def __str__(self) -> str:
        return self.base


def check_chain(chain: str) -> str:
    if chain not in CHAINS:
        raise ConfigError(f"unknown chain {chain!r}; use 'home' or 'side'")
    return chain


def parse_address(
    addr: str,
    *,
    insecure_transport: bool = False,
    api_key: str | None = None,
    allow_key_over_http: bool = False,
) -> PolyswarmdAddress:
    """Check ``addr`` against the transport rules and return the base URL, or raise :class:`ConfigError`."""
    text = (addr or "").strip()
    if not text:
        raise ConfigError(
            "the polyswarmd address is empty; pass --polyswarmd-addr (POLYSWARMD_ADDR), e.g. localhost:31337"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ConfigError(f"--polyswarmd-addr {addr!r} contains a space or a control character; use host:port or a URL")
    match = _SCHEME.match(text)
    authority = text[match.end() if match else 0 :].split("/", 1)[0]
    if "@" in authority:
        # Never echo the address here: it may hold a password.
        raise ConfigError(
            "--polyswarmd-addr must not carry credentials (user:password@); pass the API key with --api-key (API_KEY)"
        )
    if match is None:
        scheme = "http" if insecure_transport else "https"
        text = f"{scheme}://{text}"
    else:
        scheme = match.group(1).lower()
        if scheme not in ("http", "https"):
            raise ConfigError(
                f"--polyswarmd-addr {addr!r}: unsupported scheme {scheme!r}; "
                "use host:port or an http(s):// URL "
                "(the websocket URL is derived from it)"
            )
        if scheme == "http" and not insecure_transport:
            raise ConfigError(
                f"--polyswarmd-addr {addr!r} uses plain http; pass --insecure-transport to allow unencrypted "
                "traffic, or use an https:// address"
            )
        text = scheme + text[len(match.group(1)) :]
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"--polyswarmd-addr {addr!r} is not a valid address: {exc}") from None
    if not parts.hostname:
        raise ConfigError(f"--polyswarmd-addr {addr!r} has no host name; use host:port or https://host/path")
    if parts.query or parts.fragment or text.endswith("?") or text.endswith("#"):
        raise ConfigError(f"--polyswarmd-addr {addr!r} must not contain a query string or fragment")
    # Rebuild the authority from its parts: the host in lower case (urlsplit lowers it), IPv6 in
    # brackets, no empty port. One server then has one base URL, which keys its contract pins.
    host = parts.hostname
    if ":" not in host and not _HOST.match(host):
        raise ConfigError(
            f"--polyswarmd-addr {addr!r}: {host!r} is not a host name (letters, digits, '-', '.' and '_')"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    base = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
    if scheme == "http" and api_key and not allow_key_over_http:
        raise ConfigError(
            f"refusing to send the API key over plain http to {base}: "
            "anyone on the network path could read it. "
            "Use an https address (drop --insecure-transport), or pass --allow-key-over-http if the network "
            "is trusted (for example a local devnet)"
        )
    return PolyswarmdAddress(base)
