"""``/artifacts`` routes (spec §2.8): multipart upload, listing, raw content, stat and status."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from polyswarmclient.devnet.artifacts import ArtifactError
from polyswarmclient.devnet.http import CTX, ApiFailure, Routes, ok

_CHUNK = 64 * 1024

routes = Routes()


@routes.post("/artifacts")
async def upload(request: web.Request) -> web.Response:
    store = request.app[CTX].artifacts
    files: list[bytes] = []
    total = 0
    if not request.content_type.startswith("multipart/"):
        raise ApiFailure(400, "No artifacts")
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise ApiFailure(400, "No artifacts") from None
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader) or part.name != "file":
            continue
        if len(files) >= store.max_files:
            raise ApiFailure(400, "Too many artifacts")
        content = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            content.extend(chunk)
            total += len(chunk)
            if len(content) > store.max_file_size:
                raise ApiFailure(413, "Artifact too large")
            if total > store.max_upload_size:
                raise ApiFailure(413, "Upload too large")
            if store.stored_bytes + total > store.max_store_size:
                raise ApiFailure(413, "Artifact store full")
        files.append(bytes(content))
    try:
        return ok(store.upload(files))
    except ArtifactError as exc:
        raise ApiFailure(exc.status, exc.message) from None


@routes.get("/artifacts/status")
async def status(request: web.Request) -> web.Response:
    return ok({"online": True})


@routes.get("/artifacts/{hash}")
async def listing(request: web.Request) -> web.Response:
    store = request.app[CTX].artifacts
    try:
        links = store.ls(request.match_info["hash"])
    except ArtifactError as exc:
        raise ApiFailure(exc.status, exc.message) from None
    return ok([{"name": name, "hash": key} for name, key in links])


@routes.get("/artifacts/{hash}/{index:\\d+}")
async def content(request: web.Request) -> web.Response:
    store = request.app[CTX].artifacts
    key = request.match_info["hash"]
    try:
        _name, link = store.artifact(key, int(request.match_info["index"]))
        data = store.cat(link)
    except ArtifactError as exc:
        raise ApiFailure(exc.status, exc.message) from None
    if len(data) > store.max_file_size:
        raise ApiFailure(400, f"Artifact with URI {key} too large")
    return web.Response(body=data, content_type="application/octet-stream")


@routes.get("/artifacts/{hash}/{index:\\d+}/stat")
async def stat(request: web.Request) -> web.Response:
    store = request.app[CTX].artifacts
    try:
        name, link = store.artifact(request.match_info["hash"], int(request.match_info["index"]))
        result = store.stat(link)
    except ArtifactError as exc:
        raise ApiFailure(exc.status, exc.message) from None
    return ok({**result, "name": name})
