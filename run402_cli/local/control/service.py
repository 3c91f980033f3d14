"""GET /health and GET /status: what is actually up, checked each time."""

from __future__ import annotations

import time

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli import __version__

__all__: list[str] = []  # handlers only: local/routes.py lists them

_CAPABILITIES = ["x402", "siwx", "postgres", "blob"]


def _postgres(ctx) -> str:  # type: ignore[no-untyped-def]
    try:
        with ctx.pool.connection(timeout=5) as conn:
            conn.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # a health check reports, it does not raise
        return f"error: {type(exc).__name__}"


async def _checks(request: Request) -> dict[str, str]:
    ctx = request.app.state.ctx
    checks: dict[str, str] = {"postgres": await run_in_threadpool(_postgres, ctx)}
    # The app's kept-alive client: a new one per probe would build an SSL context (~10 ms).
    client: httpx.AsyncClient = request.app.state.postgrest_client
    try:
        ok = (await client.get(ctx.postgrest_admin_url + "/ready", timeout=3)).status_code == 200
        checks["postgrest"] = "ok" if ok else "not_ready"
    except httpx.HTTPError as exc:
        checks["postgrest"] = f"error: {type(exc).__name__}"
    # The local CAS stands where the hosted API has S3; there is no CDN locally.
    checks["s3"] = "ok"
    checks["cloudfront"] = "not_applicable"
    return checks


async def _health(request: Request) -> JSONResponse:
    checks = await _checks(request)
    healthy = all(v in ("ok", "not_applicable") for v in checks.values())
    return JSONResponse({"status": "healthy" if healthy else "degraded", "checks": checks,
                         "version": __version__}, status_code=200 if healthy else 503)


async def _status(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    checks = await _checks(request)
    up = all(v in ("ok", "not_applicable") for v in checks.values())
    # The union of both shapes the client ecosystem knows (the SDK's and the documented
    # `run402-status-v1`): which one the hosted API sends is unsettled, and the CLI prints either.
    return JSONResponse({
        "status": "ok" if up else "degraded",
        "schema_version": "run402-status-v1",
        "service": "Run402 (local gateway)",
        "current_status": "operational" if up else "degraded",
        "uptime_seconds": int(time.time() - ctx.started_at),
        "deployment": {"version": __version__, "mode": "local"},
        "capabilities": _CAPABILITIES,
        "capability_status": {c: "operational" for c in _CAPABILITIES},
        "operator": {"name": "Run402", "legal_name": "Run402 local gateway", "contact": "https://run402.com"},
        "links": {"health": str(request.url_for("health"))},
    })

