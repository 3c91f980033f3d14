"""`/projects/v1/admin/{id}/secrets`: set, list and delete a project's secrets.

Authenticated with that project's service key (`Authorization: Bearer`): none is 401, another
project's key or an anon key 403 (control/callers.py project_from_service_key). The credential
is checked before the body is read. Values are write-only: no answer carries one, and no error
names one (the key and value rules are wire/secrets.py, shared with the CLI).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import Project, project_from_service_key
from run402_cli.local.errors import GatewayError
from run402_cli.local.http_body import read_json
from run402_cli.local.secrets import store
from run402_cli.wire.secrets import secret_key_problem, secret_value_problem

__all__: list[str] = []  # handlers only: local/routes.py lists them


async def _caller(request: Request) -> tuple[GatewayContext, Project]:
    ctx: GatewayContext = request.app.state.ctx
    project = await run_in_threadpool(project_from_service_key, request, ctx, request.path_params["id"])
    return ctx, project


async def _set(request: Request) -> JSONResponse:
    ctx, project = await _caller(request)
    body = await read_json(request, want_object=True)
    if set(body) - {"key", "value"} or "key" not in body or "value" not in body:
        raise GatewayError(400, "BAD_REQUEST", "Body must be {key, value}",
                           details={"fields": sorted(k for k in body if isinstance(k, str))[:10]})
    for problem in (secret_key_problem(body["key"]), secret_value_problem(body["value"])):
        if problem:
            code, message, details = problem
            raise GatewayError(400, code, message, details=details or None)
    entry = await run_in_threadpool(store.set_secret, ctx, project.id, body["key"], body["value"])
    return JSONResponse({"status": "ok", **entry})


async def _list(request: Request) -> JSONResponse:
    ctx, project = await _caller(request)
    return JSONResponse({"secrets": await run_in_threadpool(store.list_secrets, ctx, project.id)})


async def _delete(request: Request) -> JSONResponse:
    ctx, project = await _caller(request)
    key = request.path_params["key"]
    await run_in_threadpool(store.delete_secret, ctx, project.id, key)
    return JSONResponse({"status": "deleted", "key": key})
