"""Helpers the devnet-role commands (``ambassador``, ``arbiter``) share; their options live in ``options``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from polyswarmclient.amounts import parse_amount
from polyswarmclient.cli import common
from polyswarmclient.cli.options import CONNECTION, Option
from polyswarmclient.log import setup_logging


class NctAmount(click.ParamType):  # type: ignore[type-arg,unused-ignore]
    """An exact decimal NCT amount, converted to NCT-wei; anything else is a usage error (exit 2)."""

    name = "nct"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return parse_amount(str(value), "nct")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


NCT_AMOUNT = NctAmount()


def connect(options: dict[str, Any], declared: Sequence[Option] = CONNECTION) -> Any:
    """Logging, then the client from the command's ``declared`` options (``ConfigError`` when wrong)."""
    setup_logging(options["log"], options["log_format"], options.get("client_log"))
    return common.connect(options, declared)


CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
