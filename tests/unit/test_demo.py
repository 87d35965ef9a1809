"""The pure core of ``microengine --devnet``: windows, judging verdicts, and the lines it prints."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from polyswarmclient.amounts import nct
from polyswarmclient.cli.demo import outcome_line, render, summary_line, verdicts_line
from polyswarmclient.demo.observer import Observer
from polyswarmclient.demo.reports import BountySettled, RolesStarted, VerdictsRevealed
from polyswarmclient.demo.scoring import BountyView, judge, summarize
from polyswarmclient.demo.timing import demo_windows
from polyswarmclient.wire.events import NewAssertion, NewBounty, NewVote, Revealed, SettledBounty

ENGINE = "0x" + "e" * 40
ARBITER = "0x" + "a" * 40
OTHER = "0x" + "0" * 40
GUID = "6f1c2d3e-0000-4000-8000-000000000001"


def test_windows_settle_a_bounty_within_a_quarter_minute_at_one_second_blocks() -> None:
    """With 1 s blocks a bounty lives 6 blocks and settles at quorum after ~11 blocks; faster blocks
    keep at least 4 s to assert and 2 s for each window."""
    w = demo_windows(1.0)
    assert (w.duration, w.reveal, w.vote) == (6, 4, 4)
    assert w.duration + w.reveal + 1 <= 15
    fast = demo_windows(0.1)
    assert fast.duration * 0.1 >= 4.0 and fast.reveal * 0.1 >= 2.0 and fast.vote * 0.1 >= 2.0


def test_judge_marks_only_asserted_artifacts() -> None:
    """Correct/wrong per asserted artifact; unasserted ones and unknown truth are not judged."""
    assert judge([True, True, False], [True, True, False], [True, False, True]) == [True, False, None]
    assert judge([True, True], [False, False], [None, False]) == [None, True]


def test_lines_show_verdicts_bids_and_outcome_per_artifact() -> None:
    """The per-bounty lines list verdicts and bids per artifact ('-' when not asserted) and the outcome."""
    view = BountyView(GUID, "side", mask=(True, False, True), bids=(nct("0.5"), nct(1)), verdicts=(True, False, False))
    assert verdicts_line(view) == f"bounty {GUID}: verdicts [malicious, -, benign], bids [0.5, -, 1] NCT"
    view = replace(view, votes=(True, True, True), payout=nct("0.75"))
    assert outcome_line(view) == f"bounty {GUID}: settled, [correct, -, wrong] vs the arbiter's vote, payout 0.75 NCT"


def test_ground_truth_is_the_reference_when_nobody_voted() -> None:
    """Without an arbiter vote the verdicts are judged against the corpus ground truth."""
    view = BountyView(
        GUID, "side", truth=(True, False), mask=(True, True), bids=(1, 1), verdicts=(True, False), payout=5
    )
    assert "[correct, correct] vs the ground truth" in outcome_line(view)
    assert view.correct


def test_unrevealed_assertion_says_the_bids_are_lost() -> None:
    """A settled bounty whose verdicts were never revealed is reported as such, not as wrong or right."""
    view = BountyView(GUID, "side", mask=(True,), bids=(1,), payout=0)
    assert outcome_line(view) == f"bounty {GUID}: settled, verdicts never revealed (bids lost), payout 0 NCT"


def test_summary_counts_and_nct_change() -> None:
    """Seen counts every bounty; correct/wrong only judged ones; fees are one assertion fee each."""
    bids, verdicts, votes = (nct(1), nct(1)), (True, False), (True, False)
    right = BountyView("a", "side", mask=(True, True), bids=bids, verdicts=verdicts, votes=votes, payout=nct(6))
    wrong = BountyView("b", "side", mask=(True,), bids=(nct(1),), verdicts=(False,), votes=(True,), payout=0)
    skipped = BountyView("c", "side")
    fee = nct("0.03125")
    before = nct(10_000)
    after = before + nct(6) - nct(3) - 2 * fee
    summary = summarize([right, wrong, skipped], fee, before, after)
    assert (summary.seen, summary.asserted, summary.correct, summary.wrong) == (3, 2, 1, 1)
    assert summary_line(summary) == (
        "summary: bounties seen 3, asserted 2, correct 1, wrong 1; NCT before 10000, after 10002.9375 "
        "(change +2.9375: payouts +6, bids -3, fees -0.0625)"
    )


def test_observer_prints_the_engines_bounties_from_public_events() -> None:
    """Only the engine's assertion, reveal and settlement and the arbiter's vote make it into the lines."""
    observer = Observer(ENGINE, ARBITER, {})
    events = [
        NewBounty(chain="side", guid=GUID, artifact_type="file", author=OTHER, amount=4, uri="Qm", expiration=9),
        NewAssertion(chain="side", bounty_guid=GUID, author=OTHER, index=0, bid=(7,), mask=(True, False), commitment=1),
        NewAssertion(
            chain="side",
            bounty_guid=GUID,
            author=ENGINE,
            index=1,
            bid=(nct(1), nct(2)),
            mask=(True, True),
            commitment=2,
        ),
        Revealed(chain="side", bounty_guid=GUID, author=OTHER, index=0, nonce=1, verdicts=(False, False)),
        Revealed(chain="side", bounty_guid=GUID, author=ENGINE, index=1, nonce=2, verdicts=(True, False)),
        NewVote(chain="side", bounty_guid=GUID, voter=OTHER, votes=(False, False)),
        NewVote(chain="side", bounty_guid=GUID, voter=ARBITER, votes=(True, True)),
        SettledBounty(chain="side", bounty_guid=GUID, settler=OTHER, payout=99),
        SettledBounty(chain="side", bounty_guid=GUID, settler=ENGINE, payout=nct(4)),
        SettledBounty(chain="side", bounty_guid=GUID, settler=ENGINE, payout=nct(4)),  # a repeat after a reconnect
    ]
    reports = [report for event in events for report in observer.dispatch(event)]
    assert [type(r) for r in reports] == [VerdictsRevealed, BountySettled]
    assert [line for report in reports for line in render(report)] == [
        f"bounty {GUID}: verdicts [malicious, benign], bids [1, 2] NCT",
        f"bounty {GUID}: settled, [correct, wrong] vs the arbiter's vote, payout 4 NCT",
    ]
    assert observer.views[GUID].payout == nct(4)


def test_header_says_how_often_the_ambassador_posts() -> None:
    """The ambassador's header line reads right for one bounty, N bounties, and no limit."""

    def ambassador_line(bounties: int) -> str:
        roles = RolesStarted(ARBITER, ARBITER, ENGINE, "eicar", nct(10_000), Path("/state"), bounties, 3.0)
        return render(roles)[0].removeprefix(f"ambassador  {ARBITER} ")

    assert ambassador_line(1) == "posts 1 bounty each with one EICAR and one benign file"
    assert ambassador_line(2) == "posts 2 bounties, one every 3 s, each with one EICAR and one benign file"
    assert ambassador_line(0) == "posts a bounty every 3 s, each with one EICAR and one benign file"
