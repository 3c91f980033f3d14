"""The gateway's ASGI app: one ordered route table, one error handler."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from run402_cli.local import apply, content, expose, projects, rest, service, subdomains, tiers, users, wallets
from run402_cli.local.context import GatewayContext
from run402_cli.local.errors import GatewayError, handle_gateway_error, handle_unexpected
from run402_cli.local.sites import SiteDispatch

__all__ = ["build_app"]


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 404)
    code = "NOT_FOUND" if status == 404 else ("METHOD_NOT_ALLOWED" if status == 405 else "HTTP_ERROR")
    msg = "Not found" if status == 404 else getattr(exc, "detail", "HTTP error")
    return JSONResponse({"error": msg, "message": f"{msg}: {request.method} {request.url.path}",
                         "code": code, "retryable": False, "safe_to_retry": True, "next_actions": []},
                        status_code=status)


def build_app(ctx: GatewayContext) -> Starlette:
    route_table: list[Route] = [
        *service.routes,
        *tiers.routes,
        *wallets.routes,
        *expose.routes,
        *projects.routes,
        *rest.routes,
        *users.routes,
        *content.routes,
        *apply.routes,
        *subdomains.routes,
    ]
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # One pooled client to PostgREST for the whole process.
        app.state.postgrest_client = httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0))
        try:
            yield
        finally:
            await app.state.postgrest_client.aclose()

    app = Starlette(
        lifespan=lifespan,
        routes=route_table,
        exception_handlers={GatewayError: handle_gateway_error, 404: _not_found, 405: _not_found,
                            Exception: handle_unexpected},
        # Sites first: a `<label>.localhost` Host is a deployed site, never the API (sites.py).
        middleware=[Middleware(SiteDispatch),
                    Middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["*"],
                               allow_headers=["*"], expose_headers=["PAYMENT-REQUIRED", "PAYMENT-RESPONSE"])],
    )
    app.state.ctx = ctx
    return app
