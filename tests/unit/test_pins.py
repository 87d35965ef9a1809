"""Contract addresses and chain ids are trusted on first use and then held fixed, like known_hosts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyswarmclient.client.pins import PinStore
from polyswarmclient.errors import ConfigError, PinMismatch, StateError, VerificationError
from tests.helpers import EVIL, REGISTRY, TOKEN

SERVER = "https://api.example/v1/default"


def test_first_use_pins_and_persists(tmp_path: Path) -> None:
    """The first action writes the chain id and contracts to known_contracts.json."""
    store = PinStore.in_state_dir(tmp_path / "state")
    store.check_and_learn(SERVER, "side", 1338, {"nectar_token": TOKEN, "bounty_registry": REGISTRY})
    data = json.loads((tmp_path / "state" / "known_contracts.json").read_text())
    assert data["servers"][SERVER]["side"] == {
        "chain_id": 1338,
        "contracts": {"nectar_token": TOKEN, "bounty_registry": REGISTRY},
    }
    assert PinStore.in_state_dir(tmp_path / "state").pinned(SERVER, "side")["chain_id"] == 1338


def test_changed_contract_is_refused_with_a_reset_hint(tmp_path: Path) -> None:
    """A different registry later raises PinMismatch naming role, chain, old -> new and the file to edit."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY})
    with pytest.raises(PinMismatch) as info:
        PinStore.in_state_dir(tmp_path).check_and_learn(SERVER, "side", 1338, {"bounty_registry": EVIL})
    text = str(info.value)
    for needle in (
        "bounty_registry",
        "side",
        REGISTRY,
        EVIL,
        str(tmp_path / "known_contracts.json"),
        "delete",
    ):
        assert needle in text


def test_changed_chain_id_is_refused(tmp_path: Path) -> None:
    """A chain id different from the first one seen raises PinMismatch."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "side", 1338, {})
    with pytest.raises(PinMismatch, match=r"pinned 1338, .* for 1\. "):
        store.check_and_learn(SERVER, "side", 1, {})


def test_new_roles_are_added_and_case_is_ignored(tmp_path: Path) -> None:
    """Learning the staking contract later keeps earlier pins; checksum case differences are no change."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "side", 1338, {"nectar_token": TOKEN})
    store.check_and_learn(SERVER, "side", 1338, {"nectar_token": TOKEN.lower(), "arbiter_staking": REGISTRY})
    assert store.pinned(SERVER, "side")["contracts"] == {"nectar_token": TOKEN, "arbiter_staking": REGISTRY}


def test_pins_are_per_server_and_chain(tmp_path: Path) -> None:
    """Another polyswarmd, or the other chain, has its own pins."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "side", 1338, {"nectar_token": TOKEN})
    store.check_and_learn(SERVER, "home", 1337, {"nectar_token": EVIL})
    store.check_and_learn("https://other", "side", 99, {"nectar_token": EVIL})
    assert store.pinned(SERVER, "home")["contracts"]["nectar_token"] == EVIL


def test_a_new_role_may_not_reuse_a_pinned_address(tmp_path: Path) -> None:
    """An unknown role presented at the address of a pinned one is refused."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "side", 1338, {"nectar_token": TOKEN})
    with pytest.raises(VerificationError, match="pinned nectar_token"):
        store.check_and_learn(SERVER, "side", 1338, {"erc20_relay": TOKEN})


def test_corrupt_pin_file_is_a_clear_state_error(tmp_path: Path) -> None:
    """A damaged known_contracts.json names the file and says to delete it."""
    (tmp_path / "known_contracts.json").write_text("{not json")
    with pytest.raises(StateError, match="delete the file"):
        PinStore.in_state_dir(tmp_path).check_and_learn(SERVER, "side", 1338, {})


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    """Only the final file remains after a save."""
    PinStore.in_state_dir(tmp_path).check_and_learn(SERVER, "side", 1338, {"nectar_token": TOKEN})
    assert [p.name for p in tmp_path.iterdir()] == ["known_contracts.json"]


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00garbage",
        json.dumps({"version": 1, "servers": {SERVER: "oops"}}).encode(),
        json.dumps({"version": 1, "servers": {SERVER: {"side": []}}}).encode(),
        json.dumps({"version": 1, "servers": {SERVER: {"side": {"contracts": ["0x1"]}}}}).encode(),
        json.dumps({"version": 1, "servers": {SERVER: {"side": {"contracts": {"nectar_token": 5}}}}}).encode(),
        json.dumps({"version": 1, "servers": {SERVER: {"side": {"chain_id": "1338"}}}}).encode(),
    ],
    ids=["not-utf8", "server-not-object", "chain-not-object", "contracts-list", "address-int", "chain-id-str"],
)
def test_damaged_pin_file_entries_are_a_clear_state_error(tmp_path: Path, content: bytes) -> None:
    """A known_contracts.json that parses but holds the wrong shapes gives StateError, not a traceback."""
    (tmp_path / "known_contracts.json").write_bytes(content)
    store = PinStore.in_state_dir(tmp_path)
    with pytest.raises(StateError, match="delete the file"):
        store.check_and_learn(SERVER, "side", 1338, {"nectar_token": TOKEN})
    with pytest.raises(StateError, match="delete the file"):
        store.pinned(SERVER, "side")


