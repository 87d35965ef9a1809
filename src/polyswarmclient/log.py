"""Logging set-up: text or JSON lines, on the package's own loggers, with secrets redacted."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

_SECRETS: set[str] = set()
_HANDLER_NAME = "polyswarm-kit"
#: Loggers configured by :func:`setup_logging`. Third-party libraries keep their own levels.
LOGGER_NAMES = ("polyswarmclient", "microengine", "balancemanager", "ambassador", "arbiter", "devnet", "worker")
#: The library's own logger, set by ``--client-log`` (CLIENT_LOG_LEVEL) when given, else by ``--log``.
CLIENT_LOGGER = "polyswarmclient"
#: Fields JSON lines carry for the work under way (``guid``, ``chain``, ``block``): tasks inherit them.
_FIELDS: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("polyswarm_log_fields", default={})  # noqa: B039


@contextlib.contextmanager
def fields(**values: Any) -> Iterator[None]:
    """Add ``values`` to every JSON log line written inside the block, and in the tasks started there."""
    token = _FIELDS.set({**_FIELDS.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _FIELDS.reset(token)


def set_fields(**values: Any) -> None:
    """Add ``values`` to the log fields of the current task from here on (a task's own context)."""
    _FIELDS.set({**_FIELDS.get(), **{k: v for k, v in values.items() if v is not None}})


def register_secret(value: str | None) -> None:
    """Make sure ``value`` never appears in a log line (passwords, API keys)."""
    if value and len(value) >= 4:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = redact(record.getMessage())
            record.msg, record.args = message, None
        return True


class TextFormatter(logging.Formatter):
    """Plain lines; a line written for one of several communities names it: ``... microengine: [alpha] ...``."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        community = _FIELDS.get().get("community")
        if community:
            record = logging.makeLogRecord(record.__dict__)
            record.message = f"[{community}] {record.message}"
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "name": record.name,
            "message": record.getMessage(),
        }
        payload.update(_FIELDS.get())
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            payload.update(extra)
        if record.exc_info:
            payload["exc_info"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


def setup_logging(level: str = "WARNING", fmt: str = "text", client_level: str | None = None) -> None:
    """Configure our loggers once; calling again replaces the handler instead of adding another.

    ``fmt`` is text, or json (``datadog``, polyswarm-client's name for it, is json too); ``client_level``
    is the level of the library's own loggers (``polyswarmclient.*``), ``level`` when not given.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_RedactingFilter())
    if fmt in ("json", "datadog"):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel((client_level or level).upper() if name == CLIENT_LOGGER else level.upper())
        logger.propagate = False
