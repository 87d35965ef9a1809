"""Each option declared once: flag, env var, type, help, and the settings field it sets.

Commands build their click options from these declarations, ``docs/configuration.md`` is checked
against them by a test, and ``--help`` shows every env var. An option that sets a settings field names
it (``target``: the settings class and the field's dotted path) with a converter; :func:`build` then makes
the settings object from the declarations, and the option's default is read from that field, so each
default lives in exactly one place. An option several commands share is declared here once; a command
that needs other help text or another target uses ``dataclasses.replace`` or :meth:`Option.to`.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import click

from polyswarmclient.amounts import format_ether, parse_ether
from polyswarmclient.client.settings import ClientConfig
from polyswarmclient.errors import ConfigError
from polyswarmclient.services.lifecycle import DEFAULT_GRACE

F = Callable[..., Any]
S = TypeVar("S")


@dataclass(frozen=True)
class Option:
    """One command-line option and the environment variable that sets it too."""

    flag: str
    envvar: str | None
    help: str
    type: Any = str
    default: Any = None
    is_flag: bool = False
    multiple: bool = False
    nargs: int = 1
    secret: bool = False
    metavar: str | None = None
    show_default: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    #: The settings field this option sets: (settings class, dotted field path). Its default is the option's.
    target: tuple[type, str] | None = None
    #: The option's value -> the field's value; a ``ValueError`` becomes a ConfigError naming the option.
    convert: Callable[[Any], Any] | None = None
    #: The field's default -> the option's default, where they differ in form (wei -> "0.05").
    show: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.target is not None and self.default is not None:
            raise TypeError(f"{self.flag}: an option with a target takes its default from the target field")

    @property
    def name(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def to(self, settings: type, path: str | None = None, **changes: Any) -> Option:
        """This option setting ``settings.<path>`` (by default the field named like the option), its default
        read from that field; ``changes`` replace other attributes (help text, converter)."""
        return replace(self, default=None, target=(settings, path or self.name), **changes)

    @property
    def effective_default(self) -> Any:
        if self.target is None:
            return self.default
        value = field_default(*self.target)
        return self.show(value) if self.show is not None else value

    def value_for_field(self, value: Any) -> Any:
        if self.convert is None:
            return value
        try:
            return self.convert(value)
        except ValueError as exc:
            where = f"{self.flag} ({self.envvar})" if self.envvar else self.flag
            raise ConfigError(f"{where}: {exc}") from None

    def decorator(self) -> Callable[[F], F]:
        default = self.effective_default
        kwargs: dict[str, Any] = {
            "envvar": self.envvar,
            "show_envvar": self.envvar is not None,
            "help": self.help,
            "default": default,
            "show_default": self.show_default and not self.secret and default not in (None, (), False),
        }
        if self.is_flag:
            kwargs["is_flag"] = True
        else:
            kwargs["type"] = self.type
        if self.multiple:
            kwargs["multiple"] = True
        if self.nargs != 1:
            kwargs["nargs"] = self.nargs
        if self.metavar:
            kwargs["metavar"] = self.metavar
        kwargs.update(self.extra)
        return click.option(self.flag, self.name, **kwargs)


def apply(options: Sequence[Option]) -> Callable[[F], F]:
    """Decorate a click command with ``options`` (in the order given)."""

    def wrap(func: F) -> F:
        for option in reversed(options):
            func = option.decorator()(func)
        return func

    return wrap


def field_default(settings: type, path: str) -> Any:
    """The default of ``settings.<path>`` (a dotted path through nested settings dataclasses)."""
    head, _, rest = path.partition(".")
    spec = {f.name: f for f in dataclasses.fields(settings)}.get(head)
    if spec is None:
        raise TypeError(f"{settings.__name__} has no field {head!r}")
    if spec.default is not dataclasses.MISSING:
        value = spec.default
    elif spec.default_factory is not dataclasses.MISSING:
        value = spec.default_factory()
    else:
        raise TypeError(f"{settings.__name__}.{head} has no default")
    return field_default(type(value), rest) if rest else value


def build(settings: type[S], declared: Iterable[Option], values: Mapping[str, Any]) -> S:
    """``settings`` made from the values of the ``declared`` options that target it, converted.

    Fields no option targets keep their defaults, and so do those of options missing from ``values`` and of
    repeatable options given no value;
    nested settings dataclasses are filled the same way.
    """
    changes = {
        option.target[1]: option.value_for_field(values[option.name])
        for option in declared
        if option.target is not None
        and option.target[0] is settings
        and option.name in values
        and not (option.multiple and not values[option.name])  # none given (an empty env var): the default
    }
    return _construct(settings, changes)


def _construct(settings: type[S], changes: Mapping[str, Any]) -> S:
    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = defaultdict(dict)
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        if rest:
            nested[head][rest] = value
        else:
            flat[head] = value
    for head, inner in nested.items():
        flat[head] = _construct(type(field_default(settings, head)), inner)
    return settings(**flat)


def setting(settings: type, path: str, help: str, *, flag: str | None = None, **kw: Any) -> Option:
    """The option that sets ``settings.<path>``: its flag and env var are named after the field
    (``max_in_flight`` -> ``--max-in-flight``, ``MAX_IN_FLIGHT``) unless given, its default is the field's."""
    name = path.rsplit(".", 1)[-1]
    flag = flag or "--" + name.replace("_", "-")
    envvar = kw.pop("envvar", flag.lstrip("-").replace("-", "_").upper())
    return Option(flag, envvar, help, target=(settings, path), **kw)


