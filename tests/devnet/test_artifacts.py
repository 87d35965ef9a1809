"""Devnet artifact store: IPFS-shaped hashes, upload-order names, limits, and the ``/artifacts`` routes."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from polyswarmclient.devnet.artifacts import (
    ArtifactError,
    ArtifactStore,
    b58decode,
    b58encode,
    cid_v0,
    is_valid_hash,
)
from polyswarmclient.devnet.http import ServerContext
from polyswarmclient.devnet.server import create_app
from tests.fixtures_devnet import DevnetApi

# --- the store, no I/O ------------------------------------------------------------------------------


def test_file_hash_is_a_cidv0_of_the_sha256() -> None:
    """A stored file's hash is ``Qm…``: base58 of 0x12 0x20 + sha256(content)."""
    store = ArtifactStore()
    key = store.add_file(b"hello")
    assert key.startswith("Qm") and len(key) == 46
    assert b58decode(key) == b"\x12\x20" + hashlib.sha256(b"hello").digest()
    assert key == cid_v0(hashlib.sha256(b"hello").digest())


def test_base58_round_trips_leading_zeros() -> None:
    """base58btc keeps leading zero bytes as ``1`` characters."""
    for data in (b"", b"\x00", b"\x00\x00\x01\x02", bytes(range(40))):
        assert b58decode(b58encode(data)) == data


