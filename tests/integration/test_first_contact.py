"""First contact: every contract and chain id a role needs is pinned at once, from never-posted builds."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from polyswarmclient.client import ClientConfig, PolyswarmClient
from polyswarmclient.client.pins import load_expected
from polyswarmclient.errors import ConfigError, PinMismatch, VerificationError
from polyswarmclient.eth.abi import APPROVE, POST_ASSERTION, STAKE_DEPOSIT, TRANSFER
from polyswarmclient.transport.http import HttpSettings
from tests.helpers import (
    EVIL,
    HOME_CHAIN_ID,
    PARAMETERS,
    REGISTRY,
    RELAY,
    STAKING,
    TOKEN,
    built,
    fail,
    ok,
    signer,
    unsigned,
    url,
)

BASE = "https://polyswarmd.test"
ACCOUNT = signer().address
ASSERTIONS = re.compile(r"^https://polyswarmd\.test/bounties/[0-9a-f-]{36}/assertions\?.*$")


def config(tmp_path: Path, **kw: Any) -> ClientConfig:
    http = HttpSettings(retry_base=0.001, retry_cap=0.002, max_retries=1)
    return ClientConfig(polyswarmd_addr=BASE, state_dir=tmp_path, http=http, **kw)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[PolyswarmClient]:
    async with PolyswarmClient(config(tmp_path), signer()) as c:
        yield c


def _assertion_build(registry: str = REGISTRY, chain_id: int = 1338) -> dict[str, Any]:
    bid, fee = PARAMETERS["assertion_bid_minimum"], PARAMETERS["assertion_fee"]

    def build(_url: Any, **kwargs: Any) -> Any:
        guid_int = int(_url.path.split("/")[2].replace("-", ""), 16)
        from aioresponses import CallbackResult

        txs = [
            unsigned(TOKEN, APPROVE.encode(registry, bid + fee), chain_id=chain_id),
            unsigned(registry, POST_ASSERTION.encode(guid_int, [bid], 1, 1), chain_id=chain_id),
        ]
        return CallbackResult(payload=built(*txs))

    return {"callback": build}


def _script(m: aioresponses, *, side_relay: str = RELAY, registry: str = REGISTRY) -> None:
    m.get(url(BASE, "/bounties/parameters", account=ACCOUNT, chain="side"), payload=ok(PARAMETERS))
    m.post(ASSERTIONS, **_assertion_build(registry))
    deposit = url(BASE, "/relay/deposit", account=ACCOUNT, chain="home", base_nonce=0)
    m.post(deposit, payload=built(unsigned(TOKEN, TRANSFER.encode(RELAY, 1), chain_id=HOME_CHAIN_ID)))
    withdrawal = url(BASE, "/relay/withdrawal", account=ACCOUNT, chain="side", base_nonce=0)
    m.post(withdrawal, payload=built(unsigned(TOKEN, TRANSFER.encode(side_relay, 1))))
    staking = url(BASE, "/staking/deposit", account=ACCOUNT, chain="side", base_nonce=0)
    m.post(
        staking,
        payload=built(unsigned(TOKEN, APPROVE.encode(STAKING, 1)), unsigned(STAKING, STAKE_DEPOSIT.encode(1))),
    )


def _pins(tmp_path: Path) -> dict[str, Any]:
    servers = json.loads((tmp_path / "known_contracts.json").read_text())["servers"]
    return servers[BASE]


async def test_every_contract_is_pinned_at_first_contact_and_nothing_is_posted(
    client: PolyswarmClient, tmp_path: Path
) -> None:
    """One start learns the side token, registry, relay and staking and the home token and relay, with
    their chain ids and gas prices, without signing or posting a single transaction."""
    with aioresponses() as m:
        _script(m)
        await client.learn_contracts(["assertion", "relay", "staking"])
        assert not [key for key in m.requests if key[1].path == "/transactions"]
    pins = _pins(tmp_path)
    assert pins["side"]["contracts"] == {
        "nectar_token": TOKEN,
        "bounty_registry": REGISTRY,
        "erc20_relay": RELAY,
        "arbiter_staking": STAKING,
    }
    assert pins["home"] == {
        "chain_id": HOME_CHAIN_ID,
        "contracts": {"nectar_token": TOKEN, "erc20_relay": RELAY},
        "gas_price": 0,
    }
    assert pins["side"]["chain_id"] == 1338


async def test_answers_that_disagree_at_first_contact_are_refused(client: PolyswarmClient, tmp_path: Path) -> None:
    """Two builds naming different tokens on one chain: nothing is trusted, nothing is pinned."""
    with aioresponses() as m:
        m.post(  # registered first, so it answers before the honest one
            url(BASE, "/relay/withdrawal", account=ACCOUNT, chain="side", base_nonce=0),
            payload=built(unsigned(EVIL, TRANSFER.encode(RELAY, 1))),
        )
        _script(m)
        with pytest.raises(VerificationError, match="two nectar_token contracts"):
            await client.learn_contracts(["assertion", "relay"])
    assert not (tmp_path / "known_contracts.json").exists()


async def test_a_later_start_with_another_relay_is_refused(client: PolyswarmClient, tmp_path: Path) -> None:
    """After first contact pinned the side relay, a server that moves it is refused at the next start."""
    with aioresponses() as m:
        _script(m)
        await client.learn_contracts(["relay"])
    with aioresponses() as m:
        _script(m, side_relay=EVIL)
        with pytest.raises(PinMismatch, match="erc20_relay"):
            await client.learn_contracts(["relay"])


async def test_a_build_polyswarmd_refuses_is_learned_on_first_use(
    client: PolyswarmClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe polyswarmd will not build is skipped with a warning; the others are still pinned."""
    with aioresponses() as m:
        m.post(  # registered first, so it answers before the honest one
            url(BASE, "/staking/deposit", account=ACCOUNT, chain="side", base_nonce=0),
            status=400,
            payload=fail("Total stake above allowable maximum."),
        )
        _script(m)
        await client.learn_contracts(["relay", "staking"])
    assert "arbiter_staking" not in _pins(tmp_path)["side"]["contracts"]
    assert "pinned on first use" in caplog.text


async def test_the_operators_contracts_win_over_first_use(tmp_path: Path) -> None:
    """With --contracts naming the registry, a server presenting another one is refused at first contact."""
    expected = tmp_path / "community.json"
    expected.write_text(json.dumps({"side": {"chain_id": 1338, "contracts": {"bounty_registry": REGISTRY}}}))
    async with PolyswarmClient(config(tmp_path, contracts_file=expected), signer()) as c:
        with aioresponses() as m:
            _script(m, registry=EVIL)
            with pytest.raises(PinMismatch, match="--contracts says"):
                await c.learn_contracts(["assertion"])
        with aioresponses() as m:
            _script(m)
            await c.learn_contracts(["assertion"])


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{", "not valid JSON"),
        ('{"main": {}}', "must look like"),
        ('{"side": {"contracts": {"bounty_registry": "nope"}}}', "not an address"),
        ('{"side": {"chain_id": "1338"}}', "must look like"),
    ],
)
def test_a_bad_contracts_file_is_a_configuration_error(tmp_path: Path, content: str, why: str) -> None:
    """A --contracts file that cannot be used is one ConfigError naming the file (exit 2)."""
    path = tmp_path / "contracts.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=why):
        load_expected(path)
