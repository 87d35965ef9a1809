"""Envelopes, error strings, query parameters, trailing slashes and transaction building of the devnet API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from polyswarmclient.eth import abi
from tests.fixtures_devnet import DevnetApi, RunningDevnet, running_devnet
from tests.helpers import signer

pytestmark = pytest.mark.asyncio(loop_scope="module")

NCT = 10**18
UNSIGNED_KEYS = {"to", "data", "value", "gas", "gasPrice", "nonce", "chainId"}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def net() -> AsyncIterator[RunningDevnet]:
    async with running_devnet(block_time=0.2, community_overrides={"page_size": 2}) as running:
        yield running


ACCOUNT = signer("microengine").address


async def test_status_reports_both_chains_and_ipfs(api: DevnetApi) -> None:
    """``GET /status`` answers the HEAD shape with both chains reachable and no auth section."""
    result = (await api.get("/status")).result
    assert result["community"] == "devnet"
    for chain in ("home", "side"):
        assert result[chain]["reachable"] is True and result[chain]["syncing"] is False
        assert isinstance(result[chain]["block"], int)
    assert result["artifact_services"] == {"ipfs": {"reachable": True}}
    assert "auth" not in result


async def test_bad_chain_is_refused_with_polyswarmds_wording(api: DevnetApi) -> None:
    """An unknown ``chain`` gives 400 ``Chain must one of home, side``."""
    reply = await api.get("/bounties/parameters", chain="main", account=ACCOUNT)
    assert reply == (400, {"status": "FAIL", "errors": "Chain must one of home, side"})


async def test_chain_scoped_routes_require_an_account(api: DevnetApi) -> None:
    """Chain-scoped GETs without ``account`` give 400 ``Account must be provided``."""
    for path in ("/bounties/parameters", "/nonce", "/staking/parameters", "/relay/fees"):
        reply = await api.get(path, chain="side")
        assert reply == (400, {"status": "FAIL", "errors": "Account must be provided"}), path


async def test_every_route_accepts_a_trailing_slash(api: DevnetApi) -> None:
    """Paths work with and without a trailing slash, as 2.8+ clients need."""
    uri = await api.upload(b"slash")
    for path, params in (
        ("/status/", {}),
        ("/bounties/parameters/", {"account": ACCOUNT}),
        ("/nonce/", {"account": ACCOUNT}),
        (f"/artifacts/{uri}/", {}),
        (f"/balances/{ACCOUNT}/nct/", {}),
        ("/artifacts/status/", {}),
    ):
        reply = await api.get(path, **params)
        assert reply.status == 200 and reply.body["status"] == "OK", path


async def test_options_wallets_is_exactly_404(api: DevnetApi) -> None:
    """``OPTIONS /wallets/`` answers 404, so polyswarm-client 2.13.3 picks its classic clients."""
    reply = await api.request("OPTIONS", "/wallets/")
    assert reply.status == 404


async def test_framework_errors_have_a_message_and_no_status(api: DevnetApi) -> None:
    """Unknown routes (404) and wrong methods (405) answer ``{"message": ...}`` without ``status``."""
    missing = await api.get("/no/such/route")
    assert missing.status == 404 and set(missing.body) == {"message"}
    wrong = await api.request("DELETE", "/status")
    assert wrong.status == 405 and set(wrong.body) == {"message"}


async def test_unknown_bounty_is_400_not_404(api: DevnetApi) -> None:
    """``GET /bounties/<guid>`` of a bounty that does not exist answers 400 ``Invalid IPFS URI``."""
    reply = await api.get(f"/bounties/{uuid.uuid4()}", chain="side", account=ACCOUNT)
    assert reply == (400, {"status": "FAIL", "errors": "Invalid IPFS URI"})


async def test_unknown_assertion_index_is_404(api: DevnetApi) -> None:
    """A bad assertion index gives 404 ``Assertion not found``."""
    uri = await api.upload(b"bounty without assertions")
    body = {"amount": str(2 * NCT), "uri": uri, "duration": 50, "artifact_type": "file"}
    guid = (await api.transact("/bounties", signer("ambassador"), body))["bounties"][0]["guid"]
    reply = await api.get(f"/bounties/{guid}/assertions/3", chain="side", account=ACCOUNT)
    assert reply == (404, {"status": "FAIL", "errors": "Assertion not found"})


async def test_parameters_are_json_integers(api: DevnetApi) -> None:
    """``/bounties/parameters`` returns every field as a JSON integer, fees above 2**53 included."""
    result = (await api.get("/bounties/parameters", chain="side", account=ACCOUNT)).result
    assert set(result) == {
        "bounty_fee",
        "assertion_fee",
        "bounty_amount_minimum",
        "assertion_bid_minimum",
        "assertion_bid_maximum",
        "arbiter_lookback_range",
        "max_duration",
        "assertion_reveal_window",
        "arbiter_vote_window",
    }
    assert all(type(v) is int for v in result.values())
    assert result["bounty_fee"] > 2**53


async def test_post_bounty_builds_approve_then_post_with_a_v4_guid(api: DevnetApi, net: RunningDevnet) -> None:
    """``POST /bounties`` returns [approve(amount+fee), postBounty] with exact keys, gas limit, a v4 GUID."""
    uri = await api.upload(b"a", b"b", b"c")
    body = {"amount": str(6 * NCT), "uri": uri, "duration": 5, "artifact_type": "url"}
    reply = await api.request(
        "POST", "/bounties", params={"chain": "side", "account": ACCOUNT, "base_nonce": 7}, body=body
    )
    approve, post = reply.result["transactions"]
    side = net.devnet.side
    for i, tx in enumerate((approve, post)):
        assert set(tx) == UNSIGNED_KEYS
        assert tx["gasPrice"] == 0 and tx["value"] == 0 and tx["nonce"] == 7 + i
        assert tx["gas"] == side.gas_limit and tx["chainId"] == side.chain_id
    assert approve["to"] == side.addresses.nectar_token and post["to"] == side.addresses.bounty_registry
    fee = (await api.get("/bounties/parameters", chain="side", account=ACCOUNT)).result["bounty_fee"]
    assert abi.APPROVE.decode(bytes.fromhex(approve["data"][2:]))["value"] == 6 * NCT + fee
    args = abi.POST_BOUNTY.decode(bytes.fromhex(post["data"][2:]))
    assert args["numArtifacts"] == 3 and args["artifactType"] == 1 and args["artifactURI"] == uri
    assert uuid.UUID(int=args["guid"]).version == 4
    assert str(uuid.UUID(int=args["guid"])) == str(uuid.UUID(int=args["guid"], version=4))


async def test_bounty_amount_minimum_is_per_artifact(api: DevnetApi) -> None:
    """An amount below minimum × num_artifacts is refused with ``Invalid bounty amount``."""
    uri = await api.upload(b"x", b"y")
    body = {"amount": str(3 * NCT), "uri": uri, "duration": 5, "artifact_type": "file"}
    reply = await api.request("POST", "/bounties", params={"account": ACCOUNT}, body=body)
    assert reply == (400, {"status": "FAIL", "errors": "Invalid bounty amount"})


async def test_post_bounty_validates_its_body(api: DevnetApi) -> None:
    """No ``artifact_type`` is ``Invalid JSON``; an unknown uri is 500 ``Failed to check artifact uri``."""
    missing = await api.request(
        "POST", "/bounties", params={"account": ACCOUNT}, body={"amount": "1", "uri": "Qm", "duration": 1}
    )
    assert missing.status == 400 and missing.body["errors"].startswith("Invalid JSON")
    unknown = await api.request(
        "POST",
        "/bounties",
        params={"account": ACCOUNT},
        body={
            "amount": "1",
            "uri": "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
            "duration": 1,
            "artifact_type": "file",
        },
    )
    assert unknown == (500, {"status": "FAIL", "errors": "Failed to check artifact uri"})


async def test_assertion_bid_count_must_match_the_mask(api: DevnetApi) -> None:
    """A bid list that does not match the set mask bits is refused with polyswarmd's message."""
    reply = await api.request(
        "POST",
        f"/bounties/{uuid.uuid4()}/assertions",
        params={"account": ACCOUNT},
        body={"bid": ["1"], "mask": [True, True], "commitment": "5"},
    )
    assert reply == (
        400,
        {
            "status": "FAIL",
            "errors": "bid_portions must be equal in length to the number of true mask values",
        },
    )


