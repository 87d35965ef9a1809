"""Fixtures of the fault tier (``-m faults``): the e2e tier's devnet, arbiter and CLI runner, and its report hook.

The devnet runs with :data:`tests.faults.harness.DEVNET_OPTIONS` (the windows of the e2e restart tests)
unless a module sets ``DEVNET_OPTIONS``. When a test fails, its report carries the log of every process
the test started and the tail of the shared ones, as in the e2e tier.
"""

from __future__ import annotations

from tests.e2e.conftest import (  # noqa: F401 - fixtures and hooks re-exported for this folder
    arbiter,
    cli,
    devnet,
    pytest_runtest_makereport,
    pytest_runtest_setup,
)
