"""``microengine --devnet``: the whole marketplace in one process, run as a user runs it (a subprocess)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from polyswarmclient.cli.microengine import MICROENGINE_OPTIONS
from polyswarmclient.demo.marketplace import choose_port

ROOT = Path(__file__).resolve().parents[2]

SUMMARY = re.compile(
    r"^summary: bounties seen (?P<seen>\d+), asserted (?P<asserted>\d+), correct (?P<correct>\d+), "
    r"wrong (?P<wrong>\d+); NCT before (?P<before>[\d.]+), after (?P<after>[\d.]+) "
    r"\(change (?P<change>[-+][\d.]+): payouts (?P<payouts>[-+][\d.]+), bids (?P<bids>[-+][\d.]+), "
    r"fees (?P<fees>[-+][\d.]+)\)$"
)
VERDICTS = re.compile(
    r"^bounty (?P<guid>[0-9a-f-]{36}): verdicts \[(?P<verdicts>[^]]*)\], bids \[(?P<bids>[^]]*)\] NCT$"
)
OUTCOME = re.compile(
    r"^bounty (?P<guid>[0-9a-f-]{36}): settled, \[(?P<marks>[^]]*)\] vs (?P<reference>[^,]+), "
    r"payout (?P<payout>[\d.]+) NCT$"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in {o.envvar for o in MICROENGINE_OPTIONS if o.envvar}}
    environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), environ.get("PYTHONPATH", "")])
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "polyswarmclient.cli.microengine", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        env=environ,
        cwd=tmp_path,  # no ./keyfiles-testing here: the packaged keystores must be enough
    )


def test_devnet_testing_2_reports_each_bounty_and_a_consistent_summary(tmp_path: Path) -> None:
    """--devnet --testing 2 exits 0 after two bounties, each with its verdicts, bids and judged outcome,
    and a summary whose counts match those lines and whose NCT change is payouts - bids - fees."""
    port = _free_port()
    result = _run_demo(tmp_path, "--devnet", "--backend", "eicar", "--testing", "2", env={"DEVNET_PORT": str(port)})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"devnet      http://127.0.0.1:{port}:"), lines[0]
    assert "Traceback" not in result.stderr

    verdicts = [m for m in map(VERDICTS.match, lines) if m]
    outcomes = [m for m in map(OUTCOME.match, lines) if m]
    assert len(verdicts) == 2 and len(outcomes) == 2, result.stdout
    assert {m["guid"] for m in verdicts} == {m["guid"] for m in outcomes}
    for m in verdicts:  # each demo bounty holds one EICAR file and one benign file, in that order
        assert m["verdicts"] == "malicious, benign"
        assert all(Decimal(b) > 0 for b in m["bids"].split(", "))
    for m in outcomes:
        assert m["marks"] == "correct, correct" and m["reference"] == "the arbiter's vote"

    summary = SUMMARY.match(lines[-1])
    assert summary, lines[-1]
    assert (summary["seen"], summary["asserted"], summary["correct"], summary["wrong"]) == ("2", "2", "2", "0")
    before, after = Decimal(summary["before"]), Decimal(summary["after"])
    payouts, bids, fees = (Decimal(summary[k]) for k in ("payouts", "bids", "fees"))
    assert before == 10_000  # what the devnet funds every packaged keystore with on the sidechain
    assert after - before == Decimal(summary["change"]) == payouts + bids + fees
    assert payouts == sum(Decimal(m["payout"]) for m in outcomes)
    assert -bids == sum(Decimal(b) for m in verdicts for b in m["bids"].split(", "))
    assert payouts > -bids  # both bounties were called right, so the engine earned more than it staked


def test_devnet_without_the_backend_is_a_usage_error(tmp_path: Path) -> None:
    """--devnet still needs --backend: one line on stderr and exit 2, before any devnet starts."""
    result = _run_demo(tmp_path, "--devnet")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no backend" in result.stderr and "Traceback" not in result.stderr


def test_busy_port_falls_back_to_a_free_one() -> None:
    """A taken --devnet-port is replaced by a free one (and says so); a free one is kept."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        assert choose_port("127.0.0.1", busy) == (0, True)
    free = _free_port()
    assert choose_port("127.0.0.1", free) == (free, False)
    assert choose_port("127.0.0.1", 0) == (0, False)
