"""Transport: the only package that imports aiohttp (besides the devnet's server and telemetry's).

``http`` owns REST, ``stream`` owns the websocket event stream, ``address`` turns the configured
polyswarmd address into URLs, ``backoff`` is the shared retry delay policy, ``settings`` the settings
dataclasses (light: no aiohttp).

The names below are imported on first use, so importing a light module of this package does not import
aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polyswarmclient.transport.address import PolyswarmdAddress, parse_address
    from polyswarmclient.transport.backoff import Backoff
    from polyswarmclient.transport.http import HttpTransport, Upload
    from polyswarmclient.transport.settings import HttpSettings, StreamSettings
    from polyswarmclient.transport.stream import EventStream

_WHERE = {
    "Backoff": "backoff",
    "EventStream": "stream",
    "HttpSettings": "settings",
    "HttpTransport": "http",
    "PolyswarmdAddress": "address",
    "StreamSettings": "settings",
    "Upload": "http",
    "parse_address": "address",
}

__all__ = [
    "Backoff",
    "EventStream",
    "HttpSettings",
    "HttpTransport",
    "PolyswarmdAddress",
    "StreamSettings",
    "Upload",
    "parse_address",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
