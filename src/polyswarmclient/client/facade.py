"""``PolyswarmClient``: the one object services use to talk to polyswarmd.

A small facade. Reads go to :class:`~polyswarmclient.transport.http.HttpTransport`; actions are
described as :class:`~polyswarmclient.client.transactions.Action` values (the request plus the calls
it must consist of, from :mod:`polyswarmclient.eth.verify`) and run by the
:class:`~polyswarmclient.client.transactions.TransactionPipeline`; events come from
:class:`~polyswarmclient.transport.stream.EventStream`. Amounts are int NCT-wei everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Literal

from polyswarmclient.client.nonces import NonceBook
from polyswarmclient.client.pins import PinStore, load_expected
from polyswarmclient.client.settings import ClientConfig as ClientConfig  # re-exported
from polyswarmclient.client.signing import TransactionSigner
from polyswarmclient.client.transactions import Action, Outcome, TransactionPipeline
from polyswarmclient.errors import (
    ApiError,
    ConfigError,
    InvalidRequest,
    MalformedResponse,
    TransportError,
    VerificationError,
)
from polyswarmclient.eth import verify as expect
from polyswarmclient.eth.abi import int_to_guid
from polyswarmclient.eth.bloom import bloom_words
from polyswarmclient.eth.keys import Signer
from polyswarmclient.transport.address import check_chain, parse_address
from polyswarmclient.transport.http import NO_BODY, HttpTransport, Upload
from polyswarmclient.transport.stream import EventStream
from polyswarmclient.wire.bits import MAX_ARTIFACTS, bools_to_int, popcount
from polyswarmclient.wire.events import Event, FeeUpdate, Reconnected, WindowUpdate
from polyswarmclient.wire.models import (
    ArtifactEntry,
    Assertion,
    Bloom,
    Bounty,
    BountyParameters,
    StakingParameters,
    Status,
)
from polyswarmclient.wire.transactions import TransactionEvents

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
#: What :meth:`PolyswarmClient.learn_contracts` can learn: assertion (the side token and bounty
#: registry), relay (both tokens and relays), staking (the side token and arbiter staking).
FIRST_CONTACT = ("assertion", "relay", "staking")
#: Distinct metadata documents whose IPFS hash the client remembers (see :meth:`PolyswarmClient.post_metadata`).
METADATA_CACHE_SIZE = 256
#: Called with a transaction's hash once it is signed, before it is posted.
OnSigned = Callable[[str], None]
#: What ``GET /transactions`` says of one hash.
TxStatus = Literal["mined", "reverted", "missing"]
_URI = re.compile(r"^[A-Za-z0-9]{1,99}$")


def _check_guid(guid: str) -> str:
    try:
        parsed = uuid.UUID(guid)
    except (ValueError, AttributeError, TypeError):
        raise InvalidRequest(f"{guid!r} is not a bounty GUID (a UUID)") from None
    if str(parsed) != guid.lower():
        raise InvalidRequest(f"{guid!r} is not a canonical UUID string")
    return str(parsed)


def _check_uri(uri: str) -> str:
    if not isinstance(uri, str) or not _URI.match(uri):
        raise InvalidRequest(f"{uri!r} is not an artifact URI (an IPFS hash or sha256, under 100 characters)")
    return uri


def _check_amount(amount: int, what: str = "amount") -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise InvalidRequest(f"{what} must be a positive integer number of NCT-wei, got {amount!r}")
    return amount


def _is_decimal(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _check_bools(values: list[bool], what: str) -> list[bool]:
    if not isinstance(values, list | tuple) or not all(isinstance(v, bool) for v in values):
        raise InvalidRequest(f"{what} must be a list of booleans")
    if len(values) > MAX_ARTIFACTS:
        raise InvalidRequest(f"{what} may have at most {MAX_ARTIFACTS} entries, not {len(values)}")
    return list(values)


def _decimal(result: Any, what: str) -> int:
    if isinstance(result, bool) or not isinstance(result, int | str) or not _is_decimal(str(result)):
        raise MalformedResponse(f"{what}: expected a non-negative decimal, got {str(result)[:80]!r}")
    return int(result)


class PolyswarmClient:
    """``async with PolyswarmClient(config, signer) as client: ...``

    ``nonces``: the nonce book this client shares with the other clients of the same wallet (one per
    community), so a chain id they have in common keeps one nonce sequence; by default a book of its own.
    """

    def __init__(
        self, config: ClientConfig, signer: Signer | TransactionSigner, *, nonces: NonceBook | None = None
    ) -> None:
        self.config = config
        self.address: str = signer.address
        api_key = config.api_key or None
        self._addr = parse_address(
            config.polyswarmd_addr,
            insecure_transport=config.insecure_transport,
            api_key=api_key,
            allow_key_over_http=config.allow_key_over_http,
        )
        self._http = HttpTransport(self._addr, api_key, config.http)
        expected = load_expected(config.contracts_file) if config.contracts_file is not None else None
        pins = PinStore.in_state_dir(config.state_dir, expected)
        pins.validate()
        self._pins = pins
        self._pipeline = TransactionPipeline(self._http, signer, pins, config.transactions, nonces=nonces)
        self._bounty_parameters: dict[str, BountyParameters] = {}
        self._metadata_hashes: OrderedDict[str, str] = OrderedDict()  # metadata JSON -> its IPFS hash

    def __repr__(self) -> str:
        return f"PolyswarmClient({self._addr.base}, account={self.address})"

    @property
    def polyswarmd_url(self) -> str:
        return self._addr.base

    async def __aenter__(self) -> PolyswarmClient:
        await self._http.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()

    # --- helpers --------------------------------------------------------------------------------

    def _params(self, chain: str | None = None, **extra: Any) -> dict[str, str]:
        params = {"account": self.address}
        if chain is not None:
            params["chain"] = check_chain(chain)
        params.update({k: str(v) for k, v in extra.items()})
        return params

    async def _get(self, path: str, chain: str | None = None, **extra: Any) -> Any:
        return await self._http.request("GET", path, params=self._params(chain, **extra))

    async def _run(
        self,
        name: str,
        path: str,
        chain: str,
        expected: list[expect.Call],
        body: Any = NO_BODY,
        *,
        urgent: bool = False,
    ) -> Outcome:
        return await self._pipeline.run(
            Action(name=name, path=path, chain=chain, expected=tuple(expected), body=body, urgent=urgent)
        )

    # --- server and parameters ------------------------------------------------------------------

    async def check_server(self) -> None:
        """polyswarmd answers ``/status`` and is classic polyswarmd (``OPTIONS /wallets/`` -> 404)."""
        status = await self.status()
        code = await self._http.status_of("OPTIONS", "/wallets/")
        if code >= 500:
            raise TransportError(
                f"polyswarmd at {self._addr} answered OPTIONS /wallets/ with HTTP {code}; is it healthy?"
            )
        if code != 404:
            raise ConfigError(
                f"{self._addr} answered OPTIONS /wallets/ with HTTP {code}, so it is not classic polyswarmd "
                "(probably polyswarmd-fast). Only classic polyswarmd, which answers 404, is supported; "
                "check --polyswarmd-addr"
            )
        log.info("polyswarmd at %s serves community %r", self._addr, status.community)

    def pinned_chain_id(self, chain: str) -> int | None:
        """The chain id pinned for ``chain`` of this polyswarmd (known after first contact), else None."""
        chain_id = self._pins.pinned(self._addr.pin_key, chain).get("chain_id")
        return chain_id if isinstance(chain_id, int) else None

    async def status(self) -> Status:
        """``GET /status``: the community and each chain's reachability and block."""
        return Status.from_json(await self._http.request("GET", "/status"))

    async def bounty_parameters(self, chain: str = "side", *, refresh: bool = False) -> BountyParameters:
        """Cached per chain; patched by :meth:`apply_event`, dropped on reconnect."""
        if refresh or chain not in self._bounty_parameters:
            result = await self._get("/bounties/parameters", chain)
            self._bounty_parameters[chain] = BountyParameters.from_json(result)
        return self._bounty_parameters[chain]

    def apply_event(self, event: Event) -> None:
        """Keep cached parameters current: ``FeeUpdate``/``WindowUpdate`` patch; ``Reconnected`` drops.

        Every event :meth:`events` yields has passed through here already.
        """
        cached = self._bounty_parameters.get(event.chain)
        match event:
            case Reconnected():
                self._bounty_parameters.pop(event.chain, None)
            case FeeUpdate() if cached is not None:
                self._bounty_parameters[event.chain] = dataclasses.replace(
                    cached, bounty_fee=event.bounty_fee, assertion_fee=event.assertion_fee
                )
            case WindowUpdate() if cached is not None:
                self._bounty_parameters[event.chain] = dataclasses.replace(
                    cached,
                    assertion_reveal_window=event.assertion_reveal_window,
                    arbiter_vote_window=event.arbiter_vote_window,
                )

    async def learn_contracts(self, kinds: Iterable[str]) -> None:
        """First contact: pin every contract and chain id the role will use, at once.

        polyswarmd has no route that lists its contracts, so it is asked to build (never post) one
        transaction of each ``kind`` (see :data:`FIRST_CONTACT`); the answers are verified like any other,
        must agree with one another, and are then checked against the pins (and ``--contracts``) and
        pinned together, instead of one role at a time, months apart, whenever it is first used.
        """
        learned: dict[str, tuple[int, dict[str, str], int]] = {}
        for kind in kinds:
            for action in await self._probes(kind):
                try:
                    verified, gas_price = await self._pipeline.inspect(action)
                except ApiError as exc:
                    log.warning(
                        "could not learn the contracts behind %s at first contact (%s); they are pinned on first use",
                        action.name,
                        exc,
                    )
                    continue
                chain_id, contracts, price = learned.setdefault(action.chain, (verified.chain_id, {}, gas_price))
                if verified.chain_id != chain_id:
                    raise VerificationError(
                        f"polyswarmd builds {action.chain} transactions for two chain ids, {chain_id} and "
                        f"{verified.chain_id}; refusing to trust it"
                    )
                for role, address in verified.contracts.items():
                    if contracts.setdefault(role, address).lower() != address.lower():
                        raise VerificationError(
                            f"polyswarmd names two {role} contracts on the {action.chain} chain, "
                            f"{contracts[role]} and {address}; refusing to trust it"
                        )
                learned[action.chain] = (chain_id, contracts, max(price, gas_price))
        for chain, (chain_id, contracts, price) in learned.items():
            self._pins.check_and_learn(self._addr.pin_key, chain, chain_id, contracts, gas_price=price)

    async def _probes(self, kind: str) -> list[Action]:
        """The never-posted actions that show the contracts behind ``kind``."""
        match kind:
            case "assertion":
                params = await self.bounty_parameters("side")
                guid, bid = str(uuid.uuid4()), params.assertion_bid_minimum
                expected = expect.expect_post_assertion(
                    guid=guid, bids=[bid], mask=1, commitment=1, assertion_fee=params.assertion_fee
                )
                body = {"bid": [str(bid)], "mask": [True], "commitment": "1"}
                return [
                    Action("first contact (assertion)", f"/bounties/{guid}/assertions", "side", tuple(expected), body)
                ]
            case "relay":
                transfer = tuple(expect.expect_relay_transfer(amount=1))
                return [
                    Action("first contact (relay deposit)", "/relay/deposit", "home", transfer, {"amount": "1"}),
                    Action("first contact (relay withdrawal)", "/relay/withdrawal", "side", transfer, {"amount": "1"}),
                ]
            case "staking":
                stake = tuple(expect.expect_stake_deposit(amount=1))
                return [Action("first contact (staking)", "/staking/deposit", "side", stake, {"amount": "1"})]
        raise ValueError(f"unknown first-contact kind {kind!r}; use one of {', '.join(FIRST_CONTACT)}")

    async def staking_parameters(self, chain: str = "side") -> StakingParameters:
        return StakingParameters.from_json(await self._get("/staking/parameters", chain))

    async def block_number(self, chain: str) -> int:
        """The chain's latest block, from ``GET /status``."""
        check_chain(chain)
        entry = (await self.status()).chains.get(chain)
        if entry is None:
            raise MalformedResponse(f"GET /status: no {chain!r} section")
        if entry.reachable is False:
            raise TransportError(f"polyswarmd at {self._addr} reports its {chain} chain node unreachable")
        if entry.block is None:
            raise MalformedResponse(f"GET /status {chain}.block: expected a non-negative decimal")
        return entry.block

    # --- bounties and artifacts -----------------------------------------------------------------

    async def get_bounty(self, guid: str, chain: str = "side") -> Bounty:
        return Bounty.from_json(await self._get(f"/bounties/{_check_guid(guid)}", chain))

    async def list_assertions(self, guid: str, chain: str = "side") -> list[Assertion]:
        """``GET /bounties/<guid>/assertions``, in index order."""
        return Assertion.list_from_json(await self._get(f"/bounties/{_check_guid(guid)}/assertions", chain))

    async def get_bloom(self, guid: str, chain: str = "side") -> Bloom:
        """The bounty's on-chain bloom (spec §5.7)."""
        return Bloom.from_json(await self._get(f"/bounties/{_check_guid(guid)}/bloom", chain))

    async def list_bounty_guids(self, chain: str = "side", *, page: int = 0, count: int | None = None) -> list[str]:
        extra: dict[str, Any] = {"page": page}
        if count is not None:
            extra["count"] = count
        result = await self._get("/bounties", chain, **extra)
        if not isinstance(result, list) or not all(isinstance(g, str) for g in result):
            raise MalformedResponse("GET /bounties: expected a list of GUID strings")
        return list(result)

    async def iter_bounty_pages(
        self, chain: str = "side", *, start_page: int = 0
    ) -> AsyncIterator[tuple[int, list[str]]]:
        """``(page, guids)`` from ``start_page`` on, until an empty page (or a page with nothing new).

        Pages only grow at the end, so a caller that remembers the last page it read can start there
        next time instead of paging the whole history again.
        """
        seen: set[str] = set()
        page = start_page
        while True:
            fresh = [g for g in await self.list_bounty_guids(chain, page=page) if g not in seen]
            if not fresh:
                return
            seen.update(fresh)
            yield page, fresh
            page += 1

    async def iter_bounty_guids(self, chain: str = "side") -> AsyncIterator[str]:
        """Every bounty GUID, page by page, until an empty page (or a page with nothing new)."""
        async for _, guids in self.iter_bounty_pages(chain):
            for guid in guids:
                yield guid

    async def list_artifacts(self, uri: str) -> list[ArtifactEntry]:
        """The artifacts behind ``uri``, in index order."""
        return ArtifactEntry.list_from_json(await self._http.request("GET", f"/artifacts/{_check_uri(uri)}"), uri)

    async def fetch_artifact(self, uri: str, index: int) -> bytes | None:
        """The artifact's bytes, or ``None`` unless polyswarmd answers HTTP 200."""
        if not 0 <= index < MAX_ARTIFACTS:
            raise InvalidRequest(f"artifact index {index} is outside 0..{MAX_ARTIFACTS - 1}")
        return await self._http.fetch_bytes(f"/artifacts/{_check_uri(uri)}/{index}")

    async def upload_artifacts(self, files: list[tuple[str, bytes]]) -> str:
        """ONE multipart ``POST /artifacts`` with every file as a part named ``file``; returns the URI."""
        if not files or len(files) > MAX_ARTIFACTS:
            raise InvalidRequest(f"upload between 1 and {MAX_ARTIFACTS} artifacts, not {len(files)}")
        empty = [name for name, content in files if not content]
        if empty:
            raise InvalidRequest(f"polyswarmd rejects empty artifacts: {', '.join(empty)}")
        result = await self._http.upload("/artifacts", [Upload(name, content) for name, content in files])
        if not isinstance(result, str) or not result:
            raise MalformedResponse("POST /artifacts: expected the artifact URI (a string)")
        return result

    async def post_metadata(self, metadata: object) -> str:
        """Store metadata JSON via ``POST /bounties/metadata``; returns its IPFS hash.

        The hash names the content, so the same metadata is stored once: an engine whose verdicts carry the
        same metadata bounty after bounty (same family, same scanner) asks once, not once per reveal. The
        last :data:`METADATA_CACHE_SIZE` distinct documents are remembered.
        """
        key = json.dumps(metadata, sort_keys=True, separators=(",", ":"))
        if (known := self._metadata_hashes.get(key)) is not None:
            self._metadata_hashes.move_to_end(key)
            return known
        result = await self._http.request("POST", "/bounties/metadata", json=metadata, idempotent=True)
        if not isinstance(result, str) or not result:
            raise MalformedResponse("POST /bounties/metadata: expected an IPFS hash (a string)")
        self._metadata_hashes[key] = result
        while len(self._metadata_hashes) > METADATA_CACHE_SIZE:
            self._metadata_hashes.popitem(last=False)
        return result

    # --- balances -------------------------------------------------------------------------------

    async def _balance(self, address: str | None, kind: str, chain: str) -> int:
        who = address or self.address
        if not _ADDRESS.match(who):
            raise InvalidRequest(f"{who!r} is not an address")
        path = f"/balances/{who}/{kind}"
        result = await self._http.request("GET", path, params={"chain": check_chain(chain)})
        return _decimal(result, f"GET {path}")

    async def nct_balance(self, chain: str, address: str | None = None) -> int:
        return await self._balance(address, "nct", chain)

    async def eth_balance(self, chain: str, address: str | None = None) -> int:
        return await self._balance(address, "eth", chain)

    async def staking_balance(
        self, chain: str = "side", *, withdrawable: bool = False, address: str | None = None
    ) -> int:
        return await self._balance(address, "staking/withdrawable" if withdrawable else "staking/total", chain)

    async def relay_fees(self, chain: str) -> int:
        result = await self._get("/relay/fees", chain)
        if not isinstance(result, Mapping):
            raise MalformedResponse("GET /relay/fees: expected an object with 'fees'")
        return _decimal(result.get("fees"), "GET /relay/fees")

    # --- actions --------------------------------------------------------------------------------

    async def post_bounty(
        self,
        amount: int,
        uri: str,
        duration: int,
        *,
        artifact_type: str = "file",
        metadata: str = "",
        chain: str = "side",
    ) -> str:
        """Post a bounty; returns the GUID polyswarmd chose (checked to be the one we signed)."""
        _check_amount(amount)
        if artifact_type not in expect.ARTIFACT_TYPES:
            raise InvalidRequest(f"artifact_type must be one of {sorted(expect.ARTIFACT_TYPES)}, not {artifact_type!r}")
        params = await self.bounty_parameters(chain)
        if not 1 <= duration <= params.max_duration:
            raise InvalidRequest(f"duration must be 1..{params.max_duration} blocks, not {duration}")
        listing = await self.list_artifacts(uri)
        if not listing:
            raise InvalidRequest(f"{uri} lists no artifacts")
        minimum = params.bounty_amount_minimum * len(listing)
        if amount < minimum:
            raise InvalidRequest(
                f"a bounty on {len(listing)} artifact(s) needs at least {minimum} NCT-wei, not {amount}"
            )
        body: dict[str, Any] = {
            "amount": str(amount),
            "uri": uri,
            "duration": duration,
            "artifact_type": artifact_type,
        }
        if metadata:
            body["metadata"] = metadata
        expected = expect.expect_post_bounty(
            amount=amount,
            bounty_fee=params.bounty_fee,
            artifact_type=artifact_type,
            uri=uri,
            num_artifacts=len(listing),
            duration=duration,
            bloom=bloom_words(entry.hash for entry in listing),
            metadata=metadata,
        )
        outcome = await self._run("post bounty", "/bounties", chain, expected, body)
        guid = int_to_guid(outcome.verified.calls[1]["guid"])
        outcome.require("bounties", guid=guid, amount=amount, uri=uri, author=self.address)
        return guid

    async def post_assertion(
        self, guid: str, bids: list[int], mask: list[bool], commitment: int, chain: str = "side"
    ) -> int:
        """Assert on the artifacts set in ``mask`` with one bid each; returns the assertion index."""
        guid = _check_guid(guid)
        if not 0 < len(mask) <= MAX_ARTIFACTS or not all(isinstance(m, bool) for m in mask):
            raise InvalidRequest(f"mask must be 1..{MAX_ARTIFACTS} booleans")
        mask_bits = bools_to_int(mask)
        if popcount(mask_bits) == 0:
            raise InvalidRequest("mask asserts on no artifact")
        if len(bids) != popcount(mask_bits):
            raise InvalidRequest(
                f"{len(bids)} bid(s) for {popcount(mask_bits)} asserted artifact(s): "
                "give exactly one bid per true mask entry"
            )
        if not 0 <= commitment < 2**256:
            raise InvalidRequest("commitment must be a uint256")
        params = await self.bounty_parameters(chain)
        low, high = params.assertion_bid_minimum, params.assertion_bid_maximum
        for bid in bids:
            _check_amount(bid, "a bid")
            if not low <= bid <= high:
                raise InvalidRequest(f"bid {bid} is outside the allowed range [{low}, {high}] NCT-wei per artifact")
        body = {"bid": [str(b) for b in bids], "mask": list(mask), "commitment": str(commitment)}
        expected = expect.expect_post_assertion(
            guid=guid, bids=bids, mask=mask_bits, commitment=commitment, assertion_fee=params.assertion_fee
        )
        outcome = await self._run("post assertion", f"/bounties/{guid}/assertions", chain, expected, body)
        item = outcome.require(
            "assertions", bounty_guid=guid, author=self.address, bid=bids, mask=mask, commitment=commitment
        )
        return _decimal(item.get("index"), "assertion event index")

    async def reveal_assertion(
        self, guid: str, index: int, nonce: int, verdicts: list[bool], metadata: str, chain: str = "side"
    ) -> None:
        guid = _check_guid(guid)
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidRequest(f"assertion index must be a non-negative integer, not {index!r}")
        if not 0 < nonce < 2**256:
            raise InvalidRequest("the reveal nonce must be in [1, 2**256)")
        verdicts = _check_bools(verdicts, "verdicts")
        body = {"nonce": str(nonce), "verdicts": list(verdicts), "metadata": metadata}
        expected = expect.expect_reveal(
            guid=guid, index=index, nonce=nonce, verdicts=bools_to_int(verdicts), metadata=metadata
        )
        path = f"/bounties/{guid}/assertions/{index}/reveal"
        outcome = await self._run("reveal assertion", path, chain, expected, body, urgent=True)
        outcome.require(
            "reveals",
            bounty_guid=guid,
            author=self.address,
            index=index,
            verdicts=verdicts,
            metadata=metadata,
        )

    async def vote(self, guid: str, votes: list[bool], valid_bloom: bool, chain: str = "side") -> None:
        guid = _check_guid(guid)
        votes = _check_bools(votes, "votes")
        body = {"votes": list(votes), "valid_bloom": bool(valid_bloom)}
        expected = expect.expect_vote(guid=guid, votes=bools_to_int(votes), valid_bloom=bool(valid_bloom))
        outcome = await self._run("vote", f"/bounties/{guid}/vote", chain, expected, body)
        outcome.require("votes", bounty_guid=guid, voter=self.address, votes=votes)

    async def settle(self, guid: str, chain: str = "side") -> None:
        """Settle; success shows only as a mined transaction (``SettledBounty`` is not reported)."""
        guid = _check_guid(guid)
        await self._run("settle", f"/bounties/{guid}/settle", chain, expect.expect_settle(guid=guid), urgent=True)

    async def _relay(
        self, name: str, path: str, chain: str, paying_chain: str, amount: int, on_signed: OnSigned | None
    ) -> tuple[str, ...]:
        _check_amount(amount)
        fees = await self.relay_fees(paying_chain)
        if amount <= fees:
            raise InvalidRequest(
                f"{name} of {amount} NCT-wei would never be paid out: "
                f"the {paying_chain} relay charges {fees}; "
                "send more than the fee"
            )
        action = Action(
            name=name,
            path=path,
            chain=chain,
            expected=tuple(expect.expect_relay_transfer(amount=amount)),
            body={"amount": str(amount)},
            on_signed=on_signed,
        )
        outcome = await self._pipeline.run(action)
        outcome.require("transfers", value=amount, **{"from": self.address})
        return outcome.tx_hashes

    async def relay_deposit(self, amount: int, *, on_signed: OnSigned | None = None) -> tuple[str, ...]:
        """Move NCT home -> side: a transfer to the homechain relay (paid out, minus fees, on side).

        ``on_signed(tx_hash)`` runs once the transaction is signed, before it is posted; returns the hashes.
        """
        return await self._relay("relay deposit", "/relay/deposit", "home", "side", amount, on_signed)

    async def relay_withdraw(self, amount: int, *, on_signed: OnSigned | None = None) -> tuple[str, ...]:
        """Move NCT side -> home: a transfer to the sidechain relay (paid out, minus fees, on home)."""
        return await self._relay("relay withdrawal", "/relay/withdrawal", "side", "home", amount, on_signed)

    async def transaction_status(self, chain: str, tx_hash: str) -> TxStatus:
        """``mined``, ``reverted`` or ``missing`` (no receipt within polyswarmd's wait): ``GET /transactions``."""
        try:
            result = await self._http.request(
                "GET",
                "/transactions",
                params=self._params(chain),
                json={"transactions": [tx_hash]},
                time_limit=self._http.settings.receipt_timeout,
            )
            events = TransactionEvents.from_json(result)
        except ApiError as exc:
            if not isinstance(exc.errors, dict):
                raise
            events = TransactionEvents.from_json(exc.errors)
        errors = [e.lower() for e in events.errors]
        if any("transaction failed" in e or "out of gas" in e for e in errors):
            return "reverted"
        if any("receipt" in e for e in errors):
            return "missing"
        if errors:
            raise MalformedResponse(f"GET /transactions for {tx_hash}: {'; '.join(events.errors)}")
        return "mined"

    async def stake_deposit(self, amount: int, chain: str = "side") -> None:
        _check_amount(amount)
        expected = expect.expect_stake_deposit(amount=amount)
        outcome = await self._run("stake deposit", "/staking/deposit", chain, expected, {"amount": str(amount)})
        outcome.require("deposits", value=amount, **{"from": self.address})

    async def stake_withdraw(self, amount: int, chain: str = "side") -> None:
        _check_amount(amount)
        expected = expect.expect_stake_withdraw(amount=amount)
        outcome = await self._run("stake withdrawal", "/staking/withdraw", chain, expected, {"amount": str(amount)})
        outcome.require("withdrawals", value=amount, to=self.address)

    # --- events ---------------------------------------------------------------------------------

    def events(self, chain: str) -> EventStream:
        """The reconnecting event stream of ``chain`` (yields ``Reconnected`` after each re-connect).

        Use ``async with client.events("side") as stream: async for event in stream: ...``. The client
        keeps its cached parameters current from the events it yields (:meth:`apply_event`), so
        consumers need not.
        """
        return EventStream(self._addr.ws_url(chain), chain, self.config.stream, observe=self.apply_event)