def test_two_processes_learning_at_once_keep_both_pins(tmp_path: Path) -> None:
    """Pins learned by another process while we learn ours are not overwritten (no lost update)."""
    import threading

    other = threading.Thread(
        target=PinStore.in_state_dir(tmp_path).check_and_learn,
        args=(SERVER, "home", 1337, {"nectar_token": TOKEN}),
    )

    class Slow(PinStore):
        def _load(self) -> dict[str, object]:
            data = super()._load()
            if not other.is_alive() and other.ident is None:
                other.start()  # the other process writes while we hold what we read
                other.join(0.3)
            return data

    Slow.in_state_dir(tmp_path).check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY})
    other.join(5)
    store = PinStore.in_state_dir(tmp_path)
    assert store.pinned(SERVER, "side")["contracts"] == {"bounty_registry": REGISTRY}
    assert store.pinned(SERVER, "home")["contracts"] == {"nectar_token": TOKEN}


def test_validate_makes_the_state_directory_and_reads_the_pins(tmp_path: Path) -> None:
    """At start: a missing state directory is created; a damaged pin file is a configuration error (exit 2)."""
    store = PinStore.in_state_dir(tmp_path / "new" / "state")
    store.validate()
    assert (tmp_path / "new" / "state").is_dir()
    store.path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        store.validate()


def test_a_state_directory_that_cannot_be_made_is_a_configuration_error(tmp_path: Path) -> None:
    """--state-dir under a file cannot be created: one ConfigError naming --state-dir."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="--state-dir"):
        PinStore.in_state_dir(blocker / "state").validate()


def test_a_chain_first_seen_free_stays_free(tmp_path: Path) -> None:
    """Gas price 0 at first contact is pinned; a later non-zero price is refused before signing."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY}, gas_price=0)
    store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY}, gas_price=0)
    with pytest.raises(PinMismatch, match="was free"):
        store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY}, gas_price=1)


def test_a_paid_chain_price_may_vary_but_not_soar(tmp_path: Path) -> None:
    """On a paid chain the price may move within 10x of the pinned one; beyond that it is refused."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "home", 1337, {}, gas_price=10**9)
    store.check_and_learn(SERVER, "home", 1337, {}, gas_price=5 * 10**9)
    with pytest.raises(PinMismatch, match="more than 10x"):
        store.check_and_learn(SERVER, "home", 1337, {}, gas_price=11 * 10**9)
    assert json.loads(store.path.read_text())["servers"][SERVER]["home"]["gas_price"] == 10**9


def test_pins_are_read_again_only_when_the_file_changes(tmp_path: Path) -> None:
    """Once everything is pinned, later checks (one per transaction) neither lock nor read the file; a
    change to the file (another process, or an operator's reset) is read at the next check."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY})
    reads = []
    original = store._load

    def counting() -> dict[str, object]:
        reads.append(1)
        return original()

    store._load = counting  # type: ignore[method-assign]
    for _ in range(50):
        store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY})
    assert len(reads) <= 1
    # The operator resets the pins and another process learns a different registry.
    (tmp_path / "known_contracts.json").unlink()
    PinStore.in_state_dir(tmp_path).check_and_learn(SERVER, "side", 1338, {"bounty_registry": EVIL})
    with pytest.raises(PinMismatch, match="changed"):
        store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY})
    store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": EVIL})


def test_a_reset_pin_file_is_learned_again_by_a_running_process(tmp_path: Path) -> None:
    """A pin the process read earlier does not outlive the operator deleting the file: the next check
    learns from polyswarmd again instead of refusing on the old value."""
    store = PinStore.in_state_dir(tmp_path)
    store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY})
    store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": REGISTRY})
    (tmp_path / "known_contracts.json").unlink()
    store.check_and_learn(SERVER, "side", 1338, {"bounty_registry": EVIL})
    assert PinStore.in_state_dir(tmp_path).pinned(SERVER, "side")["contracts"] == {"bounty_registry": EVIL}
