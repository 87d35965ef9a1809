"""Run the whole marketplace in one process: a devnet, an ambassador, an arbiter and the engine.

All roles use the test keystores shipped with the devnet (their keys are public), except the engine
when it is given a keystore of its own (that one is funded like the packaged ones):

* the devnet (:class:`~polyswarmclient.devnet.node.Devnet`) on ``HOST:port``, or on a free port when
  that one is taken;
* an ambassador posting bounties of two corpus samples each (one EICAR test file, one benign text);
* an arbiter, staked before the first bounty, voting the corpus ground truth (the ``verbatim`` backend);
* the microengine with the given backend, as ``microengine`` runs it against any polyswarmd.

:func:`run_marketplace` hands a typed :data:`~polyswarmclient.demo.reports.Report` to ``report`` as each
thing happens and returns the :class:`~polyswarmclient.demo.scoring.Summary`. With ``testing`` N the
ambassador posts N bounties and the run ends once every role has settled them; otherwise it runs until
``shutdown`` is requested, then drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyswarmclient.backends.arbiter_loader import DEFAULT, load_arbiter_backend_class
from polyswarmclient.client import ClientConfig, PolyswarmClient
from polyswarmclient.demo.observer import Observer
from polyswarmclient.demo.reports import DevnetStarted, Report, RolesStarted
from polyswarmclient.demo.scoring import Summary, summarize
from polyswarmclient.demo.timing import Windows, demo_windows, settle_time, submission_interval
from polyswarmclient.devnet.node import PACKAGED_KEYFILES, Devnet, DevnetConfig, keystore_addresses
from polyswarmclient.errors import PolyswarmError
from polyswarmclient.eth.keys import Signer, load_keyfile
from polyswarmclient.samples import Corpus, ground_truth_by_sha256
from polyswarmclient.services.ambassador import Ambassador, AmbassadorSettings
from polyswarmclient.services.arbiter import Arbiter, ArbiterSettings
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import EngineConfig
from polyswarmclient.services.microengine.build import make_engine
from polyswarmclient.services.microengine.state import StateStore
from polyswarmclient.services.supervision import first_error

log = logging.getLogger("microengine.demo")

HOST = "127.0.0.1"
#: The password of every packaged test keystore (``polyswarmclient/devnet/keyfiles``).
TEST_PASSWORD = "password"
#: Artifacts per demo bounty: the corpus alternates EICAR and benign, so each bounty holds one of each.
ARTIFACTS_PER_BOUNTY = 2
#: Seconds the ambassador and the arbiter get to finish once the engine is done (after a signal).
ROLE_GRACE = 2.0
#: Seconds to wait for the engine's own settlement events after it stopped.
REPORT_TIMEOUT = 10.0


def choose_port(host: str, wanted: int) -> tuple[int, bool]:
    """``(port, moved)``: ``wanted`` when it can be bound, else a free port picked by the OS."""
    if wanted == 0:
        return 0, False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
        try:
            probe.bind((host, wanted))
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                raise
        else:
            return wanted, False
    return 0, True


def packaged_signer(role: str) -> Signer:
    """The signer of a packaged test keystore: ``microengine``, ``ambassador`` or ``arbiter``."""
    return load_keyfile(PACKAGED_KEYFILES / f"{role}_keyfile", TEST_PASSWORD)


@dataclass(frozen=True)
class DemoPlan:
    """Everything decided before the event loop starts."""

    port: int
    moved_from: int | None
    block_time: float
    windows: Windows
    testing: int
    engine_signer: Signer
    state_dir: Path
    scratch_dir: Path
    backend_name: str
    config: EngineConfig
    extra_accounts: tuple[str, ...] = field(default=())
    chains_on: str = "embedded"
    anvil: Path | None = None


@contextlib.contextmanager
def planned(
    *,
    port: int,
    block_time: float,
    engine_signer: Signer,
    backend_name: str,
    config: EngineConfig,
    state_dir: Path | None = None,
    chains_on: str = "embedded",
    anvil: Path | None = None,
) -> Iterator[DemoPlan]:
    """The plan of one run, with a scratch directory for the roles' state that is removed afterwards.

    ``port`` is replaced by a free one when it is taken; the engine's state goes to ``state_dir``, or to
    the scratch directory when None; an engine keystore that is not a packaged one is funded too.
    """
    chosen, moved = choose_port(HOST, port)
    packaged = {a.lower() for a in keystore_addresses(PACKAGED_KEYFILES).values()}
    scratch = Path(tempfile.mkdtemp(prefix="polyswarm-devnet-demo-"))
    try:
        yield DemoPlan(
            port=chosen,
            moved_from=port if moved else None,
            block_time=block_time,
            chains_on=chains_on,
            anvil=anvil,
            windows=demo_windows(block_time),
            testing=config.testing,
            engine_signer=engine_signer,
            state_dir=state_dir if state_dir is not None else scratch / "microengine",
            scratch_dir=scratch,
            backend_name=backend_name,
            config=config,
            extra_accounts=() if engine_signer.address.lower() in packaged else (engine_signer.address,),
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _client(url: str, signer: Signer, state_dir: Path) -> PolyswarmClient:
    return PolyswarmClient(ClientConfig(polyswarmd_addr=url, insecure_transport=True, state_dir=state_dir), signer)


async def run_marketplace(
    plan: DemoPlan, backend_class: type, shutdown: Shutdown, report: Callable[[Report], None]
) -> Summary:
    """Start the devnet, run every role until done or ``shutdown``, stop the devnet; the run's summary."""
    devnet = Devnet(
        DevnetConfig(
            host=HOST,
            port=plan.port,
            block_time=plan.block_time,
            chains_on=plan.chains_on,
            anvil=plan.anvil,
            keyfiles_dir=PACKAGED_KEYFILES,
            extra_accounts=plan.extra_accounts,
            poll_interval=min(0.5, plan.block_time / 4),
            community_overrides={
                "assertion_reveal_window": plan.windows.reveal,
                "arbiter_vote_window": plan.windows.vote,
            },
        )
    )
    try:
        try:
            await devnet.start()
        except OSError as exc:
            raise PolyswarmError(
                f"the devnet cannot listen on {HOST}:{plan.port}: {exc.strerror or exc}; "
                "pick another --devnet-port (DEVNET_PORT)"
            ) from None
        report(DevnetStarted(devnet.url, plan.moved_from, plan.block_time, plan.windows))
        engine_client = _client(devnet.url, plan.engine_signer, plan.state_dir)
        ambassador_client = _client(devnet.url, packaged_signer("ambassador"), plan.scratch_dir / "ambassador")
        arbiter_client = _client(devnet.url, packaged_signer("arbiter"), plan.scratch_dir / "arbiter")
        with StateStore(plan.state_dir, plan.engine_signer.address) as store:
            async with engine_client, ambassador_client, arbiter_client:
                return await _marketplace(
                    plan, backend_class, store, engine_client, ambassador_client, arbiter_client, shutdown, report
                )
    finally:
        await devnet.stop()


