"""Deploy observability, all read-only and authenticated by the project's anon key (the project
is the key's): operations (`/apply/v1/operations[/:id[/events]]`), release inventories and
diffs (`/apply/v1/releases/:id|active|diff`) and URL resolution
(`/apply/v1/resolve`) — which runs the very matcher that serves sites.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.deploy import apply_state as st
from run402_cli.local.deploy.apply_plan import SCHEMA_VERSION
from run402_cli.local.deploy.apply_store import load_operation, load_release, operation_snapshot, registry
from run402_cli.local.control.callers import Project
from run402_cli.local.deploy.cas import Cas
from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.deploy_common import iso, project_from_apikey
from run402_cli.local.errors import GatewayError
from run402_cli.local.web.site_match import (
    cache_policy, resolve, static_manifest_metadata, static_public_paths,
)
from run402_cli.local.web.hosts import site_hostname
from run402_cli.local.web.sites import lookup_host, release_state

__all__: list[str] = []  # handlers only: local/routes.py lists them

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$")


def _int_param(request: Request, name: str, default: int, top: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        raise GatewayError(400, "BAD_REQUEST", f"{name} must be an integer from 1 to {top}",
                           details={"param": name, "value": raw[:32]})
    return int(raw)


# -- operations ---------------------------------------------------------------------------------
def _operation(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    with ctx.pool.connection() as conn:
        op = load_operation(conn, request.path_params["id"], project.id)
    if op is None:
        raise GatewayError(404, "OPERATION_NOT_FOUND", f"Operation {request.path_params['id']} not found",
                           category="deploy")
    return JSONResponse(operation_snapshot(op))


def _operations(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    limit = _int_param(request, "limit", 20, 100)
    cursor = request.query_params.get("cursor") or "0"
    if not cursor.isdigit():
        raise GatewayError(400, "BAD_REQUEST", "cursor is not one this gateway issued")
    offset = int(cursor)
    with ctx.pool.connection() as conn:
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM run402_meta.deploy_operations WHERE project_id = %s ORDER BY created_at DESC, id DESC "
            "LIMIT %s OFFSET %s", (project.id, limit + 1, offset)).fetchall()]
        ops = [operation_snapshot(load_operation(conn, i)) for i in ids[:limit]]  # type: ignore[arg-type]
    return JSONResponse({"operations": ops, "cursor": str(offset + limit) if len(ids) > limit else None})


def _events(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    with ctx.pool.connection() as conn:
        if load_operation(conn, request.path_params["id"], project.id) is None:
            raise GatewayError(404, "OPERATION_NOT_FOUND", f"Operation {request.path_params['id']} not found",
                               category="deploy")
        rows = conn.execute("SELECT event, created_at FROM run402_meta.deploy_events WHERE operation_id = %s "
                            "ORDER BY id", (request.path_params["id"],)).fetchall()
    return JSONResponse({"events": [{**e, "at": iso(at)} for e, at in rows]})


# -- releases -----------------------------------------------------------------------------------
def _migrations_upto(conn: psycopg.Connection, project_id: str, until: datetime | None,
                     after: datetime | None = None) -> list[dict[str, Any]]:
    return [{"migration_id": mid, "checksum_hex": m["checksum"], "applied_at": iso(m["applied_at"])}
            for mid, m in registry(conn, project_id).items()
            if (until is None or m["applied_at"] <= until) and (after is None or m["applied_at"] > after)]


def _inventory(conn: psycopg.Connection, project: Project, rel: dict[str, Any] | None, live: bool,
               site_limit: int) -> dict[str, Any]:
    state = rel["state"] if rel else dict(st.EMPTY_STATE)
    files = state["site"]["files"]
    paths = [{"path": p, "content_sha256": f["sha256"], "content_type": f["content_type"]}
             for p, f in list(files.items())[:site_limit]]
    if live:
        secret_keys = [r[0] for r in conn.execute("SELECT key FROM run402_meta.secrets WHERE project_id = %s "
                                                  "ORDER BY key", (project.id,))]
        names = [r[0] for r in conn.execute("SELECT name FROM run402_meta.subdomains WHERE project_id = %s "
                                            "ORDER BY name", (project.id,))]
    else:
        secret_keys, names = state["secrets_required"], state["subdomains"]
    until = None if live else (rel or {}).get("activated_at")
    return {
        "kind": "release_inventory", "schema_version": SCHEMA_VERSION,
        "release_id": rel["id"] if rel else None, "project_id": project.id,
        "parent_id": rel["parent_id"] if rel else None, "status": rel["status"] if rel else None,
        "manifest_digest": rel["manifest_digest"] if rel else None,
        "created_at": iso(rel["created_at"]) if rel else None, "created_by": rel["created_by"] if rel else None,
        "activated_at": iso(rel["activated_at"]) if rel else None,
        "superseded_at": iso(rel["superseded_at"]) if rel else None,
        "operation_id": rel["operation_id"] if rel else None, "plan_id": rel["plan_id"] if rel else None,
        "events_url": f"/apply/v1/operations/{rel['operation_id']}/events" if rel and rel["operation_id"] else None,
        "effective": bool(rel) and rel["status"] in ("active", "superseded"),
        "state_kind": "current_live" if live else "effective",
        "release_generation": rel["generation"] if rel else None,
        "deployment_id": rel["deployment_id"] if rel else None,
        "static_manifest_sha256": st.static_manifest_sha256(state),
        "static_manifest_metadata": static_manifest_metadata(state),
        "site": {"paths": paths, "totals": {"paths": len(files)}},
        "static_public_paths": static_public_paths(state)[:site_limit],
        "public_paths": state["site"]["public_paths"],
        "functions": [], "secrets": {"keys": secret_keys}, "subdomains": {"names": names},
        "routes": {"manifest_sha256": st.route_manifest_sha256(state["routes"]), "entries": state["routes"]},
        "migrations_applied": _migrations_upto(conn, project.id, until),
        "i18n": state.get("i18n"), "warnings": [],
    }


def _release_or_404(conn: psycopg.Connection, project: Project, release_id: str) -> dict[str, Any]:
    rel = load_release(conn, project.id, release_id)
    if rel is None:
        raise GatewayError(404, "RELEASE_NOT_FOUND", f"Release {release_id} not found", category="deploy")
    return rel


def _active_rel(conn: psycopg.Connection, project: Project) -> dict[str, Any] | None:
    row = conn.execute("SELECT release_id FROM run402_meta.active_releases WHERE project_id = %s",
                       (project.id,)).fetchone()
    return load_release(conn, project.id, row[0]) if row else None


def _release(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    limit = _int_param(request, "site_limit", 5000, 25000)
    with ctx.pool.connection() as conn:
        rel = _release_or_404(conn, project, request.path_params["id"])
        return JSONResponse(_inventory(conn, project, rel, False, limit))


def _active(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    limit = _int_param(request, "site_limit", 5000, 25000)
    with ctx.pool.connection() as conn:
        return JSONResponse(_inventory(conn, project, _active_rel(conn, project), True, limit))


def _diff_side(conn: psycopg.Connection, project: Project, value: str | None, side: str) -> dict[str, Any] | None:
    if value == "empty" and side == "from":
        return None
    if value == "active":
        rel = _active_rel(conn, project)
        if rel is None:
            raise GatewayError(404, "NO_ACTIVE_RELEASE", "The project has no active release", category="deploy")
        return rel
    if isinstance(value, str) and value.startswith("rel_"):
        return _release_or_404(conn, project, value)
    allowed = "empty, active or rel_..." if side == "from" else "active or rel_..."
    raise GatewayError(400, "INVALID_DIFF_TARGET", f"{side} must be {allowed}", category="deploy",
                       details={"param": side, "value": (value or "")[:64]})


def _diff(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    limit = _int_param(request, "limit", 1000, 25000)
    with ctx.pool.connection() as conn:
        old = _diff_side(conn, project, request.query_params.get("from"), "from")
        new = _diff_side(conn, project, request.query_params.get("to"), "to")
        assert new is not None
        if old is not None and old["id"] == new["id"]:
            raise GatewayError(400, "DIFF_SAME_RELEASE", "from and to are the same release", category="deploy",
                               details={"release_id": new["id"]})
        a = old["state"] if old else dict(st.EMPTY_STATE)
        b = new["state"]
        migrations = _migrations_upto(conn, project.id, new["activated_at"], old["activated_at"] if old else None)
    site = st.site_diff(a["site"]["files"], b["site"]["files"], limit)
    routes = st.routes_diff(a["routes"], b["routes"])
    subdomains = st.set_diff(a["subdomains"], b["subdomains"])
    secrets = st.set_diff(a["secrets_required"], b["secrets_required"])
    others = any(a[k] != b[k] for k in ("expose", "i18n", "checks")) or a["site"]["public_paths"] != b["site"]["public_paths"]
    applied = [m["migration_id"] for m in migrations]
    return JSONResponse({
        "kind": "release_diff", "schema_version": SCHEMA_VERSION,
        "from_release_id": old["id"] if old else None, "to_release_id": new["id"],
        "is_noop": a == b and not applied,
        "summary": st.summary(site, len(applied), routes, subdomains, secrets, others), "warnings": [],
        "migrations": {"applied_between_releases": applied}, "site": site,
        "functions": {"added": [], "removed": [], "changed": []}, "secrets": secrets, "subdomains": subdomains,
        "routes": routes, "static_assets": st.static_assets_diff(a["site"]["files"], b["site"]["files"], None),
    })


# -- resolve ------------------------------------------------------------------------------------
def _resolve_input(request: Request) -> tuple[str, str, str]:
    q = request.query_params
    host, path, method = q.get("host"), q.get("path", "/"), q.get("method", "GET").strip().upper()
    if not host or re.search(r"[\s/?#@]", host) or "://" in host or len(host) > 253:
        raise GatewayError(400, "INVALID_HOST", "host must be a bare host name (no scheme, path, ? # @ or spaces)",
                           details={"param": "host"})
    if not path.startswith("/") or "?" in path or "#" in path:
        raise GatewayError(400, "INVALID_PATH", "path must start with / and carry no query or fragment",
                           details={"param": "path"})
    if not _TOKEN.match(method):
        raise GatewayError(400, "INVALID_METHOD", "method must be an HTTP method token", details={"param": "method"})
    return host, path, method


def _resolve(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    host, path, method = _resolve_input(request)
    hostname = site_hostname(host)
    binding = lookup_host(ctx, hostname) if hostname else None
    if binding is None or binding.project_id != project.id:  # another project's host is not revealed
        return JSONResponse({"hostname": (hostname or host).lower(), "result": 404, "match": "host_missing",
                             "authorized": False, "fallback_state": "not_used"})
    base: dict[str, Any] = {"hostname": hostname, "host_binding_id": binding.host_binding_id,
                            "binding_status": "active", "project_id": project.id, "channel": "production"}
    if binding.release_id is None:
        return JSONResponse({**base, "release_id": None, "result": 404, "match": "active_release_missing",
                             "authorized": False, "fallback_state": "active_release_missing",
                             "authorization_result": "active_release_missing", "error_code": "NO_ACTIVE_RELEASE"})
    state = release_state(ctx, binding.release_id)
    res = resolve(state, method, path)
    cas_object = None
    auth_result = res.authorization_result
    if res.file is not None:
        actual = Cas(ctx.cas_dir).size(res.file["sha256"])
        cas_object = {"sha256": res.file["sha256"], "exists": actual is not None, "expected_size": res.file["size"],
                      "actual_size": actual}
        if actual is None:
            auth_result = "missing_cas_object"
        elif actual != res.file["size"]:
            auth_result = "size_mismatch"
    route = res.route
    body = {
        **base, "release_id": binding.release_id, "release_generation": binding.generation,
        "route_manifest_sha256": st.route_manifest_sha256(state["routes"]),
        "static_manifest_sha256": st.static_manifest_sha256(state),
        "static_manifest_metadata": static_manifest_metadata(state), "normalized_path": res.normalized_path,
        "route": {"pattern": route["pattern"], "methods": route["methods"], "target": route["target"]} if route else None,
        "asset_path": res.asset_path, "reachability_authority": res.reachability_authority, "direct": res.direct,
        "static_sha256": res.file["sha256"] if res.file else None,
        "content_type": res.file["content_type"] if res.file else None, "cache_class": res.cache_class,
        "cache_policy": cache_policy(res.cache_class) if res.file and res.result == 200 else None,
        "authorization_result": auth_result, "cas_object": cas_object, "allow": res.allow,
        "route_pattern": route["pattern"] if route else None,
        "target_type": route["target"].get("type") if route else None,
        "target_name": route["target"].get("name") if route else None,
        "target_file": route["target"].get("file") if route else None,
        "error_code": res.error_code, "legacy_immutable_risk": [], "emergency_fallback": False,
        "match": res.match, "authorized": res.authorized and auth_result in ("authorized", "not_applicable"),
        "fallback_state": res.fallback_state, "result": res.result,
    }
    if res.location:
        body["redirect_location"] = res.location
    return JSONResponse(body)

