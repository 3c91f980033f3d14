"""`/subdomains/v1`: claim, list and release `<name>.localhost`.

Authenticated with the project's service key (`Authorization: Bearer`). A name belongs to one
project; it points at a deployment of that project, and every later activation re-points it
at the new release (claim_release_subdomains, below), so a claimed name always serves the latest
release. Reserved names (www, api, admin, localhost, prj-*, dpl-*, pr-*) would shadow the gateway's
own hosts and are refused with 409 `{error: "reserved"}`.
"""

from __future__ import annotations

from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.wire.release import subdomain_problem
from run402_cli.local.control.callers import Project, project_of_service_key
from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.deploy_common import deployment_host, iso, label_url, read_json
from run402_cli.local.errors import GatewayError

__all__ = ["claim_release_subdomains"]  # and the handlers local/routes.py lists


def _project(request: Request, ctx: GatewayContext) -> Project:
    return project_of_service_key(request, ctx, "Subdomains")


def _row(request: Request, row: tuple) -> dict[str, Any]:
    name, project_id, deployment_id, created_at, updated_at = row
    return {"name": name, "url": label_url(request, name), "deployment_id": deployment_id,
            "deployment_url": label_url(request, deployment_host(deployment_id)), "project_id": project_id,
            "created_at": iso(created_at), "updated_at": iso(updated_at)}


_COLS = "name, project_id, deployment_id, created_at, updated_at"


def _deployment(conn: psycopg.Connection, project_id: str, deployment_id: Any) -> str:
    if deployment_id is None:
        row = conn.execute("SELECT r.deployment_id FROM run402_meta.active_releases a JOIN run402_meta.releases r "
                           "ON r.id = a.release_id WHERE a.project_id = %s", (project_id,)).fetchone()
        if row is None:
            raise GatewayError(400, "NO_DEPLOYMENT", "The project has no deployment to point the subdomain at",
                               next_actions=[{"action": "deploy_site_first"}])
        return row[0]
    if not isinstance(deployment_id, str) or conn.execute(
            "SELECT 1 FROM run402_meta.releases WHERE deployment_id = %s AND project_id = %s",
            (deployment_id, project_id)).fetchone() is None:
        raise GatewayError(404, "DEPLOYMENT_NOT_FOUND", f"Deployment {deployment_id!r} is not one of this project's",
                           details={"deployment_id": deployment_id})
    return deployment_id


def _claim_sync(request: Request, body: Any) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = _project(request, ctx)
    if not isinstance(body, dict) or set(body) - {"name", "deployment_id"} or "name" not in body:
        raise GatewayError(400, "BAD_REQUEST", "Body must be {name, deployment_id}")
    name = body["name"]
    problem = subdomain_problem(name)
    if problem:
        code, why = problem
        if code == "SUBDOMAIN_RESERVED":
            raise GatewayError(409, code, f"Subdomain {name!r} is reserved", extra={"error": "reserved"})
        raise GatewayError(400, code, f"Subdomain name {why}", details={"name": name if isinstance(name, str) else None})
    with ctx.pool.connection() as conn, conn.transaction():
        deployment_id = _deployment(conn, project.id, body.get("deployment_id"))
        row = conn.execute(
            "INSERT INTO run402_meta.subdomains (name, project_id, deployment_id) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET deployment_id = EXCLUDED.deployment_id, updated_at = now() "
            "WHERE run402_meta.subdomains.project_id = EXCLUDED.project_id RETURNING " + _COLS,
            (name, project.id, deployment_id)).fetchone()
    if row is None:
        raise GatewayError(409, "SUBDOMAIN_TAKEN", f"Subdomain {name!r} belongs to another project",
                           extra={"error": "taken"})
    return JSONResponse(_row(request, row), status_code=201)


async def _claim(request: Request) -> JSONResponse:
    body = await read_json(request)
    return await run_in_threadpool(_claim_sync, request, body)


def _list(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = _project(request, ctx)
    with ctx.pool.connection() as conn:
        rows = conn.execute(f"SELECT {_COLS} FROM run402_meta.subdomains WHERE project_id = %s ORDER BY name",
                            (project.id,)).fetchall()
    return JSONResponse({"subdomains": [_row(request, r) for r in rows]})


def _delete(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = _project(request, ctx)
    name = request.path_params["name"]
    with ctx.pool.connection() as conn:
        row = conn.execute("DELETE FROM run402_meta.subdomains WHERE name = %s AND project_id = %s "
                           "RETURNING name, deployment_id, project_id, now()", (name, project.id)).fetchone()
    if row is None:
        raise GatewayError(404, "SUBDOMAIN_NOT_FOUND", f"Subdomain {name!r} is not claimed by this project")
    return JSONResponse({"status": "deleted", "name": row[0], "deployment_id": row[1], "project_id": row[2],
                         "deleted_at": iso(row[3])})



def claim_release_subdomains(conn: psycopg.Connection, project_id: str, base: list[str], desired: list[str],
                             deployment_id: str) -> None:
    """Inside an activation transaction: drop the names the new release no longer manages,
    claim the ones it adds (409 SUBDOMAIN_TAKEN if another project holds one), and point every
    name of the project at the new deployment."""
    removed = set(base) - set(desired)
    if removed:
        conn.execute("DELETE FROM run402_meta.subdomains WHERE project_id = %s AND name = ANY(%s)",
                     (project_id, sorted(removed)))
    for name in desired:
        owner = conn.execute(
            "INSERT INTO run402_meta.subdomains (name, project_id, deployment_id) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET updated_at = now() RETURNING project_id",
            (name, project_id, deployment_id)).fetchone()[0]
        if owner != project_id:
            raise GatewayError(409, "SUBDOMAIN_TAKEN", f"Subdomain {name!r} belongs to another project",
                               details={"names": [name]})
    # A claimed subdomain follows the project's latest activated release.
    conn.execute("UPDATE run402_meta.subdomains SET deployment_id = %s, updated_at = now() WHERE project_id = %s",
                 (deployment_id, project_id))
