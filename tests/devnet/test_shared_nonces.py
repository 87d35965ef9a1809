"""One wallet, two clients on one homechain: a shared nonce book means neither hands out the other's nonce.

Two communities that share a homechain reach it through two polyswarmd addresses; here both clients talk
to one devnet (under two names of this machine), which is the same situation for the chain: one account,
one chain id, two clients signing at once.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from polyswarmclient.client import ClientConfig, PolyswarmClient
from polyswarmclient.client.nonces import NonceBook
from polyswarmclient.client.settings import TransactionSettings
from polyswarmclient.errors import NonceError
from polyswarmclient.eth.keys import load_keyfile
from tests.fixtures_devnet import KEYFILES, running_devnet

NCT = 10**18
DEPOSITS = 4  # per client


def _client(url: str, state: Path, nonces: NonceBook | None) -> PolyswarmClient:
    signer = load_keyfile(KEYFILES / "spare3_keyfile", "password")
    # One attempt: a nonce the chain refuses is an error the user sees, not a silent resync and retry.
    config = ClientConfig(
        polyswarmd_addr=url, insecure_transport=True, state_dir=state, transactions=TransactionSettings(attempts=1)
    )
    return PolyswarmClient(config, signer, nonces=nonces)


async def _deposit_from_both(tmp_path: Path, *, shared: bool) -> tuple[list[BaseException | None], int, int]:
    async with running_devnet(block_time=0.2) as net:
        port = net.url.rsplit(":", 1)[1]
        book = NonceBook() if shared else None
        a = _client(f"127.0.0.1:{port}", tmp_path / "a", book)
        b = _client(f"localhost:{port}", tmp_path / "b", book if shared else None)
        async with a, b:
            before = await a.nct_balance("home")
            # Each client deposits one after the other, as a long-running role does; the two run at once.
            # Other amounts, so that the same nonce makes other transactions (not one "known transaction").
            runs = await asyncio.gather(_deposits(a, NCT), _deposits(b, 2 * NCT))
            after = await a.nct_balance("home")
    return [e for run in runs for e in run], before, after


async def _deposits(client: PolyswarmClient, amount: int) -> list[BaseException | None]:
    errors: list[BaseException | None] = []
    for _ in range(DEPOSITS):
        try:
            await client.relay_deposit(amount)
        except NonceError as exc:
            errors.append(exc)
        else:
            errors.append(None)
    return errors


async def test_two_clients_sharing_a_nonce_book_never_clash(tmp_path: Path) -> None:
    """Two clients of one wallet depositing at the same time: every deposit goes through, each moves its NCT once."""
    errors, before, after = await _deposit_from_both(tmp_path, shared=True)
    assert errors == [None] * (2 * DEPOSITS)
    assert before - after == DEPOSITS * NCT + DEPOSITS * 2 * NCT


async def test_without_a_shared_book_the_two_clients_clash(tmp_path: Path) -> None:
    """The same run with a book per client: both hand out the same nonces and the chain refuses some."""
    errors, before, after = await _deposit_from_both(tmp_path, shared=False)
    refused = [e for e in errors if e is not None]
    assert refused and all(isinstance(e, NonceError) for e in refused)
    assert before - after < DEPOSITS * NCT + DEPOSITS * 2 * NCT
