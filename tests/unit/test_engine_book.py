"""The book's memory of the bounties seen: forgotten once they can no longer be taken, bounded whatever happens."""

from polyswarmclient.services.microengine.book import Book
from polyswarmclient.services.microengine.schedule import TX_BLOCKS
from polyswarmclient.services.microengine.state import StateStore

ENGINE = "0x05328f171b8c1463eaFDACCA478D9EE6a1d923F8"


def book(tmp_path, size: int = 100) -> Book:
    return Book(StateStore(tmp_path / "state", ENGINE), size)


def test_an_expired_bounty_is_forgotten_and_a_live_one_kept(tmp_path):
    b = book(tmp_path)
    b.remember("side", "early", 50)
    b.remember("side", "late", 80)
    b.heads["side"] = 50 - TX_BLOCKS - 1  # "early" can still be asserted on (one block left to scan)
    assert b.forget_expired("side", b.heads["side"]) == 0 and b.known("side", "early")
    b.heads["side"] = 50 - TX_BLOCKS  # now it cannot
    assert b.forget_expired("side", b.heads["side"]) == 1
    assert not b.known("side", "early") and b.past_taking("side", 50)
    assert b.known("side", "late") and not b.past_taking("side", 80)
    assert b.open_until("late") == 80 and b.open_until("early") == 0
    assert b.remembered == 1


def test_each_chain_forgets_by_its_own_head(tmp_path):
    b = book(tmp_path)
    b.remember("side", "on-side", 50)
    b.remember("home", "on-home", 50)
    b.heads["side"] = 100
    b.forget_expired("side", 100)
    assert not b.known("side", "on-side") and b.known("home", "on-home")
    assert not b.past_taking("home", 50)  # the home chain has not moved


def test_the_size_stays_a_hard_bound(tmp_path):
    """Bounties that expire far in the future (none forgotten by the head) still cost at most the bound, and the
    book's index of expirations does not outgrow it either."""
    b = book(tmp_path, size=10)
    for n in range(1000):
        b.remember("side", f"guid-{n}", 1_000_000 + n)
    assert b.remembered == 10 and b.known("side", "guid-999") and not b.known("side", "guid-989")
    assert len(b._expiring["side"]) <= 20
    b.forget_expired("side", 2_000_000)
    assert b.remembered == 0 and b._expiring["side"] == []


def test_a_guid_remembered_again_keeps_its_newer_expiration(tmp_path):
    """An entry is forgotten by the expiration it has now, not by an older one left in the index."""
    b = book(tmp_path)
    b.remember("side", "g", 50)
    b.remember("side", "g", 90)
    b.forget_expired("side", 60)
    assert b.known("side", "g") and b.open_until("g") == 90
