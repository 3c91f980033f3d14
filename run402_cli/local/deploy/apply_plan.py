"""`POST /apply/v1/plans[?dry_run=true]`: validate a spec, work out the release it leads to,
and say what would change and which bytes the gateway still needs.

A plan changes nothing but the plan/operation rows. Computing it is deterministic in (spec,
base release), so the commit recomputes the target state instead of trusting a stored copy,
and an identical re-plan (same digest, base and idempotency key) returns the existing
plan/operation with fresh presence flags.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.deploy import apply_state as st
from run402_cli.local.deploy.apply_spec import validate_body, validate_spec
from run402_cli.local.deploy.apply_store import (
    active_release, hold_deploy_lock, load_release, migration_checksum, owned_project, registry,
)
from run402_cli.local.control.callers import Project, wallet_from_siwx
from run402_cli.local.deploy.cas import Cas
from run402_cli.local.deploy.content import linked_present
from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.deploy_common import add_event, canonical_json, new_id, read_json
from run402_cli.local.errors import GatewayError
from run402_cli.local.data.expose_validate import validate as validate_expose
from run402_cli.local.functions.specs import check_tier, functions_diff, route_warnings
from run402_cli.local.storage import slice as asset_slice
from run402_cli.local.web.site_match import static_public_paths
from run402_cli.wire.errors import BASE_RELEASE_CONFLICT, MISSING_REQUIRED_SECRET

__all__ = ["Target", "compute_target"]

PLAN_TTL = timedelta(hours=24)
SCHEMA_VERSION = "agent-deploy-observability.v1"
_MANIFEST_MAX = 64 * 1024 * 1024


class Target:
    """What a spec does to a project right now: the base, the state it leads to, the new
    migrations, and the plan response buckets."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def _conflict(message: str, **details: Any) -> GatewayError:
    return GatewayError(409, BASE_RELEASE_CONFLICT, message, category="deploy", retryable=False,
                        safe_to_retry=False, details=details, extra={"phase": "plan", "resource": "release"})


def _base(conn: psycopg.Connection, project_id: str, base: dict[str, Any] | None
          ) -> tuple[str, str | None, dict[str, Any]]:
    active = active_release(conn, project_id)
    mode = "release_id" if base and "release_id" in base else (base or {}).get("release", "current")
    if mode == "current":
        return mode, (active[0] if active else None), (active[1] if active else dict(st.EMPTY_STATE))
    if mode == "empty":
        if active:
            raise _conflict("base.release is \"empty\" but the project already has an active release",
                            active_release_id=active[0])
        return mode, None, dict(st.EMPTY_STATE)
    rel = load_release(conn, project_id, base["release_id"])  # type: ignore[index]
    if rel is None:
        raise GatewayError(404, "RELEASE_NOT_FOUND", f"Release {base['release_id']} not found",  # type: ignore[index]
                           category="deploy")
    if not active or active[0] != rel["id"]:
        raise _conflict("base.release_id is not the active release", base_release_id=rel["id"],
                        active_release_id=active[0] if active else None)
    return mode, rel["id"], rel["state"]


def _secret_keys(conn: psycopg.Connection, project_id: str) -> set[str]:
    return {r[0] for r in conn.execute("SELECT key FROM run402_meta.secrets WHERE project_id = %s", (project_id,))}


def _taken_subdomains(conn: psycopg.Connection, project_id: str, names: list[str]) -> list[str]:
    if not names:
        return []
    return sorted(r[0] for r in conn.execute("SELECT name FROM run402_meta.subdomains WHERE name = ANY(%s) "
                                            "AND project_id <> %s", (names, project_id)))


