"""``worker``: scan the jobs a ``microengine --scan-queue`` publishes on Redis (see docs/scaling.md).

Exit codes: 0 when stopped, 1 on a fatal error at run time, 2 on a usage or configuration error (bad
option, unknown backend, Redis or polyswarmd address that cannot be used, the redis extra missing).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import click

from polyswarmclient.cli import options
from polyswarmclient.cli.common import guard, operations, run
from polyswarmclient.cli.options import LOGGING, OPERATIONS, QUEUE, SCAN_QUEUE, Option, apply
from polyswarmclient.client.settings import ClientConfig
from polyswarmclient.errors import ConfigError
from polyswarmclient.log import register_secret, setup_logging
from polyswarmclient.metrics import HEALTH
from polyswarmclient.scanqueue.settings import WorkerConfig

if TYPE_CHECKING:  # the backends, the transport and Redis are imported where used, so --help is quick
    from polyswarmclient.backends import Backend
    from polyswarmclient.services.lifecycle import Shutdown

log = logging.getLogger("worker")

_SECONDS = click.FloatRange(min=0, min_open=True)

CONCURRENCY = options.setting(
    WorkerConfig, "concurrency", "Jobs this process scans at the same time.", type=click.IntRange(min=1)
)
CLAIM_TIMEOUT = options.setting(
    WorkerConfig,
    "claim_timeout",
    "Seconds a job may sit unacknowledged at a worker that stopped answering (it died, or its machine did) "
    "before this worker takes it over; live workers keep their jobs however long a scan takes.",
    type=_SECONDS,
)
BACKEND = Option("--backend", "BACKEND", "Scan backend: an installed slug, an engine package name, or module:Class.")
APP_DIR = Option(
    "--app-dir",
    "APP_DIR",
    "Directory searched first for a --backend given as module:Class or as a module name; default: the working "
    "directory.",
    type=click.Path(file_okay=False),
    default=".",
)
POLYSWARMD_ADDR = options.POLYSWARMD_ADDR
API_KEY = options.API_KEY

#: Every worker option, in --help order.
WORKER_OPTIONS: tuple[Option, ...] = (
    *LOGGING,
    BACKEND,
    APP_DIR,
    SCAN_QUEUE,
    QUEUE,
    CONCURRENCY,
    CLAIM_TIMEOUT,
    POLYSWARMD_ADDR,
    API_KEY,
    options.INSECURE_TRANSPORT,
    options.ALLOW_KEY_OVER_HTTP,
    options.MAX_ARTIFACT_SIZE,
    *OPERATIONS,
)

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 120}


@click.command(context_settings=CONTEXT)
@apply(WORKER_OPTIONS)
@guard
def cli(**params: Any) -> None:
    """Scan jobs from a microengine's scan queue (Redis) with --backend, and send the results back.

    Run as many as you need, on as many machines: each job goes to one worker, and the job of a worker that
    dies is taken over by another after --claim-timeout. A worker holds no keyfile: it fetches artifacts
    from polyswarmd and scans. The first SIGINT/SIGTERM stops taking jobs and finishes those in flight; a
    second stops at once.
    """
    setup_logging(params["log"], params["log_format"], params["client_log"])
    from polyswarmclient.scanqueue.connection import require_redis

    require_redis()
    from polyswarmclient.backends import load_backend_class
    from polyswarmclient.scanqueue.connection import connect
    from polyswarmclient.scanqueue.jobs import default_queue, redis_password, redis_url
    from polyswarmclient.scanqueue.worker import ArtifactSource, Worker
    from polyswarmclient.services.microengine.build import make_backend
    from polyswarmclient.services.microengine.config import EngineConfig
    from polyswarmclient.transport import HttpTransport, parse_address

    if not params["backend"]:
        raise ConfigError("no backend: pass --backend (BACKEND), the same one the microengine names")
    if not params["scan_queue"]:
        raise ConfigError("no scan queue: pass --scan-queue (SCAN_QUEUE) with the Redis address, redis://HOST:PORT/DB")
    url = redis_url(params["scan_queue"])
    register_secret(redis_password(url))
    queue = params["queue"] or default_queue(params["backend"])
    register_secret(params["api_key"])
    client_config = options.build(ClientConfig, WORKER_OPTIONS, params)
    address = parse_address(
        client_config.polyswarmd_addr,
        insecure_transport=client_config.insecure_transport,
        api_key=client_config.api_key,
        allow_key_over_http=client_config.allow_key_over_http,
    )
    config = options.build(WorkerConfig, WORKER_OPTIONS, params)
    backend_class = load_backend_class(params["backend"], app_dir=params["app_dir"])
    backend = make_backend(None, backend_class, params["backend"], EngineConfig())

    async def probe(_: Shutdown) -> None:
        redis = await connect(url)
        await redis.aclose()

    run(probe)  # an unreachable Redis is exit 2 before the backend starts
    run(lambda _: backend.setup())

    async def work(shutdown: Shutdown) -> None:
        redis = await connect(url)
        try:
            async with HttpTransport(address, client_config.api_key, client_config.http) as http:
                worker = Worker(
                    redis,
                    url=url,
                    queue=queue,
                    backend=backend,
                    artifacts=ArtifactSource(http),
                    config=config,
                    shutdown=shutdown,
                )
                HEALTH.serving = True  # /readyz: ready while the worker runs and Redis answers
                try:
                    await worker.run()
                finally:
                    HEALTH.serving = False
        finally:
            await redis.aclose()

    with operations(params):
        try:
            run(work, grace=params["shutdown_grace"])
        finally:
            run(lambda _: _tear_down(backend))


async def _tear_down(backend: Backend) -> None:
    try:
        await backend.teardown()
    except Exception:
        log.warning("backend %s: teardown failed", backend.name, exc_info=True)


def main() -> None:
    cli(prog_name="worker")


if __name__ == "__main__":
    main()
