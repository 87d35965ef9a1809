"""``balancemanager maintain`` SIGKILLed at each moment of a deposit, and restarted, never deposits twice.

Each round sets MINIMUM one NCT above the side balance, so exactly one deposit of REFILL_AMOUNT is due;
the fault proxy kills maintain when its deposit goes through (:data:`~tests.faults.harness.MAINTAIN_KILLS`)
and the harness restarts it on the same state directory with ``--testing 1``. On chain: the home balance
fell by exactly one refill and the side balance rose by exactly the refill minus the relay fee.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import Cli, Devnet
from tests.faults.harness import DEVNET_OPTIONS, MAINTAIN_KILLS, MaintainKill, run_maintain, scenario_ids

__all__ = ["DEVNET_OPTIONS"]  # the module's devnet settings, read by the devnet fixture

ROUNDS = 2


@pytest.mark.parametrize("kill", MAINTAIN_KILLS, ids=scenario_ids(MAINTAIN_KILLS))
def test_maintain_killed_at_its_deposit_and_restarted_deposits_once(
    devnet: Devnet, cli: Cli, kill: MaintainKill
) -> None:
    """Killed at the moment, restarted: one deposit per round, balances exact to the wei."""
    outcome = run_maintain(devnet, cli, rounds=ROUNDS, kill=kill)
    assert outcome.problems == [], "\n".join(outcome.problems)
    assert (outcome.kills, outcome.doubled) == (ROUNDS, 0)