def compute_target(ctx: GatewayContext, conn: psycopg.Connection, project: Project, spec: dict[str, Any]) -> Target:
    """Everything plan and commit need; raises GatewayError for what no commit could fix."""
    mode, base_id, base_state = _base(conn, project.id, spec.get("base"))
    desired = st.desired_state(base_state, spec)
    taken = _taken_subdomains(conn, project.id, st.set_diff(base_state["subdomains"], desired["subdomains"])["added"])
    if taken:
        raise GatewayError(409, "SUBDOMAIN_TAKEN", f"Subdomain {taken[0]!r} belongs to another project",
                           category="deploy", details={"path": "subdomains", "names": taken}, extra={"error": "taken"})
    applied = registry(conn, project.id)
    new, noop = [], []
    for m in spec.get("database", {}).get("migrations", []):
        checksum = migration_checksum(m)
        if m["id"] in applied:
            if applied[m["id"]]["checksum"] != checksum:
                raise GatewayError(400, "MIGRATION_CHECKSUM_MISMATCH",
                                   f"Migration {m['id']!r} was already applied with a different checksum",
                                   category="deploy", safe_to_retry=True,
                                   details={"migration_id": m["id"], "applied_checksum": applied[m["id"]]["checksum"],
                                            "checksum": checksum},
                                   hint="Never edit an applied migration: add a new one with a new id",
                                   next_actions=[{"action": "edit_migration"}], extra={"phase": "plan"})
            noop.append({"id": m["id"], "checksum_hex": checksum})
        else:
            new.append(m)
    expose = spec.get("database", {}).get("expose")
    if expose is not None:
        errors, warnings = validate_expose(expose, None)  # shape now; references again at commit
        if errors:
            raise GatewayError(400, "INVALID_MANIFEST", f"database.expose has {len(errors)} error(s)",
                               category="deploy", details={"path": "database.expose"},
                               extra={"errors": errors, "warnings": warnings})
    check_tier(project.tier, desired["functions"])
    secret_keys = _secret_keys(conn, project.id)
    deletes = spec.get("secrets", {}).get("delete", [])
    assets = asset_slice.plan(conn, project, spec.get("assets"), uploaded_by=project.wallet)
    return Target(assets=assets, base_mode=mode, base_release_id=base_id, base_state=base_state, desired=desired,
                  new_migrations=new, noop_migrations=noop, secret_keys=secret_keys, secret_deletes=deletes,
                  missing_secrets=sorted(set(desired["secrets_required"]) - secret_keys),
                  unknown_deletes=sorted(set(deletes) - secret_keys))


def function_refs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The ContentRefs of the sources a spec's functions slice names."""
    fns = spec.get("functions") or {}
    specs = [*(fns.get("replace") or {}).values(), *((fns.get("patch") or {}).get("set") or {}).values()]
    return [ref for fs in specs for ref in ([fs["source"]] if "source" in fs else list(fs["files"].values()))]


def _refs(spec: dict[str, Any]) -> list[dict[str, Any]]:
    refs: dict[str, int] = {}
    site = spec.get("site", {})
    for ref in [*site.get("replace", {}).values(), *site.get("patch", {}).get("put", {}).values(),
                *(m["sql_ref"] for m in spec.get("database", {}).get("migrations", [])), *function_refs(spec),
                *({"sha256": e["sha256"], "size": e["size_bytes"]} for e in spec.get("assets", {}).get("put", []))]:
        refs.setdefault(ref["sha256"], ref["size"])
    return [{"sha256": s, "size": n} for s, n in refs.items()]


def _warnings(t: Target) -> list[dict[str, Any]]:
    out = []
    if t.base_release_id is None:
        out.append({"code": "FIRST_DEPLOY", "severity": "info", "requires_confirmation": False,
                    "message": "This is the project's first release."})
    if t.missing_secrets:
        out.append({"code": MISSING_REQUIRED_SECRET, "severity": "high", "requires_confirmation": True,
                    "message": f"Required secret(s) not set: {', '.join(t.missing_secrets)}. The commit will fail "
                               "until they are set (run402 secrets set).",
                    "affected": t.missing_secrets})
    if t.unknown_deletes:
        out.append({"code": "SECRET_NOT_FOUND", "severity": "high", "requires_confirmation": True,
                    "message": f"secrets.delete names unknown key(s): {', '.join(t.unknown_deletes)}",
                    "affected": t.unknown_deletes})
    public = [row["public_path"] for row in static_public_paths(t.desired)
              if row["reachability_authority"] != "route_static_alias"]
    out.extend(route_warnings(t.base_state, t.desired, public))
    if t.assets is not None and asset_slice.prune_warning(t.assets):
        out.append(asset_slice.prune_warning(t.assets))
    if t.base_state["site"]["public_paths"].get("mode") == "explicit" and \
            t.desired["site"]["public_paths"].get("mode") == "implicit":
        out.append({"code": "PUBLIC_PATHS_WIDENED", "severity": "warn", "requires_confirmation": True,
                    "message": "Switching public_paths from explicit to implicit makes every site file reachable.",
                    "affected": ["site.public_paths"], "confidence": "high"})
    return out


