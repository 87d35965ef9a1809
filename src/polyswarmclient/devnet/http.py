"""What the devnet server and every ``routes_*.py`` module share (spec §1.4, §2.1).

The request context (:class:`ServerContext` under :data:`CTX`), the response envelope (``ok``, ``fail``,
:class:`ApiFailure`), the query and body parameters, unsigned-transaction building, and :class:`Routes`,
the table each route module declares its handlers in. :mod:`.server` imports the route modules and
builds the application; no route module imports the server.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web
from eth_utils import is_address, to_checksum_address

from polyswarmclient.devnet.artifacts import ArtifactStore
from polyswarmclient.devnet.chainnode import ChainNode
from polyswarmclient.eth.abi import Function

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)

GUID_PATTERN = "{guid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}}"


@dataclass
class ServerContext:
    """Everything the routes read. Built by :class:`~polyswarmclient.devnet.node.Devnet`."""

    home: ChainNode
    side: ChainNode
    artifacts: ArtifactStore
    community: str = "devnet"
    api_keys: frozenset[str] = frozenset()
    start_time: float = field(default_factory=time.time)
    hubs: dict[str, Any] = field(default_factory=dict)  # chain name -> routes_events.EventHub
    max_artifact_size: int = 10 * 1024 * 1024
    #: ``GET /transactions`` receipt waits per chain (spec §2.3: 10 s side, 60 s home)
    receipt_timeouts: dict[str, float] = field(default_factory=lambda: {"side": 10.0, "home": 60.0})
    #: build call data as eth-abi 1.x does, like polyswarmd 2.2.0 (an empty string gets one more zero word)
    eth_abi_v1: bool = False

    @property
    def auth_enforced(self) -> bool:
        return bool(self.api_keys)

    def node(self, chain: str) -> ChainNode:
        return self.home if chain == "home" else self.side


CTX: web.AppKey[ServerContext] = web.AppKey("devnet_context", ServerContext)
#: whether the request carried a valid API key (always true when keys are not enforced)
AUTHENTICATED: Any = web.RequestKey("authenticated", bool) if hasattr(web, "RequestKey") else "authenticated"


class ApiFailure(Exception):
    """Raised by a route: answered as ``{"status": "FAIL", "errors": errors}`` with ``status``."""

    def __init__(self, status: int, errors: Any) -> None:
        super().__init__(str(errors))
        self.status = status
        self.errors = errors


# --- envelope ---------------------------------------------------------------------------------------


#: ``json.dumps(value, separators=(",", ":"))`` without building an encoder on every call
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def compact_json(value: Any) -> str:
    """JSON without spaces, as polyswarmd sends it."""
    return _COMPACT.encode(value)


def ok(result: Any = None, *, with_result: bool = True) -> web.Response:
    body: dict[str, Any] = {"status": "OK"}
    if with_result:
        body["result"] = result
    return web.json_response(body, dumps=compact_json)


def fail(errors: Any, status: int) -> web.Response:
    return web.json_response({"status": "FAIL", "errors": errors}, status=status, dumps=compact_json)


def framework_error(status: int, message: str) -> web.Response:
    """Errors that do not come from a handler carry ``{"message": ...}`` and no ``status`` key."""
    return web.json_response({"message": message}, status=status, dumps=compact_json)


# --- parameters (spec §2.1) -------------------------------------------------------------------------


def chain_param(request: web.Request) -> str:
    chain = request.query.get("chain", "side") or "side"
    if chain not in ("home", "side"):
        raise ApiFailure(400, "Chain must one of home, side")
    return chain


def account_param(request: web.Request) -> str:
    account = request.query.get("account")
    if not account:
        raise ApiFailure(400, "Account must be provided")
    checked = _checked_account(account)
    if checked is None:
        raise ApiFailure(400, "Invalid account")
    return checked


@functools.lru_cache(maxsize=4096)
def _checked_account(account: str) -> str | None:
    """``account`` checksummed, or ``None`` when it is not an address (the few callers are cached)."""
    return str(to_checksum_address(account)) if is_address(account) else None


def chain_scope(request: web.Request) -> tuple[ChainNode, str]:
    """The chain node and caller for a chain-scoped route (both parameters checked)."""
    chain = chain_param(request)
    account = account_param(request)
    return request.app[CTX].node(chain), account


async def json_body(request: web.Request) -> Any:
    try:
        raw = await request.read()
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiFailure(400, f"Invalid JSON: {exc}") from None


def invalid_json(message: str) -> ApiFailure:
    return ApiFailure(400, f"Invalid JSON: {message}")


def require_object(body: Any, required: Iterable[str]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid_json(f"{body!r} is not of type 'object'")
    for key in required:
        if key not in body:
            raise invalid_json(f"'{key}' is a required property")
    return body


def decimal_field(body: dict[str, Any], key: str, *, max_length: int = 100) -> int:
    value = body.get(key)
    if not isinstance(value, str) or not value.isdigit() or not value.isascii() or not 1 <= len(value) <= max_length:
        raise invalid_json(f"{value!r} does not match '^\\d+$' (1-{max_length} characters) for '{key}'")
    return int(value)


def bool_list_field(body: dict[str, Any], key: str, *, max_items: int = 256) -> list[bool]:
    value = body.get(key)
    if not isinstance(value, list) or not all(isinstance(v, bool) for v in value):
        raise invalid_json(f"{value!r} is not a list of booleans for '{key}'")
    if len(value) > max_items:
        raise invalid_json(f"'{key}' has more than {max_items} items")
    return value


async def base_nonce(request: web.Request, node: ChainNode, account: str) -> int:
    raw = request.query.get("base_nonce")
    if raw is None or raw == "":
        return int(await node.run(node.chain.get_nonce, account))
    try:
        value = int(raw)
    except ValueError:
        raise ApiFailure(400, "Invalid base nonce") from None
    if value < 0:
        raise ApiFailure(400, "Invalid base nonce")
    return value


def call_data(request: web.Request, function: Function, *args: Any) -> bytes:
    """``function(*args)`` encoded the way this devnet builds transactions (see ``ServerContext.eth_abi_v1``)."""
    if request.app[CTX].eth_abi_v1:
        return function.encode_eth_abi_v1(*args)
    return function.encode(*args)


async def build_transactions(
    request: web.Request, node: ChainNode, account: str, calls: list[tuple[str, bytes]]
) -> list[dict[str, Any]]:
    """Unsigned txs (spec §4.2) for ``(contract kind, call data)`` pairs, nonces from ``base_nonce``."""
    nonce = await base_nonce(request, node, account)
    return [
        {
            "to": node.address_of(kind),
            "data": "0x" + data.hex(),
            "value": 0,
            "gas": node.gas_limit,
            "gasPrice": 0,
            "nonce": nonce + i,
            "chainId": node.chain_id,
        }
        for i, (kind, data) in enumerate(calls)
    ]


async def transactions_reply(
    request: web.Request, node: ChainNode, account: str, calls: list[tuple[str, bytes]]
) -> web.Response:
    """``{"transactions": [...]}``: the answer of every route that builds transactions for the caller."""
    return ok({"transactions": await build_transactions(request, node, account, calls)})


# --- routes ------------------------------------------------------------------------------------------


class Routes:
    """One module's routes, declared on their handlers: ``@routes.get("/status")``.

    :meth:`register` adds each path with and without a trailing slash (spec §1.4 item 1), in
    declaration order.
    """

    def __init__(self) -> None:
        self._table: list[tuple[str, str, Handler]] = []

    def route(self, method: str, path: str) -> Callable[[H], H]:
        def declare(handler: H) -> H:
            self._table.append((method, path, handler))
            return handler

        return declare

    def get(self, path: str) -> Callable[[H], H]:
        return self.route("GET", path)

    def post(self, path: str) -> Callable[[H], H]:
        return self.route("POST", path)

    def register(self, app: web.Application) -> None:
        for method, path, handler in self._table:
            app.router.add_route(method, path, handler)
            app.router.add_route(method, path + "/", handler)
