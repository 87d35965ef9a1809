"""``microengine --devnet``: a whole marketplace in one process, for a first run and for backend work.

What runs, all with the test keystores shipped in the package (their keys are public):

* the devnet (:class:`~polyswarmclient.devnet.node.Devnet`) on ``127.0.0.1:--devnet-port``, or on a free
  port when that one is taken;
* an ambassador posting bounties of two corpus samples each (one EICAR test file, one benign text);
* an arbiter, staked before the first bounty, voting the corpus ground truth (the ``verbatim`` backend);
* the microengine with ``--backend``, as ``microengine`` runs it against any polyswarmd.

What it prints on stdout, one line each: a header; per bounty the engine's verdicts and bids once they
are revealed, then, once the engine has settled it, each artifact judged against the arbiter's vote
(or the corpus ground truth when nobody voted) and the payout; a summary at the end. Those lines are
read from the chain's public event stream, the values anyone on the network sees, so nothing inside
the engine is hooked. Logs stay on stderr.

With ``--testing N`` the ambassador posts N bounties, every role settles them and the command exits 0;
without it, everything runs until SIGINT/SIGTERM (the first one drains, prints the summary, exits 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import math
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import click

from polyswarmclient.amounts import format_amount
from polyswarmclient.cli.common import open_signer, require_devnet_extra, run
from polyswarmclient.client import ClientConfig, PolyswarmClient
from polyswarmclient.errors import PolyswarmError
from polyswarmclient.eth.keys import Signer, load_keyfile
from polyswarmclient.services.ambassador import Ambassador, AmbassadorSettings
from polyswarmclient.services.arbiter import Arbiter, ArbiterSettings
from polyswarmclient.services.lifecycle import Shutdown
from polyswarmclient.services.microengine import EngineConfig
from polyswarmclient.services.microengine.state import StateStore
from polyswarmclient.services.supervision import first_error, opened
from polyswarmclient.wire.events import Connected, Event, NewAssertion, NewBounty, NewVote, Revealed, SettledBounty

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


# --- pure core ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    """The demo's bounty lifetime and contract windows, in blocks."""

    duration: int
    reveal: int
    vote: int


def demo_windows(block_time: float) -> Windows:
    """Short enough that a bounty settles about 12 blocks after it is posted (12 s with 1 s blocks), long
    enough in seconds that a scan and each transaction fit in their window even with very fast blocks.
    """

    def blocks(at_least: int, seconds: float) -> int:
        return max(at_least, math.ceil(seconds / block_time))

    return Windows(duration=blocks(6, 4.0), reveal=blocks(4, 2.0), vote=blocks(4, 2.0))


def submission_interval(block_time: float) -> float:
    """Seconds between two demo bounties: a few blocks, so bounties overlap as on a real network."""
    return max(2.0, 3 * block_time)


def judge(mask: Sequence[bool], verdicts: Sequence[bool], reference: Sequence[bool | None]) -> list[bool | None]:
    """Per artifact: True (correct), False (wrong), or None (not asserted, or no reference)."""
    out: list[bool | None] = []
    for i, asserted in enumerate(mask):
        truth = reference[i] if i < len(reference) else None
        out.append(None if not asserted or truth is None or i >= len(verdicts) else verdicts[i] == truth)
    return out


@dataclass
class BountyView:
    """What the public event stream told us about one bounty, from the engine's point of view."""

    guid: str
    chain: str
    truth: tuple[bool | None, ...] | None = None  # corpus ground truth, fetched when the bounty appears
    mask: tuple[bool, ...] | None = None  # the engine's assertion
    bids: tuple[int, ...] = ()  # one per asserted artifact, in artifact order
    verdicts: tuple[bool, ...] | None = None  # the engine's revealed verdicts
    votes: tuple[bool, ...] | None = None  # the arbiter's vote
    payout: int | None = None  # what the engine's settle paid it

    @property
    def asserted(self) -> bool:
        return self.mask is not None

    def reference(self) -> tuple[str, tuple[bool | None, ...]] | None:
        """What the verdicts are judged against: the arbiter's vote, else the corpus ground truth."""
        if self.votes is not None:
            return "the arbiter's vote", tuple(self.votes)
        if self.truth is not None:
            return "the ground truth", self.truth
        return None

    def judgement(self) -> list[bool | None]:
        reference = self.reference()
        if self.mask is None or self.verdicts is None or reference is None:
            return []
        return judge(self.mask, self.verdicts, reference[1])

    @property
    def correct(self) -> bool:
        """Every asserted artifact matched the reference."""
        marks = [m for m in self.judgement() if m is not None]
        return bool(marks) and all(marks)


