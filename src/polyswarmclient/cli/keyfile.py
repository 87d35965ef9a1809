"""``polyswarm-keyfile``: create a production wallet (a geth v3 keystore) and look at one without its password.

* ``new OUT``: a fresh key in a geth v3 keystore, scrypt at geth's standard strength, written to ``OUT``
  with mode 0600 (never over an existing file); the password is asked twice on the terminal or read
  from ``--password-file``; prints the address.
* ``address FILE``: the keystore's address.
* ``inspect FILE``: address, version, id, KDF and its parameters, cipher. Never the key.

Exit codes: 0 on success, 2 for anything wrong with the input (a file that exists, a wrong password file,
not a keystore).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from polyswarmclient.cli import common
from polyswarmclient.cli.options import Option, apply
from polyswarmclient.cli.role_options import CONTEXT_SETTINGS
from polyswarmclient.errors import ConfigError, KeyfileError
from polyswarmclient.eth.keys import load_keyfile
from polyswarmclient.eth.keystore import inspect_keystore, new_keystore, write_new_keystore

NEW_OPTIONS: tuple[Option, ...] = (
    Option(
        "--password-file",
        "PASSWORD_FILE",
        "File whose first line is the new keystore's password (without it, the password is asked twice).",
        type=click.Path(path_type=Path),
    ),
    Option(
        "--light-kdf",
        None,
        "Use geth's --lightkdf strength (scrypt N=4096): fast and weak, for tests and throwaway devnet wallets only.",
        is_flag=True,
    ),
)


@click.group(context_settings=CONTEXT_SETTINGS)
def main() -> None:
    """Create and inspect geth v3 keystores (wallets) for the roles and for polyswarm-signer."""


def _new_password(password_file: Path | None, out: Path) -> str:
    if password_file is not None:
        try:
            lines = Path(password_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read password file {password_file}: {exc.strerror or exc}") from None
        password = lines[0] if lines else ""
    elif sys.stdin.isatty():
        password = click.prompt(
            f"Password for the new keyfile {out}", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        raise ConfigError("no password for the new keyfile: pass --password-file or run on a terminal to be asked")
    if not password:
        raise ConfigError("the password is empty; a keystore with an empty password protects nothing")
    return password


@main.command(context_settings=CONTEXT_SETTINGS)
@click.argument("out", type=click.Path(path_type=Path))
@apply(NEW_OPTIONS)
@common.guard
def new(out: Path, **options: Any) -> None:
    """Create a new key in the geth v3 keystore OUT (mode 0600, never overwritten) and print its address."""
    if out.exists() or out.is_symlink():
        raise KeyfileError(f"{out} already exists; a keyfile is never overwritten, choose another path")
    if not out.parent.is_dir():
        raise ConfigError(f"the directory {out.parent} does not exist")
    password = _new_password(options["password_file"], out)
    keystore = new_keystore(password, light=options["light_kdf"])
    write_new_keystore(out, keystore)
    address = load_keyfile(out, password).address  # it opens with that password, or we say so now
    click.echo(address)


@main.command(context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=click.Path(path_type=Path))
@common.guard
def address(file: Path) -> None:
    """Print the address of the keystore FILE (no password needed)."""
    click.echo(inspect_keystore(file).address)


@main.command(context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=click.Path(path_type=Path))
@common.guard
def inspect(file: Path) -> None:
    """Show the public parts of the keystore FILE: address, version, id, KDF, cipher. Never the key."""
    for line in inspect_keystore(file).lines():
        click.echo(line)


if __name__ == "__main__":
    main()
