"""`POST /apply/v1/service-asset-put`: a deployed function's `assets.put` (@run402/functions).

The body is the bytes; the key and options come in headers (`x-run402-asset-key`,
`-visibility`, `-immutable`, `-exif-policy`, `-metadata` as base64url JSON) and the content
type in `Content-Type`; the service key in `Authorization: Bearer`. The bytes are streamed
into CAS staging while they are hashed (the body cap, 25 MiB, is http_body.py's), admitted by
`Cas.put_verified`, linked to the project, and then written through the same activation step
as an apply's assets slice (storage/slice.py): quota, revision lock, immutable versions. No
release is made. The answer is the wire `asset_ref`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.cas import Cas
from run402_cli.local.errors import GatewayError
from run402_cli.local.storage import slice as asset_slice
from run402_cli.local.storage.api import service_caller

__all__: list[str] = []  # a handler only: local/routes.py lists it

_SPILL = 1024 * 1024


def _entry(request: Request) -> dict[str, Any]:
    h = request.headers
    entry: dict[str, Any] = {"key": h.get("x-run402-asset-key") or "", "visibility": h.get("x-run402-asset-visibility")
                             or "public", "immutable": (h.get("x-run402-asset-immutable") or "true") == "true"}
    if h.get("x-run402-asset-immutable") not in (None, "true", "false"):
        raise GatewayError(400, "INVALID_SPEC", "x-run402-asset-immutable must be true or false")
    if h.get("content-type"):
        entry["content_type"] = h["content-type"]
    if h.get("x-run402-asset-exif-policy"):
        entry["exif_policy"] = h["x-run402-asset-exif-policy"]
    if h.get("x-run402-asset-metadata"):
        raw = h["x-run402-asset-metadata"]
        try:
            entry["metadata"] = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except ValueError:
            raise GatewayError(400, "INVALID_ASSET_METADATA", "x-run402-asset-metadata must be base64url JSON") from None
    return entry


def _store(ctx: GatewayContext, project_id: str, tmp: str, sha: str, size: int) -> None:
    Cas(ctx.cas_dir).put_verified(tmp, sha, size)  # durable on return
    with ctx.pool.connection() as conn:
        conn.execute("INSERT INTO run402_meta.cas_refs (project_id, sha256, size) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (project_id, sha, size))


async def _put(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = await run_in_threadpool(service_caller, request, ctx)
    entry = _entry(request)
    # Everything but the digest is checked before a byte is read (a placeholder stands in for it).
    asset_slice.validate_slice({"put": [{**entry, "sha256": "0" * 64, "size_bytes": 0}]})
    cas = Cas(ctx.cas_dir)
    upload_id = "svc_" + secrets.token_hex(12)
    staging = cas.staging_path(upload_id)
    digest, size, pending = hashlib.sha256(), 0, bytearray()
    await run_in_threadpool(staging.mkdir, parents=True, exist_ok=True, mode=0o700)
    tmp = str(staging / "body")
    fh = await run_in_threadpool(open, tmp, "wb")
    try:
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= _SPILL:
                digest.update(pending)
                size += len(pending)
                await run_in_threadpool(fh.write, bytes(pending))
                pending.clear()
        digest.update(pending)
        size += len(pending)
        await run_in_threadpool(fh.write, bytes(pending))
        await run_in_threadpool(fh.close)
        if size == 0:
            raise GatewayError(400, "EMPTY_BODY", "assets.put needs at least one byte")
        sha = digest.hexdigest()
        await run_in_threadpool(_store, ctx, project.id, tmp, sha, size)
    finally:
        fh.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
        cas.discard_staging(upload_id)
    ref = await run_in_threadpool(asset_slice.put_now, ctx, project, {**entry, "sha256": sha, "size_bytes": size},
                                  request.url.port)
    return JSONResponse(ref)