def plan_response(ctx: GatewayContext, project: Project, spec: dict[str, Any], t: Target, digest: str,
                  plan_id: str | None, operation_id: str | None, port: int | None) -> dict[str, Any]:
    refs = _refs(spec)
    old_files, new_files = t.base_state["site"]["files"], t.desired["site"]["files"]
    present = linked_present(ctx, project.id, [r["sha256"] for r in refs], release_files=old_files)
    changes = st.file_changes(old_files, new_files)
    site = st.site_diff(old_files, new_files, changes=changes)
    routes = st.routes_diff(t.base_state["routes"], t.desired["routes"])
    subdomains = st.set_diff(t.base_state["subdomains"], t.desired["subdomains"])
    existing_deletes = sorted(set(t.secret_deletes) & t.secret_keys)
    secrets = {"added": st.set_diff(t.base_state["secrets_required"], t.desired["secrets_required"])["added"],
               "removed": existing_deletes}
    # Files carried forward from the base release are stored already, named in the spec or not.
    static = st.static_assets_diff(old_files, new_files, present | {f["sha256"] for f in old_files.values()},
                                   changes=changes)
    functions = functions_diff(t.base_state["functions"], t.desired["functions"])
    others = any(t.base_state[k] != t.desired[k] for k in ("expose", "i18n", "checks")) or \
        t.base_state["site"]["public_paths"] != t.desired["site"]["public_paths"]
    is_noop = (t.base_state == t.desired and not t.new_migrations  # JSON values: == is canonical equality
               and not existing_deletes and t.base_release_id is not None
               and (t.assets is None or not t.assets.changed))
    summary = st.summary(site, len(t.new_migrations), routes, subdomains, secrets, others, functions)
    buckets: dict[str, Any] = {}
    if t.assets is not None:
        buckets = asset_slice.plan_buckets(t.assets, port, project.id, present)
        changes = asset_slice.summary(t.assets)
        summary = changes if summary == "no changes" else (f"{changes}; {summary}" if changes else summary)
    return {
        "kind": "plan_response", "schema_version": SCHEMA_VERSION, "plan_id": plan_id, "operation_id": operation_id,
        "base_release_id": t.base_release_id, "manifest_digest": digest, "is_noop": is_noop,
        "summary": summary,
        "expected_events": ["plan.created"] if plan_id else [],
        "missing_content": [{**r, "present": r["sha256"] in present} for r in refs],
        "warnings": _warnings(t), "payment_required": None,
        "migrations": {"new": [{"id": m["id"], "checksum_hex": migration_checksum(m),
                                "transaction": "none" if m.get("transaction") == "none" else "default"}
                               for m in t.new_migrations], "noop": t.noop_migrations},
        "site": site, "functions": functions, "secrets": secrets,
        "subdomains": subdomains, "routes": routes, "static_assets": static, **buckets,
        "cost": t.assets.cost if t.assets is not None else {
            "storage_bytes_added": static["newly_uploaded_cas_bytes"], "storage_bytes_freed": 0,
            "storage_bytes_net": static["newly_uploaded_cas_bytes"], "asset_keys_added": 0,
            "asset_keys_removed": 0, "asset_keys_after_commit": 0, "billable_delta_usd_micros": 0,
            "payment_required": False},
    }


