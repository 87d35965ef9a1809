"""Block deadlines: when to reveal, when to settle, and how long a scan may take."""

from polyswarmclient.services.microengine.schedule import (
    MAX_ATTEMPTS,
    Action,
    Deadlines,
    Schedule,
    scan_timeout,
    still_open,
)

D = Deadlines(expiration=100, reveal_window=10, vote_window=20)


def test_deadline_arithmetic():
    """Reveal window is [E, E+R) and settling opens at E+R+V."""
    assert (D.reveal_end, D.settle_from) == (110, 130)
    assert not D.reveal_due(100) and D.reveal_due(101) and D.reveal_due(109) and not D.reveal_due(110)
    assert D.reveal_closed(110) and not D.reveal_closed(109)
    assert not D.settle_due(129) and D.settle_due(130) and D.settle_due(50, quorum=True)


def test_scan_timeout_leaves_room_for_two_transactions():
    """The scan gets the blocks left minus two (approve + postAssertion), times the assumed block time."""
    assert scan_timeout(expiration=110, block=100, block_time=1.5, cap=None) == 8 * 1.5
    assert scan_timeout(expiration=110, block=100, block_time=1.5, cap=3.0) == 3.0


def test_too_late_to_assert():
    """A bounty that expires within two blocks is skipped instead of posting a doomed assertion."""
    assert scan_timeout(expiration=102, block=100, block_time=1.0, cap=60) is None
    assert not still_open(102, 100) and still_open(103, 100)


def test_reveal_fires_once_on_first_block_after_expiration():
    """The reveal is handed out at the first block after expiration, and not again while it runs."""
    s = Schedule()
    s.track("g", "side", D)
    assert s.on_block("side", 100) == []
    assert s.on_block("side", 101) == [Action("reveal", "g", "side")]
    assert s.on_block("side", 102) == []


def test_skipped_block_numbers_still_trigger():
    """Block numbers that skip past expiration still trigger the reveal (never compared with ==)."""
    s = Schedule()
    s.track("g", "side", D)
    assert s.on_block("side", 105) == [Action("reveal", "g", "side")]


def test_other_chain_blocks_do_not_trigger():
    """A homechain block never triggers a sidechain bounty's steps."""
    s = Schedule()
    s.track("g", "side", D)
    assert s.on_block("home", 500) == []


def test_missed_reveal_window_is_reported_as_forfeit_then_settled():
    """If the engine only wakes after E+R, the reveal is reported forfeited and the settle still happens."""
    s = Schedule()
    s.track("g", "side", D)
    assert s.on_block("side", 115) == [Action("forfeit", "g", "side")]
    assert s.on_block("side", 130) == [Action("settle", "g", "side")]


def test_settle_after_reveal_at_vote_window_end():
    """After revealing, the settle is due at E+R+V and the bounty then leaves the schedule."""
    s = Schedule()
    s.track("g", "side", D)
    s.on_block("side", 101)
    s.done("g", "reveal")
    assert s.on_block("side", 129) == []
    assert s.on_block("side", 130) == [Action("settle", "g", "side")]
    s.done("g", "settle")
    assert "g" not in s and s.on_block("side", 131) == []


def test_quorum_settles_early_once():
    """A quorum event settles right away, once, even if repeated."""
    s = Schedule()
    s.track("g", "side", D)
    s.on_block("side", 101)
    s.done("g", "reveal")
    assert s.on_quorum("g") == [Action("settle", "g", "side")]
    assert s.on_quorum("g") == []
    assert s.on_block("side", 131) == []


def test_quorum_for_unknown_bounty_is_ignored():
    """A quorum for a bounty we did not assert on does nothing."""
    assert Schedule().on_quorum("other") == []


def test_failed_step_is_retried_then_given_up():
    """A failed reveal is retried on later blocks, at most MAX_ATTEMPTS times, then counts as forfeited."""
    s = Schedule()
    s.track("g", "side", D)
    block = 101
    for attempt in range(MAX_ATTEMPTS):
        assert s.on_block("side", block) == [Action("reveal", "g", "side")]
        retry = s.failed("g", "reveal")
        assert retry is (attempt < MAX_ATTEMPTS - 1)
        block += 1
    assert s.on_block("side", block) == []
    assert s.on_block("side", 130) == [Action("settle", "g", "side")]


def test_unconfirmed_assertion_is_abandoned_after_expiration():
    """An assertion whose index we never learnt is abandoned once expiration passes."""
    s = Schedule()
    s.track("g", "side", D, asserted=False)
    assert s.on_block("side", 100) == []
    assert s.on_block("side", 101) == [Action("abandon", "g", "side")]
    assert "g" not in s


def test_window_update_moves_deadlines():
    """A WindowsUpdated event moves pending deadlines, as the contract reads the current windows."""
    s = Schedule()
    s.track("g", "side", D)
    s.set_windows("side", 5, 5)
    assert s.on_block("side", 106) == [Action("forfeit", "g", "side")]
    assert s.on_block("side", 110) == [Action("settle", "g", "side")]


def test_deprecation_settles_what_can_be_settled():
    """On deprecation, bounties past their vote window settle now; younger ones wait for their schedule."""
    s = Schedule()
    s.track("old", "side", Deadlines(10, 10, 10))
    s.track("young", "side", D)
    s.done("old", "reveal")
    assert s.on_deprecated({"side": 40}) == [Action("settle", "old", "side")]


def test_tracking_twice_keeps_progress():
    """Re-tracking a bounty (a re-delivered event) does not reset its progress."""
    s = Schedule()
    s.track("g", "side", D)
    s.on_block("side", 101)
    s.done("g", "reveal")
    s.track("g", "side", D)
    assert s.on_block("side", 102) == []