def _api_key(value: str | None) -> str | None:
    return value or None


def unique(values: Iterable[Any]) -> tuple[Any, ...]:
    """Repeated option values once each, in order (``--chains side --chains side``)."""
    return tuple(dict.fromkeys(values))


LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False)

LOG = Option("--log", "LOG_LEVEL", "Log level.", type=LOG_LEVELS, default="WARNING")
CLIENT_LOG = Option(
    "--client-log",
    "CLIENT_LOG_LEVEL",
    "Log level of the library's own loggers (polyswarmclient.*: transport, client, services); default: --log.",
    type=LOG_LEVELS,
)
LOG_FORMAT = Option(
    "--log-format",
    "LOG_FORMAT",
    "Log line format: text, or json (one object a line, with guid, chain and block fields where they apply); "
    "datadog is json, as in polyswarm-client.",
    type=click.Choice(["text", "json", "datadog"]),
    default="text",
)
POLYSWARMD_ADDR = setting(
    ClientConfig, "polyswarmd_addr", "polyswarmd address: host:port or a full URL with an optional path prefix."
)
KEYFILE = Option(
    "--keyfile", "KEYFILE", "Path to the geth v3 keystore that signs transactions.", type=click.Path(path_type=Path)
)
PASSWORD = Option("--password", "PASSWORD", "Keystore password (prefer --password-file or a TTY prompt).", secret=True)
PASSWORD_FILE = Option(
    "--password-file",
    "PASSWORD_FILE",
    "File whose first line is the keystore password.",
    type=click.Path(path_type=Path),
)
SIGNER = Option(
    "--signer",
    "SIGNER",
    "Sign through this signer instead of a --keyfile: a unix socket path (unix:///path) or a loopback "
    "http://127.0.0.1:PORT URL of polyswarm-signer or clef; add ?account=0x... when it holds several accounts.",
    metavar="URL",
)
SIGNER_TOKEN_FILE = Option(
    "--signer-token-file",
    "SIGNER_TOKEN_FILE",
    "File (mode 0600) whose first line is the signer's bearer token, for a signer on http://.",
    type=click.Path(path_type=Path),
)
API_KEY = setting(
    ClientConfig, "api_key", "polyswarmd API key, sent as the Authorization header.", secret=True, convert=_api_key
)
INSECURE_TRANSPORT = setting(
    ClientConfig,
    "insecure_transport",
    "Use http:// and ws:// when the address has no scheme (local devnets only).",
    is_flag=True,
)
ALLOW_KEY_OVER_HTTP = setting(
    ClientConfig,
    "allow_key_over_http",
    "Allow sending the API key over plain http (it can be read by anyone on the path).",
    is_flag=True,
)
STATE_DIR = setting(
    ClientConfig,
    "state_dir",
    "Directory for durable state: pending reveals and settles, pinned contract addresses.",
    type=click.Path(path_type=Path),
    convert=Path,
)

