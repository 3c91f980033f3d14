"""The gateway's ASGI app: one ordered route table (routes.py), one error handler."""

from __future__ import annotations

import logging
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from run402_cli.local.context import GatewayContext
from run402_cli.local.data.tenant_sql import statement_timeout_seconds
from run402_cli.local.data.upstream import Upstream
from run402_cli.local.deploy import upload
from run402_cli.local.errors import GatewayError, handle_gateway_error, handle_unexpected
from run402_cli.local.functions.runtime import FunctionRuntime
from run402_cli.local.functions.scheduler import start_scheduler
from run402_cli.local.http_body import BodyLimits, is_site_host
from run402_cli.local.routes import HOT_ENDPOINTS, route_table
from run402_cli.local.runtime.reaper import start_reaper
from run402_cli.local.web.sites import SiteDispatch

log = logging.getLogger("run402.gateway")

__all__ = ["build_app", "build_upload_app"]


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 404)
    code = "NOT_FOUND" if status == 404 else ("METHOD_NOT_ALLOWED" if status == 405 else "HTTP_ERROR")
    msg = "Not found" if status == 404 else getattr(exc, "detail", "HTTP error")
    return JSONResponse({"error": msg, "message": f"{msg}: {request.method} {request.url.path}",
                         "code": code, "retryable": False, "safe_to_retry": True, "next_actions": []},
                        status_code=status)


class ContainFailures:
    """Innermost middleware: an unexpected exception becomes the 500 (or 503) envelope *here*.

    Starlette's own last-resort handler sends the response and then re-raises, and the server
    closes the connection on a re-raised exception, so the next request a client had pipelined
    on that keep-alive connection failed. Caught here, the connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:  # too late for an envelope; the server ends the half-sent response
                log.exception("error after the response started on %s", scope.get("path"))
                raise
            response = await handle_unexpected(Request(scope), exc)
            await response(scope, receive, send)


class HotLane:
    """Right after the body caps: a request for one of the hot routes (routes.HOT_ENDPOINTS) goes
    straight to its handler, past the layers that would change nothing for it.

    That is exact, not approximate: SiteDispatch passes on any Host that is not a site, CORS adds
    nothing to a request without an Origin, and the errors become the same envelopes here as in
    ContainFailures and the exception handlers. A site host, a browser's request (Origin) or a
    method the route does not take goes the long way. Why: a first deploy is one PUT per file,
    and each of those six layers cost more than the PUT's own work (py-spy, bench/deploy_dir.py)."""

    def __init__(self, app: ASGIApp, routes: list[Route]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child = route.matches(scope)
                if match is Match.FULL:
                    headers = scope["headers"]
                    if not is_site_host(headers) and not any(k == b"origin" for k, _ in headers):
                        scope.update(child)
                        await self._handle(route, scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)

    @staticmethod
    async def _handle(route: Route, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except GatewayError as exc:
            response = await handle_gateway_error(request, exc)
        except Exception as exc:  # as ContainFailures: the envelope, and the connection stays usable
            response = await handle_unexpected(request, exc)
        await response(scope, receive, send)


def _restore_recursion_limit() -> None:
    """eth-account's dependency py_ecc raises the interpreter's recursion limit to 100,000 when it
    is imported; with that limit a deeply nested JSON body overflows the C stack and kills the
    process instead of raising RecursionError. The gateway signs and verifies with
    run402_cli.wire.eth and never imports eth-account; should anything have, the limit goes back."""
    if sys.getrecursionlimit() > 1000:
        sys.setrecursionlimit(1000)


def _cors() -> Middleware:
    """Any origin may call the API (browsers deploy and read as the official SDK does)."""
    return Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
                      allow_headers=["*"], expose_headers=["PAYMENT-REQUIRED", "PAYMENT-RESPONSE"])


def build_app(ctx: GatewayContext) -> Starlette:
    _restore_recursion_limit()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One pooled client to PostgREST for the whole process (health checks, the admin port)...
        app.state.postgrest_client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))
        # ... and the data plane's own lean one, on the hot path of every REST call (data/upstream.py).
        pgrst = httpx.URL(ctx.postgrest_url)
        app.state.postgrest_upstream = Upstream(pgrst.host, pgrst.port or 80)
        stop_reaper = start_reaper(ctx.pool, statement_timeout_seconds)
        ctx.functions = FunctionRuntime(ctx)
        await ctx.functions.start()
        stop_scheduler = start_scheduler(ctx)
        try:
            yield
        finally:
            await stop_scheduler()
            await ctx.functions.aclose()  # every function worker dies with the gateway
            stop_reaper()
            await app.state.postgrest_client.aclose()
            await app.state.postgrest_upstream.aclose()

    routes = route_table()  # every path, in one table: routes.py
    app = Starlette(
        lifespan=lifespan,
        routes=routes,
        exception_handlers={GatewayError: handle_gateway_error, 404: _not_found, 405: _not_found},
        middleware=[
            # Body caps and the JSON-only rule first: nothing reads a byte before them (http_body.py).
            Middleware(BodyLimits),
            # Uploads and REST calls, thousands in a row: straight to their handlers (exactly).
            Middleware(HotLane, routes=[r for r in routes if getattr(r, "endpoint", None) in HOT_ENDPOINTS]),
            # Sites next: a `<label>.localhost` Host is a deployed site, never the API (web/sites.py).
            Middleware(SiteDispatch),
            _cors(),
            Middleware(ContainFailures),
        ],
    )
    app.state.ctx = ctx
    return app


def build_upload_app(cas_dir: str) -> Starlette:
    """The upload process's app (runtime/uploads.py): the one upload route, behind the same body
    caps, in the same hot lane and with the same error envelopes as in the gateway's app."""
    route = upload.route()
    app = Starlette(
        routes=[route],
        exception_handlers={GatewayError: handle_gateway_error, 404: _not_found, 405: _not_found},
        middleware=[Middleware(BodyLimits), Middleware(HotLane, routes=[route]), _cors(), Middleware(ContainFailures)],
    )
    app.state.ctx = upload.UploadContext(cas_dir)
    return app
