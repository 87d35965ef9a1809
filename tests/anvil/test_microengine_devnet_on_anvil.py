"""``microengine --devnet --devnet-chains-on anvil``: the one-process marketplace with its chains on anvil."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli.test_microengine_devnet import OUTCOME, SUMMARY, VERDICTS, _free_port, _run_demo


def test_devnet_on_anvil_scans_a_bounty_and_is_paid(tmp_path: Path) -> None:
    """One test bounty on anvil chains: verdicts, a correct outcome judged by the arbiter, a summary; exit 0."""
    port = _free_port()
    result = _run_demo(
        tmp_path,
        "--devnet",
        "--devnet-chains-on",
        "anvil",
        "--backend",
        "eicar",
        "--testing",
        "1",
        env={"DEVNET_PORT": str(port), "DEVNET_ANVIL": os.environ["DEVNET_ANVIL"]},  # set by the tier's conftest
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"devnet      http://127.0.0.1:{port}:"), lines[0]
    verdicts = [m for m in map(VERDICTS.match, lines) if m]
    outcomes = [m for m in map(OUTCOME.match, lines) if m]
    assert len(verdicts) == 1 and verdicts[0]["verdicts"] == "malicious, benign", result.stdout
    assert len(outcomes) == 1 and outcomes[0]["marks"] == "correct, correct", result.stdout
    summary = SUMMARY.match(lines[-1])
    assert summary and (summary["asserted"], summary["correct"]) == ("1", "1"), lines[-1]


def test_devnet_on_anvil_without_anvil_is_one_line(tmp_path: Path) -> None:
    """Without anvil, ``--devnet-chains-on anvil`` is one line naming the npm install, exit 2."""
    result = _run_demo(
        tmp_path,
        "--devnet",
        "--devnet-chains-on",
        "anvil",
        "--backend",
        "eicar",
        env={"DEVNET_ANVIL": str(tmp_path / "no-anvil-here")},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "npm install --global @foundry-rs/anvil" in lines[0], lines