def _per_artifact_bids(mask: Sequence[bool], bids: Sequence[int]) -> list[int | None]:
    packed = iter(bids)
    return [next(packed, None) if asserted else None for asserted in mask]


def verdicts_line(view: BountyView) -> str:
    """``bounty <guid>: verdicts [malicious, benign], bids [0.5, 0.0625] NCT``"""
    mask = view.mask or ()
    verdicts = view.verdicts or ()
    shown = [
        "-" if not asserted else ("malicious" if i < len(verdicts) and verdicts[i] else "benign")
        for i, asserted in enumerate(mask)
    ]
    bids = ["-" if b is None else format_amount(b) for b in _per_artifact_bids(mask, view.bids)]
    return f"bounty {view.guid}: verdicts [{', '.join(shown)}], bids [{', '.join(bids)}] NCT"


def outcome_line(view: BountyView) -> str:
    """``bounty <guid>: settled, [correct, wrong] vs the arbiter's vote, payout 1.5 NCT``"""
    payout = f"payout {format_amount(view.payout or 0)} NCT"
    if view.verdicts is None:
        return f"bounty {view.guid}: settled, verdicts never revealed (bids lost), {payout}"
    reference = view.reference()
    if reference is None:
        return f"bounty {view.guid}: settled, nothing to judge the verdicts against, {payout}"
    marks = ["-" if m is None else ("correct" if m else "wrong") for m in view.judgement()]
    return f"bounty {view.guid}: settled, [{', '.join(marks)}] vs {reference[0]}, {payout}"


@dataclass(frozen=True)
class Summary:
    seen: int
    asserted: int
    correct: int
    wrong: int
    payouts: int
    bids: int
    fees: int
    before: int
    after: int


def summarize(views: Iterable[BountyView], assertion_fee: int, before: int, after: int) -> Summary:
    views = list(views)
    asserted = [v for v in views if v.asserted]
    judged = [v for v in asserted if any(m is not None for m in v.judgement())]
    correct = sum(1 for v in judged if v.correct)
    return Summary(
        seen=len(views),
        asserted=len(asserted),
        correct=correct,
        wrong=len(judged) - correct,
        payouts=sum(v.payout or 0 for v in asserted),
        bids=sum(sum(v.bids) for v in asserted),
        fees=assertion_fee * len(asserted),
        before=before,
        after=after,
    )


def _signed(wei: int) -> str:
    return ("+" if wei >= 0 else "-") + format_amount(abs(wei))


def summary_line(s: Summary) -> str:
    """One line; the change equals payouts - bids - fees once every asserted bounty is settled."""
    return (
        f"summary: bounties seen {s.seen}, asserted {s.asserted}, correct {s.correct}, wrong {s.wrong}; "
        f"NCT before {format_amount(s.before)}, after {format_amount(s.after)} "
        f"(change {_signed(s.after - s.before)}: payouts {_signed(s.payouts)}, bids {_signed(-s.bids)}, "
        f"fees {_signed(-s.fees)})"
    )