async def test_assertion_approves_sum_of_bids_plus_fee(api: DevnetApi, net: RunningDevnet) -> None:
    """``POST .../assertions`` approves Σbid + assertion fee and passes bids, mask and commitment through."""
    guid = uuid.uuid4()
    reply = await api.request(
        "POST",
        f"/bounties/{guid}/assertions/",
        params={"account": ACCOUNT, "base_nonce": 0},
        body={"bid": ["100", "200"], "mask": [True, False, True], "commitment": "12345"},
    )
    approve, post = reply.result["transactions"]
    assert "nonce" not in reply.result
    fee = (await api.get("/bounties/parameters", account=ACCOUNT)).result["assertion_fee"]
    assert abi.APPROVE.decode(bytes.fromhex(approve["data"][2:]))["value"] == 300 + fee
    args = abi.POST_ASSERTION.decode(bytes.fromhex(post["data"][2:]))
    assert args == {"bountyGuid": guid.int, "bid": [100, 200], "mask": 0b101, "commitment": 12345}


async def test_relay_routes_force_their_chain(api: DevnetApi, net: RunningDevnet) -> None:
    """``/relay/deposit`` always builds on home and ``/relay/withdrawal`` on side, whatever ``chain`` says."""
    deposit = await api.request(
        "POST",
        "/relay/deposit",
        params={"chain": "side", "account": ACCOUNT, "base_nonce": 0},
        body={"amount": "5"},
    )
    (tx,) = deposit.result["transactions"]
    home = net.devnet.home
    assert tx["chainId"] == home.chain_id and tx["to"] == home.addresses.nectar_token
    assert abi.TRANSFER.decode(bytes.fromhex(tx["data"][2:])) == {
        "to": home.addresses.erc20_relay,
        "value": 5,
    }
    withdrawal = await api.request(
        "POST", "/relay/withdrawal", params={"chain": "home", "account": ACCOUNT}, body={"amount": "5"}
    )
    assert withdrawal.result["transactions"][0]["chainId"] == net.devnet.side.chain_id


