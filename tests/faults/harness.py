"""The fault harness: lifecycle scenarios with crashes and a misbehaving network, judged on chain.

Every scenario runs the real CLIs as subprocesses against a real ``polyswarmd-devnet`` (the e2e tier's
:class:`~tests.e2e.harness.Devnet` and :class:`~tests.e2e.harness.Cli`), with the role under test
reaching the devnet through a :class:`~tests.faults.proxy.FaultProxy`. The ambassador and the arbiter talk
to the devnet directly.

* :data:`ENGINE_KILLS`: a ``microengine`` is SIGKILLed at one moment of each bounty's life (the proxy's
  hook kills it) and restarted on the same state directory; see :class:`KillAt`.
* :data:`MAINTAIN_KILLS`: ``balancemanager maintain`` is SIGKILLed at one moment of each deposit and
  restarted; each round needs exactly one deposit.
* :data:`NETWORK_FAULTS`: one engine rides out dropped websockets, 5xx bursts or 429 bursts.
* :func:`run_drip`: ``balancemanager view-balance`` at the default log level against an answer that drips.

Each run returns an :class:`Outcome` counted from the chain (assertions, reveals, balances), with a
``problems`` list of sentences: a test asserts it is empty, the benchmark prints the counts. Every loop
is bounded in time; every process is stopped (SIGTERM, exit code checked) before a run returns.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.e2e.harness import (
    ENGINE_READY,
    NCT,
    RESTART_OPTIONS,
    ApiError,
    Cli,
    Devnet,
    Process,
    address_of,
    nct_text,
    posted_guids,
    wait_until,
)
from tests.faults.proxy import FaultProxy, Matcher, Moment, Seen, carrying, route

#: Windows as the e2e restart tests use them: a reveal window of 40 blocks leaves room for a cold restart.
DEVNET_OPTIONS = RESTART_OPTIONS
#: Blocks from posting to expiration: a kill and a cold restart (~1-2 s) must fit before it.
DURATION = 40
#: Seconds between two bounties: a restart takes about a second and a half.
SUBMISSION_RATE = 2.0
#: How long a "mined while dead" scenario waits for the forwarded transaction to be mined or queued.
MINED_WHILE_DEAD_WAIT = 20.0
#: Keystores the engine scenarios use in turn (the ambassador and the arbiter have their own).
ENGINE_KEYSTORES = ("microengine_keyfile", "spare1_keyfile", "spare2_keyfile", "spare3_keyfile")
MAINTAIN_KEYSTORE = "balancemanager_keyfile"

_SEEN = re.compile(r"bounty ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):")


@dataclass
class Outcome:
    """What one scenario did, counted from the chain; ``problems`` says what went wrong, in sentences."""

    scenario: str
    posted: int | None = None
    seen: int | None = None
    asserted: int | None = None
    revealed: int | None = None
    forfeited: int | None = None
    doubled: int = 0
    kills: int = 0
    #: answers the proxy faulted (5xx, 429) plus websockets it dropped
    faults: int = 0
    peak_rss_kib: int = 0
    seconds: float = 0.0
    note: str = ""
    problems: list[str] = field(default_factory=list)


class PeakRss:
    """The highest ``VmHWM`` read from ``/proc/<pid>/status`` of the processes sampled."""

    def __init__(self) -> None:
        self.kib = 0

    def sample(self, process: Process | None) -> None:
        if process is None or not process.running:
            return
        try:
            with open(f"/proc/{process.pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        self.kib = max(self.kib, int(line.split()[1]))
                        return
        except (OSError, ValueError):
            return


# --- what the proxy's hooks recognise --------------------------------------------------------------


def _guid_of(seen: Seen) -> str | None:
    """The bounty a request is about: from a build route's path or from the first argument of its call."""
    found = re.fullmatch(r"/bounties/([0-9a-f-]{36})/assertions", seen.path)
    if found:
        return found.group(1)
    calls = seen.calls()
    return calls[0].guid if calls else None


