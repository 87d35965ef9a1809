"""Is this installation whole? A foreign polyswarm-client next to polyswarm-kit is refused at start.

polyswarm-client (the original, 2.13.3 and before) installs a package under the same import name,
``polyswarmclient``, and pins old aiohttp, websockets and eth libraries: installed after polyswarm-kit it
overwrites our modules and breaks every command. polyswarm-kit ships a stand-in distribution with that
name (``packaging/polyswarm-client``: no code, depends on polyswarm-kit) so that engines requiring it
never pull the real one. Any *other* distribution called polyswarm-client is foreign.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from polyswarmclient.errors import ConfigError

if TYPE_CHECKING:  # imported when the check runs (after --help and usage errors are answered)
    import importlib.metadata

#: The command that puts a broken installation right (run from a polyswarm-kit checkout).
REPAIR = "pip uninstall -y polyswarm-client && pip install --force-reinstall --no-deps . ./packaging/polyswarm-client"


def _is_stand_in(dist: importlib.metadata.Distribution) -> bool:
    return any(re.split(r"[\s;<>=!~\[(]", r, maxsplit=1)[0].lower() == "polyswarm-kit" for r in dist.requires or [])


def foreign_polyswarm_client() -> str | None:
    """The version of a polyswarm-client that is not our stand-in, or None when there is none."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution("polyswarm-client")
    except importlib.metadata.PackageNotFoundError:
        return None
    return None if _is_stand_in(dist) else dist.version


def check_installation() -> None:
    """A ConfigError (exit 2) with the repair command when a foreign polyswarm-client is installed."""
    version = foreign_polyswarm_client()
    if version is not None:
        raise ConfigError(
            f"polyswarm-client {version} is installed and replaces polyswarm-kit's polyswarmclient package; "
            f"repair from a polyswarm-kit checkout with: {REPAIR}"
        )
