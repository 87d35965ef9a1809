"""A ``microengine`` behind a misbehaving network still works every bounty; a dripping answer is reported.

The engine reaches the devnet through the fault proxy, which drops its websocket, answers 5xx bursts or
429 bursts with ``Retry-After: 1`` (:data:`~tests.faults.harness.NETWORK_FAULTS`). On chain, afterwards:
every bounty carries the engine's assertion, revealed, and its balance changed by exactly what the
settlements pay it. A ``balancemanager view-balance`` whose first answer drips a byte at a time says so at
the default log level, retries, and prints the right balances well inside its 60 s budget.
"""

from __future__ import annotations

import pytest

from tests.e2e.harness import Cli, Devnet, Process, address_of
from tests.faults.harness import (
    DEVNET_OPTIONS,
    MAINTAIN_KEYSTORE,
    NETWORK_FAULTS,
    NetworkFault,
    assert_worked_every_bounty,
    run_drip,
    run_engine,
    scenario_ids,
)

__all__ = ["DEVNET_OPTIONS"]  # the module's devnet settings, read by the devnet fixture

BOUNTIES = 3


@pytest.mark.parametrize("fault", NETWORK_FAULTS, ids=scenario_ids(NETWORK_FAULTS))
def test_engine_behind_a_faulty_network_asserts_on_every_bounty_and_forfeits_nothing(
    devnet: Devnet, arbiter: Process, cli: Cli, fault: NetworkFault
) -> None:
    """Dropped websockets, 5xx or 429 bursts: every bounty asserted and revealed, balance exact to the wei."""
    outcome = run_engine(devnet, cli, bounties=BOUNTIES, fault=fault)
    assert_worked_every_bounty(outcome, BOUNTIES)
    assert outcome.faults > 0, "the proxy never applied the fault while the engine worked"


def test_a_dripping_answer_is_reported_at_the_default_level_and_the_command_ends_in_time(
    devnet: Devnet, cli: Cli
) -> None:
    """The first answer drips a byte every 0.5 s: a WARNING names the slow request, the retry succeeds in time."""
    outcome, process = run_drip(devnet, cli, answers=1)
    assert process.returncode == 0, process.output()
    assert outcome.seconds < 60, outcome.note
    log = process.output()
    [warning] = [line for line in log.splitlines() if "WARNING" in line]
    assert "TimeoutError" in warning and "retrying" in warning, warning
    balances = devnet.balances(MAINTAIN_KEYSTORE)
    assert f"address {address_of(MAINTAIN_KEYSTORE)}".lower() in log.lower()
    assert f"home: {balances.home // 10**18}" in log, log