TESTING = Option(
    "--testing",
    "TESTING",
    "Test mode: handle N bounties, exit 0 once all are settled; errors become fatal. 0 = run until stopped.",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
)
CHAINS = Option(
    "--chains",
    "CHAINS",
    "Chain to work on; repeat the option (or separate with spaces in CHAINS) for both.",
    type=click.Choice(["home", "side"]),
    multiple=True,
    default=("side",),
)

CONTRACTS = setting(
    ClientConfig,
    "contracts_file",
    "JSON file with the community's published contract addresses and chain ids, "
    '{"side": {"chain_id": N, "contracts": {"bounty_registry": "0x..", ...}}, "home": {...}}; '
    "they win over trust on first use, and anything polyswarmd builds that disagrees is refused.",
    flag="--contracts",
    type=click.Path(path_type=Path),
    convert=lambda value: Path(value) if value else None,
)
MAX_TX_FEE = setting(
    ClientConfig,
    "transactions.max_fee",
    "Most ether one transaction may cost in gas (gas x gasPrice, in ETH); polyswarmd's transactions above it "
    "are refused unsigned. Free sidechains cost 0.",
    flag="--max-tx-fee",
    convert=lambda text: parse_ether(str(text)),
    show=format_ether,
)

MAX_ARTIFACT_SIZE = setting(
    ClientConfig,
    "http.max_artifact_bytes",
    "Most bytes of one artifact to download (after decompression); a bigger artifact is skipped with a log line.",
    flag="--max-artifact-size",
    type=click.IntRange(min=1),
    metavar="BYTES",
)

#: Options every networked command shares, in --help order.
CONNECTION: tuple[Option, ...] = (
    POLYSWARMD_ADDR,
    KEYFILE,
    PASSWORD,
    PASSWORD_FILE,
    SIGNER,
    SIGNER_TOKEN_FILE,
    API_KEY,
    INSECURE_TRANSPORT,
    ALLOW_KEY_OVER_HTTP,
    STATE_DIR,
    CONTRACTS,
    MAX_TX_FEE,
)
LOGGING: tuple[Option, ...] = (LOG, CLIENT_LOG, LOG_FORMAT)

METRICS_ADDR = Option(
    "--metrics-addr",
    "METRICS_ADDR",
    "Serve /metrics (Prometheus), /healthz and /readyz on HOST:PORT, such as 0.0.0.0:9100 (see docs/operations.md); "
    "off when not given.",
    metavar="HOST:PORT",
)
SHUTDOWN_GRACE = Option(
    "--shutdown-grace",
    "SHUTDOWN_GRACE",
    "Seconds the first SIGTERM/SIGINT gives in-flight work (reveals, settles) to finish before it is stopped; "
    "keep it below the container's stop timeout (docker stop waits 10 s unless told otherwise).",
    type=click.FloatRange(min=0),
    default=DEFAULT_GRACE,
    metavar="SECONDS",
)
#: What every long-running command takes for operations: the metrics server and the drain's grace.
OPERATIONS: tuple[Option, ...] = (METRICS_ADDR, SHUTDOWN_GRACE)

# The scan queue (microengine --scan-queue, worker; docs/scaling.md).
SCAN_QUEUE = Option(
    "--scan-queue",
    "SCAN_QUEUE",
    "Redis address of the scan queue, redis://HOST:PORT/DB (REDIS_ADDR, polyswarm-client's name, is read too; "
    "a bare HOST:PORT means database 0). With it the engine publishes one scan job per artifact and `worker` "
    "processes scan them; needs the redis extra (pip install 'polyswarm-kit[redis]').",
    metavar="URL",
    extra={"envvar": ["SCAN_QUEUE", "REDIS_ADDR"]},
)
QUEUE = Option(
    "--queue",
    "QUEUE",
    "Name of the scan queue the engine and its workers share (its Redis streams are NAME:jobs and "
    "NAME:results:<engine address>); default polyswarm:scan:<--backend>.",
    metavar="NAME",
)
