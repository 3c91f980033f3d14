"""Serving blobs: `http://pr-<public id>.localhost:<port>/_blob/<key>` (web/sites.py hands
every `pr-*` host here), and the bytes `GET /storage/v1/blob/<key>` returns to a service key.

- `/_blob/<stem>-<8hex>.<ext>` is an immutable URL when a version of that name exists: the
  bytes it named, for good (`public, max-age=31536000, immutable`). Versions are looked up
  first, so a later key that happens to look like one cannot take its URL over.
- `/_blob/<key>` is the key's current bytes, public keys only (`public, no-cache`: a browser
  keeps a copy but asks again, and the ETag makes that a 304). A private key is a 404 here,
  exactly like a missing one, unless the URL carries a valid, unexpired signature (`sign`).
- Every answer has the strong ETag `"sha256-<hex>"`, `nosniff`, the stored content type and
  Range support (Starlette's FileResponse streams from the CAS file; nothing is read whole).
  Public blobs allow any origin (`crossorigin` + `integrity` script tags need CORS).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response

from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.cas import Cas
from run402_cli.local.errors import GatewayError
from run402_cli.local.storage import store
from run402_cli.wire.assets import encode_key_path, etag

__all__ = ["blob_response", "etag_matches", "serve_asset_host", "sign_url", "signature_ok"]

IMMUTABLE_POLICY = "public, max-age=31536000, immutable"
MUTABLE_POLICY = "public, no-cache"
PRIVATE_POLICY = "private, no-store"


def _mac(ctx: GatewayContext, project_id: str, key: str, expires: int) -> str:
    if not ctx.blob_url_key:
        raise GatewayError(503, "STORAGE_UNAVAILABLE", "This gateway has no URL-signing key", retryable=False)
    return hmac.new(ctx.blob_url_key, f"blob\0{project_id}\0{key}\0{expires}".encode(), hashlib.sha256).hexdigest()


def sign_url(ctx: GatewayContext, port: int | None, project_id: str, key: str, ttl: int) -> tuple[str, int]:
    """A URL on the asset host that serves `key` (private or not) until now + ttl; (url, expires)."""
    expires = int(time.time()) + ttl
    host = f"http://{store.asset_host(project_id)}.localhost{f':{port}' if port else ''}"
    return (f"{host}{store.BLOB_PREFIX}{encode_key_path(key)}?expires={expires}"
            f"&sig={_mac(ctx, project_id, key, expires)}"), expires


def signature_ok(ctx: GatewayContext, project_id: str, key: str, request: Request) -> bool:
    exp, sig = request.query_params.get("expires", ""), request.query_params.get("sig", "")
    if not (exp.isdigit() and len(exp) <= 12 and sig):
        return False
    return int(exp) >= time.time() and hmac.compare_digest(sig.encode(), _mac(ctx, project_id, key, int(exp)).encode())


def etag_matches(header: str | None, tag: str) -> bool:
    """If-None-Match semantics (weak comparison): does `header` name `tag`, or `*`? Sites use it too."""
    return bool(header) and any(t.strip().removeprefix("W/") in (tag, "*") for t in header.split(","))  # type: ignore[union-attr]


def blob_response(request: Request, ctx: GatewayContext, sha256: str, content_type: str, policy: str,
                  public: bool) -> Response:
    tag = etag(sha256)
    headers = {"ETag": tag, "Cache-Control": policy, "X-Content-Type-Options": "nosniff"}
    if public:
        headers.update({"Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin"})
    if etag_matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=headers)
    path = Cas(ctx.cas_dir).path(sha256)
    if not path.is_file():
        return PlainTextResponse("Content unavailable\n", status_code=503, headers={"Cache-Control": "no-store"})
    headers["Content-Type"] = content_type
    return FileResponse(path, headers=headers, media_type=content_type)


def _lookup(ctx: GatewayContext, project_id: str, key: str) -> tuple | None:
    """("immutable", sha, type) | ("mutable", sha, type, visibility) | None."""
    with ctx.pool.connection() as conn:
        alive = conn.execute("SELECT 1 FROM run402_meta.projects WHERE id = %s AND status <> 'purged'",
                             (project_id,)).fetchone()
        if not alive:
            return None
        version = store.load_version(conn, project_id, key)
        if version is not None:
            return ("immutable", version[1], version[3])
        asset = store.load_asset(conn, project_id, key)
    return ("mutable", asset.sha256, asset.content_type, asset.visibility) if asset else None


def _not_found() -> Response:
    return PlainTextResponse("Not Found\n", status_code=404, headers={"Cache-Control": "no-store"})


async def serve_asset_host(request: Request, label: str) -> Response:
    ctx: GatewayContext = request.app.state.ctx
    project_id = store.project_of_asset_host(label)
    path = request.url.path
    if project_id is None or not path.startswith(store.BLOB_PREFIX) or path == store.BLOB_PREFIX:
        return _not_found()
    if request.method not in ("GET", "HEAD"):
        return PlainTextResponse("Method Not Allowed\n", status_code=405,
                                 headers={"Allow": "GET, HEAD", "Cache-Control": "no-store"})
    key = path[len(store.BLOB_PREFIX):]
    found = await run_in_threadpool(_lookup, ctx, project_id, key)
    if found is None:
        return _not_found()
    if found[0] == "immutable":
        return blob_response(request, ctx, found[1], found[2], IMMUTABLE_POLICY, public=True)
    _kind, sha, ctype, visibility = found
    if visibility == "public":
        return blob_response(request, ctx, sha, ctype, MUTABLE_POLICY, public=True)
    if signature_ok(ctx, project_id, key, request):
        return blob_response(request, ctx, sha, ctype, PRIVATE_POLICY, public=False)
    return _not_found()  # private: indistinguishable from absent

