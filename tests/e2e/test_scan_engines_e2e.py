"""``microengine --backend clamav`` and ``--backend yara`` on the devnet: right on the demo corpus, and paid.

A real clamd (started here on a unix socket with a one-signature database) and real yara-python with the
rules under tests/fixtures/yara. Each engine takes one bounty of two demo samples (EICAR, then benign),
which the registered arbiter votes by the corpus' ground truth; a right engine gains exactly what the
payout rule gives it. Broken configurations stop the engine at start with one line and exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clamd_daemon import SIGNATURE, Clamd
from tests.e2e.harness import ENGINE_READY, Cli, Devnet, Process, nct_text, posted_guids

RULES = Path(__file__).resolve().parents[1] / "fixtures" / "yara"
DURATION = 12


@pytest.fixture(scope="module")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    with Clamd(tmp_path_factory.mktemp("clamd")) as daemon:
        yield daemon


def _engine(cli: Cli, keystore: str, backend: str, env: dict[str, str], testing: int = 1) -> Process:
    args = ["--backend", backend, "--block-time", str(cli.devnet.options.block_time), "--testing", str(testing)]
    return cli.start("microengine", *args, keystore=keystore, name=f"engine-{backend}", env=env)


def _right_on_the_demo_corpus_and_paid(devnet: Devnet, cli: Cli, engine: Process, keystore: str, family: str) -> None:
    before = devnet.balances(keystore)
    cli.ready(engine, ENGINE_READY)
    ambassador = cli.ambassador(bounties=1, duration=DURATION, artifacts=2)
    engine.expect_exit(0, timeout=120)
    ambassador.expect_exit(0, timeout=60)
    [guid] = posted_guids(ambassador)
    mine = devnet.assertion_of(guid, keystore)
    assert mine["nonce"] != "0" and mine["verdicts"] == [True, False], mine
    assert family in str(mine["metadata"]), f"the reveal's metadata does not name {family}: {mine['metadata']}"
    assert [v["votes"] for v in devnet.votes(guid)] == [[True, False]]
    settlement = devnet.settlement(guid)
    gained = devnet.nct(keystore) - before.side
    assert gained == settlement.net(keystore) > 0, f"{keystore} gained {nct_text(gained)}"


@pytest.mark.clamav
def test_clamav_engine_gets_the_demo_corpus_right_and_is_paid(
    devnet: Devnet, arbiter: Process, cli: Cli, clamd: Clamd
) -> None:
    """`microengine --backend clamav` (CLAMD_SOCKET) asserts EICAR malicious and the text benign, reveals,
    settles with clamd's signature as the family, and its side balance rises by exactly its payout less
    bids and fee."""
    engine = _engine(cli, "spare1_keyfile", "clamav", {"CLAMD_SOCKET": str(clamd.socket)})
    _right_on_the_demo_corpus_and_paid(devnet, cli, engine, "spare1_keyfile", SIGNATURE)


@pytest.mark.yara
def test_yara_engine_gets_the_demo_corpus_right_and_is_paid(devnet: Devnet, arbiter: Process, cli: Cli) -> None:
    """`microengine --backend yara` (RULES_DIR) asserts EICAR malicious and the text benign, and is paid; the reveal
    names the matched rule's family."""
    engine = _engine(cli, "spare2_keyfile", "yara", {"RULES_DIR": str(RULES / "demo")})
    _right_on_the_demo_corpus_and_paid(devnet, cli, engine, "spare2_keyfile", "EICAR-Test-File")


def _one_line_exit_2(engine: Process) -> str:
    engine.expect_exit(2, timeout=60)
    lines = [line for line in engine.output().splitlines() if line.strip()]
    assert "Traceback" not in engine.output(), engine.output()
    return lines[-1]


@pytest.mark.clamav
def test_clamav_engine_without_clamd_stops_at_start_with_exit_2(devnet: Devnet, cli: Cli, tmp_path: Path) -> None:
    """No clamd on CLAMD_SOCKET: the engine takes no bounty and exits 2 with one line saying how to fix it."""
    missing = tmp_path / "no-clamd.sock"
    engine = _engine(cli, "spare3_keyfile", "clamav", {"CLAMD_SOCKET": str(missing)})
    last = _one_line_exit_2(engine)
    assert f"no clamd at unix:{missing}" in last and "start clamd" in last, last


@pytest.mark.yara
def test_yara_engine_with_a_broken_rule_stops_at_start_naming_file_and_line(devnet: Devnet, cli: Cli) -> None:
    """A rule that does not compile: exit 2 and one line naming the rule file and the line."""
    engine = _engine(cli, "spare3_keyfile", "yara", {"RULES_DIR": str(RULES / "broken")})
    last = _one_line_exit_2(engine)
    assert f"yara rule {RULES / 'broken' / 'bad.yar'}:6: syntax error" in last, last
