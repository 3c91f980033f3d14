"""The data plane: `/rest/v1/*` and `/admin/v1/rest/*`, proxied to the real PostgREST.

The gateway verifies the caller's project token (anon key, user access token, or — on the
admin path only — the service key), works out the project from it, and forwards with a
60-second internal token signed with the installation secret that only the gateway and
PostgREST know. The internal token's `role` is the project's own database role
(`pNNNN_anon`, `pNNNN_authenticated`, `pNNNN_service`), and Accept-Profile/Content-Profile pin
the project's schema: a key of project A can never address project B. PostgREST's own bodies
and headers (Content-Range, Location, Preference-Applied, errors) come back unchanged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt as pyjwt
from starlette.requests import Request
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from run402_cli.local.control.callers import Project, verify_project_token_async
from run402_cli.local.context import GatewayContext
from run402_cli.local.errors import DatabaseUnavailable, GatewayError

__all__: list[str] = []  # handlers only: local/routes.py lists them

_HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "host", "content-length",
}
# Never forwarded from the client: credentials are re-minted, the schema is ours to pick.
_CLIENT_DROP = _HOP_BY_HOP | {"apikey", "authorization", "accept-profile", "content-profile", "cookie",
                              "accept-encoding"}
_RESPONSE_DROP = _HOP_BY_HOP | {"content-encoding", "date", "server"}  # uvicorn sets its own
_ROLE_MAP = {"anon": "anon", "authenticated": "authenticated", "project_admin": "authenticated"}
# PostgREST answers these while its schema cache still lacks a just-created object.
_CACHE_MISS_CODES = {"PGRST205", "PGRST202", "PGRST106", "42P01", "42883"}
_CACHE_RETRY_WINDOW = 3.0
_INTERNAL_TOKEN_TTL = 60


def _credentials(request: Request) -> tuple[str | None, str | None]:
    apikey = request.headers.get("apikey")
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    return apikey, bearer


async def _caller(ctx: GatewayContext, request: Request, admin: bool) -> tuple[Project, dict[str, Any], str]:
    """(project, claims, database role) for this request, or 401/403. No shared worker thread:
    project rows come from a cache (see control/callers.cached_project)."""
    apikey, bearer = _credentials(request)
    token = bearer or apikey
    if not token:
        raise GatewayError(401, "UNAUTHORIZED", "Missing apikey header", category="auth",
                           hint="Send apikey: <anon_key> (and Authorization: Bearer <access_token> for a user)")
    project, claims = await verify_project_token_async(ctx, token)
    if apikey and bearer and apikey != bearer:
        key_project, _ = await verify_project_token_async(ctx, apikey)
        if key_project.id != project.id:
            raise GatewayError(403, "FORBIDDEN", "apikey and Authorization belong to different projects",
                               category="auth")
    role = claims.get("role")
    if admin:
        if role != "service_role":
            raise GatewayError(403, "FORBIDDEN", "/admin/v1/rest accepts only the project's service key",
                               category="auth")
        return project, claims, f"{project.schema_slot}_service"
    if role == "service_role":
        raise GatewayError(403, "FORBIDDEN", "Service keys are refused on /rest/v1; use /admin/v1/rest",
                           category="auth", hint="Browser code uses the anon key or a user access token")
    if role not in _ROLE_MAP:
        raise GatewayError(403, "FORBIDDEN", f"Role {role!r} cannot use /rest/v1", category="auth")
    return project, claims, f"{project.schema_slot}_{_ROLE_MAP[role]}"


def _internal_token(ctx: GatewayContext, project: Project, claims: dict[str, Any], db_role: str) -> str:
    now = int(time.time())
    inner = {"role": db_role, "project_id": project.id, "iat": now, "exp": now + _INTERNAL_TOKEN_TTL,
             "app_role": claims.get("role")}
    for key in ("sub", "email"):
        if key in claims:
            inner[key] = claims[key]
    return pyjwt.encode(inner, ctx.postgrest_jwt_secret, algorithm="HS256")


_CACHE_MISS_STATUSES = (400, 404, 406)


def _cache_miss(resp: httpx.Response) -> bool:
    if resp.status_code not in _CACHE_MISS_STATUSES:
        return False
    try:
        body = resp.json()
    except ValueError:
        return False
    # PostgREST 12.0 answers a write to a table missing from its cache with a bare 404 {}.
    return isinstance(body, dict) and (body == {} or body.get("code") in _CACHE_MISS_CODES)


async def _proxy(request: Request, admin: bool) -> Response:
    ctx: GatewayContext = request.app.state.ctx
    project, claims, db_role = await _caller(ctx, request, admin)
    ctx.limits.check_project(project.id)
    raw_path = request.scope.get("raw_path", b"").decode("latin-1")
    prefix = "/admin/v1/rest/" if admin else "/rest/v1/"
    path = raw_path[len(prefix):] if raw_path.startswith(prefix) else request.path_params.get("path", "")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _CLIENT_DROP}
    headers["Authorization"] = "Bearer " + _internal_token(ctx, project, claims, db_role)
    headers["Accept-Profile"] = project.schema_slot
    headers["Content-Profile"] = project.schema_slot
    if "postgres" in ctx.down:
        raise DatabaseUnavailable()
    body = await request.body()
    url = httpx.URL(f"{ctx.postgrest_url}/{path}", query=request.url.query.encode("latin-1"))
    client: httpx.AsyncClient = request.app.state.postgrest_client
    # PostgREST's pool is shared by every project: one project holds only a few of its
    # connections at a time, the rest of its burst queues (bounded) or gets a 429.
    async with ctx.limits.rest_slot(project.id):
        deadline = time.monotonic() + 2.0
        while True:
            try:
                resp = await client.send(client.build_request(request.method, url, headers=headers, content=body),
                                         stream=True)
            except httpx.TransportError:
                raise DatabaseUnavailable("postgrest is not answering; the local gateway is restarting it",
                                          safe_to_retry=request.method in ("GET", "HEAD"),
                                          component="postgrest") from None
            recent_change = time.monotonic() - ctx.schema_changed_at < _CACHE_RETRY_WINDOW
            if recent_change and resp.status_code in _CACHE_MISS_STATUSES and time.monotonic() < deadline:
                await resp.aread()  # an error body: small
                if _cache_miss(resp):
                    await resp.aclose()
                    await asyncio.sleep(0.1)
                    continue
            break
    out_headers = {k: v for k, v in resp.headers.items() if k.lower() not in _RESPONSE_DROP}
    if resp.is_stream_consumed:  # an error body read above for the cache-miss check
        return Response(resp.content, status_code=resp.status_code, headers=out_headers)
    # Streamed through, never held whole: a large result costs the gateway one chunk at a time.
    return StreamingResponse(resp.aiter_raw(), status_code=resp.status_code, headers=out_headers,
                             background=BackgroundTask(resp.aclose))


async def _rest(request: Request) -> Response:
    return await _proxy(request, admin=False)


async def _admin_rest(request: Request) -> Response:
    return await _proxy(request, admin=True)


_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]
