"""Several communities: option parsing (one line per mistake) and the runner that keeps them apart."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from polyswarmclient import metrics
from polyswarmclient.cli.communities import Community, communities_from, parse_communities, single_api_key
from polyswarmclient.client.settings import ClientConfig
from polyswarmclient.errors import ConfigError, ConnectionFailed, TransactionFailed, Unauthorized
from polyswarmclient.log import JsonFormatter, TextFormatter
from polyswarmclient.services.communities import Communities
from polyswarmclient.services.lifecycle import Shutdown


def test_communities_with_keys_from_options_and_files(tmp_path: Path) -> None:
    """NAME=URL entries in order, each with the key given for it inline or in a file (first line)."""
    (tmp_path / "beta.key").write_text("beta-secret\nignored\n")
    found = parse_communities(
        ["alpha=https://a.example", "beta=b.example:31337", "gamma=https://c.example/api"],
        ["alpha=alpha-secret"],
        [f"beta={tmp_path / 'beta.key'}"],
    )
    assert [(c.name, c.polyswarmd_addr, c.api_key) for c in found] == [
        ("alpha", "https://a.example", "alpha-secret"),
        ("beta", "b.example:31337", "beta-secret"),
        ("gamma", "https://c.example/api", None),
    ]
    assert "secret" not in repr(found)


@pytest.mark.parametrize(
    ("entries", "keys", "files", "says"),
    [
        (["alpha"], [], [], "expected NAME=URL"),
        (["=https://a.example"], [], [], "expected NAME=URL"),
        (["alpha="], [], [], "expected NAME=URL"),
        (["al pha=https://a.example"], [], [], "is not valid"),
        (["../x=https://a.example"], [], [], "is not valid"),
        (["alpha=https://a.example", "alpha=https://b.example"], [], [], "given twice"),
        (["alpha=https://a.example", "beta=https://a.example"], [], [], "both name https://a.example"),
        (["alpha=https://a.example"], ["beta=k"], [], "no --community of that name"),
        (["alpha=https://a.example"], ["just-a-key"], [], "NAME=KEY"),
        (["alpha=https://a.example"], ["alpha=k1", "alpha=k2"], [], "has an API key already"),
        (["alpha=https://a.example"], [], ["alpha=/nonexistent/key"], "cannot read"),
        (["alpha=https://a.example"], [], ["/some/file"], "NAME=PATH"),
    ],
)
def test_a_bad_community_configuration_is_one_line(
    entries: list[str], keys: list[str], files: list[str], says: str
) -> None:
    """Malformed, repeated or dangling entries are configuration errors that say what is wrong."""
    with pytest.raises(ConfigError) as caught:
        parse_communities(entries, keys, files)
    assert says in str(caught.value)
    assert "\n" not in str(caught.value)


def test_community_and_polyswarmd_addr_or_contracts_do_not_mix() -> None:
    """--community replaces --polyswarmd-addr; a single --contracts file cannot describe several communities."""
    params = {"community": ("alpha=a.example",), "api_key": (), "api_key_file": (), "contracts_file": None}
    with pytest.raises(ConfigError, match="not both"):
        communities_from(params, lambda name: name == "polyswarmd_addr")
    with pytest.raises(ConfigError, match="--contracts"):
        communities_from({**params, "contracts_file": "c.json"}, lambda name: False)
    assert communities_from({**params, "community": ()}, lambda name: True) == ()
    assert [c.name for c in communities_from(params, lambda name: False)] == ["alpha"]


def test_one_community_keeps_its_single_key() -> None:
    """Without --community, --api-key KEY works as before; two keys are refused."""
    assert single_api_key(["k"], []) == "k"
    assert single_api_key([], []) is None
    with pytest.raises(ConfigError, match="give one key"):
        single_api_key(["k1", "k2"], [])


def test_each_community_gets_its_own_address_key_and_state_subfolder() -> None:
    """The shared options with the community's polyswarmd, API key and --state-dir/NAME."""
    base = ClientConfig(state_dir=Path("state"), insecure_transport=True)
    config = Community("beta", "localhost:1", "key").client_config(base)
    assert (config.polyswarmd_addr, config.api_key, config.state_dir) == ("localhost:1", "key", Path("state/beta"))
    assert config.insecure_transport


class FakeClient:
    """A community's client: ``down`` start-ups fail as unreachable, ``refuse`` means a 401."""

    def __init__(self, down: int = 0, refuse: bool = False, side_id: int | None = None) -> None:
        self.down = down
        self.refuse = refuse
        self.starts = 0
        self.side_id = side_id

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def check_server(self) -> None:
        self.starts += 1
        if self.refuse:
            raise Unauthorized("polyswarmd refused the API key (HTTP 401)")
        if self.starts <= self.down:
            raise ConnectionFailed("connection refused")

    async def learn_contracts(self, kinds: object) -> None:
        return None

    def pinned_chain_id(self, chain: str) -> int | None:
        return self.side_id if chain == "side" else None


