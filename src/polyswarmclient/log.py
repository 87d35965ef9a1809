"""Logging set-up: text or JSON lines, on the package's own loggers, with secrets redacted."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_SECRETS: set[str] = set()
_HANDLER_NAME = "polyswarm-kit"
#: Loggers configured by :func:`setup_logging`. Third-party libraries keep their own levels.
LOGGER_NAMES = ("polyswarmclient", "microengine", "balancemanager", "ambassador", "arbiter", "devnet")


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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "name": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            payload.update(extra)
        if record.exc_info:
            payload["exc_info"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, default=str)


def setup_logging(level: str = "WARNING", fmt: str = "text") -> None:
    """Configure our loggers once; calling again replaces the handler instead of adding another."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in LOGGER_NAMES:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level.upper())
        logger.propagate = False
