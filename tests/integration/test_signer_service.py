"""The signer service on a real unix socket and a real loopback port, asked by a real client.

A compromised role is simulated by asking the signer directly, as anyone who took over the role's host
could: every request the policy forbids is refused with its reason, logged, and nothing is signed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from polyswarmclient.client.signing import RemoteSigner, SignerSettings
from polyswarmclient.errors import SignerConfigError, SignerRefused
from polyswarmclient.eth.abi import APPROVE, SETTLE_BOUNTY, TRANSFER, guid_to_int
from polyswarmclient.eth.keys import Signer
from polyswarmclient.eth.rawtx import decode_raw_transaction
from polyswarmclient.signer.audit import AuditLog
from polyswarmclient.signer.policy import NCT, Limits, PinnedChain
from polyswarmclient.signer.service import SignerService
from polyswarmclient.signer.spending import SpendingWindow
from polyswarmclient.transport.jsonrpc import REQUEST_DENIED, JsonRpcClient, JsonRpcServer, RpcFault, parse_endpoint
from polyswarmclient.wire.models import UnsignedTransaction
from tests.helpers import EVIL, GUID, REGISTRY, RELAY, SIDE_CHAIN_ID, STAKING, TOKEN

PRIVATE_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
KEY = Signer(PRIVATE_KEY)
CHAINS = [
    PinnedChain(
        "side",
        SIDE_CHAIN_ID,
        {"nectar_token": TOKEN, "bounty_registry": REGISTRY, "erc20_relay": RELAY, "arbiter_staking": STAKING},
    )
]
LIMITS = Limits(max_nct_per_tx=100 * NCT, max_nct_per_day=150 * NCT)
FAST = SignerSettings(timeout=5, wait=20, retry_base=0.1, retry_cap=0.5)


@pytest.fixture
def state() -> Iterator[Path]:
    """A short directory (a unix socket path must stay under ~100 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="sg-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def make_service(state: Path) -> SignerService:
    return SignerService(KEY, CHAINS, LIMITS, SpendingWindow(state / "spending.json"), AuditLog(state / "audit.jsonl"))


@pytest.fixture
async def socket_path(state: Path) -> AsyncIterator[Path]:
    server = JsonRpcServer(make_service(state).handle)
    path = state / "signer.sock"
    await server.listen_ipc(path)
    try:
        yield path
    finally:
        await server.close()


def request(to: str, data: bytes, *, chain_id: int = SIDE_CHAIN_ID, nonce: int = 0) -> dict[str, Any]:
    return {
        "from": KEY.address,
        "to": to,
        "gas": hex(200_000),
        "gasPrice": "0x0",
        "value": "0x0",
        "nonce": hex(nonce),
        "data": "0x" + data.hex(),
        "chainId": hex(chain_id),
    }


def audit(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]


async def ask(path: Path, tx: dict[str, Any]) -> Any:
    client = JsonRpcClient(parse_endpoint(str(path)), timeout=5)
    return await asyncio.to_thread(client.call, "account_signTransaction", [tx])


GUID_INT = guid_to_int(GUID)
FORBIDDEN = {
    "a transfer to another address": (request(TOKEN, TRANSFER.encode(EVIL, NCT)), "only to the pinned relay"),
    "an approval to a stranger": (request(TOKEN, APPROVE.encode(EVIL, NCT)), "not the pinned bounty registry"),
    "a relay transfer above the cap": (request(TOKEN, TRANSFER.encode(RELAY, 101 * NCT)), "per-transaction cap"),
    "a wrong chain id": (request(REGISTRY, SETTLE_BOUNTY.encode(GUID_INT), chain_id=1), "not a pinned chain"),
    "an unpinned contract": (request(EVIL, SETTLE_BOUNTY.encode(GUID_INT)), "not a pinned contract"),
}


async def test_a_compromised_client_gets_nothing_signed(socket_path: Path, state: Path) -> None:
    """Each forbidden request is refused with its reason, logged as refused, and leaves the window untouched."""
    for name, (tx, reason) in FORBIDDEN.items():
        with pytest.raises(RpcFault) as caught:
            await ask(socket_path, tx)
        assert caught.value.code == REQUEST_DENIED and reason in caught.value.message, name
    lines = audit(state)
    assert [line["outcome"] for line in lines] == ["refused"] * len(FORBIDDEN)
    assert all(reason in line["reason"] for line, (_, reason) in zip(lines, FORBIDDEN.values(), strict=True))
    assert lines[0]["function"] == "transfer" and lines[0]["args"]["to"] == EVIL and lines[0]["nct_out"] == str(NCT)
    assert not (state / "spending.json").exists()


async def test_a_burst_past_the_daily_cap_is_cut_off(socket_path: Path, state: Path) -> None:
    """Relay transfers of 60 NCT: two pass a 150 NCT daily cap, the third is refused; the window holds 120."""
    burst = [request(TOKEN, TRANSFER.encode(RELAY, 60 * NCT), nonce=n) for n in range(3)]
    for tx in burst[:2]:
        assert decode_raw_transaction(bytes.fromhex((await ask(socket_path, tx))["raw"][2:])).sender == KEY.address
    with pytest.raises(RpcFault, match="above the cap of 150 NCT"):
        await ask(socket_path, burst[2])
    assert [line["outcome"] for line in audit(state)] == ["signed", "signed", "refused"]
    assert SpendingWindow(state / "spending.json").spent(time.time()).nct == 120 * NCT  # a restart sees it too


async def test_the_role_side_signer_signs_and_checks_what_it_asked_for(socket_path: Path, state: Path) -> None:
    """RemoteSigner learns the account, gets an approval signed exactly as asked, and the audit log names it
    without any secret."""
    remote = await asyncio.to_thread(RemoteSigner.connect, parse_endpoint(f"unix://{socket_path}"), None, FAST)
    assert remote.address == KEY.address
    tx = UnsignedTransaction(TOKEN, APPROVE.encode(REGISTRY, 3 * NCT), 0, 200_000, 0, 5, SIDE_CHAIN_ID)
    raw, tx_hash = await remote.sign(tx)
    assert (raw, tx_hash) == KEY.sign(tx)
    signed = [line for line in audit(state) if line["outcome"] == "signed"]
    assert signed[0]["tx_hash"] == tx_hash and signed[0]["function"] == "approve"
    text = (state / "audit.jsonl").read_text()
    assert PRIVATE_KEY.hex() not in text and raw.hex() not in text


async def test_a_refusal_reaches_the_role_with_its_reason(socket_path: Path) -> None:
    """The role sees SignerRefused carrying the signer's reason (the CLI prints it)."""
    remote = await asyncio.to_thread(RemoteSigner.connect, parse_endpoint(str(socket_path)), None, FAST)
    tx = UnsignedTransaction(TOKEN, TRANSFER.encode(EVIL, NCT), 0, 200_000, 0, 0, SIDE_CHAIN_ID)
    with pytest.raises(SignerRefused, match="only to the pinned relay"):
        await remote.sign(tx)


async def test_a_socket_others_can_open_is_refused(socket_path: Path) -> None:
    """A socket of mode 0660 is a configuration error for the role, before any request is made."""
    os.chmod(socket_path, 0o660)
    with pytest.raises(SignerConfigError, match="mode 0660"):
        await asyncio.to_thread(RemoteSigner.connect, parse_endpoint(str(socket_path)), None, FAST)


async def test_the_loopback_port_wants_the_token(state: Path) -> None:
    """Over http the right bearer token is served; a wrong or missing one is a configuration error."""
    server = JsonRpcServer(make_service(state).handle)
    url = await server.listen_http("127.0.0.1", 0, "s3cret-token-0123456789")
    try:
        endpoint = parse_endpoint(url)
        remote = await asyncio.to_thread(RemoteSigner.connect, endpoint, "s3cret-token-0123456789", FAST)
        assert remote.address == KEY.address
        for token, words in (("wrong-token-0123456789", "refused our token"), (None, "wants a bearer token")):
            with pytest.raises(SignerConfigError, match=words):
                await asyncio.to_thread(RemoteSigner.connect, endpoint, token, FAST)
    finally:
        await server.close()


async def test_an_unreachable_signer_is_a_configuration_error_at_start(state: Path) -> None:
    """No socket, or nobody on the port: the role cannot start (exit 2), with a hint."""
    with pytest.raises(SignerConfigError, match="no signer socket"):
        RemoteSigner.connect(parse_endpoint(str(state / "none.sock")), None, FAST)
    with pytest.raises(SignerConfigError, match="start polyswarm-signer"):
        RemoteSigner.connect(parse_endpoint("http://127.0.0.1:9"), None, FAST)


async def test_a_signature_waits_for_a_restarting_signer(state: Path) -> None:
    """With the signer gone, sign() keeps asking; once a new signer process is up on the same socket (and
    state), the signature arrives."""
    path = state / "signer.sock"
    first = JsonRpcServer(make_service(state).handle)
    await first.listen_ipc(path)
    remote = await asyncio.to_thread(RemoteSigner.connect, parse_endpoint(str(path)), None, FAST)
    await first.close()
    tx = UnsignedTransaction(REGISTRY, SETTLE_BOUNTY.encode(GUID_INT), 0, 200_000, 0, 9, SIDE_CHAIN_ID)
    pending = asyncio.create_task(remote.sign(tx))
    await asyncio.sleep(1.0)
    assert not pending.done()
    second = JsonRpcServer(make_service(state).handle)
    await second.listen_ipc(path)
    try:
        raw, _ = await asyncio.wait_for(pending, 10)
    finally:
        await second.close()
    assert decode_raw_transaction(raw).nonce == 9