async def test_one_community_refused_or_down_never_stops_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """A 401 stops its community only; one down at start is retried and served once it answers."""
    clients = {"alpha": FakeClient(), "beta": FakeClient(refuse=True), "gamma": FakeClient(down=2)}
    served: list[str] = []

    async def work(name: str, client: object, shutdown: Shutdown) -> None:
        logging.getLogger("microengine").warning("working")
        served.append(name)

    runner = Communities(clients, Shutdown(), retry_base=0.01, retry_cap=0.02)
    with caplog.at_level(logging.INFO):
        await runner.run(work)
    assert sorted(served) == ["alpha", "gamma"]
    assert clients["gamma"].starts == 3
    assert list(runner.failed) == ["beta"]
    assert any("community beta" in r.getMessage() and "API key" in r.getMessage() for r in caplog.records)


async def test_when_no_community_can_be_served_the_first_error_is_raised() -> None:
    """Every community refused: the command fails as it would for one (a 401 is exit 1)."""
    runner = Communities({"alpha": FakeClient(refuse=True), "beta": FakeClient(refuse=True)}, Shutdown())

    async def work(name: str, client: object, shutdown: Shutdown) -> None:
        raise AssertionError("never served")

    with pytest.raises(Unauthorized):
        await runner.run(work)


async def test_a_stop_request_ends_the_retries_of_a_community_that_stays_down() -> None:
    """A community still down when the process is asked to stop does not hold the stop up."""
    shutdown = Shutdown()
    runner = Communities({"alpha": FakeClient(down=10**6)}, shutdown, retry_base=30, retry_cap=60)

    async def work(name: str, client: object, shutdown: Shutdown) -> None:
        raise AssertionError("never served")

    task = asyncio.create_task(runner.run(work))
    await asyncio.sleep(0.05)
    shutdown.request()
    async with asyncio.timeout(5):
        await task


async def test_logs_and_metrics_of_a_community_carry_its_name() -> None:
    """Text log lines read [NAME]; a metric's chain label reads NAME/side inside the community's task."""
    formatter = TextFormatter("%(name)s: %(message)s")
    lines: list[str] = []
    labels: list[str] = []
    communities: list[str] = []

    async def work(name: str, client: object, shutdown: Shutdown) -> None:
        record = logging.LogRecord("microengine", logging.INFO, __file__, 1, "bounty %s: settled", ("g",), None)
        lines.append(formatter.format(record))
        labels.append(metrics.scoped("side"))
        communities.append(json.loads(JsonFormatter().format(record))["community"])

    await Communities({"alpha": FakeClient(), "beta": FakeClient()}, Shutdown()).run(work)
    assert sorted(lines) == ["microengine: [alpha] bounty g: settled", "microengine: [beta] bounty g: settled"]
    assert sorted(labels) == ["alpha/side", "beta/side"]
    assert sorted(communities) == ["alpha", "beta"]
    assert metrics.scoped("side") == "side"  # outside a community's task nothing changes


async def test_two_communities_on_one_sidechain_id_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    """Two sidechains reporting one chain id share a nonce sequence: the operator is told, naming both."""

    async def work(name: str, client: object, shutdown: Shutdown) -> None:
        return None

    clients = {"alpha": FakeClient(side_id=1338), "beta": FakeClient(side_id=1338), "gamma": FakeClient(side_id=2338)}
    with caplog.at_level(logging.WARNING):
        await Communities(clients, Shutdown()).run(work)
    warnings = [r.getMessage() for r in caplog.records if "sidechain id" in r.getMessage()]
    assert len(warnings) == 1 and "alpha, beta" in warnings[0] and "1338" in warnings[0]


async def test_a_community_gone_before_its_service_got_going_is_started_again() -> None:
    """Its polyswarmd answered the first contact, then failed the service's first reads: tried again."""
    attempts: list[str] = []

    async def work(name: str, client: object, shutdown: Shutdown) -> None:
        attempts.append(name)
        if name == "beta" and attempts.count("beta") == 1:
            raise ConnectionFailed("connection refused")

    await Communities({"alpha": FakeClient(), "beta": FakeClient()}, Shutdown(), retry_base=0.01, retry_cap=0.02).run(
        work
    )
    assert sorted(attempts) == ["alpha", "beta", "beta"]


async def test_an_error_that_stops_the_process_is_raised_as_itself() -> None:
    """A --testing run's fatal error in one community ends the run with that error (one line, its exit code)."""

    async def work(name: str, client: object, shutdown: Shutdown) -> None:
        if name == "beta":
            raise TransactionFailed("settle: the transaction was mined but reverted")
        await asyncio.sleep(10)

    with pytest.raises(TransactionFailed):
        await Communities({"alpha": FakeClient(), "beta": FakeClient()}, Shutdown()).run(work)