def _manifest_spec(ctx: GatewayContext, project: Project, ref: dict[str, Any]) -> dict[str, Any]:
    """The `manifest_ref` escape hatch: the spec itself is a CAS object the project uploaded."""
    if ref["sha256"] not in linked_present(ctx, project.id, [ref["sha256"]]) or ref["size"] > _MANIFEST_MAX:
        raise GatewayError(400, "MANIFEST_NOT_FOUND", "manifest_ref names content this project has not uploaded",
                           category="deploy", details={"sha256": ref["sha256"]},
                           next_actions=[{"action": "upload_content"}])
    try:
        spec = json.loads(Cas(ctx.cas_dir).path(ref["sha256"]).read_bytes())
    except ValueError:
        raise GatewayError(400, "INVALID_SPEC", "manifest_ref content is not JSON", category="deploy") from None
    spec = validate_spec(spec)
    if spec["project"] != project.id:
        raise GatewayError(400, "INVALID_SPEC", "manifest_ref spec names another project", category="deploy",
                           details={"path": "project"})
    return spec


def _existing(conn: psycopg.Connection, project_id: str, digest: str, t: Target, key: str | None) -> tuple | None:
    return conn.execute(
        "SELECT p.id, p.operation_id FROM run402_meta.deploy_plans p JOIN run402_meta.deploy_operations o "
        "ON o.id = p.operation_id WHERE p.project_id = %s AND p.manifest_digest = %s AND p.base_mode = %s "
        "AND p.base_release_id IS NOT DISTINCT FROM %s AND p.idempotency_key IS NOT DISTINCT FROM %s "
        "AND p.expires_at > now() AND (%s OR o.status NOT IN ('failed', 'rolled_back')) "
        "ORDER BY p.created_at DESC LIMIT 1",
        (project_id, digest, t.base_mode, t.base_release_id, key, key is not None)).fetchone()


def _plan_sync(request: Request, body: Any, dry_run: bool) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    spec, manifest_ref, key = validate_body(body, dry_run=dry_run)
    wallet = wallet_from_siwx(request, ctx)
    project = owned_project(ctx, wallet, spec["project"])
    if manifest_ref is not None:
        spec = _manifest_spec(ctx, project, manifest_ref)
    digest = hashlib.sha256(canonical_json(spec).encode()).hexdigest()
    with ctx.pool.connection() as conn:
        t = compute_target(ctx, conn, project, spec)
        if dry_run:
            return JSONResponse(plan_response(ctx, project, spec, t, digest, None, None, request.url.port))
        with conn.transaction():
            hold_deploy_lock(conn, project.id, "plan")
            found = _existing(conn, project.id, digest, t, key)
            if found:
                plan_id, op_id = found
            else:
                plan_id, op_id = new_id("plan"), new_id("op")
                conn.execute(
                    "INSERT INTO run402_meta.deploy_plans (id, project_id, operation_id, wallet, base_mode, "
                    "base_release_id, manifest_digest, idempotency_key, spec, expires_at) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                    (plan_id, project.id, op_id, wallet, t.base_mode, t.base_release_id, digest, key,
                     json.dumps(spec), datetime.now(timezone.utc) + PLAN_TTL))
                conn.execute("INSERT INTO run402_meta.deploy_operations (id, project_id, plan_id, status, phase, "
                             "base_release_id) VALUES (%s, %s, %s, 'planning', 'plan', %s)",
                             (op_id, project.id, plan_id, t.base_release_id))
                add_event(conn, op_id, project.id, {"type": "plan.created", "plan_id": plan_id,
                                                    "manifest_digest": digest})
    return JSONResponse(plan_response(ctx, project, spec, t, digest, plan_id, op_id, request.url.port))


async def _plan(request: Request) -> JSONResponse:
    dry_run = request.query_params.get("dry_run", "").lower() in ("true", "1")
    body = await read_json(request)
    return await run_in_threadpool(_plan_sync, request, body, dry_run)