def test_valid_hash_rule_matches_polyswarmd() -> None:
    """A URI is valid when it base58-decodes and is under 100 characters."""
    assert is_valid_hash("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
    assert not is_valid_hash("")
    assert not is_valid_hash("Qm0OIl")  # 0, O, I and l are not base58
    assert not is_valid_hash("Q" * 100)


def test_upload_names_entries_in_upload_order() -> None:
    """Uploaded files become ``000000``, ``000001``, … in the order given, not sorted by content."""
    store = ArtifactStore()
    directory = store.upload([b"zzz", b"aaa", b"mmm"])
    links = store.ls(directory)
    assert [name for name, _ in links] == ["000000", "000001", "000002"]
    assert [store.cat(h) for _, h in links] == [b"zzz", b"aaa", b"mmm"]


def test_same_content_same_hash_and_directories_differ_from_files() -> None:
    """Hashes are content addresses; a one-file directory is a different object than the file."""
    store = ArtifactStore()
    assert store.upload([b"x"]) == store.upload([b"x"])
    assert store.upload([b"x"]) != store.add_file(b"x")
    assert store.upload([b"x", b"y"]) != store.upload([b"y", b"x"])


def test_plain_file_lists_itself() -> None:
    """Listing a plain file gives one link with an empty name and the file's own hash."""
    store = ArtifactStore()
    key = store.add_file(b"plain")
    assert store.ls(key) == [("", key)]


@pytest.mark.parametrize(
    ("files", "status", "message"),
    [
        ([], 400, "No artifacts"),
        ([b"a"] * 4, 400, "Too many artifacts"),
        ([b"a", b""], 400, "Artifact empty"),
        ([b"a", b"b" * 65], 413, "Artifact too large"),
    ],
)
def test_upload_limits(files: list[bytes], status: int, message: str) -> None:
    """Uploads are refused with polyswarmd's statuses and messages."""
    store = ArtifactStore(max_file_size=64, max_files=3)
    with pytest.raises(ArtifactError) as caught:
        store.upload(files)
    assert (caught.value.status, caught.value.message) == (status, message)


def test_unknown_and_invalid_hashes() -> None:
    """An unknown hash is 404 and a non-base58 one is 400."""
    store = ArtifactStore()
    with pytest.raises(ArtifactError) as unknown:
        store.ls(cid_v0(bytes(32)))
    assert unknown.value.status == 404
    with pytest.raises(ArtifactError) as invalid:
        store.ls("not/a/hash")
    assert invalid.value.status == 400


# --- the HTTP routes, against a real server on an ephemeral port -------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[DevnetApi]:
    """Only the artifact routes are exercised, so the context has no chains."""
    store = ArtifactStore(max_file_size=64, max_files=3, max_upload_size=100, max_store_size=250)
    ctx = ServerContext(home=None, side=None, artifacts=store)  # type: ignore[arg-type]
    ctx.max_artifact_size = 64
    runner = web.AppRunner(create_app(ctx))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as session:
            yield DevnetApi(session, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()


async def _upload(api: DevnetApi, *files: bytes, field: str = "file") -> Any:
    form = aiohttp.FormData()
    for i, content in enumerate(files):
        form.add_field(field, content, filename=f"name{i}")
    return await api.request("POST", "/artifacts", data=form)


async def test_http_upload_lists_and_serves_in_upload_order(api: DevnetApi) -> None:
    """``POST /artifacts`` returns one hash whose links are served back in upload order as raw bytes."""
    uri = (await _upload(api, b"second-name-first", b"aaa")).result
    listing = (await api.get(f"/artifacts/{uri}")).result
    assert [entry["name"] for entry in listing] == ["000000", "000001"]
    async with api.session.get(f"{api.base}/artifacts/{uri}/0") as response:
        assert response.status == 200 and await response.read() == b"second-name-first"
    async with api.session.get(f"{api.base}/artifacts/{uri}/1/") as response:
        assert await response.read() == b"aaa"


async def test_http_single_file_upload_is_a_directory_too(api: DevnetApi) -> None:
    """Uploading one file still yields a directory with one ``000000`` entry, like polyswarmd HEAD."""
    uri = (await _upload(api, b"only")).result
    assert [e["name"] for e in (await api.get(f"/artifacts/{uri}")).result] == ["000000"]


async def test_http_stat_has_snake_case_keys_and_name(api: DevnetApi) -> None:
    """``/artifacts/<h>/<i>/stat`` reports the IPFS object stat in snake_case plus ``name``."""
    uri = (await _upload(api, b"12345")).result
    stat = (await api.get(f"/artifacts/{uri}/0/stat")).result
    assert set(stat) == {
        "hash",
        "num_links",
        "block_size",
        "links_size",
        "data_size",
        "cumulative_size",
        "name",
    }
    assert stat["name"] == "000000" and stat["data_size"] == 5


async def test_http_bad_index_is_404_and_status_is_online(api: DevnetApi) -> None:
    """An index past the links is 404; ``/artifacts/status`` says online."""
    uri = (await _upload(api, b"x")).result
    assert (await api.get(f"/artifacts/{uri}/1")).status == 404
    assert (await api.get("/artifacts/status")).result == {"online": True}


async def test_http_upload_errors(api: DevnetApi) -> None:
    """Too many files, an empty file, an oversized file, or no ``file`` part get the §2.8 errors."""
    assert await _upload(api, b"a", b"b", b"c", b"d") == (
        400,
        {"status": "FAIL", "errors": "Too many artifacts"},
    )
    assert await _upload(api, b"") == (400, {"status": "FAIL", "errors": "Artifact empty"})
    assert await _upload(api, b"z" * 65) == (413, {"status": "FAIL", "errors": "Artifact too large"})
    assert await _upload(api, b"a", field="other") == (400, {"status": "FAIL", "errors": "No artifacts"})
    assert await api.request("POST", "/artifacts", body={}) == (
        400,
        {"status": "FAIL", "errors": "No artifacts"},
    )


async def test_http_uploads_are_capped_per_upload_and_in_total(api: DevnetApi) -> None:
    """An upload whose files together pass the upload cap, or that would overfill the store, is a clear 413;
    nothing of it is stored."""
    assert await _upload(api, b"a" * 60, b"b" * 60) == (413, {"status": "FAIL", "errors": "Upload too large"})
    for n in range(4):
        assert (await _upload(api, bytes([65 + n]) * 60)).status == 200
    assert await _upload(api, b"z" * 60) == (413, {"status": "FAIL", "errors": "Artifact store full"})
    assert (await _upload(api, b"y" * 10)).status == 200  # what still fits is accepted


def test_the_store_counts_each_distinct_file_once() -> None:
    """Uploading the same content again does not use more of the store."""
    store = ArtifactStore(max_store_size=10)
    store.upload([b"12345"])
    store.upload([b"12345"])
    assert store.stored_bytes == 5
    with pytest.raises(ArtifactError, match="store full"):
        store.upload([b"abcdefgh"])
