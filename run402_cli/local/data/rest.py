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
import json
import re
import time
from collections import OrderedDict
from typing import Any

import httpx
import jwt as pyjwt
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from run402_cli.local.control.callers import Project, verify_project_token_async
from run402_cli.local.context import GatewayContext
from run402_cli.local.data.upstream import Upstream, UpstreamError, UpstreamResponse
from run402_cli.local.errors import DatabaseUnavailable, GatewayError

__all__: list[str] = []  # handlers only: local/routes.py lists them

_HOP_BY_HOP = {
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailers",
    b"transfer-encoding", b"upgrade", b"host", b"content-length",
}
# Never forwarded from the client: credentials are re-minted, the schema is ours to pick.
_CLIENT_DROP = _HOP_BY_HOP | {b"apikey", b"authorization", b"accept-profile", b"content-profile", b"cookie",
                              b"accept-encoding"}
_RESPONSE_DROP = _HOP_BY_HOP | {b"content-encoding", b"date", b"server"}  # uvicorn sets its own
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


_MINTED: OrderedDict[tuple[Any, ...], tuple[str, int]] = OrderedDict()
_MINTED_KEYS = 1024
_REUSE_FOR = _INTERNAL_TOKEN_TTL // 2  # a re-used token still has at least 30 s to live


def _internal_token(ctx: GatewayContext, project: Project, claims: dict[str, Any], db_role: str) -> str:
    """The token PostgREST gets. The same claims get the same token for up to _REUSE_FOR
    seconds (signing one was a tenth of the proxy's own CPU per call); the key holds every
    claim that goes into it, so nothing but `iat`/`exp` can differ from a fresh one."""
    now = int(time.time())
    extra = tuple((key, claims[key]) for key in ("sub", "email") if key in claims)
    # Each claim's type too: 1, 1.0 and true are equal keys, but not the same token.
    key = (ctx.postgrest_jwt_secret, db_role, project.id, claims.get("role"), type(claims.get("role")),
           extra, tuple(type(value) for _, value in extra))
    try:
        hit = _MINTED.get(key)
    except TypeError:  # a claim that cannot be a key (a list as `sub`): minted every time
        hit, key = None, None
    if hit is not None and now - hit[1] < _REUSE_FOR:
        return hit[0]
    inner = {"role": db_role, "project_id": project.id, "iat": now, "exp": now + _INTERNAL_TOKEN_TTL,
             "app_role": claims.get("role")}
    for name, value in extra:
        inner[name] = value
    token = pyjwt.encode(inner, ctx.postgrest_jwt_secret, algorithm="HS256")
    if key is not None:
        _MINTED[key] = (token, now)
        _MINTED.move_to_end(key)
        while len(_MINTED) > _MINTED_KEYS:
            _MINTED.popitem(last=False)
    return token


_CACHE_MISS_STATUSES = (400, 404, 406)


def _cache_miss(resp: UpstreamResponse) -> bool:
    if resp.status not in _CACHE_MISS_STATUSES or resp.body is None:  # a large body is not that error
        return False
    try:
        body = json.loads(resp.body)
    except ValueError:
        return False
    # PostgREST 12.0 answers a write to a table missing from its cache with a bare 404 {}.
    return isinstance(body, dict) and (body == {} or body.get("code") in _CACHE_MISS_CODES)


# Request targets httpx would send unchanged (its percent-encoding sets leave these characters
# alone, and it drops `.`/`..` segments, checked apart): built directly, without a URL parse.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*")
_PLAIN_QUERY = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%?]*")


def upstream_target(path: str, query: str) -> bytes:
    """The request target PostgREST gets for `/rest/v1/<path>?<query>`: exactly what the proxy
    sent when it went through httpx (URL normalisation, percent-encoding, the `?` it always
    adds), which stays the rule for any target outside the plain fast path."""
    if _PLAIN_PATH.fullmatch(path) and _PLAIN_QUERY.fullmatch(query) \
            and ("." not in path or not {".", ".."} & set(path.split("/"))):
        return f"/{path}?{query}".encode("ascii")
    return httpx.URL(f"http://upstream/{path}", query=query.encode("latin-1")).raw_path


