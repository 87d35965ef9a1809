"""``--testing N`` counting: N bounties taken, the run complete when the last of them is finished."""

from __future__ import annotations

from polyswarmclient.services.microengine.quota import TestingQuota


def test_takes_n_bounties_then_refuses_more() -> None:
    """The first N bounties are taken; the next is refused and not counted."""
    quota = TestingQuota(2)
    assert quota.take("a") and quota.take("b")
    assert not quota.take("c") and quota.taken == 2 and quota.full


def test_complete_once_every_taken_bounty_is_finished() -> None:
    """The run completes with the last of the N finished, and not before all N were taken."""
    done: list[bool] = []
    quota = TestingQuota(2, on_complete=lambda: done.append(True))
    quota.take("a")
    quota.finished("a")
    assert not quota.complete and done == []  # only one of two taken so far
    quota.take("b")
    quota.finished("unknown")
    assert done == []
    quota.finished("b")
    assert quota.complete and done == [True]


def test_bounties_from_before_a_restart_count() -> None:
    """A bounty resumed from the state directory is one of the N, and must be finished too."""
    quota = TestingQuota(1)
    assert quota.resume("a")
    assert not quota.take("b")
    quota.finished("a")
    assert quota.complete


def test_without_testing_every_bounty_is_taken_and_nothing_completes() -> None:
    """No --testing: no limit, resumed bounties are not counted, and the run never completes by itself."""
    done: list[bool] = []
    quota = TestingQuota(0, on_complete=lambda: done.append(True))
    assert all(quota.take(str(n)) for n in range(100))
    assert not quota.resume("old")
    quota.finished("1")
    assert not quota.complete and done == []


def test_one_quota_counts_the_bounties_of_several_engines_and_tells_each() -> None:
    """--testing 2 over two communities: a bounty in each completes the run, and both engines hear it."""
    told: list[str] = []
    quota = TestingQuota(2)
    quota.subscribe(lambda: told.append("alpha"))
    quota.subscribe(lambda: told.append("beta"))
    assert quota.take("guid-in-alpha") and quota.take("guid-in-beta")
    assert not quota.take("a third bounty")
    quota.finished("guid-in-alpha")
    assert told == []
    quota.finished("guid-in-beta")
    assert told == ["alpha", "beta"]


def test_without_a_quota_an_engine_started_again_and_again_keeps_nothing() -> None:
    """No --testing: subscribing (each time a community's engine starts) keeps no reference."""
    quota = TestingQuota(0)
    for _ in range(1000):
        quota.subscribe(lambda: None)
    assert quota._listeners == [quota._listeners[0]]
