"""StartupHold: at a restart, settles and reveals wait for the listing and the start-up assertions."""

from __future__ import annotations

import asyncio

from polyswarmclient.services.microengine.schedule import Action
from polyswarmclient.services.microengine.startup import StartupHold

SETTLE = Action("settle", "old", "side")
REVEAL = Action("reveal", "older", "side")


def held(*chains: str) -> StartupHold:
    hold = StartupHold()
    hold.begin(chains)
    return hold


async def test_a_chain_never_held_is_not_holding() -> None:
    """Without work from an earlier run nothing is held, and waiting for the listing returns at once."""
    hold = StartupHold()
    assert not hold.holding("side")
    await asyncio.wait_for(hold.wait_listed("side"), 1)


async def test_held_steps_come_back_once_listed_when_no_assertion_is_in_flight() -> None:
    """Listing the open bounties releases the held steps when no start-up assertion is pending."""
    hold = held("side")
    hold.defer(SETTLE)
    assert hold.listed("side") == [SETTLE]
    assert not hold.holding("side")


async def test_held_steps_wait_for_start_up_assertions_to_finish() -> None:
    """A bounty taken while held keeps the settle waiting until its assertion is done."""
    hold = held("side")
    hold.defer(SETTLE)
    hold.started("side", "new")
    assert hold.listed("side") == []
    assert hold.holding("side")
    assert hold.finished("side", "new") == [SETTLE]
    assert hold.finished("side", "new") == []  # once only


async def test_take_hands_back_only_the_selected_steps() -> None:
    """An urgent reveal is taken out of the hold while the settle stays held."""
    hold = held("side")
    hold.defer(SETTLE)
    hold.defer(REVEAL)
    assert hold.take("side", lambda a: a.kind == "reveal") == [REVEAL]
    assert hold.release("side") == [SETTLE]


async def test_chains_are_held_apart() -> None:
    """Listing one chain releases only that chain's steps."""
    hold = held("side", "home")
    home = Action("settle", "h", "home")
    hold.defer(SETTLE)
    hold.defer(home)
    assert hold.listed("home") == [home]
    assert hold.holding("side")


async def test_release_within_times_out_while_held() -> None:
    """The grace wait says False while the chain is still held, True once released."""
    hold = held("side")
    assert not await hold.released_within("side", 0.01)
    hold.listed("side")
    assert await hold.released_within("side", 0.01)
