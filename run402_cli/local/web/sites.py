"""Serving deployed sites by Host: `http://<label>.localhost:<port>/`.

`<label>` is a claimed subdomain (serves whatever release it points at, re-pointed at every
activation), a project host `prj-…` (the project's active release) or a deployment host
`dpl-…` (exactly that release, forever); a project's asset host `pr-…` serves its blobs
(storage/serve.py). `SiteDispatch` sits in front of the API: a request
for `*.localhost` never reaches an API route, and `127.0.0.1:<port>` / `localhost:<port>` never
reach a site. What a path maps to is decided by site_match.resolve, the same function
`GET /apply/v1/resolve` explains. A function route's request is handed to functions/invoke.py.

Release states are immutable, so they are cached by release id; which release a host serves
is read from the database on every request, so an activation is visible at once.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from run402_cli.local.deploy.apply_state import EMPTY_STATE
from run402_cli.local.deploy.cas import Cas
from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import cached_project
from run402_cli.local.functions.invoke import invoke_routed
from run402_cli.local.storage.serve import etag_matches, serve_asset_host
from run402_cli.local.web.hosts import site_hostname_of
from run402_cli.local.web.site_match import Resolution, cache_policy, resolve

__all__ = ["Binding", "SiteDispatch", "lookup_host", "release_state"]

_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_STATES: OrderedDict[str, dict[str, Any]] = OrderedDict()
_STATE_CACHE = 64


@dataclass
class Binding:
    hostname: str
    kind: str                      # subdomain | project | deployment
    host_binding_id: str | None    # the subdomain name, for subdomain hosts
    project_id: str
    release_id: str | None         # None: the project has no active release
    generation: int | None


def lookup_host(ctx: GatewayContext, hostname: str) -> Binding | None:
    label = hostname[: -len(".localhost")]
    if not _LABEL.match(label):
        return None
    with ctx.pool.connection() as conn:
        if label.startswith("dpl-"):
            row = conn.execute(
                "SELECT r.project_id, r.id, r.generation FROM run402_meta.releases r JOIN run402_meta.projects p "
                "ON p.id = r.project_id AND p.status <> 'purged' WHERE r.deployment_id = %s",
                ("dpl_" + label[4:],)).fetchone()
            return Binding(hostname, "deployment", None, *row) if row else None
        if label.startswith("prj-"):
            row = conn.execute(
                "SELECT p.id, a.release_id, r.generation FROM run402_meta.projects p "
                "LEFT JOIN run402_meta.active_releases a ON a.project_id = p.id "
                "LEFT JOIN run402_meta.releases r ON r.id = a.release_id "
                "WHERE p.id = %s AND p.status <> 'purged'", (label.replace("-", "_"),)).fetchone()
            return Binding(hostname, "project", None, *row) if row else None
        row = conn.execute(
            "SELECT s.project_id, r.id, r.generation FROM run402_meta.subdomains s "
            "JOIN run402_meta.releases r ON r.deployment_id = s.deployment_id WHERE s.name = %s", (label,)).fetchone()
        return Binding(hostname, "subdomain", label, *row) if row else None


def release_state(ctx: GatewayContext, release_id: str) -> dict[str, Any]:
    state = _STATES.get(release_id)
    if state is None:
        with ctx.pool.connection() as conn:
            row = conn.execute("SELECT state FROM run402_meta.releases WHERE id = %s", (release_id,)).fetchone()
        state = {**EMPTY_STATE, **(row[0] if row else {})}
        _STATES[release_id] = state
        while len(_STATES) > _STATE_CACHE:
            _STATES.popitem(last=False)
    _STATES.move_to_end(release_id)
    return state


def _file_response(request: Request, ctx: GatewayContext, res: Resolution, status: int = 200) -> Response:
    assert res.file is not None
    sha = res.file["sha256"]
    etag = f'"{sha}"'
    policy = cache_policy(res.cache_class) if status == 200 else "no-store"
    headers = {"ETag": etag, "Cache-Control": policy, "X-Content-Type-Options": "nosniff"}
    if status == 200 and etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    path = Cas(ctx.cas_dir).path(sha)
    if not path.is_file():
        return PlainTextResponse("Content unavailable\n", status_code=503, headers={"Cache-Control": "no-store"})
    headers["Content-Type"] = res.file["content_type"]
    return FileResponse(path, status_code=status, headers=headers)


async def serve_site(request: Request, hostname: str) -> Response:
    ctx: GatewayContext = request.app.state.ctx
    label = hostname[: -len(".localhost")]
    if label.startswith("pr-"):  # a project's asset host: blobs, not a site
        return await serve_asset_host(request, label)
    binding = await run_in_threadpool(lookup_host, ctx, hostname)
    if binding is None:
        return PlainTextResponse(f"No site at {hostname}\n", status_code=404, headers={"Cache-Control": "no-store"})
    if binding.release_id is None:
        return PlainTextResponse("This project has no active release yet\n", status_code=404,
                                 headers={"Cache-Control": "no-store"})
    state = await run_in_threadpool(release_state, ctx, binding.release_id)
    res = resolve(state, request.method, request.url.path)
    if res.match == "route_function" and res.route is not None:
        project = await cached_project(ctx, binding.project_id)
        if project is None:
            return PlainTextResponse(f"No site at {hostname}\n", status_code=404, headers={"Cache-Control": "no-store"})
        return await invoke_routed(request, project, state, res.route, hostname)
    if res.result == 400:
        return PlainTextResponse("Bad path\n", status_code=400)
    if res.result == 301 and res.location:
        query = request.url.query
        return RedirectResponse(res.location + (f"?{query}" if query else ""), status_code=301)
    if res.result == 405:
        return PlainTextResponse("Method Not Allowed\n", status_code=405,
                                 headers={"Allow": ", ".join(res.allow or ["GET", "HEAD"]), "Cache-Control": "no-store"})
    if res.result == 404:
        if res.not_found_asset:
            page = Resolution(match="none", result=404, file=state["site"]["files"][res.not_found_asset])
            return _file_response(request, ctx, page, status=404)
        return PlainTextResponse("Not Found\n", status_code=404, headers={"Cache-Control": "no-store"})
    return _file_response(request, ctx, res)


class SiteDispatch:
    """ASGI middleware: `*.localhost` hosts are sites; everything else goes on to the API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            hostname = site_hostname_of(scope.get("headers", []))
            if hostname is not None:
                request = Request(scope, receive)
                try:
                    response = await serve_site(request, hostname)
                except Exception:  # a site visitor never sees a traceback
                    import logging

                    logging.getLogger("run402.gateway").exception("site request failed: %s %s", hostname,
                                                                   scope.get("path"))
                    response = PlainTextResponse("Internal error\n", status_code=500)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