@dataclass(frozen=True)
class KillAt:
    """SIGKILL the engine once per bounty when ``match`` goes through the proxy at ``moment``, then restart.

    ``moment="answered"``: the devnet acted on the request (built it, or mined the transaction) and the
    engine dies before hearing the answer. ``moment="before"``: the engine dies first, then the proxy
    forwards the request, so the transaction is mined while it is dead; the restart then waits until the
    chain shows it (``mined``) and two more blocks, so its event is long gone.
    """

    name: str
    match: Matcher
    moment: Moment
    mined: Callable[[Devnet, str, str], bool] | None = None
    what: str = ""


def _queued(devnet: Devnet, keystore: str) -> bool:
    """The sidechain holds a transaction of ``keystore``'s that waits behind a nonce gap."""
    return bool(devnet.get("/pending", chain="side", account=address_of(keystore)))


def _assertion_on_chain(devnet: Devnet, guid: str, keystore: str) -> bool:
    return devnet.assertion_by(guid, keystore) is not None


def _reveal_on_chain(devnet: Devnet, guid: str, keystore: str) -> bool:
    found = devnet.assertion_by(guid, keystore)
    return found is not None and str(found["nonce"]) != "0"


ENGINE_KILLS = (
    KillAt(
        "assertion built",
        route("POST", "/bounties/", "/assertions"),
        "answered",
        what="polyswarmd answered the build route POST /bounties/<guid>/assertions",
    ),
    KillAt(
        "assertion posted",
        carrying("postAssertion"),
        "answered",
        what="polyswarmd mined and answered the POST /transactions carrying postAssertion",
    ),
    KillAt(
        "assertion mined while dead",
        carrying("postAssertion"),
        "before",
        _assertion_on_chain,
        what="the engine sent POST /transactions carrying postAssertion; the proxy forwards it after the kill",
    ),
    KillAt(
        "reveal posted",
        carrying("revealAssertion"),
        "answered",
        what="polyswarmd mined and answered the POST /transactions carrying revealAssertion",
    ),
    KillAt(
        "reveal mined while dead",
        carrying("revealAssertion"),
        "before",
        _reveal_on_chain,
        what="the engine sent its reveal; the proxy forwards it after the kill",
    ),
    KillAt(
        "settle posted",
        carrying("settleBounty"),
        "answered",
        what="polyswarmd mined and answered the POST /transactions carrying settleBounty",
    ),
)


@dataclass(frozen=True)
class NetworkFault:
    """A fault the proxy applies on a schedule while one engine works: ``tick(proxy, seconds_since_start)``."""

    name: str
    tick: Callable[[FaultProxy, float, dict[str, float]], None]
    what: str = ""


def _every(period: float, first: float, action: Callable[[FaultProxy], None]) -> Callable[..., None]:
    def tick(proxy: FaultProxy, elapsed: float, memo: dict[str, float]) -> None:
        due = memo.get("next", first)
        if elapsed >= due:
            action(proxy)
            memo["next"] = due + period

    return tick


NETWORK_FAULTS = (
    NetworkFault(
        "websocket dropped",
        _every(4.0, 2.0, lambda proxy: proxy.drop_websockets()),
        what="every 4 s the proxy aborts the engine's websocket (no close frame)",
    ),
    NetworkFault(
        "5xx bursts",
        _every(10.0, 2.0, lambda proxy: proxy.fail(2.0, 503)),
        what="every 10 s, 2 s of HTTP 503 to every REST request",
    ),
    NetworkFault(
        "429 bursts",
        _every(15.0, 2.0, lambda proxy: proxy.rate_limit(3.0, retry_after=1)),
        what="every 15 s, 3 s of HTTP 429 with Retry-After: 1 to every REST request",
    ),
)


# --- the engine runs --------------------------------------------------------------------------------


