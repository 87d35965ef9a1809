"""Transport: the only package that imports aiohttp and websockets.

``http`` owns REST, ``stream`` owns the websocket event stream, ``address`` turns the configured
polyswarmd address into URLs, ``backoff`` is the shared retry delay policy.
"""

from polyswarmclient.transport.address import PolyswarmdAddress, parse_address
from polyswarmclient.transport.backoff import Backoff
from polyswarmclient.transport.http import HttpSettings, HttpTransport, Upload
from polyswarmclient.transport.stream import EventStream, StreamSettings

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
