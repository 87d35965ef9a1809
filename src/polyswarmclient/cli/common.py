"""What every command shares: the password, the signer, the error boundary and signal handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from polyswarmclient.cli.installation import check_installation
from polyswarmclient.cli.options import CONNECTION, Option, build
from polyswarmclient.client.settings import ClientConfig
from polyswarmclient.errors import (
    EXIT_OK,
    EXIT_RUNTIME,
    EXIT_USAGE,
    ConfigError,
    KeyfileError,
    PolyswarmError,
    SignerConfigError,
)
from polyswarmclient.log import redact, register_secret
from polyswarmclient.metrics import HEALTH
from polyswarmclient.metrics import enabled as metrics_enabled
from polyswarmclient.services.lifecycle import DEFAULT_GRACE, Shutdown

if TYPE_CHECKING:  # imported where used: eth-account and aiohttp cost half a second, --help needs neither
    from polyswarmclient.client.facade import PolyswarmClient
    from polyswarmclient.client.signing import RemoteSigner, TransactionSigner
    from polyswarmclient.eth.keys import Signer
    from polyswarmclient.services.communities import Communities

T = TypeVar("T")
log = logging.getLogger("polyswarmclient.cli")


def read_password(password: str | None, password_file: Path | None, keyfile: Path) -> str:
    """The keystore password from --password, --password-file or a TTY prompt; never hangs."""
    if password is not None and password_file is not None:
        raise ConfigError("give either --password (PASSWORD) or --password-file (PASSWORD_FILE), not both")
    if password is not None:
        return password
    if password_file is not None:
        try:
            text = Path(password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read password file {password_file}: {exc.strerror or exc}") from None
        lines = text.splitlines()
        return lines[0] if lines else ""
    if sys.stdin.isatty():
        value: str = click.prompt(f"Password for {keyfile}", hide_input=True, err=True)
        return value
    raise ConfigError(
        f"no password for keyfile {keyfile}: pass --password-file (PASSWORD_FILE) or --password (PASSWORD), "
        "or run on a terminal to be prompted"
    )


def open_signer(keyfile: Path | None, password: str | None, password_file: Path | None) -> Signer:
    if keyfile is None:
        raise KeyfileError("no keyfile given: pass --keyfile (or set KEYFILE) with the path to a geth v3 keystore")
    if not Path(keyfile).exists():
        raise KeyfileError(f"keyfile {keyfile} does not exist; check --keyfile (KEYFILE)")
    secret = read_password(password, password_file, keyfile)
    # The password goes to the keystore decryption and nowhere else: it is never stored, logged or
    # put in a message, so it is not registered for redaction (which would garble any text containing a
    # password that is also an ordinary word, such as the public test password "password").
    from polyswarmclient.eth.keys import load_keyfile

    return load_keyfile(keyfile, secret)


def open_remote_signer(url: str, token_file: Path | None) -> RemoteSigner:
    """The signer process at ``url`` (``--signer``), reached now: exit 2 when it cannot be used."""
    from polyswarmclient.client.signing import RemoteSigner
    from polyswarmclient.transport.jsonrpc import parse_endpoint, read_token_file

    endpoint = parse_endpoint(url)
    token = read_token_file(Path(token_file)) if token_file is not None else None
    register_secret(token)
    if endpoint.kind == "ipc" and token is not None:
        raise SignerConfigError("--signer-token-file is for a signer on http://; a unix socket needs no token")
    return RemoteSigner.connect(endpoint, token)


def choose_signer(options: dict[str, Any]) -> Signer | TransactionSigner:
    """Exactly one of --keyfile (with its password) and --signer."""
    keyfile, url = options.get("keyfile"), options.get("signer")
    if keyfile is not None and url:
        raise ConfigError("give either --keyfile (KEYFILE) or --signer (SIGNER), not both")
    if url:
        if options.get("password") is not None or options.get("password_file") is not None:
            log.warning("--password/--password-file are ignored with --signer: the signer holds the key")
        return open_remote_signer(url, options.get("signer_token_file"))
    if keyfile is None:
        raise KeyfileError(
            "no keyfile given: pass --keyfile (KEYFILE) with a geth v3 keystore, or --signer (SIGNER) with the "
            "address of polyswarm-signer or clef"
        )
    if options.get("signer_token_file") is not None:
        raise ConfigError("--signer-token-file goes with --signer (SIGNER), not with --keyfile")
    return open_signer(keyfile, options["password"], options["password_file"])


def connect(options: dict[str, Any], declared: Sequence[Option] = CONNECTION) -> PolyswarmClient:
    """The client from the command's options (``declared``: those that set ClientConfig fields, such as the
    shared CONNECTION options and --max-artifact-size): signer, address rules, API key, limits.

    Raises ``ConfigError`` (exit 2) for a missing keyfile, a wrong password, an API key over http, an
    unusable --signer and the like.
    """
    from polyswarmclient.client.facade import PolyswarmClient

    register_secret(options["api_key"])
    config = build(ClientConfig, declared, options)
    return PolyswarmClient(config, choose_signer(options))


def require_devnet_extra(what: str) -> None:
    """Fail with a usable hint, not an ImportError, when the devnet's EVM packages are missing."""
    try:
        import polyswarmclient.devnet.evm  # noqa: F401  (needs eth-tester and py-evm)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{what} needs the devnet extra ({exc.name} is not installed): pip install 'polyswarm-kit[devnet]'"
        ) from None


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"Error: {redact(message)}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def operations(options: dict[str, Any]) -> Iterator[None]:
    """``--metrics-addr``: serve /metrics, /healthz and /readyz while the block runs (nothing without it).

    The address is bound here, before anything else starts: a malformed one is exit 2, one in use exit 1.
    """
    address = options.get("metrics_addr")
    if not address:
        yield
        return
    from polyswarmclient.telemetry.server import MetricsServer, parse_address  # prometheus-client: only here

    HEALTH.reset()
    server = MetricsServer(*parse_address(address))
    server.start()
    log.info("serving /metrics, /healthz and /readyz on %s:%d", *(server.address or ("?", 0)))
    try:
        yield
    finally:
        server.stop()