def _forward_headers(scope_headers: list[tuple[bytes, bytes]], token: str, slot: bytes) -> list[tuple[bytes, bytes]]:
    kept: dict[bytes, bytes] = {}
    for name, value in scope_headers:  # a repeated header: its last value, as before
        name = name.lower()
        if name not in _CLIENT_DROP:
            kept[name] = value
    kept.setdefault(b"accept", b"*/*")  # what httpx sent when the client named none
    kept[b"authorization"] = b"Bearer " + token.encode("ascii")
    kept[b"accept-profile"] = kept[b"content-profile"] = slot
    return list(kept.items())


def _answer_headers(upstream_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    merged: dict[bytes, bytes] = {}
    for name, value in upstream_headers:  # a repeated header: one, values joined, as httpx gave them
        if name not in _RESPONSE_DROP:
            merged[name] = merged[name] + b", " + value if name in merged else value
    return list(merged.items())


class _Whole:
    """PostgREST's answer, read whole (small): status, its headers, one body message."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, bodiless: bool) -> None:
        if not bodiless:
            headers.append((b"content-length", str(len(body)).encode("ascii")))
        self.status, self.headers, self.body = status, headers, body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


async def _proxy(request: Request, admin: bool) -> _Whole | _Streamed:
    ctx: GatewayContext = request.app.state.ctx
    project, claims, db_role = await _caller(ctx, request, admin)
    ctx.limits.check_project(project.id)
    raw_path = request.scope.get("raw_path", b"").decode("latin-1")
    prefix = "/admin/v1/rest/" if admin else "/rest/v1/"
    path = raw_path[len(prefix):] if raw_path.startswith(prefix) else request.path_params.get("path", "")
    headers = _forward_headers(request.scope["headers"], _internal_token(ctx, project, claims, db_role),
                               project.schema_slot.encode("ascii"))
    if "postgres" in ctx.down:
        raise DatabaseUnavailable()
    body = await request.body()
    target = upstream_target(path, request.scope["query_string"].decode("latin-1"))
    upstream: Upstream = request.app.state.postgrest_upstream
    method = request.method
    # PostgREST's pool is shared by every project: one project holds only a few of its
    # connections at a time, the rest of its burst queues (bounded) or gets a 429.
    async with ctx.limits.rest_slot(project.id):
        deadline = time.monotonic() + 2.0
        while True:
            try:
                resp = await upstream.request(method, target, headers, body)
                await resp.read_capped(upstream.io_timeout)  # whole if small; else streamed below
            except UpstreamError:
                raise DatabaseUnavailable("postgrest is not answering; the local gateway is restarting it",
                                          safe_to_retry=method in ("GET", "HEAD"),
                                          component="postgrest") from None
            recent_change = time.monotonic() - ctx.schema_changed_at < _CACHE_RETRY_WINDOW
            if recent_change and resp.status in _CACHE_MISS_STATUSES and time.monotonic() < deadline \
                    and _cache_miss(resp):
                await asyncio.sleep(0.1)
                continue
            break
    out_headers = _answer_headers(resp.headers)
    if resp.body is not None:  # small: one piece, with its length
        bodiless = method == "HEAD" or resp.status in (204, 304)
        return _Whole(resp.status, out_headers, resp.body, bodiless)
    # Streamed through, never held whole: a large result costs the gateway one chunk at a time.
    return _Streamed(resp, out_headers)


class _Streamed(StreamingResponse):
    """A large answer, passed on piece by piece. However sending ends (done, failed, or the
    client gone before the first piece, when the body's iterator never even starts), the
    upstream connection is given back or closed: a leaked one would hold a pool slot for good."""

    def __init__(self, resp: UpstreamResponse, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(resp.stream(), status_code=resp.status,
                         headers={k.decode("latin-1"): v.decode("latin-1") for k, v in headers})
        self._upstream = resp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._upstream.close()


async def _rest(request: Request) -> _Whole | _Streamed:
    return await _proxy(request, admin=False)


async def _admin_rest(request: Request) -> _Whole | _Streamed:
    return await _proxy(request, admin=True)


_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]
