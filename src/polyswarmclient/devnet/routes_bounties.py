"""``/bounties…`` routes (spec §2.5): parameters, paging, post/assert/reveal/vote/settle, reads, metadata."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from polyswarmclient.devnet.artifacts import ArtifactError, is_valid_hash
from polyswarmclient.devnet.chainnode import ChainNode
from polyswarmclient.devnet.http import (
    CTX,
    GUID_PATTERN,
    ApiFailure,
    Routes,
    bool_list_field,
    build_transactions,
    call_data,
    chain_scope,
    decimal_field,
    invalid_json,
    json_body,
    ok,
    require_object,
    transactions_reply,
)
from polyswarmclient.devnet.logs import ARTIFACT_TYPES, bool_list
from polyswarmclient.devnet.metadata import (
    is_valid_metadata,
    resolve_assertion_metadata,
    resolve_bounty_dict_metadata,
)
from polyswarmclient.eth import abi
from polyswarmclient.eth.bloom import bloom_words
from polyswarmclient.eth.commitment import commitment as make_commitment
from polyswarmclient.eth.commitment import new_nonce
from polyswarmclient.wire.bits import bools_to_int, popcount
from polyswarmclient.wire.models import BountyParameters

REGISTRY = "BountyRegistry"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MAX_PAGES = 3
#: One bounty's route; its sub-routes hang below it.
BOUNTY = f"/bounties/{GUID_PATTERN}"

routes = Routes()


def _guid(request: web.Request) -> uuid.UUID:
    return uuid.UUID(request.match_info["guid"])


#: ``BountyParameters`` field -> the registry getter that answers it.
_PARAMETER_GETTERS = {
    "bounty_fee": "bountyFee",
    "assertion_fee": "assertionFee",
    "bounty_amount_minimum": "BOUNTY_AMOUNT_MINIMUM",
    "assertion_bid_minimum": "ASSERTION_BID_ARTIFACT_MINIMUM",
    "assertion_bid_maximum": "ASSERTION_BID_ARTIFACT_MAXIMUM",
    "arbiter_lookback_range": "ARBITER_LOOKBACK_RANGE",
    "max_duration": "MAX_DURATION",
    "assertion_reveal_window": "assertionRevealWindow",
    "arbiter_vote_window": "arbiterVoteWindow",
}


async def _parameters(node: ChainNode) -> BountyParameters:
    """The nine values in one job on the chain's worker, all read at the same block."""
    values = await node.calls(REGISTRY, *((getter,) for getter in _PARAMETER_GETTERS.values()))
    return BountyParameters(**{name: int(v) for name, v in zip(_PARAMETER_GETTERS, values, strict=True)})