async def test_relay_fees_are_integers_per_chain(api: DevnetApi) -> None:
    """``/relay/fees`` reports the chain's relay fee as an integer: free on side, positive on home."""
    side = (await api.get("/relay/fees", chain="side", account=ACCOUNT)).result
    home = (await api.get("/relay/fees", chain="home", account=ACCOUNT)).result
    assert side == {"fees": 0} and type(home["fees"]) is int and home["fees"] > 0


async def test_staking_deposit_refuses_reaching_the_maximum(api: DevnetApi) -> None:
    """A stake that would reach ``maximum_stake`` is refused (polyswarmd's ``>=`` rule)."""
    params = (await api.get("/staking/parameters", account=ACCOUNT)).result
    assert set(params) == {"minimum_stake", "maximum_stake", "vote_ratio_numerator", "vote_ratio_denominator"}
    reply = await api.request(
        "POST", "/staking/deposit", params={"account": ACCOUNT}, body={"amount": str(params["maximum_stake"])}
    )
    assert reply == (400, {"status": "FAIL", "errors": "Total stake above allowable maximum."})
    ok = await api.request("POST", "/staking/deposit", params={"account": ACCOUNT}, body={"amount": "10"})
    assert len(ok.result["transactions"]) == 2


async def test_balances_are_decimal_strings(api: DevnetApi) -> None:
    """Balances come back as decimal strings; a bad address gives 400 ``Invalid address``."""
    eth = (await api.get(f"/balances/{ACCOUNT}/eth", chain="home")).result
    assert isinstance(eth, str) and int(eth) > 0
    staking = (await api.get(f"/balances/{ACCOUNT}/staking/total")).result
    assert staking == "0"
    assert await api.get("/balances/0x1234/nct") == (400, {"status": "FAIL", "errors": "Invalid address"})


async def test_nonce_and_pending(api: DevnetApi) -> None:
    """``/nonce`` (with and without ``ignore_pending``) is an int and ``/pending`` a list of strings."""
    account = signer("spare4").address
    assert (await api.get("/nonce", account=account)).result == 0
    assert (await api.get("/nonce", account=account, ignore_pending=" ")).result == 0
    assert (await api.get("/pending", account=account)).result == []
    assert (await api.get("/syncing", account=account)).result is False