def _is_bounty(devnet: Devnet, guid: str) -> bool:
    """A bounty on chain (the engine's start-up probe builds an assertion on a random GUID, never posted)."""
    try:
        devnet.bounty(guid)
    except (ApiError, OSError):
        return False
    return True


def engine_keystore(scenario: KillAt | NetworkFault | None) -> str:
    """:data:`ENGINE_KEYSTORES` in turn, by the scenario's place in :data:`ENGINE_KILLS` or :data:`NETWORK_FAULTS`."""
    if scenario is None:
        return ENGINE_KEYSTORES[0]
    scenarios: tuple[KillAt | NetworkFault, ...] = ENGINE_KILLS if isinstance(scenario, KillAt) else NETWORK_FAULTS
    return ENGINE_KEYSTORES[scenarios.index(scenario) % len(ENGINE_KEYSTORES)]


def scenario_ids(scenarios: tuple[KillAt, ...] | tuple[MaintainKill, ...] | tuple[NetworkFault, ...]) -> list[str]:
    """Test ids for ``pytest.mark.parametrize``: the scenarios' names, dashed."""
    return [scenario.name.replace(" ", "-") for scenario in scenarios]


def assert_worked_every_bounty(outcome: Outcome, bounties: int) -> None:
    """No problem, and every one of ``bounties`` bounties posted, asserted and revealed (no bid forfeited)."""
    assert outcome.problems == [], "\n".join(outcome.problems)
    assert (outcome.posted, outcome.asserted, outcome.revealed, outcome.forfeited) == (bounties, bounties, bounties, 0)


def _ambassador(cli: Cli, bounties: int, name: str) -> Process:
    return cli.start(
        "ambassador",
        "--testing", str(bounties),
        "--duration", str(DURATION),
        "--submission-rate", str(SUBMISSION_RATE),
        keystore="ambassador_keyfile",
        name=name,
    )  # fmt: skip


def _seen_guids(engines: list[Process]) -> set[str]:
    found: set[str] = set()
    for engine in engines:
        found.update(_SEEN.findall(engine.output()))
    return found


def _expected_net(devnet: Devnet, guids: list[str], keystore: str) -> int:
    address = address_of(keystore).lower()
    total = 0
    for guid in guids:
        settlement = devnet.settlement(guid)
        if address in settlement.experts:
            total += settlement.net(keystore)
    return total


