"""A ``microengine`` SIGKILLed at each moment of a bounty's life, and restarted, loses nothing on chain.

For each moment (:data:`~tests.faults.harness.ENGINE_KILLS`) the fault proxy kills the engine once per
bounty; the harness restarts it on the same state directory. On chain, afterwards: every bounty carries
one assertion of the engine's, revealed (no bid forfeited), and the engine's side balance changed by
exactly what the settlements pay it, to the wei.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import Cli, Devnet, Process
from tests.faults.harness import (
    DEVNET_OPTIONS,
    ENGINE_KILLS,
    KillAt,
    assert_worked_every_bounty,
    run_engine,
    scenario_ids,
)

__all__ = ["DEVNET_OPTIONS"]  # the module's devnet settings, read by the devnet fixture

#: Bounties per moment: each is killed for once, so two bounties mean two kills and two restarts.
BOUNTIES = 2


@pytest.mark.parametrize("kill", ENGINE_KILLS, ids=scenario_ids(ENGINE_KILLS))
def test_engine_killed_and_restarted_misses_nothing_and_forfeits_nothing(
    devnet: Devnet, arbiter: Process, cli: Cli, kill: KillAt
) -> None:
    """Killed at the moment, restarted: every bounty asserted and revealed once, balance exact to the wei."""
    outcome = run_engine(devnet, cli, bounties=BOUNTIES, kill=kill)
    assert_worked_every_bounty(outcome, BOUNTIES)
    assert outcome.kills == BOUNTIES
