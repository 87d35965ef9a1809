"""``--community NAME=URL`` (repeatable), with ``--api-key NAME=KEY`` or ``--api-key-file NAME=PATH`` each.

One process serves several communities with one wallet (see docs/communities.md): each community gets
a client of its own (its polyswarmd, API key, pins and state under ``--state-dir/NAME``), and they share
the signer and one nonce book. This module turns the option values into :class:`Community` values and
refuses anything doubtful with one line (exit 2): a malformed or repeated entry, a key for a community
not given, ``--polyswarmd-addr`` or ``--contracts`` next to ``--community``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from polyswarmclient.cli.options import Option
from polyswarmclient.client.settings import ClientConfig
from polyswarmclient.errors import ConfigError

if TYPE_CHECKING:
    from polyswarmclient.client.facade import PolyswarmClient
    from polyswarmclient.client.signing import TransactionSigner
    from polyswarmclient.eth.keys import Signer

#: A community's name: it names a state subdirectory, log fields and metric labels.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_NAME_RULE = "letters, digits, - and _ (up to 63, starting with a letter or digit)"

COMMUNITY = Option(
    "--community",
    "COMMUNITIES",
    "Serve this community: NAME=URL, its name and its polyswarmd address (as --polyswarmd-addr takes it). "
    "Repeat for several (in the env var, separate with spaces); instead of --polyswarmd-addr. One wallet "
    "serves them all; state goes to --state-dir/NAME. See docs/communities.md.",
    multiple=True,
    metavar="NAME=URL",
)
API_KEY_FILE = Option(
    "--api-key-file",
    "API_KEY_FILE",
    "File whose first line is the polyswarmd API key; with --community, NAME=PATH for that community "
    "(repeatable; in the env var, separate with spaces).",
    multiple=True,
    metavar="[NAME=]PATH",
)


@dataclass(frozen=True)
class Community:
    """One community this process serves: its name, its polyswarmd and the API key for it."""

    name: str
    polyswarmd_addr: str
    api_key: str | None = field(default=None, repr=False)

    def client_config(self, base: ClientConfig) -> ClientConfig:
        """``base`` (the options every community shares) for this community: address, key, state subfolder."""
        return dataclasses.replace(
            base,
            polyswarmd_addr=self.polyswarmd_addr,
            api_key=self.api_key,
            state_dir=Path(base.state_dir) / self.name,
        )


def _pair(entry: str, flag: str, envvar: str, form: str, *, secret: bool = False) -> tuple[str, str]:
    name, sep, value = entry.partition("=")
    shown = "" if secret else f" {name!r}"
    if not sep or not name or not value.strip():
        raise ConfigError(f"{flag} ({envvar}){shown}: expected {form}")
    if not _NAME.match(name):
        raise ConfigError(f"{flag} ({envvar}): community name{shown} is not valid; use {_NAME_RULE}")
    return name, value


def read_key_file(path: Path, where: str) -> str:
    """The first line of ``path``, stripped; a missing, unreadable or empty file is a ConfigError."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    key = lines[0].strip() if lines else ""
    if not key:
        raise ConfigError(f"{where}: {path} is empty; its first line should be the API key")
    return key


def parse_communities(
    entries: Sequence[str], api_keys: Sequence[str], key_files: Sequence[str]
) -> tuple[Community, ...]:
    """The communities of ``--community NAME=URL`` entries, with their ``--api-key NAME=KEY`` and
    ``--api-key-file NAME=PATH``. Raises ConfigError (one line) for anything malformed or doubtful."""
    addresses: dict[str, str] = {}
    for entry in entries:
        name, url = _pair(entry, "--community", "COMMUNITIES", "NAME=URL, such as --community alpha=polyswarmd.example")
        if name in addresses:
            raise ConfigError(f"--community (COMMUNITIES): community {name!r} is given twice; give each name once")
        for other, seen in addresses.items():
            if seen == url:
                raise ConfigError(
                    f"--community (COMMUNITIES): {other!r} and {name!r} both name {url}; one polyswarmd serves "
                    "one community, give it once"
                )
        addresses[name] = url
    keys: dict[str, str] = {}

    def add(name: str, key: str, flag: str, *, echo: bool) -> None:
        if name not in addresses:
            known = ", ".join(addresses)
            # a key that holds "=" and was given without its NAME= must not end up in the message
            named = f"named {name!r} " if echo else "of that name "
            raise ConfigError(f"{flag}: no --community {named}(the communities given are {known}); give NAME=...")
        if name in keys:
            raise ConfigError(f"{flag}: community {name!r} has an API key already; give one key per community")
        keys[name] = key

    for entry in api_keys:
        if "=" not in entry:
            raise ConfigError("--api-key (API_KEY): with --community, give each key as NAME=KEY")
        name, key = _pair(entry, "--api-key", "API_KEY", "NAME=KEY", secret=True)
        add(name, key.strip(), "--api-key (API_KEY)", echo=False)
    for entry in key_files:
        if "=" not in entry:
            raise ConfigError("--api-key-file (API_KEY_FILE): with --community, give each file as NAME=PATH")
        name, path = _pair(entry, "--api-key-file", "API_KEY_FILE", "NAME=PATH")
        add(name, read_key_file(Path(path), f"--api-key-file {name}"), "--api-key-file (API_KEY_FILE)", echo=True)
    return tuple(Community(name, url, keys.get(name)) for name, url in addresses.items())