async def _marketplace(
    plan: DemoPlan,
    backend_class: type,
    store: StateStore,
    engine_client: PolyswarmClient,
    ambassador_client: PolyswarmClient,
    arbiter_client: PolyswarmClient,
    shutdown: Shutdown,
    report: Callable[[Report], None],
) -> Summary:
    chains = plan.config.chains
    await engine_client.check_server()
    assertion_fee = (await engine_client.bounty_parameters("side")).assertion_fee
    before = await engine_client.nct_balance("side")

    arbiter = Arbiter(
        arbiter_client,
        load_arbiter_backend_class(DEFAULT)(),
        ArbiterSettings(chains=chains, testing=plan.testing),
    )
    for chain in chains:
        await arbiter.ensure_stake(chain)
    interval = submission_interval(plan.block_time)
    ambassador = Ambassador(
        ambassador_client,
        Corpus.for_bounties(ARTIFACTS_PER_BOUNTY),
        AmbassadorSettings(
            chains=chains,
            duration=plan.windows.duration,
            artifacts_per_bounty=ARTIFACTS_PER_BOUNTY,
            submission_rate=interval,
            testing=plan.testing,
            start_delay=min(2.0, 2 * plan.block_time),
        ),
    )
    report(
        RolesStarted(
            ambassador=ambassador_client.address,
            arbiter=arbiter_client.address,
            engine=engine_client.address,
            backend=plan.backend_name,
            balance=before,
            state_dir=plan.state_dir,
            bounties=plan.testing,
            interval=interval,
        )
    )

    observer = Observer(engine_client.address, arbiter_client.address, ground_truth_by_sha256(), chains)
    roles = Shutdown(grace=ROLE_GRACE)
    engine = make_engine(engine_client, backend_class, plan.backend_name, store, plan.config, shutdown)
    try:
        async with asyncio.TaskGroup() as tg:
            watching = tg.create_task(observer.run(engine_client, chains, report), name="demo-observer")
            await observer.wait_connected(within=30.0)
            role_tasks = [
                tg.create_task(arbiter.run(roles), name="demo-arbiter"),
                tg.create_task(ambassador.run(roles), name="demo-ambassador"),
            ]
            await engine.run()
            if not await observer.wait_settled(engine.stats.settles, REPORT_TIMEOUT):
                log.warning("demo: not every settlement of the engine was seen on the event stream")
            if plan.testing and not shutdown.requested:
                # Let the ambassador and the arbiter settle the same bounties (the arbiter settles last).
                await _wait_for_roles(role_tasks, shutdown, settle_time(plan.windows, plan.block_time))
            roles.request("the microengine is done")
            await asyncio.wait(role_tasks)
            watching.cancel()
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    after = await engine_client.nct_balance("side")
    summary = summarize(observer.views.values(), assertion_fee, before, after)
    report(summary)
    return summary


async def _wait_for_roles(tasks: list[asyncio.Task[Any]], shutdown: Shutdown, within: float) -> None:
    """Wait until every role task is done, a signal arrives, or ``within`` seconds have passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    stop = asyncio.ensure_future(shutdown.wait())
    pending: set[asyncio.Future[Any]] = set(tasks)
    try:
        while pending and not stop.done():
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("demo: the ambassador or the arbiter did not finish settling in time")
                return
            done, _ = await asyncio.wait({*pending, stop}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            pending -= done
    finally:
        stop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stop
