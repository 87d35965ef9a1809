"""The ``{"status": ..., "result"|"errors": ...}`` envelope, parsed in one place (spec §2.1)."""

from __future__ import annotations

import json
from typing import Any

from polyswarmclient.errors import ApiError, MalformedResponse, NotFound


def error_text(errors: object) -> str:
    """Flatten any of the three ``errors`` shapes into one readable line."""
    if errors is None:
        return "no error message"
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list):
        parts = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        return "; ".join(p for p in parts if p) or "no error message"
    if isinstance(errors, dict):
        inner = errors.get("errors", [])
        if isinstance(inner, list) and inner:
            return "; ".join(str(e) for e in inner)
        return json.dumps(errors, sort_keys=True)[:300]
    return str(errors)


def parse_body(status: int, body: bytes, *, what: str) -> Any:
    """Return ``result`` of a polyswarmd JSON answer or raise the matching error.

    ``what`` names the request (``GET /bounties/parameters``) for error messages.
    """
    failed = not 200 <= status < 300
    try:
        data = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        snippet = body[:80].decode("utf-8", "replace")
        if failed:
            # A gateway's error page (502/504 HTML...): the HTTP error is what matters to the caller.
            cls = NotFound if status == 404 else ApiError
            raise cls(status, f"{what}: HTTP {status} (not from polyswarmd? body: {snippet!r})") from None
        raise MalformedResponse(f"{what}: HTTP {status} with a body that is not JSON: {snippet!r}") from None
    if isinstance(data, dict) and "status" in data:
        if data["status"] == "OK" and 200 <= status < 300:
            return data.get("result")
        if data["status"] in ("OK", "FAIL"):
            errors = data.get("errors")
            message = f"{what}: HTTP {status}: {error_text(errors)}"
            cls = NotFound if status == 404 else ApiError
            raise cls(status, message, errors)
    if failed:
        cls = NotFound if status == 404 else ApiError
        if isinstance(data, dict) and "message" in data:
            # Framework errors (unknown route, wrong method, too large) carry no status key.
            raise cls(status, f"{what}: HTTP {status}: {data['message']}", data["message"])
        snippet = body[:80].decode("utf-8", "replace")
        raise cls(status, f"{what}: HTTP {status} (not from polyswarmd? body: {snippet!r})")
    raise MalformedResponse(f"{what}: HTTP {status} with a JSON body that is not a polyswarmd envelope")
