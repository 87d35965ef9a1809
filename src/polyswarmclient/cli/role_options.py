"""Helpers the devnet-role commands (``ambassador``, ``arbiter``) share; their options live in ``options``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from polyswarmclient.amounts import parse_amount
from polyswarmclient.cli.common import open_signer
from polyswarmclient.log import register_secret, setup_logging


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


def connect(options: dict[str, Any]) -> Any:
    """Logging, signer and client from the shared CONNECTION and LOGGING options.

    Raises ``ConfigError`` (exit 2) for a missing keyfile, a wrong password and the like.
    """
    from polyswarmclient.client.facade import ClientConfig, PolyswarmClient

    setup_logging(options["log"], options["log_format"])
    register_secret(options["api_key"])
    signer = open_signer(options["keyfile"], options["password"], options["password_file"])
    config = ClientConfig(
        polyswarmd_addr=options["polyswarmd_addr"],
        api_key=options["api_key"] or None,
        insecure_transport=options["insecure_transport"],
        allow_key_over_http=options["allow_key_over_http"],
        state_dir=Path(options["state_dir"]),
    )
    return PolyswarmClient(config, signer)


CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