def run(main: Callable[[Shutdown], Awaitable[T]], *, grace: float = DEFAULT_GRACE) -> T:
    """Run a service coroutine with the error boundary and signal policy of every command.

    First SIGTERM/SIGINT: ``shutdown.request()`` (drain, up to ``grace`` seconds; ``/readyz`` turns
    unready). Second: cancel. ``PolyswarmError`` becomes one line on stderr and its exit code; anything
    else is an internal error (exit 1, traceback only at DEBUG). With ``--metrics-addr`` the event loop
    beats for ``/healthz`` while ``main`` runs.
    """

    async def runner() -> T:
        shutdown = Shutdown(grace)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        signals_seen = 0

        def on_signal(signame: str) -> None:
            nonlocal signals_seen
            signals_seen += 1
            if signals_seen == 1:
                log.warning(
                    "%s received: finishing in-flight work for up to %.0f s (send again to stop at once)",
                    signame,
                    shutdown.grace,
                )
                HEALTH.draining = True
                shutdown.request(f"{signame} received")
            elif task is not None:
                log.warning("%s received again: stopping now", signame)
                task.cancel()

        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, on_signal, sig.name)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - non-Unix
                pass
        if not metrics_enabled():
            return await main(shutdown)
        beat = asyncio.create_task(HEALTH.heartbeat(), name="heartbeat")
        try:
            return await main(shutdown)
        finally:
            beat.cancel()

    try:
        return asyncio.run(runner())
    except PolyswarmError as exc:
        fail(str(exc), exc.exit_code)
    except asyncio.CancelledError:
        fail("stopped before in-flight work finished", EXIT_RUNTIME)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_RUNTIME)
    except click.exceptions.Exit:
        raise
    except Exception as exc:  # the last boundary: never a raw traceback for the user
        log.debug("internal error", exc_info=True)
        fail(f"internal error: {exc.__class__.__name__}: {exc} (run with --log DEBUG for details)", EXIT_RUNTIME)


def serve(
    client: PolyswarmClient,
    work: Callable[[PolyswarmClient, Shutdown], Awaitable[T]],
    learn: Sequence[str] = (),
    *,
    grace: float = DEFAULT_GRACE,
) -> T:
    """Open ``client``, check it reaches classic polyswarmd, pin the contracts behind ``learn`` (first
    contact, see :meth:`PolyswarmClient.learn_contracts`), and run ``work(client, shutdown)`` under :func:`run`
    (``grace``: ``--shutdown-grace``). From then on the command counts as serving for ``/readyz``."""

    async def main(shutdown: Shutdown) -> T:
        async with client:
            await client.check_server()
            await client.learn_contracts(learn)
            HEALTH.serving = True
            try:
                return await work(client, shutdown)
            finally:
                HEALTH.serving = False

    return run(main, grace=grace)


def serve_communities(
    clients: Mapping[str, PolyswarmClient],
    work: Callable[[str, Any, Shutdown], Awaitable[None]],
    learn: Sequence[str] = (),
    *,
    grace: float = DEFAULT_GRACE,
    started: Callable[[Communities], None] = lambda _: None,
) -> None:
    """:func:`serve` for several communities: ``work(name, client, shutdown)`` for each, each behind its own
    boundary (:class:`~polyswarmclient.services.communities.Communities`); ``started`` sees the runner."""
    from polyswarmclient.services.communities import Communities

    async def main(shutdown: Shutdown) -> None:
        runner = Communities(clients, shutdown)
        started(runner)
        try:
            await runner.run(work, learn)
        finally:
            HEALTH.serving = False

    run(main, grace=grace)


def guard(func: Callable[..., Any]) -> Callable[..., Any]:
    """Map errors raised while preparing a command (before the event loop) to exit codes."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_installation()
            return func(*args, **kwargs)
        except PolyswarmError as exc:
            fail(str(exc), exc.exit_code)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


__all__ = [
    "EXIT_OK",
    "EXIT_RUNTIME",
    "EXIT_USAGE",
    "choose_signer",
    "connect",
    "guard",
    "open_signer",
    "operations",
    "read_password",
    "run",
    "serve",
    "serve_communities",
]
