"""HTTP in, a function's Response out: direct invokes (`/functions/v1/<name>`, an API key) and
routes on a site's host (public; called by web/sites.py once site_match picked the route).

Either way the function gets a standard Request: the URL the caller used (on a site, the full
public URL with its query), the method, the headers and the body (at most 6 MiB). What it
returns is passed through — status, headers, every Set-Cookie, redirects — but for a routed
response without Cache-Control, which gets `private, no-store` (a dynamic response is never
shared-cached), and HEAD, which gets no body. A failing function fails closed: an error
envelope with the request id, never a static file.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import Project, bearer_token, verify_project_token_async
from run402_cli.local.control.limits import LOOKUP_THREADS
from run402_cli.local.errors import GatewayError
from run402_cli.local.functions.runtime import new_request_id
from run402_cli.local.functions.workers import MAX_RESPONSE_BYTES, Invocation, Outcome
from run402_cli.wire.functions import function_name_problem

__all__ = ["active_functions", "invoke_routed"]

MAX_REQUEST_BYTES = 6 * 1024 * 1024
_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer",
                  "content-length"})
_STATUS = {"FUNCTION_TIMEOUT": 504, "ROUTED_RESPONSE_TOO_LARGE": 502, "FUNCTION_MEMORY_EXCEEDED": 502,
           "FUNCTION_CRASHED": 502, "FUNCTION_INIT_FAILED": 502, "FUNCTION_BAD_RESPONSE": 502,
           "FUNCTION_ERROR": 500}
_MESSAGES = {"FUNCTION_ERROR": "The function threw an error (see functions logs)"}


async def _body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise GatewayError(413, "PAYLOAD_TOO_LARGE", f"Request body is larger than {MAX_REQUEST_BYTES} bytes",
                               details={"max_bytes": MAX_REQUEST_BYTES})
        chunks.append(chunk)
    return b"".join(chunks)


def _headers(request: Request, request_id: str, extra: dict[str, str]) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in request.headers.items() if k not in _HOP and not k.startswith("x-run402-")]
    out.append(("x-run402-request-id", request_id))
    out.extend(extra.items())
    return out


def _failure(outcome: Outcome, request_id: str) -> JSONResponse:
    code = outcome.code or "FUNCTION_ERROR"
    status = _STATUS.get(code, 502)
    message = _MESSAGES.get(code) or outcome.message or code
    return JSONResponse({"status": "error", "code": code, "message": message, "request_id": request_id,
                         "retryable": code in ("FUNCTION_TIMEOUT", "FUNCTION_CRASHED"), "safe_to_retry": False},
                        status_code=status, headers={"X-Run402-Request-Id": request_id, "Cache-Control": "no-store"})


def _response(outcome: Outcome, request_id: str, *, routed: bool, head: bool) -> Response:
    if outcome.code is not None:
        return _failure(outcome, request_id)
    if len(outcome.body) > MAX_RESPONSE_BYTES:
        return _failure(Outcome(code="ROUTED_RESPONSE_TOO_LARGE", message="The function's response is over 6 MiB"),
                        request_id)
    status = outcome.status or 200
    if not 200 <= status <= 599:
        return _failure(Outcome(code="FUNCTION_BAD_RESPONSE", message=f"status {status} is out of range"), request_id)
    response = Response(b"" if head else outcome.body, status_code=status)
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers
           if k.lower() not in _HOP and k.isascii() and v.isascii()]
    raw += [(b"set-cookie", c.encode("latin-1")) for c in outcome.cookies if c.isascii()]
    names = {k.lower() for k, _ in raw}
    if routed and b"cache-control" not in names:
        raw += [(b"cache-control", b"private, no-store"), (b"x-run402-cache", b"dynamic-bypass")]
    raw.append((b"x-run402-request-id", request_id.encode()))
    length = [(k, v) for k, v in response.raw_headers if k == b"content-length"]
    response.raw_headers = raw + length
    if head and outcome.body:
        response.raw_headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"] + \
            [(b"content-length", str(len(outcome.body)).encode())]
    return response


def _active_release_id(ctx: GatewayContext, project_id: str) -> str | None:
    with ctx.pool.connection() as conn:
        row = conn.execute("SELECT release_id FROM run402_meta.active_releases WHERE project_id = %s",
                           (project_id,)).fetchone()
    return row[0] if row else None


async def active_functions(ctx: GatewayContext, project_id: str) -> dict[str, Any]:
    """The active release's function table: the pointer read every time (an activation is
    visible at once), the immutable state from the sites' cache."""
    from starlette.concurrency import run_in_threadpool

    from run402_cli.local.web.sites import release_state

    release_id = await ctx.limits.in_thread("lookup", LOOKUP_THREADS, _active_release_id, ctx, project_id)
    if release_id is None:
        return {}
    state = await run_in_threadpool(release_state, ctx, release_id)
    return state.get("functions") or {}