def single_api_key(api_keys: Sequence[str], key_files: Sequence[str]) -> str | None:
    """Without --community: the one key of ``--api-key KEY`` or ``--api-key-file PATH`` (or none)."""
    given = [*api_keys, *key_files]
    if len(given) > 1:
        raise ConfigError(
            "--api-key (API_KEY) / --api-key-file (API_KEY_FILE): give one key; several go with --community, "
            "as NAME=KEY"
        )
    if api_keys:
        return api_keys[0].strip() or None
    if key_files:
        return read_key_file(Path(key_files[0]), "--api-key-file (API_KEY_FILE)")
    return None


def given(name: str) -> bool:
    """Whether option ``name`` of the running click command came from the command line or the environment."""
    source = click.get_current_context().get_parameter_source(name)
    return source in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)


def communities_from(params: Mapping[str, Any], explicit: Callable[[str], bool]) -> tuple[Community, ...]:
    """The communities the command was given (none: the single ``--polyswarmd-addr`` of old).

    ``explicit(name)``: whether the option came from the command line or the environment (not a default).
    """
    entries = tuple(params.get("community") or ())
    if not entries:
        return ()
    if explicit("polyswarmd_addr"):
        raise ConfigError(
            "give either --polyswarmd-addr (POLYSWARMD_ADDR) for one community or --community (COMMUNITIES) "
            "NAME=URL for each of several, not both"
        )
    if params.get("signer"):
        raise ConfigError(
            "--signer (SIGNER): polyswarm-signer pins the contracts of one community and would refuse the others' "
            "transactions; with --community (COMMUNITIES) sign with --keyfile, or run one process per community"
        )
    if params.get("contracts_file"):
        raise ConfigError(
            "--contracts (CONTRACTS) describes one community's contracts and cannot go with --community "
            "(COMMUNITIES); each community's contracts are pinned on first contact"
        )
    return parse_communities(entries, tuple(params.get("api_key") or ()), tuple(params.get("api_key_file") or ()))


#: Options to put beside CONNECTION's (whose --api-key becomes repeatable, see :func:`repeatable_api_key`).
COMMUNITY_OPTIONS: tuple[Option, ...] = (COMMUNITY, API_KEY_FILE)


def repeatable_api_key(option: Option) -> Option:
    """``--api-key`` as the commands with --community take it: KEY, or NAME=KEY per community."""
    return dataclasses.replace(
        option,
        help="polyswarmd API key, sent as the Authorization header; with --community, NAME=KEY for that community "
        "(repeatable; in the env var, separate with spaces).",
        multiple=True,
        metavar="[NAME=]KEY",
        target=None,
        convert=None,
    )


def community_clients(
    communities: Sequence[Community], base: ClientConfig, signer: Signer | TransactionSigner
) -> dict[str, PolyswarmClient]:
    """One client per community, each ``base`` made that community's, all signing with ``signer`` and
    drawing nonces from one book (one sequence per chain id and account), so two communities on one
    homechain never hand out the same nonce."""
    from polyswarmclient.client.facade import PolyswarmClient
    from polyswarmclient.client.nonces import NonceBook
    from polyswarmclient.log import register_secret

    book = NonceBook()
    clients: dict[str, PolyswarmClient] = {}
    for community in communities:
        register_secret(community.api_key)
        try:
            clients[community.name] = PolyswarmClient(community.client_config(base), signer, nonces=book)
        except ConfigError as exc:
            raise ConfigError(f"--community {community.name}: {exc}") from None
    return clients