def run_engine(
    devnet: Devnet,
    cli: Cli,
    *,
    bounties: int,
    keystore: str | None = None,
    kill: KillAt | None = None,
    fault: NetworkFault | None = None,
) -> Outcome:
    """One engine behind a :class:`FaultProxy` while the ambassador posts ``bounties`` EICAR bounties.

    Without ``keystore``, the engine uses the scenario's own (:func:`engine_keystore`)."""
    keystore = keystore or engine_keystore(kill or fault)
    scenario = (kill or fault).name if (kill or fault) else "no fault"
    outcome = Outcome(scenario)
    started = time.monotonic()
    slug = re.sub(r"\W+", "-", scenario)
    state = cli.workdir / "state" / f"engine-{slug}"
    before = devnet.nct(keystore)
    rss = PeakRss()
    engines: list[Process] = []
    restart = threading.Event()
    killed: dict[str, Process] = {}  # guid -> the engine killed for it
    ambassador: Process | None = None
    proxy = FaultProxy(devnet.port).start()

    started_at: list[float] = []  # when each of ``engines`` was started (time.monotonic())
    gaps = 0  # "mined while dead" forwards that could not be mined before the restart

    def start_engine() -> Process:
        at = time.monotonic()
        engine = cli.engine(keystore, addr=proxy.addr, state_dir=state, testing=None, name=f"engine-{slug}")
        engines.append(engine)
        started_at.append(at)
        return engine

    def sender(seen: Seen) -> Process:
        """The engine that sent ``seen``: the newest one started before the request arrived."""
        for engine, at in reversed(list(zip(engines, started_at, strict=False))):
            if at <= seen.arrived:
                return engine
        return engines[0]

    if kill is not None:

        def match(seen: Seen) -> bool:
            guid = _guid_of(seen)
            return guid is not None and guid not in killed and kill.match(seen) and _is_bounty(devnet, guid)

        def hook(seen: Seen) -> None:
            guid = _guid_of(seen)
            assert guid is not None
            victim = sender(seen)
            killed[guid] = victim
            if victim is not engines[-1]:
                # sent by an engine killed meanwhile (for another bounty's request in flight at the same
                # time): its moment came, and its sender is already dead; never kill a newer engine for it
                return
            restart.set()
            rss.sample(victim)
            victim.kill()

        proxy.on_request(match, hook, moment=kill.moment, times=bounties)

    try:
        engine = start_engine()
        cli.ready(engine, ENGINE_READY)
        ambassador = _ambassador(cli, bounties, f"ambassador-{slug}")
        memo: dict[str, float] = {}
        deadline = time.monotonic() + 90 + bounties * (SUBMISSION_RATE + 6)
        settled_at: float | None = None
        guids: list[str] = []
        while time.monotonic() < deadline:
            rss.sample(engines[-1])
            if restart.is_set():
                if kill is not None and kill.mined is not None:
                    guid = list(killed)[-1]
                    wait_until(
                        lambda g=guid: kill.mined(devnet, g, keystore) or _queued(devnet, keystore),  # type: ignore[misc]
                        timeout=MINED_WHILE_DEAD_WAIT,
                        what=f"what the engine sent for {guid} to be mined (or queued) while it was dead",
                    )
                    if kill.mined(devnet, guid, keystore):
                        mined_at = devnet.block()
                        wait_until(lambda b=mined_at: devnet.block() >= b + 2, timeout=10, what="two more blocks")
                    else:
                        # Queued behind a nonce gap: the dead engine had signed an earlier transaction that
                        # never went out, and only the restarted engine can close the gap. Restart at once;
                        # the outcome on chain still decides.
                        gaps += 1
                restart.clear()
                start_engine()
            elif not engines[-1].running:
                outcome.problems.append(
                    f"{engines[-1].name} exited on its own ({engines[-1].status()}):\n{engines[-1].tail(30)}"
                )
                break
            if fault is not None and ambassador.running:
                fault.tick(proxy, time.monotonic() - started, memo)
            if not ambassador.running:
                if ambassador.returncode != 0:
                    outcome.problems.append(f"the ambassador exited with {ambassador.status()}")
                    break
                guids = posted_guids(ambassador)
                now = time.monotonic()
                if settled_at is None or now - settled_at >= 0.5:
                    settled_at = now
                    try:
                        if devnet.nct(keystore) - before == _expected_net(devnet, guids, keystore):
                            break
                    except (ApiError, OSError):
                        pass
            time.sleep(0.05)
        else:
            outcome.problems.append(f"{scenario}: not done after {time.monotonic() - started:.0f} s")
        rss.sample(engines[-1])
        if engines[-1].running:
            # a restart that has not installed its signal handlers yet would die of SIGTERM (-15)
            wait_until(
                lambda: ENGINE_READY in engines[-1].output(),
                timeout=30,
                what=f"{engines[-1].name} to be up before it is stopped",
                watch=[engines[-1]],
            )
            code = engines[-1].stop(timeout=30)
            if code != 0:
                outcome.problems.append(f"{engines[-1].name} exited with code {code} on SIGTERM")
    finally:
        proxy.clear()
        outcome.faults = sum(proxy.stats.faulted.values()) + proxy.stats.websockets_dropped
        proxy.close()
        for process in engines:
            if process.running:
                process.cleanup()

    assert ambassador is not None
    if ambassador.running:
        ambassador.cleanup()
    guids = posted_guids(ambassador)
    _count_on_chain(devnet, keystore, guids, engines, before, outcome)
    outcome.kills = len(killed)
    if gaps:
        outcome.note = f"{gaps} forward(s) waited behind a nonce gap; restarted without waiting"
    outcome.peak_rss_kib = rss.kib
    outcome.seconds = time.monotonic() - started
    if outcome.posted != bounties:
        outcome.problems.append(f"the ambassador posted {outcome.posted} bounties, not {bounties}")
    if kill is not None and len(killed) != len(guids):
        missing = [g for g in guids if g not in killed]
        outcome.problems.append(f"the moment '{kill.what}' never came for {missing}")
    return outcome