@routes.get("/bounties/parameters")
async def parameters(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    return ok((await _parameters(node)).to_json())


@routes.get("/bounties")
async def list_bounties(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    page_size = int(await node.call(REGISTRY, "PAGE_SIZE"))
    try:
        page = int(request.query.get("page", "0"))
        count = int(request.query.get("count", str(page_size)))
    except ValueError:
        raise ApiFailure(400, f"Count must be a multiple of page size {page_size}") from None
    # polyswarmd's rule: any multiple of PAGE_SIZE up to 3 pages; 0 is a multiple (an empty answer).
    if page < 0 or count < 0 or count % page_size or count // page_size > MAX_PAGES:
        raise ApiFailure(400, f"Count must be a multiple of page size {page_size}")
    pages = count // page_size
    guids: list[str] = []
    for index in range(page * pages, page * pages + pages):
        chunk = await node.call(REGISTRY, "getBountyGuids", index)
        if not chunk:
            break
        guids.extend(str(uuid.UUID(int=g)) for g in chunk)
    return ok(guids)


@routes.post("/bounties")
async def post_bounty(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    ctx = request.app[CTX]
    body = require_object(await json_body(request), ["amount", "uri", "duration", "artifact_type"])
    amount = decimal_field(body, "amount")
    uri = body["uri"]
    if not isinstance(uri, str) or not 1 <= len(uri) <= 100:
        raise invalid_json(f"{uri!r} is not a string of 1-100 characters for 'uri'")
    duration = body["duration"]
    if isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
        raise invalid_json(f"{duration!r} is not an integer of at least 1 for 'duration'")
    artifact_type = body["artifact_type"]
    if artifact_type not in ("file", "url"):
        raise invalid_json(f"{artifact_type!r} is not one of ['file', 'url'] for 'artifact_type'")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, str) or not 1 <= len(metadata) <= 100):
        raise invalid_json(f"{metadata!r} is not a string of 1-100 characters for 'metadata'")
    # polyswarmd HEAD's order: list the artifacts (an invalid or unknown URI is a 500), check the
    # amount, then the metadata URI.
    try:
        links = ctx.artifacts.ls(uri)
    except ArtifactError:
        raise ApiFailure(500, "Failed to check artifact uri") from None
    num_artifacts = len(links)
    params = await _parameters(node)
    if amount < params.bounty_amount_minimum * num_artifacts:
        raise ApiFailure(400, "Invalid bounty amount")
    if metadata and not is_valid_hash(metadata):
        raise ApiFailure(400, "Invalid bounty metadata URI (should be IPFS hash)")
    guid = uuid.uuid4()
    bloom = bloom_words(link_hash for _name, link_hash in links)
    type_id = {name: code for code, name in ARTIFACT_TYPES.items()}[artifact_type]
    calls = [
        ("NectarToken", call_data(request, abi.APPROVE, node.addresses.bounty_registry, amount + params.bounty_fee)),
        (
            REGISTRY,
            call_data(
                request, abi.POST_BOUNTY, guid.int, type_id, amount, uri, num_artifacts, duration, bloom, metadata or ""
            ),
        ),
    ]
    return await transactions_reply(request, node, account, calls)


async def _bounty_row(node: ChainNode, guid: uuid.UUID) -> dict[str, Any]:
    return dict(await node.call(REGISTRY, "bountiesByGuid", guid.int))


async def _existing_bounty(node: ChainNode, guid: uuid.UUID) -> dict[str, Any]:
    """The bounty row, or 404 ``Bounty not found`` (polyswarmd's answer on every bounty sub-route)."""
    row = await _bounty_row(node, guid)
    if int(row["author"], 16) == 0:
        raise ApiFailure(404, "Bounty not found")
    return row


@routes.get(BOUNTY)
async def get_bounty(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    ctx = request.app[CTX]
    guid = _guid(request)
    row = await _bounty_row(node, guid)
    if not is_valid_hash(row["artifactURI"]):
        raise ApiFailure(400, "Invalid IPFS URI")
    n = int(row["numArtifacts"])
    return ok(
        {
            "guid": str(guid),
            "artifact_type": ARTIFACT_TYPES.get(int(row["artifactType"]), str(row["artifactType"])),
            "author": row["author"],
            "amount": str(row["amount"]),
            "uri": row["artifactURI"],
            "num_artifacts": n,
            "expiration": int(row["expirationBlock"]),
            "assigned_arbiter": row["assignedArbiter"],
            "quorum_reached": bool(row["quorumReached"]),
            "quorum_reached_block": int(row["quorumBlock"]),
            "quorum_mask": bool_list(int(row["quorumMask"]), n),
            "metadata": resolve_bounty_dict_metadata(ctx.artifacts, row["metadata"]),
        }
    )


def _bid_list(body: dict[str, Any]) -> list[int]:
    bids = body.get("bid")
    if not isinstance(bids, list) or len(bids) > 256:
        raise invalid_json(f"{bids!r} is not a list of at most 256 decimal strings for 'bid'")
    out = []
    for b in bids:
        if not isinstance(b, str) or not b.isascii() or not b.isdigit() or not 1 <= len(b) <= 100:
            raise invalid_json(f"{b!r} does not match '^\\d+$' in 'bid'")
        out.append(int(b))
    return out


@routes.post(f"{BOUNTY}/assertions")
async def post_assertion(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    guid = _guid(request)
    body = require_object(await json_body(request), ["bid", "mask"])
    bids = _bid_list(body)
    mask = bools_to_int(bool_list_field(body, "mask"))
    has_commitment = body.get("commitment") is not None
    if has_commitment:
        commitment = decimal_field(body, "commitment")
    verdicts: int | None = None
    if body.get("verdicts") is not None:
        verdicts = bools_to_int(bool_list_field(body, "verdicts"))
    # polyswarmd's order and wording: the commitment check first, then the bid count (an empty bid
    # list is refused even when the mask has no true entry).
    if not has_commitment and verdicts is None:
        raise ApiFailure(400, "Require verdicts and bid_portions or a commitment")
    if not bids or len(bids) != popcount(mask):
        raise ApiFailure(400, "bid_portions must be equal in length to the number of true mask values")
    nonce: int | None = None
    if not has_commitment:
        assert verdicts is not None
        nonce = new_nonce()
        commitment = make_commitment(nonce, verdicts, account)
    fee = int(await node.call(REGISTRY, "assertionFee"))
    calls = [
        ("NectarToken", call_data(request, abi.APPROVE, node.addresses.bounty_registry, sum(bids) + fee)),
        (REGISTRY, call_data(request, abi.POST_ASSERTION, guid.int, bids, mask, commitment)),
    ]
    result: dict[str, Any] = {"transactions": await build_transactions(request, node, account, calls)}
    if nonce is not None:
        result["nonce"] = nonce
    return ok(result)


@routes.post(f"{BOUNTY}/assertions/{{index:\\d+}}/reveal")
async def reveal(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    guid = _guid(request)
    index = int(request.match_info["index"])
    body = require_object(await json_body(request), ["nonce", "verdicts", "metadata"])
    nonce = decimal_field(body, "nonce")
    verdicts = bools_to_int(bool_list_field(body, "verdicts"))
    metadata = body["metadata"]
    if not isinstance(metadata, str) or len(metadata) > 1024:
        raise invalid_json(f"{metadata!r} is not a string of at most 1024 characters for 'metadata'")
    calls = [(REGISTRY, call_data(request, abi.REVEAL_ASSERTION, guid.int, index, nonce, verdicts, metadata))]
    return await transactions_reply(request, node, account, calls)


@routes.post(f"{BOUNTY}/vote")
async def vote(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    guid = _guid(request)
    body = require_object(await json_body(request), ["votes", "valid_bloom"])
    votes = bools_to_int(bool_list_field(body, "votes"))
    valid_bloom = body["valid_bloom"]
    if not isinstance(valid_bloom, bool):
        raise invalid_json(f"{valid_bloom!r} is not of type 'boolean' for 'valid_bloom'")
    calls = [(REGISTRY, call_data(request, abi.VOTE_ON_BOUNTY, guid.int, votes, valid_bloom))]
    return await transactions_reply(request, node, account, calls)


@routes.post(f"{BOUNTY}/settle")
async def settle(request: web.Request) -> web.Response:
    node, account = chain_scope(request)
    guid = _guid(request)
    calls = [(REGISTRY, call_data(request, abi.SETTLE_BOUNTY, guid.int))]
    return await transactions_reply(request, node, account, calls)


@dataclass(frozen=True)
class _Entries:
    """An existing bounty's assertions or votes: the bounty, its artifact count and how many entries it has."""

    node: ChainNode
    guid: uuid.UUID
    num_artifacts: int
    count: int

    def index(self, request: web.Request, missing: str) -> int:
        """The path's ``index``; 404 ``missing`` when the bounty has no such entry."""
        index = int(request.match_info["index"])
        if not 0 <= index < self.count:
            raise ApiFailure(404, missing)
        return index


async def _entries(request: web.Request, counter: str) -> _Entries:
    """The bounty of the path with its entries counted by the registry's ``counter`` (404 when no bounty)."""
    node, _account = chain_scope(request)
    guid = _guid(request)
    n = int((await _existing_bounty(node, guid))["numArtifacts"])
    return _Entries(node, guid, n, int(await node.call(REGISTRY, counter, guid.int)))


async def _assertion(request: web.Request, entries: _Entries, index: int) -> dict[str, Any]:
    node, guid, n = entries.node, entries.guid, entries.num_artifacts
    row = await node.call(REGISTRY, "assertionsByGuid", guid.int, index)
    bids = await node.call(REGISTRY, "getBids", guid.int, index)
    return {
        "author": row["author"],
        "bid": [str(b) for b in bids],
        "mask": bool_list(int(row["mask"]), n),
        "commitment": str(row["commitment"]),
        "nonce": str(row["nonce"]),
        "verdicts": bool_list(int(row["verdicts"]), n),
        "metadata": resolve_assertion_metadata(request.app[CTX].artifacts, row["metadata"]),
    }


@routes.get(f"{BOUNTY}/assertions")
async def list_assertions(request: web.Request) -> web.Response:
    entries = await _entries(request, "getNumberOfAssertions")
    out = []
    for i in range(entries.count):
        item = await _assertion(request, entries, i)
        if item["nonce"] == "0":
            item["verdicts"] = [None] * entries.num_artifacts
        out.append(item)
    return ok(out)


@routes.get(f"{BOUNTY}/assertions/{{index:\\d+}}")
async def get_assertion(request: web.Request) -> web.Response:
    entries = await _entries(request, "getNumberOfAssertions")
    return ok(await _assertion(request, entries, entries.index(request, "Assertion not found")))


async def _vote(entries: _Entries, index: int) -> dict[str, Any]:
    row = await entries.node.call(REGISTRY, "votesByGuid", entries.guid.int, index)
    return {
        "voter": row["author"],
        "votes": bool_list(int(row["votes"]), entries.num_artifacts),
        "valid_bloom": bool(row["validBloom"]),
    }


@routes.get(f"{BOUNTY}/votes")
async def list_votes(request: web.Request) -> web.Response:
    entries = await _entries(request, "getNumberOfVotes")
    return ok([await _vote(entries, i) for i in range(entries.count)])


@routes.get(f"{BOUNTY}/votes/{{index:\\d+}}")
async def get_vote(request: web.Request) -> web.Response:
    entries = await _entries(request, "getNumberOfVotes")
    return ok(await _vote(entries, entries.index(request, "Vote not found")))


@routes.get(f"{BOUNTY}/bloom")
async def bloom(request: web.Request) -> web.Response:
    node, _account = chain_scope(request)
    guid = _guid(request)
    await _existing_bounty(node, guid)
    words = [int(await node.call(REGISTRY, "bloomByGuid", guid.int, i)) for i in range(8)]
    return ok({"bloom": words})


@routes.post("/bounties/metadata")
async def post_metadata(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    value = await json_body(request)
    if not is_valid_metadata(value):
        raise ApiFailure(400, "Invalid metadata")
    content = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return ok(ctx.artifacts.add_file(content))
