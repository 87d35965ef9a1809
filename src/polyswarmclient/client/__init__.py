"""The client facade services code against, and what it delegates to.

``facade`` (``PolyswarmClient``), ``settings`` (``ClientConfig``, ``TransactionSettings``),
``transactions`` (the build/verify/sign/post/confirm pipeline), ``nonces`` (one nonce sequence per chain
and account), ``pins`` (trust-on-first-use contract addresses and chain ids).

The names below are imported on first use, so importing a light module of this package (``settings``)
does not import the HTTP stack and eth-account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyswarmclient.client.facade import PolyswarmClient
    from polyswarmclient.client.settings import ClientConfig

__all__ = ["ClientConfig", "PolyswarmClient"]


def __getattr__(name: str) -> Any:
    if name == "ClientConfig":
        from polyswarmclient.client.settings import ClientConfig

        return ClientConfig
    if name == "PolyswarmClient":
        from polyswarmclient.client.facade import PolyswarmClient

        return PolyswarmClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