async def test_bounty_guids_are_paged_by_page_size(api: DevnetApi) -> None:
    """``GET /bounties`` pages GUIDs by ``PAGE_SIZE`` and refuses a count that is not a multiple of it."""
    ambassador = signer("ambassador")
    uri = await api.upload(b"paging")
    posted = []
    for _ in range(3):
        events = await api.transact(
            "/bounties",
            ambassador,
            {"amount": str(2 * NCT), "uri": uri, "duration": 50, "artifact_type": "file"},
        )
        posted.append(events["bounties"][0]["guid"])
    first = (await api.get("/bounties", account=ACCOUNT)).result
    assert len(first) == 2
    everything = (await api.get("/bounties", account=ACCOUNT, count=6)).result
    assert everything[: len(first)] == first and set(posted) <= set(everything)
    assert all(uuid.UUID(g).version == 4 for g in everything)
    second = (await api.get("/bounties", account=ACCOUNT, page=1)).result
    assert second == everything[2:4]
    bad = await api.get("/bounties", account=ACCOUNT, count=75)
    assert bad == (400, {"status": "FAIL", "errors": "Count must be a multiple of page size 2"})


async def test_metadata_is_validated_and_stored(api: DevnetApi) -> None:
    """``POST /bounties/metadata`` stores valid assertion metadata and refuses anything else."""
    good = await api.request("POST", "/bounties/metadata", body=[{"malware_family": "Eicar"}])
    stored = good.result
    listing = (await api.get(f"/artifacts/{stored}")).result
    assert listing == [{"name": "", "hash": stored}]
    for bad in ([], [{"scanner": {}}], "not json", 5, '[{"malware_family": ""}]', {"malware_family": "x"}):
        reply = await api.request("POST", "/bounties/metadata", body=bad)
        assert reply == (400, {"status": "FAIL", "errors": "Invalid metadata"}), bad


FILE = {"filename": "a.txt", "filesize": "5", "mimetype": "text/plain", "sha256": "ab", "sha1": None}


@pytest.mark.parametrize(
    "metadata",
    [
        [FILE],
        [FILE, {"mimetype": "application/x-dosexec", "extra": 1}],
        [{"protocol": "https", "uri": "https://example.com/"}],
        [{"malware_family": "", "scanner": {"version": "1.2.3", "environment": {"architecture": None}}}],
        [{"malware_family": "x", "domains": ["a.example"], "ip_addresses": None, "stix_signatures": [{}]}],
    ],
    ids=["file", "files-with-extra-keys", "url", "verdict-with-scanner", "verdict-with-lists"],
)
async def test_metadata_the_1_3_3_schemas_accept_is_stored(api: DevnetApi, metadata: Any) -> None:
    """Bounty and assertion metadata that polyswarm-artifact 1.3.3 accepts is stored and answered with its hash."""
    reply = await api.request("POST", "/bounties/metadata", body=metadata)
    assert reply.status == 200 and reply.result.startswith("Qm")


@pytest.mark.parametrize(
    "metadata",
    [
        [dict(FILE, filesize=5)],
        [{"filename": "a.txt"}],
        [FILE, {"protocol": "https"}],
        [dict(FILE, protocol="https")],
        [{"malware_family": "x", "scanner": {"version": "1.2"}}],
        [{"malware_family": "x", "scanner": "mine"}],
        [{"malware_family": "x", "domains": [1]}],
        [{"malware_family": 3}],
        [{"malware_family": "x"}] * 257,
    ],
    ids=[
        "integer-filesize",
        "no-mimetype",
        "file-and-url-mixed",
        "both-file-and-url",
        "bad-scanner-version",
        "scanner-not-an-object",
        "domain-not-a-string",
        "family-not-a-string",
        "257-verdicts",
    ],
)
async def test_metadata_the_1_3_3_schemas_refuse_is_refused(api: DevnetApi, metadata: Any) -> None:
    """Metadata polyswarm-artifact 1.3.3 refuses gets polyswarmd's 400 ``Invalid metadata``."""
    reply = await api.request("POST", "/bounties/metadata", body=metadata)
    assert reply == (400, {"status": "FAIL", "errors": "Invalid metadata"})


async def test_offers_are_not_implemented(api: DevnetApi) -> None:
    """The offers API answers 501."""
    reply = await api.request("POST", "/offers", params={"account": ACCOUNT}, body={})
    assert reply.status == 501