async def invoke_routed(request: Request, project: Project, state: dict[str, Any], route: dict[str, Any],
                        binding_host: str) -> Response:
    ctx: GatewayContext = request.app.state.ctx
    request_id = new_request_id()
    try:  # public ingress spends the project's own budget: one site's flood is its own
        ctx.limits.check_project(project.id)
    except GatewayError as limited:
        return JSONResponse({"status": "error", "code": limited.code, "message": limited.message,
                             "request_id": request_id, "retryable": True}, status_code=limited.status,
                            headers={**(limited.headers or {}), "X-Run402-Request-Id": request_id,
                                     "Cache-Control": "no-store"})
    name = route["target"]["name"]
    entry = (state.get("functions") or {}).get(name)
    if entry is None or not entry.get("bundle"):
        return _failure(Outcome(code="ROUTE_TARGET_MISSING", message=f"The route's function {name!r} is not in "
                                "this release"), request_id)
    client = request.client.host if request.client else ""
    inv = Invocation(method=request.method, url=str(request.url), body=await _body(request), kind="routed",
                     request_id=request_id,
                     headers=_headers(request, request_id, {"x-forwarded-for": client,
                                                            "x-forwarded-host": binding_host,
                                                            "x-forwarded-proto": request.url.scheme}))
    outcome = await ctx.functions.invoke(project, name, entry, inv)
    return _response(outcome, request_id, routed=True, head=request.method == "HEAD")


async def _invoke(request: Request) -> Response:
    """`<METHOD> /functions/v1/<name>`: the project is the API key's (anon or service key)."""
    ctx: GatewayContext = request.app.state.ctx
    name = request.path_params["name"]
    token = request.headers.get("apikey") or bearer_token(request)
    if not token:
        raise GatewayError(401, "UNAUTHORIZED", "Missing API key (apikey: <anon or service key>)", category="auth")
    project, claims = await verify_project_token_async(ctx, token)
    if claims.get("role") not in ("anon", "service_role"):
        raise GatewayError(403, "FORBIDDEN", "apikey must be the project's anon or service key", category="auth")
    ctx.limits.check_project(project.id)
    if function_name_problem(name):
        raise GatewayError(404, "FUNCTION_NOT_FOUND", "No such function")
    entry = (await active_functions(ctx, project.id)).get(name)
    if entry is None or not entry.get("bundle"):
        raise GatewayError(404, "FUNCTION_NOT_FOUND", f"Function {name!r} not found in project {project.id}",
                           hint="run402 functions list <project_id>")
    request_id = new_request_id()
    inv = Invocation(method=request.method, url=str(request.url), body=await _body(request), kind="direct",
                     request_id=request_id, headers=_headers(request, request_id, {}))
    outcome = await ctx.functions.invoke(project, name, entry, inv)
    return _response(outcome, request_id, routed=False, head=request.method == "HEAD")