class Observer:
    """Turns the public event stream into :class:`BountyView` values and the lines to print.

    :meth:`dispatch` is pure bookkeeping (it returns the lines an event completes); :meth:`run` is the
    shell that reads the streams and fetches each bounty's artifacts for the ground truth.
    """

    def __init__(
        self, engine: str, arbiter: str, truth_by_sha256: dict[str, bool], chains: Sequence[str] = ("side",)
    ) -> None:
        self.engine = engine.lower()
        self.arbiter = arbiter.lower()
        self.truth_by_sha256 = truth_by_sha256
        self.views: dict[str, BountyView] = {}
        self.connected: dict[str, asyncio.Event] = {chain: asyncio.Event() for chain in chains}
        self._settled = 0
        self._progress = asyncio.Event()

    def dispatch(self, event: Event) -> list[str]:
        match event:
            case Connected(chain=chain):
                self.connected.setdefault(chain, asyncio.Event()).set()
            case NewBounty(guid=guid):
                self.views.setdefault(guid, BountyView(guid, event.chain))
            case NewAssertion(bounty_guid=guid, author=author) if author.lower() == self.engine:
                view = self.views.setdefault(guid, BountyView(guid, event.chain))
                view.mask, view.bids = tuple(event.mask), tuple(event.bid)
            case Revealed(bounty_guid=guid, author=author) if author.lower() == self.engine:
                view = self.views.setdefault(guid, BountyView(guid, event.chain))
                view.verdicts = tuple(event.verdicts)
                if view.mask is not None:
                    return [verdicts_line(view)]
            case NewVote(bounty_guid=guid, voter=voter) if voter.lower() == self.arbiter:
                self.views.setdefault(guid, BountyView(guid, event.chain)).votes = tuple(event.votes)
            case SettledBounty(bounty_guid=guid, settler=settler) if settler.lower() == self.engine:
                view = self.views.setdefault(guid, BountyView(guid, event.chain))
                if view.payout is None:
                    view.payout = event.payout
                    self._settled += 1
                    self._progress.set()
                    return [outcome_line(view)]
            case _:
                pass
        return []

    async def run(self, client: PolyswarmClient, chains: Sequence[str], echo: Callable[[str], None]) -> None:
        async with asyncio.TaskGroup() as tg:
            for chain in chains:
                tg.create_task(self._read(client, chain, echo, tg), name=f"demo-observer-{chain}")

    async def _read(
        self, client: PolyswarmClient, chain: str, echo: Callable[[str], None], tg: asyncio.TaskGroup
    ) -> None:
        async with opened(client.events(chain)) as stream:
            async for event in stream:
                try:
                    for line in self.dispatch(event):
                        echo(line)
                    if isinstance(event, NewBounty):
                        tg.create_task(self._fetch_truth(client, event))
                except Exception:  # one odd event never stops the report
                    log.exception("demo: could not report %s event", type(event).__name__)

    async def _fetch_truth(self, client: PolyswarmClient, bounty: NewBounty) -> None:
        try:
            listing = await client.list_artifacts(bounty.uri)
            truth: list[bool | None] = []
            for index in range(len(listing)):
                content = await client.fetch_artifact(bounty.uri, index)
                digest = hashlib.sha256(content).hexdigest() if content is not None else ""
                truth.append(self.truth_by_sha256.get(digest))
        except Exception as exc:
            log.debug("demo: no ground truth for bounty %s: %s", bounty.guid, exc)
            return
        self.views.setdefault(bounty.guid, BountyView(bounty.guid, bounty.chain)).truth = tuple(truth)

    async def wait_connected(self, within: float) -> None:
        async with asyncio.timeout(within):
            for event in list(self.connected.values()):
                await event.wait()

    async def wait_settled(self, count: int, within: float) -> bool:
        """Wait until the engine's settlement of ``count`` bounties has been seen; False after ``within`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._settled < count:
            self._progress.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                return False
        return True


# --- the shell ------------------------------------------------------------------------------------


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


def _echo(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()


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


def run_demo(
    params: dict[str, Any], backend_class: type, config: EngineConfig, *, explicit: Callable[[str], bool]
) -> None:
    """``microengine --devnet``: plan, run everything behind the common error boundary, clean up.

    ``explicit(name)`` tells whether option ``name`` was given (command line or environment): the
    keystore, password and state directory are the packaged test ones and a temporary directory unless
    they were.
    """
    require_devnet_extra("--devnet")
    from polyswarmclient.devnet.node import PACKAGED_KEYFILES, keystore_addresses

    wanted = params["devnet_port"]
    port, moved = choose_port(HOST, wanted)
    block_time = params["devnet_block_time"]
    if explicit("keyfile"):
        signer = open_signer(params["keyfile"], params["password"], params["password_file"])
    else:
        signer = load_keyfile(PACKAGED_KEYFILES / "microengine_keyfile", TEST_PASSWORD)
    packaged = {a.lower() for a in keystore_addresses(PACKAGED_KEYFILES).values()}
    extra = () if signer.address.lower() in packaged else (signer.address,)
    scratch = Path(tempfile.mkdtemp(prefix="polyswarm-devnet-demo-"))
    state_dir = Path(params["state_dir"]) if explicit("state_dir") else scratch / "microengine"
    if not explicit("block_time"):
        config = replace(config, block_time=block_time)
    plan = DemoPlan(
        port=port,
        moved_from=wanted if moved else None,
        block_time=block_time,
        windows=demo_windows(block_time),
        testing=config.testing,
        engine_signer=signer,
        state_dir=state_dir,
        scratch_dir=scratch,
        backend_name=params["backend"],
        config=config,
        extra_accounts=extra,
    )
    try:
        run(lambda shutdown: _main(plan, backend_class, shutdown), grace=30.0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _client(url: str, signer: Signer, state_dir: Path) -> PolyswarmClient:
    return PolyswarmClient(ClientConfig(polyswarmd_addr=url, insecure_transport=True, state_dir=state_dir), signer)


async def _main(plan: DemoPlan, backend_class: type, shutdown: Shutdown) -> None:
    from polyswarmclient.devnet.node import PACKAGED_KEYFILES, Devnet, DevnetConfig

    devnet = Devnet(
        DevnetConfig(
            host=HOST,
            port=plan.port,
            block_time=plan.block_time,
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
        w = plan.windows
        moved = f" (port {plan.moved_from} is in use, so a free port was picked)" if plan.moved_from else ""
        _echo(
            f"devnet      {devnet.url}{moved}: {plan.block_time:g} s blocks, bounties last {w.duration} "
            f"blocks, reveal window {w.reveal}, vote window {w.vote}"
        )
        ambassador_signer = load_keyfile(PACKAGED_KEYFILES / "ambassador_keyfile", TEST_PASSWORD)
        arbiter_signer = load_keyfile(PACKAGED_KEYFILES / "arbiter_keyfile", TEST_PASSWORD)
        engine_client = _client(devnet.url, plan.engine_signer, plan.state_dir)
        ambassador_client = _client(devnet.url, ambassador_signer, plan.scratch_dir / "ambassador")
        arbiter_client = _client(devnet.url, arbiter_signer, plan.scratch_dir / "arbiter")
        with StateStore(plan.state_dir, plan.engine_signer.address) as store:
            async with engine_client, ambassador_client, arbiter_client:
                await _marketplace(
                    plan, backend_class, store, engine_client, ambassador_client, arbiter_client, shutdown
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
) -> None:
    from polyswarmclient.backends.arbiter_loader import DEFAULT, load_arbiter_backend_class
    from polyswarmclient.samples import Corpus, ground_truth_by_sha256
    from polyswarmclient.services.microengine.build import make_engine

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
    ambassador = Ambassador(
        ambassador_client,
        Corpus.for_bounties(ARTIFACTS_PER_BOUNTY),
        AmbassadorSettings(
            chains=chains,
            duration=plan.windows.duration,
            artifacts_per_bounty=ARTIFACTS_PER_BOUNTY,
            submission_rate=submission_interval(plan.block_time),
            testing=plan.testing,
            start_delay=min(2.0, 2 * plan.block_time),
        ),
    )
    interval = f"{submission_interval(plan.block_time):g} s"
    if plan.testing == 1:
        posts = "posts 1 bounty"
    elif plan.testing:
        posts = f"posts {plan.testing} bounties, one every {interval},"
    else:
        posts = f"posts a bounty every {interval},"
    _echo(f"ambassador  {ambassador_client.address} {posts} each with one EICAR and one benign file")
    _echo(f"arbiter     {arbiter_client.address} staked; votes the ground truth of the demo corpus")
    _echo(
        f"microengine {engine_client.address} scans with {plan.backend_name}; "
        f"{format_amount(before)} NCT on side; state in {plan.state_dir}"
    )

    observer = Observer(engine_client.address, arbiter_client.address, ground_truth_by_sha256(), chains)
    roles = Shutdown(grace=ROLE_GRACE)
    engine = make_engine(engine_client, backend_class, plan.backend_name, store, plan.config, shutdown)
    try:
        async with asyncio.TaskGroup() as tg:
            watching = tg.create_task(observer.run(engine_client, chains, _echo), name="demo-observer")
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
                await _wait_for_roles(role_tasks, shutdown, _settle_time(plan))
            roles.request("the microengine is done")
            await asyncio.wait(role_tasks)
            watching.cancel()
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    after = await engine_client.nct_balance("side")
    _echo(summary_line(summarize(observer.views.values(), assertion_fee, before, after)))


def _settle_time(plan: DemoPlan) -> float:
    """Seconds the arbiter may still need after the engine settled (the rest of the vote window)."""
    return (plan.windows.vote + 4) * plan.block_time + 10.0


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


__all__ = [
    "BountyView",
    "Observer",
    "Summary",
    "Windows",
    "choose_port",
    "demo_windows",
    "judge",
    "outcome_line",
    "run_demo",
    "summarize",
    "summary_line",
    "verdicts_line",
]
