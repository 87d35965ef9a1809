"""The transaction pipeline against a scripted polyswarmd (aioresponses): verify, sign, post, confirm."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from polyswarmclient.client.pins import PinStore
from polyswarmclient.client.transactions import Action, TransactionPipeline, TransactionSettings
from polyswarmclient.errors import (
    ConnectionLost,
    NonceError,
    PinMismatch,
    ReceiptTimeout,
    TransactionFailed,
    VerificationError,
)
from polyswarmclient.eth.abi import APPROVE, POST_ASSERTION, SETTLE_BOUNTY, TRANSFER, guid_to_int
from polyswarmclient.eth.verify import expect_post_assertion, expect_settle
from polyswarmclient.transport.address import parse_address
from polyswarmclient.transport.http import HttpSettings, HttpTransport
from tests.helpers import (
    EVIL,
    GUID,
    REGISTRY,
    SIDE_CHAIN_ID,
    TOKEN,
    Node,
    fail,
    ok,
    scripted_action,
    signer,
    unsigned,
    url,
)

BASE = "https://polyswarmd.test"
ACCOUNT = signer().address
FEE = 31_250_000_000_000_000
BIDS = [10**17, 10**17]
COMMITMENT = 987654321
FAST = HttpSettings(retry_base=0.001, retry_cap=0.002, max_retries=2)


def params(**extra: Any) -> dict[str, Any]:
    return {"account": ACCOUNT, "chain": "side", **extra}


ASSERT_PATH = f"/bounties/{GUID}/assertions"
SETTLE_PATH = f"/bounties/{GUID}/settle"
BUILD_ASSERT = url(BASE, ASSERT_PATH, **params(base_nonce=0))
BUILD_SETTLE = url(BASE, SETTLE_PATH, **params(base_nonce=0))
POST_TX = url(BASE, "/transactions", **params())
GET_TX = url(BASE, "/transactions", **params())


def assertion_action() -> Action:
    expected = expect_post_assertion(guid=GUID, bids=BIDS, mask=0b11, commitment=COMMITMENT, assertion_fee=FEE)
    body = {"bid": [str(b) for b in BIDS], "mask": [True, True], "commitment": str(COMMITMENT)}
    return Action(name="post assertion", path=ASSERT_PATH, chain="side", expected=tuple(expected), body=body)


def settle_action() -> Action:
    return Action(name="settle", path=SETTLE_PATH, chain="side", expected=tuple(expect_settle(guid=GUID)))


def assertion_txs(**kw: Any) -> list[dict[str, Any]]:
    return [
        unsigned(
            kw.get("token", TOKEN),
            APPROVE.encode(kw.get("spender", REGISTRY), kw.get("approve", sum(BIDS) + FEE)),
        ),
        unsigned(
            kw.get("registry", REGISTRY),
            POST_ASSERTION.encode(guid_to_int(GUID), kw.get("bids", BIDS), 0b11, COMMITMENT),
            chain_id=kw.get("chain_id", SIDE_CHAIN_ID),
        ),
    ]


def settle_tx(chain_id: int = SIDE_CHAIN_ID) -> dict[str, Any]:
    return unsigned(REGISTRY, SETTLE_BOUNTY.encode(guid_to_int(GUID)), chain_id=chain_id)


def refused(text: str) -> Callable[[dict[str, Any]], CallbackResult]:
    def reply(tx: dict[str, Any]) -> CallbackResult:
        message = f"Invalid transaction error for tx {tx['hash']}: {text}"
        return CallbackResult(status=400, payload=fail([{"is_error": True, "message": message}]))

    return reply


def polyswarmd(
    m: aioresponses,
    *txs: dict[str, Any],
    path: str = SETTLE_PATH,
    rebuilds: bool = False,
    nonce: int | None = 0,
    pending: Sequence[int] = (),
    replies: Sequence[Callable[[dict[str, Any]], CallbackResult]] = (),
) -> Node:
    """Script polyswarmd for one action and return the :class:`Node` that records what is posted.

    It builds ``txs`` (our settle by default) at ``path``, once or, with ``rebuilds``, every time; it
    reports ``nonce`` and the ``pending`` pool (no nonce routes when ``nonce`` is None); and the node
    answers the first posts with ``replies``, then accepts. POST /transactions answers registered before
    this call come first.
    """
    txs = txs or (settle_tx(),)
    node = scripted_action(m, BASE, ACCOUNT, path, *txs, rebuilds=rebuilds, nonce=nonce, pending=pending)
    node.replies = list(replies)
    return node


ASSERTION_EVENTS = {
    "transfers": [{"from": ACCOUNT, "to": REGISTRY, "value": str(sum(BIDS) + FEE)}],
    "assertions": [
        {
            "bounty_guid": GUID,
            "author": ACCOUNT,
            "index": 3,
            "bid": [str(b) for b in BIDS],
            "mask": [True, True, False],
            "commitment": str(COMMITMENT),
        }
    ],
    "errors": [],
}


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[TransactionPipeline]:
    async with HttpTransport(parse_address(BASE), "k", FAST) as http:
        yield TransactionPipeline(http, signer(), PinStore.in_state_dir(tmp_path), TransactionSettings(receipt_polls=1))


async def test_assertion_happy_path_signs_for_our_account(pipeline: TransactionPipeline, tmp_path: Path) -> None:
    """Two verified txs are signed by our key with fresh nonces, posted one per request, and confirmed."""
    with aioresponses() as m:
        node = polyswarmd(m, *assertion_txs(), path=ASSERT_PATH, nonce=7)
        m.get(GET_TX, payload=ok(ASSERTION_EVENTS))
        outcome = await pipeline.run(assertion_action())
        get_body = m.requests[("GET", GET_TX)][0].kwargs["json"]
        get_timeout = m.requests[("GET", GET_TX)][0].kwargs["timeout"].total
        build_timeout = m.requests[("POST", BUILD_ASSERT)][0].kwargs["timeout"].total
    assert [tx["sender"] for tx in node.posted] == [ACCOUNT, ACCOUNT]
    assert [tx["nonce"] for tx in node.posted] == [7, 8]
    assert [tx["chain_id"] for tx in node.posted] == [SIDE_CHAIN_ID] * 2
    assert all(not raw.startswith("0x") for raw in node.raw)
    assert get_body == {"transactions": [tx["hash"] for tx in node.posted]}
    assert (get_timeout, build_timeout) == (300, 30)  # receipts block up to 60 s per hash
    assert outcome.require("assertions", bounty_guid=GUID, bid=BIDS, mask=[True, True])["index"] == 3
    pins = json.loads((tmp_path / "known_contracts.json").read_text())
    assert pins["servers"][BASE]["side"]["contracts"] == {"nectar_token": TOKEN, "bounty_registry": REGISTRY}


TAMPERED = {
    "wrong-selector": [unsigned(TOKEN, TRANSFER.encode(REGISTRY, sum(BIDS) + FEE)), assertion_txs()[1]],
    "wrong-amount": assertion_txs(approve=sum(BIDS) + FEE + 1),
    "wrong-bids": assertion_txs(bids=[10**17, 10**17 + 1]),
    "extra-tx": [*assertion_txs(), unsigned(TOKEN, TRANSFER.encode(EVIL, 1))],
    "wrong-to": assertion_txs(registry=EVIL),
    "spender-differs": assertion_txs(spender=EVIL),
    "ether-value": [{**assertion_txs()[0], "value": 1}, assertion_txs()[1]],
    "non-canonical": [
        {**assertion_txs()[0], "data": assertion_txs()[0]["data"] + "00" * 32},
        assertion_txs()[1],
    ],
}


@pytest.mark.parametrize("txs", TAMPERED.values(), ids=TAMPERED.keys())
async def test_tampered_transactions_are_never_signed(pipeline: TransactionPipeline, txs: list[dict[str, Any]]) -> None:
    """Any deviation from the request raises VerificationError and nothing reaches POST /transactions."""
    with aioresponses() as m:
        node = polyswarmd(m, *txs, path=ASSERT_PATH)
        with pytest.raises(VerificationError):
            await pipeline.run(assertion_action())
    assert node.posted == []
    assert ("POST", POST_TX) not in m.requests


async def test_chain_id_differing_from_the_pin_is_refused(pipeline: TransactionPipeline, tmp_path: Path) -> None:
    """A chain id other than the one pinned on first use raises PinMismatch; nothing is posted."""
    PinStore.in_state_dir(tmp_path).check_and_learn(BASE, "side", SIDE_CHAIN_ID, {"bounty_registry": REGISTRY})
    with aioresponses() as m:
        node = polyswarmd(m, settle_tx(chain_id=1))
        with pytest.raises(PinMismatch, match="chain id"):
            await pipeline.run(settle_action())
    assert node.posted == []


async def test_contract_differing_from_the_pin_is_refused(pipeline: TransactionPipeline, tmp_path: Path) -> None:
    """A registry address other than the pinned one raises PinMismatch naming the pin file."""
    PinStore.in_state_dir(tmp_path).check_and_learn(BASE, "side", SIDE_CHAIN_ID, {"bounty_registry": EVIL})
    with aioresponses() as m:
        node = polyswarmd(m, nonce=None)
        with pytest.raises(PinMismatch, match="known_contracts.json"):
            await pipeline.run(settle_action())
    assert node.posted == []


async def test_known_transaction_counts_as_submitted(pipeline: TransactionPipeline) -> None:
    """``known transaction`` from the node is success: the hash is still confirmed."""
    with aioresponses() as m:
        node = polyswarmd(m, replies=[refused("known transaction: 0xabc")])
        m.get(GET_TX, payload=ok({"errors": []}))
        outcome = await pipeline.run(settle_action())
    assert outcome.tx_hashes == (node.posted[0]["hash"],)


async def test_nonce_too_low_resyncs_and_rebuilds(pipeline: TransactionPipeline) -> None:
    """On ``nonce too low`` the nonces are re-read and the whole action is rebuilt and re-verified."""
    with aioresponses() as m:
        m.get(url(BASE, "/nonce", **params(ignore_pending=1)), payload=ok(0))
        m.get(url(BASE, "/nonce", **params(ignore_pending=1)), payload=ok(5))
        node = polyswarmd(m, rebuilds=True, nonce=None, replies=[refused("nonce too low")])
        m.get(GET_TX, payload=ok({"errors": []}))
        await pipeline.run(settle_action())
        builds = len(m.requests[("POST", BUILD_SETTLE)])
    assert [tx["nonce"] for tx in node.posted] == [0, 5]
    assert builds == 2


async def test_persistent_nonce_trouble_gives_up(pipeline: TransactionPipeline) -> None:
    """A node that keeps refusing nonces ends in NonceError after a bounded number of attempts."""
    with aioresponses() as m:
        node = polyswarmd(m, rebuilds=True, replies=[refused("nonce too low")] * 10)
        with pytest.raises(NonceError, match="(?i)another client"):
            await pipeline.run(settle_action())
    assert len(node.posted) == 3


async def settle_with_receipt_error(
    pipeline: TransactionPipeline, error: str, raises: type[Exception], match: str
) -> tuple[aioresponses, Node]:
    """Run a settle whose every receipt poll answers ``error``; it must raise ``raises``. Returns the
    requests made and what was posted."""
    with aioresponses() as m:
        node = polyswarmd(m, rebuilds=True)
        m.get(GET_TX, status=400, payload=fail({"errors": [error]}), repeat=True)
        with pytest.raises(raises, match=match):
            await pipeline.run(settle_action())
    return m, node


async def test_reverted_transaction_is_not_retried(pipeline: TransactionPipeline) -> None:
    """``transaction failed`` raises TransactionFailed with the reason and never rebuilds."""
    error = "transaction 0x1: transaction failed at block 9, error: Bid not between min & max"
    m, node = await settle_with_receipt_error(pipeline, error, TransactionFailed, "Bid not between")
    assert len(m.requests[("POST", BUILD_SETTLE)]) == 1
    assert len(node.posted) == 1


async def test_receipt_timeout_is_repolled_then_raised_with_resync(pipeline: TransactionPipeline) -> None:
    """A receipt timeout is polled again a bounded number of times, then ReceiptTimeout and a nonce resync."""
    error = "transaction 0x1: timeout during wait for receipt"
    m, node = await settle_with_receipt_error(pipeline, error, ReceiptTimeout, "resynced")
    assert len(m.requests[("GET", GET_TX)]) == 2
    assert pipeline.nonce_manager("side").needs_resync
    assert len(node.posted) == 1


async def test_receipt_arriving_on_repoll_succeeds(pipeline: TransactionPipeline) -> None:
    """A timeout followed by a receipt on the next poll is a success."""
    with aioresponses() as m:
        node = polyswarmd(m)
        m.get(GET_TX, status=400, payload=fail({"errors": ["transaction 0x1: timeout during wait for receipt"]}))
        m.get(GET_TX, payload=ok({"transfers": [], "errors": []}))
        await pipeline.run(settle_action())
    assert len(node.posted) == 1


DUPLICATE_WORDINGS = {
    "geth-and-the-devnet": "known transaction: 5fe1c0",
    "geth-1.9": "already known",
    "anvil": "transaction already imported",
}


@pytest.mark.parametrize("wording", list(DUPLICATE_WORDINGS))
async def test_lost_connection_reposts_the_same_bytes(pipeline: TransactionPipeline, wording: str) -> None:
    """If the POST's connection breaks, the same signed tx is re-posted; each node's 'already have it' is success."""
    with aioresponses() as m:
        m.post(POST_TX, exception=aiohttp.ServerDisconnectedError())
        polyswarmd(m, replies=[refused(DUPLICATE_WORDINGS[wording])])
        m.get(GET_TX, payload=ok({"errors": []}))
        await pipeline.run(settle_action())
        assert len(m.requests[("POST", POST_TX)]) == 2
        first, second = (c.kwargs["json"] for c in m.requests[("POST", POST_TX)])
    assert first == second


async def test_lost_connection_every_time_surfaces_connection_lost(pipeline: TransactionPipeline) -> None:
    """A POST /transactions that never gets an answer ends in ConnectionLost and schedules a resync."""
    with aioresponses() as m:
        m.post(POST_TX, exception=aiohttp.ServerDisconnectedError(), repeat=True)
        polyswarmd(m)
        with pytest.raises(ConnectionLost):
            await pipeline.run(settle_action())
    assert pipeline.nonce_manager("side").needs_resync


async def test_sequential_and_concurrent_actions_get_distinct_nonces(pipeline: TransactionPipeline) -> None:
    """Actions in a row and at once use consecutive, never repeated nonces, reading the chain once."""
    import asyncio

    with aioresponses() as m:
        node = polyswarmd(m, rebuilds=True, nonce=2, pending=[3])
        m.get(GET_TX, payload=ok({"errors": []}), repeat=True)
        await asyncio.gather(*(pipeline.run(settle_action()) for _ in range(6)))
        reads = len(m.requests[("GET", url(BASE, "/nonce", **params(ignore_pending=1)))])
    nonces = sorted(tx["nonce"] for tx in node.posted)
    assert nonces == [2, 4, 5, 6, 7, 8]  # 3 is already in the pool
    assert reads == 1


async def test_gateway_html_502_on_post_reposts_the_same_bytes(pipeline: TransactionPipeline) -> None:
    """A gateway's non-JSON 502 on POST /transactions re-posts the same signed tx instead of failing."""
    with aioresponses() as m:
        m.post(POST_TX, status=502, body="<html><body>502 Bad Gateway</body></html>")
        node = polyswarmd(m, replies=[refused("known transaction: 0x1")])
        m.get(GET_TX, payload=ok({"errors": []}))
        outcome = await pipeline.run(settle_action())
        first, second = (c.kwargs["json"] for c in m.requests[("POST", POST_TX)])
    assert first == second
    assert outcome.tx_hashes == (node.posted[0]["hash"],)


def test_event_matching_survives_unicode_digit_strings() -> None:
    """A reveal whose metadata is made of non-ASCII digits ("12²") is matched, not crashed on."""
    from polyswarmclient.client.transactions import matches

    assert matches({"metadata": "12²", "index": "3"}, {"metadata": "12²", "index": 3})
    assert not matches({"metadata": "12²"}, {"metadata": "12"})


async def test_a_priced_transaction_on_a_chain_pinned_free_is_refused(
    pipeline: TransactionPipeline, tmp_path: Path
) -> None:
    """The side chain was free (gas price 0) at first contact: a settle priced in ether is never signed."""
    PinStore.in_state_dir(tmp_path).check_and_learn(
        BASE, "side", SIDE_CHAIN_ID, {"bounty_registry": REGISTRY}, gas_price=0
    )
    priced = {**settle_tx(), "gasPrice": 10**9, "gas": 100_000}
    with aioresponses() as m:
        node = polyswarmd(m, priced, nonce=None)
        with pytest.raises(PinMismatch, match="was free"):
            await pipeline.run(settle_action())
    assert node.posted == []