def _count_on_chain(
    devnet: Devnet, keystore: str, guids: list[str], engines: list[Process], before: int, outcome: Outcome
) -> None:
    outcome.posted = len(guids)
    seen = _seen_guids(engines)
    outcome.seen = sum(1 for g in guids if g in seen)
    address = address_of(keystore).lower()
    asserted = revealed = doubled = 0
    for guid in guids:
        mine = [a for a in devnet.assertions(guid) if str(a["author"]).lower() == address]
        doubled += max(0, len(mine) - 1)
        if mine:
            asserted += 1
            revealed += 1 if str(mine[0]["nonce"]) != "0" else 0
    outcome.asserted, outcome.revealed, outcome.doubled = asserted, revealed, doubled
    outcome.forfeited = asserted - revealed
    forfeit_lines = sum(len(e.lines_matching(r"reveal forfeited")) for e in engines)
    if outcome.seen < len(guids):
        outcome.problems.append(f"the engine never saw {sorted(set(guids) - seen)}")
    if asserted < len(guids):
        outcome.problems.append(f"missed bounties: asserted on {asserted} of {len(guids)}")
    if outcome.forfeited or forfeit_lines:
        outcome.problems.append(f"{outcome.forfeited} bid(s) forfeited on chain, {forfeit_lines} forfeit log line(s)")
    if doubled:
        outcome.problems.append(f"{doubled} bounty(ies) carry two assertions of ours")
    gained = devnet.nct(keystore) - before
    expected = _expected_net(devnet, guids, keystore)
    if gained != expected:
        outcome.problems.append(f"side balance changed by {nct_text(gained)}, the settlements say {nct_text(expected)}")


# --- balancemanager maintain runs -------------------------------------------------------------------


@dataclass(frozen=True)
class MaintainKill:
    """SIGKILL ``maintain`` when its deposit (a ``transfer`` on home) goes through at ``moment``, then restart."""

    name: str
    moment: Moment
    what: str = ""


MAINTAIN_KILLS = (
    MaintainKill(
        "deposit posted",
        "answered",
        what="the home chain mined and answered the deposit; maintain dies before hearing it",
    ),
    MaintainKill(
        "deposit mined while dead",
        "before",
        what="maintain sent its deposit; the proxy forwards it after the kill",
    ),
)

#: NCT each deposit moves; MINIMUM is set one NCT above the side balance, so one deposit is enough.
REFILL = 4 * NCT


