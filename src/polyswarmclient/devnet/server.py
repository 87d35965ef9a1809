"""The devnet's polyswarmd-compatible HTTP/WebSocket server (HEAD API, spec §1.4 "ethereum" mode).

``create_app(ctx)`` builds the aiohttp application from the route tables of ``routes_*.py``. This module
owns what wraps every route: framework errors and API-key enforcement. What the routes share (the
request context, the envelope, parameters, unsigned transactions) is in :mod:`.http`, which the route
modules import; they never import this module.
"""

from __future__ import annotations

import logging

from aiohttp import web

from polyswarmclient.devnet import routes_accounts, routes_artifacts, routes_bounties, routes_chain, routes_events
from polyswarmclient.devnet.http import (
    AUTHENTICATED,
    CTX,
    ApiFailure,
    Handler,
    ServerContext,
    fail,
    framework_error,
)

log = logging.getLogger(__name__)

#: Paths that work without an API key (both methods of ``/transactions``), spec §2.1.
AUTH_WHITELIST = frozenset({"/status", "/relay/withdrawal", "/transactions"})
#: Never authenticated (spec §2.1: the WebSocket skips the auth hook).
AUTH_EXEMPT = frozenset({"/events"})

_FRAMEWORK_MESSAGES = {
    404: "The requested URL was not found on the server.",
    405: "The method is not allowed for the requested URL.",
    413: "The data value transmitted exceeds the capacity limit.",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiFailure as exc:
        return fail(exc.errors, exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return framework_error(exc.status, _FRAMEWORK_MESSAGES.get(exc.status, exc.reason))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return framework_error(500, "Internal Server Error")


def _normal_path(path: str) -> str:
    return path.rstrip("/") or "/"


def presented_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    tokens = header.split()
    return tokens[-1] if tokens else None


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API keys, when enforced, run before routing, like polyswarmd's ``before_request`` (spec §2.1)."""
    ctx = request.app[CTX]
    if not ctx.auth_enforced:
        request[AUTHENTICATED] = True
        return await handler(request)
    path = _normal_path(request.path)
    key = presented_key(request)
    authenticated = key is not None and key in ctx.api_keys
    request[AUTHENTICATED] = authenticated
    if path in AUTH_EXEMPT:
        return await handler(request)
    limit = ctx.artifacts.max_upload_size + 1024 * 1024  # multipart framing on top of the files
    if request.content_length is not None and request.content_length > limit:
        return fail("Payload too large", 413)
    if not authenticated and path not in AUTH_WHITELIST:
        return fail("Unauthorized", 401)
    return await handler(request)


#: Every route module, in registration order.
ROUTE_MODULES = (routes_chain, routes_bounties, routes_accounts, routes_artifacts, routes_events)


def create_app(ctx: ServerContext) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware],
        client_max_size=ctx.artifacts.max_upload_size + 1024 * 1024,
    )
    app[CTX] = ctx
    for module in ROUTE_MODULES:
        module.routes.register(app)
    return app
