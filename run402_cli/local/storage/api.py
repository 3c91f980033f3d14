"""`/storage/v1`: get, ls, rm, sign and diagnose a project's blobs, with its service key
(`apikey` and/or `Authorization: Bearer`; the two must name the same key). The project is
the key's. A client that also says which project it means (`X-Run402-Project`, sent by this
CLI) gets 403 when the key is another project's, instead of acting on the key's project.

Uploads are deploys (storage/slice.py); a function's `assets.put` is
`/apply/v1/service-asset-put` (service_put.py).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import Project, bearer_token, verify_project_token
from run402_cli.local.errors import GatewayError
from run402_cli.local.http_body import read_json
from run402_cli.local.storage import serve, store
from run402_cli.wire.assets import (
    LS_LIMIT_MAX, SIGN_TTL_DEFAULT, SIGN_TTL_MAX, SIGN_TTL_MIN, SORT_KEYS, VANTAGE, asset_key_problem,
    coerce_filter_value, filter_problem,
)
from run402_cli.wire.times import iso

__all__ = ["service_caller"]  # and the handlers local/routes.py lists

PROBE_TIMEOUT = 5.0


def service_caller(request: Request, ctx: GatewayContext) -> Project:
    key, bearer = request.headers.get("apikey"), bearer_token(request)
    token = bearer or key
    if not token:
        raise GatewayError(401, "UNAUTHORIZED", "Missing service key (apikey / Authorization: Bearer <service_key>)",
                           category="auth")
    if key and bearer and key != bearer:
        raise GatewayError(403, "FORBIDDEN", "apikey and Authorization carry different keys", category="auth")
    project, claims = verify_project_token(ctx, token)
    if claims.get("role") != "service_role":
        raise GatewayError(403, "FORBIDDEN", "Blob storage needs the project's service key", category="auth")
    named = request.headers.get("x-run402-project")
    if named and named != project.id:
        raise GatewayError(403, "FORBIDDEN", f"This service key belongs to another project, not {named[:80]}",
                           category="auth", details={"project_id": named[:80]})
    return project


def _key(request: Request) -> str:
    key = request.path_params["key"]
    problem = asset_key_problem(key)
    if problem:
        raise GatewayError(400, "INVALID_KEY", f"Asset key {problem}", details={"key": key[:200]})
    return key


def _missing(key: str) -> GatewayError:
    return GatewayError(404, "ASSET_NOT_FOUND", f"No asset with key {key!r}", details={"key": key},
                        hint="List the keys with: run402 assets ls")


# -- get -------------------------------------------------------------------------------------

def _get_sync(request: Request) -> tuple[str, str]:
    ctx: GatewayContext = request.app.state.ctx
    project = service_caller(request, ctx)
    key = _key(request)
    with ctx.pool.connection() as conn:
        asset = store.load_asset(conn, project.id, key)
        if asset is not None:
            return asset.sha256, asset.content_type
        version = store.load_version(conn, project.id, key)  # an immutable URL's name reads too
    if version is None:
        raise _missing(key)
    return version[1], version[3]


async def _get(request: Request) -> Response:
    sha, ctype = await run_in_threadpool(_get_sync, request)
    return serve.blob_response(request, request.app.state.ctx, sha, ctype, serve.PRIVATE_POLICY, public=False)


# -- rm / sign -------------------------------------------------------------------------------

def _rm_sync(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = service_caller(request, ctx)
    key = _key(request)
    with ctx.pool.connection() as conn, conn.transaction():
        store.lock_revision(conn, project.id)
        before, _ = store.usage(conn, project.id)
        if not store.delete_keys(conn, project.id, [key]):
            raise _missing(key)
        store.bump_revision(conn, project.id)
        after, _ = store.usage(conn, project.id)
    return JSONResponse({"status": "deleted", "key": key, "storage_bytes_freed": before - after})


async def _rm(request: Request) -> JSONResponse:
    return await run_in_threadpool(_rm_sync, request)


def _sign_sync(request: Request, body: Any) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = service_caller(request, ctx)
    key = request.path_params["key"].removesuffix("/sign")
    if asset_key_problem(key):
        raise GatewayError(400, "INVALID_KEY", f"Asset key {asset_key_problem(key)}")
    if body is not None and (not isinstance(body, dict) or set(body) - {"ttl_seconds"}):
        raise GatewayError(400, "BAD_REQUEST", "Body must be {} or {ttl_seconds}")
    ttl = (body or {}).get("ttl_seconds", SIGN_TTL_DEFAULT)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not SIGN_TTL_MIN <= ttl <= SIGN_TTL_MAX:
        raise GatewayError(400, "INVALID_TTL", f"ttl_seconds must be an integer from {SIGN_TTL_MIN} to {SIGN_TTL_MAX}",
                           details={"ttl_seconds": ttl if isinstance(ttl, int) else None})
    with ctx.pool.connection() as conn:
        if store.load_asset(conn, project.id, key) is None:
            raise _missing(key)
    url, expires = serve.sign_url(ctx, request.url.port, project.id, key, ttl)
    return JSONResponse({"signed_url": url, "expires_at": iso(datetime.fromtimestamp(expires, timezone.utc)),
                         "expires_in": ttl})


async def _sign(request: Request) -> JSONResponse:
    if not request.path_params["key"].endswith("/sign"):
        raise GatewayError(404, "NOT_FOUND", "POST /storage/v1/blob/<key>/sign signs a key; nothing else is POSTed here")
    body = await read_json(request)  # an empty body is None: the default TTL
    return await run_in_threadpool(_sign_sync, request, body)


# -- ls --------------------------------------------------------------------------------------

def _cursor(sort: str, text: str | None) -> tuple | None:
    if not text:
        return None
    decoded: Any = None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        pass
    if sort == "key:asc":
        if isinstance(decoded, dict) and "s" in decoded:
            raise GatewayError(400, "INVALID_CURSOR_FOR_SORT", f"This cursor belongs to sort {decoded['s']!r}")
        return (text,)
    if not (isinstance(decoded, dict) and decoded.get("s") == sort and isinstance(decoded.get("ts"), str)
            and isinstance(decoded.get("key"), str)):
        raise GatewayError(400, "INVALID_CURSOR_FOR_SORT", f"The cursor was not made for sort {sort!r}",
                           hint="Pass the next_cursor of a listing with the same sort")
    try:
        ts = datetime.fromisoformat(decoded["ts"])
    except ValueError:
        raise GatewayError(400, "INVALID_CURSOR_FOR_SORT", "The cursor's timestamp is not valid") from None
    return (ts, decoded["key"])


def _filters(request: Request) -> list[tuple[str, Any]]:
    out = []
    for name, value in request.query_params.multi_items():
        if name.startswith("filter[") and name.endswith("]"):
            key = name[7:-1]
        elif name.startswith("filter."):  # @run402/functions' spelling
            key = name[7:]
        else:
            continue
        problem = filter_problem(key, value)
        if problem:
            raise GatewayError(400, problem[0], problem[1], details={"filter": key[:80]})
        out.append((key, coerce_filter_value(key, value)))
    return out


_FILTER_SQL = {
    "uploaded_by": "uploaded_by = %s", "format": "image_format = %s",
    "tag": "(metadata -> 'tags' ? %s OR metadata ->> 'tag' = %s)",
    "min_width": "width_px >= %s", "max_width": "width_px <= %s",
    "min_height": "height_px >= %s", "max_height": "height_px <= %s",
}


def _summary(row: tuple) -> dict[str, Any]:
    a = store.Asset(*row)
    return {"key": a.key, "size_bytes": a.size_bytes, "content_type": a.content_type, "sha256": a.sha256,
            "visibility": a.visibility, "immutable": a.immutable, "created_at": iso(a.created_at),
            "updated_at": iso(a.updated_at), "metadata": a.metadata, "uploaded_by": a.uploaded_by,
            "width_px": a.width_px, "height_px": a.height_px, "image_format": a.image_format,
            "image_info": a.image_info, "image_exif": a.image_exif,
            "image_exif_policy": a.exif_policy or ("keep" if a.image_format else None), "blurhash": a.blurhash,
            "source_sha256": a.source_sha256}


def _ls_sync(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = service_caller(request, ctx)
    q = request.query_params
    sort = q.get("sort") or "key:asc"
    if sort not in SORT_KEYS:
        raise GatewayError(400, "INVALID_SORT", f"sort must be one of: {', '.join(SORT_KEYS)}")
    limit_text = q.get("limit") or "100"
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= LS_LIMIT_MAX:
        raise GatewayError(400, "INVALID_LIMIT", f"limit must be an integer from 1 to {LS_LIMIT_MAX}")
    limit = int(limit_text)
    where, args = ["project_id = %s"], [project.id]
    if q.get("prefix"):
        where.append("starts_with(key, %s)")
        args.append(q["prefix"])
    for key, value in _filters(request):
        if key == "is_image":
            where.append("content_type LIKE 'image/%%'" if value else "content_type NOT LIKE 'image/%%'")
            continue
        where.append(_FILTER_SQL[key])
        args.extend([value, value] if key == "tag" else [value])
    after = _cursor(sort, q.get("cursor"))
    if sort == "key:asc":
        order = "key"
        if after:
            where.append("key > %s")
            args.append(after[0])
    else:
        desc = sort.endswith("desc")
        order = "created_at DESC, key DESC" if desc else "created_at, key"
        if after:
            where.append(f"(created_at, key) {'<' if desc else '>'} (%s, %s)")
            args.extend(after)
    with ctx.pool.connection() as conn:
        rows = conn.execute(f"SELECT {store.COLUMNS} FROM run402_meta.assets WHERE {' AND '.join(where)} "
                            f"ORDER BY {order} LIMIT %s", (*args, limit + 1)).fetchall()
    page, more = rows[:limit], len(rows) > limit
    cursor = None
    if more:
        last = page[-1]
        cursor = last[0] if sort == "key:asc" else base64.urlsafe_b64encode(json.dumps(
            {"s": sort, "ts": last[12].isoformat(), "key": last[0]}).encode()).decode().rstrip("=")
    return JSONResponse({"blobs": [_summary(r) for r in page], "next_cursor": cursor})


async def _ls(request: Request) -> JSONResponse:
    return await run_in_threadpool(_ls_sync, request)


# -- diagnose --------------------------------------------------------------------------------

def _refuse(url: str, why: str) -> GatewayError:
    return GatewayError(400, "URL_NOT_ALLOWED", f"diagnose probes only this project's blob URLs: {why}",
                        details={"url": url[:500]},
                        hint="Pass an asset URL from `assets put` (http://pr-<id>.localhost:<port>/_blob/<key>)")


def _expected(ctx: GatewayContext, project_id: str, key: str) -> tuple[str | None, str]:
    with ctx.pool.connection() as conn:
        version = store.load_version(conn, project_id, key)
        if version is not None:
            return version[1], "blob-immutable"
        asset = store.load_asset(conn, project_id, key)
    return (asset.sha256 if asset else None), "blob-mutable"


async def _diagnose(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = await run_in_threadpool(service_caller, request, ctx)
    url = request.query_params.get("url") or ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse(url, "not a URL") from None
    own_port = (request.scope.get("server") or (None, request.url.port))[1]
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host.endswith(".localhost") or parts.username or parts.password:
        raise _refuse(url, "not a *.localhost URL of this gateway")
    if (port or 80) != own_port:
        raise _refuse(url, f"this gateway listens on port {own_port}")
    owner = store.project_of_asset_host(host[: -len(".localhost")])
    if owner is None:
        raise _refuse(url, "not an asset host (pr-<id>.localhost)")
    if owner != project.id:
        raise GatewayError(403, "FORBIDDEN", "That URL belongs to another project", category="auth")
    path = unquote(parts.path)
    if not path.startswith(store.BLOB_PREFIX) or path == store.BLOB_PREFIX:
        raise _refuse(url, "the path must be /_blob/<key>")
    key = path[len(store.BLOB_PREFIX):]
    expected, kind = await run_in_threadpool(_expected, ctx, project.id, key)
    observed, headers = None, httpx.Headers()
    target = f"http://127.0.0.1:{own_port}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    try:  # one probe through the real serving path, as a browser would ask
        async with httpx.AsyncClient(timeout=PROBE_TIMEOUT, follow_redirects=False) as client:
            resp = await client.get(target, headers={"Host": parts.netloc, "Range": "bytes=0-0",
                                                     "Accept-Encoding": "identity"})
        headers = resp.headers
        tag = headers.get("etag", "")
        if resp.status_code in (200, 206) and tag.startswith('"sha256-') and tag.endswith('"'):
            observed = tag[8:-1]
    except httpx.HTTPError:
        pass
    fresh = expected is not None and observed == expected
    return JSONResponse({
        "projectId": project.id, "key": key, "expectedSha256": expected, "observedSha256": observed,
        "vantage": VANTAGE, "probeMethod": "GET_RANGE_0_0", "acceptEncoding": "identity",
        "observedAt": iso(datetime.now(timezone.utc)), "probeMayHaveWarmedCache": True,
        "canonicalUrl": f"{parts.scheme}://{parts.netloc}{parts.path}", "pathKind": kind,
        "cache": {"xCache": headers.get("x-cache"), "ageSeconds": int(headers["age"]) if headers.get("age", "").isdigit()
                  else None, "cacheKind": ("immutable" if kind == "blob-immutable" else "mutable") if observed else None},
        "invalidation": {"id": None, "status": None},
        "hint": ("The URL serves the expected bytes." if fresh else
                 "No such key in this project." if expected is None else
                 "The URL does not serve the key's current bytes (private, or changed while probing)."),
    })