def run_maintain(devnet: Devnet, cli: Cli, *, rounds: int, kill: MaintainKill) -> Outcome:
    """``rounds`` times: start ``maintain --testing 1`` needing exactly one deposit, kill it at the moment,
    restart it on the same state directory, and check the home balance fell by exactly one refill."""
    outcome = Outcome(kill.name, doubled=0)
    started = time.monotonic()
    keystore = MAINTAIN_KEYSTORE
    slug = re.sub(r"\W+", "-", kill.name)
    fee = devnet.relay_fee("side")
    rss = PeakRss()
    proxy = FaultProxy(devnet.port).start()
    missed = 0
    try:
        for n in range(rounds):
            state = cli.workdir / "state" / f"maintain-{slug}-{n}"
            before = devnet.balances(keystore)
            minimum = (before.side + NCT) // NCT + 1  # whole NCT above the side balance: one refill covers it
            args = ("balancemanager", "maintain", str(minimum), str(REFILL // NCT), "--testing", "1")
            runs: list[Process] = []
            fired = threading.Event()

            def hook(seen: Seen, runs: list[Process] = runs, fired: threading.Event = fired) -> None:
                fired.set()
                rss.sample(runs[-1])
                runs[-1].kill()

            proxy.clear()
            proxy.on_request(carrying("transfer", chain="home"), hook, moment=kill.moment, times=1)
            runs.append(cli.start(*args, keystore=keystore, state_dir=state, addr=proxy.addr, name=f"maintain-{slug}"))
            wait_until(
                lambda runs=runs, fired=fired: fired.is_set() or not runs[-1].running,
                timeout=60,
                what=f"maintain to send its deposit (round {n + 1})",
            )
            if not fired.is_set():
                outcome.problems.append(f"round {n + 1}: maintain ended before its deposit: {runs[-1].tail(20)}")
                continue
            outcome.kills += 1
            wait_until(
                lambda b=before.home: devnet.nct(keystore, "home") < b,
                timeout=20,
                what=f"round {n + 1}: the killed maintain's deposit to be mined",
            )
            runs.append(cli.start(*args, keystore=keystore, state_dir=state, addr=proxy.addr, name=f"maintain-{slug}"))
            deadline = time.monotonic() + 90
            while runs[-1].running and time.monotonic() < deadline:
                rss.sample(runs[-1])
                time.sleep(0.05)
            code = runs[-1].wait(5) if not runs[-1].running else None
            if code != 0:
                outcome.problems.append(f"round {n + 1}: the restarted maintain ended with {runs[-1].status()}")
                runs[-1].cleanup()
            after = devnet.balances(keystore)
            deposits, rest = divmod(before.home - after.home, REFILL)
            if rest or deposits < 1:
                outcome.problems.append(f"round {n + 1}: home changed by {nct_text(after.home - before.home)}")
                missed += 1
            outcome.doubled += max(0, deposits - 1)
            wait_until(
                lambda d=deposits, s=before.side: devnet.nct(keystore) == s + d * (REFILL - fee),
                timeout=20,
                what=f"round {n + 1}: side balance to be exactly {deposits} refill(s) minus the relay fee higher",
            )
    finally:
        proxy.close()
    if outcome.doubled:
        outcome.problems.append(f"{outcome.doubled} deposit(s) made twice")
    outcome.note = f"{rounds} rounds, {missed} with no exact refill"
    outcome.peak_rss_kib = rss.kib
    outcome.seconds = time.monotonic() - started
    return outcome


# --- a dripping answer ------------------------------------------------------------------------------


def run_drip(devnet: Devnet, cli: Cli, *, answers: int, interval: float = 0.5) -> tuple[Outcome, Process]:
    """``balancemanager view-balance`` at the default log level while the proxy drips ``answers`` answers."""
    outcome = Outcome(f"dripping answer ({'endless' if answers > 10 else answers})")
    proxy = FaultProxy(devnet.port).start()
    started = time.monotonic()
    try:
        proxy.drip(match=lambda seen: seen.method == "GET", count=answers, interval=interval)
        process = cli.start(
            "balancemanager", "view-balance", keystore=MAINTAIN_KEYSTORE, addr=proxy.addr, log_level="warning"
        )
        try:
            code = process.wait(120)
        finally:
            process.cleanup()
    finally:
        proxy.close()
    outcome.seconds = time.monotonic() - started
    outcome.note = f"exit {code} after {outcome.seconds:.0f} s, {proxy.stats.dripped} answer(s) dripped"
    return outcome, process


__all__ = [
    "DEVNET_OPTIONS",
    "ENGINE_KEYSTORES",
    "ENGINE_KILLS",
    "MAINTAIN_KILLS",
    "NETWORK_FAULTS",
    "KillAt",
    "MaintainKill",
    "NetworkFault",
    "Outcome",
    "assert_worked_every_bounty",
    "engine_keystore",
    "run_drip",
    "run_engine",
    "run_maintain",
    "scenario_ids",
]
