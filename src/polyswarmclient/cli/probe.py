"""``polyswarm-probe``: ask a command's ``--metrics-addr`` server whether it is ready (or alive).

Made for a container's HEALTHCHECK, where there may be no curl: exit 0 when the endpoint answers 200,
1 when it answers anything else or cannot be reached (the reason goes to stderr in one line), 2 on a
usage error. Without URL it reads METRICS_ADDR, as the command in the same container does, and asks
``/readyz`` (``--live``: ``/healthz``) on it, with a wildcard host (0.0.0.0, ::) asked on loopback.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from dataclasses import replace
from typing import Any

import click

from polyswarmclient.cli.options import METRICS_ADDR, Option, apply
from polyswarmclient.errors import EXIT_RUNTIME, ConfigError

TIMEOUT = Option(
    "--timeout",
    "PROBE_TIMEOUT",
    "Seconds to wait for the answer; a stalled server counts as a failure.",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
)
LIVE = Option(
    "--live", None, "Ask /healthz (the event loop runs) instead of /readyz (the command serves).", is_flag=True
)
OPTIONS: tuple[Option, ...] = (
    replace(METRICS_ADDR, help="Address of the --metrics-addr server to ask when no URL is given."),
    TIMEOUT,
    LIVE,
)
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1", "[::]": "[::1]"}


def probe_url(url: str | None, metrics_addr: str | None, live: bool) -> str:
    """The URL to ask: ``url`` as given, else ``/readyz`` (``/healthz``) on ``metrics_addr``."""
    if url:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{url!r} is not an http:// URL; give one such as http://127.0.0.1:9100/readyz")
        return url
    if not metrics_addr:
        raise ConfigError("nothing to probe: give a URL such as http://127.0.0.1:9100/readyz or set METRICS_ADDR")
    host, sep, port = metrics_addr.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"METRICS_ADDR {metrics_addr!r} is not HOST:PORT, such as 0.0.0.0:9100")
    host = _WILDCARDS.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}/{'healthz' if live else 'readyz'}"


def check(url: str, timeout: float) -> tuple[bool, str]:
    """(True, body) when ``url`` answers 200; else (False, why)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:  # noqa: S310 (http(s) only, checked above)
            body = reply.read(4096).decode("utf-8", "replace").strip()
            return reply.status == 200, body
    except urllib.error.HTTPError as exc:
        body = exc.read(4096).decode("utf-8", "replace").strip()
        return False, f"{url} answered {exc.code}: {body}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url} cannot be reached: {reason}"


@click.command("polyswarm-probe", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url", required=False)
@apply(OPTIONS)
def main(url: str | None, **options: Any) -> None:
    """Exit 0 when URL (default: /readyz on METRICS_ADDR) answers 200, else 1 with the reason on stderr."""
    try:
        target = probe_url(url, options["metrics_addr"], options["live"])
    except ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    ok, why = check(target, options["timeout"])
    if not ok:
        click.echo(f"unhealthy: {why}", err=True)
        sys.exit(EXIT_RUNTIME)
    click.echo(why)


if __name__ == "__main__":  # pragma: no cover
    main()
