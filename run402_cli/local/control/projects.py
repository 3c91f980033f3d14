"""Projects: provision, delete, and the admin endpoints (sql, schema, usage).

Isolation model. Each project gets a schema `pNNNN` and its own roles:
    pNNNN_owner          NOLOGIN, owns the schema and everything the project's SQL creates
    pNNNN_sql            LOGIN (password known only to the gateway), NOINHERIT member of _owner;
                         `projects sql` connects as it and switches to _owner. `RESET ROLE` only
                         falls back to _sql, which can do nothing but connect.
    pNNNN_anon / _authenticated / _service
                         what PostgREST switches to for this project's keys (granted nothing
                         until the expose manifest says so; _service has BYPASSRLS)
None is a superuser; none is a member of another project's roles; the gateway's metadata
schema is not granted to any of them.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.control.callers import Project, mint_key, project_from_service_key, wallet_from_siwx
from run402_cli.local.runtime.db import AUTHENTICATOR, refresh_postgrest
from run402_cli.local.errors import GatewayError
from run402_cli.local.http_body import read_json
from run402_cli.local.control.ledger import charge
from run402_cli.local.control.tiers import TIERS, active_tier, subscribe
from run402_cli.local.storage.store import usage as asset_usage
from run402_cli.wire.times import iso as _iso

__all__: list[str] = []  # handlers only: local/routes.py lists them

_NAME_BAD = re.compile(r"[\x00-\x1f\x7f]")
_ROLE_SUFFIXES = ("anon", "authenticated", "service", "sql", "owner")


def _ident(*parts: str) -> sql.Identifier:
    return sql.Identifier("_".join(parts))


def _create_project(conn: psycopg.Connection, wallet: str, tier: str, name: str | None) -> dict[str, Any]:
    """All of it in the caller's transaction: roles, schema, row, PostgREST config."""
    (n,) = conn.execute("SELECT nextval('run402_meta.schema_slot_seq')").fetchone()
    # PostgreSQL 16+: a membership nobody can SET ROLE into (see runtime/tenant_guard.sql).
    no_set = " WITH SET FALSE" if conn.info.server_version >= 160000 else ""
    slot = f"p{n:04d}"
    project_id = f"prj_{int(time.time())}_{n}"
    sql_password = secrets.token_urlsafe(32)
    owner, sqlrole = _ident(slot, "owner"), _ident(slot, "sql")
    anon, authed, service = _ident(slot, "anon"), _ident(slot, "authenticated"), _ident(slot, "service")
    schema = sql.Identifier(slot)
    for stmt in (
        # BYPASSRLS: `projects sql` acts for the project's operator (as the service key does), so the
        # policies that FORCE ROW LEVEL SECURITY puts on the owner must not hide rows from it.
        sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT BYPASSRLS").format(owner),
        sql.SQL("CREATE ROLE {} LOGIN NOINHERIT PASSWORD {}").format(sqlrole, sql.Literal(sql_password)),
        sql.SQL("GRANT {} TO {}").format(owner, sqlrole),
        sql.SQL("GRANT CONNECT ON DATABASE run402 TO {}").format(sqlrole),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(anon),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(authed),
        sql.SQL("CREATE ROLE {} NOLOGIN BYPASSRLS").format(service),
        sql.SQL("GRANT {}, {}, {} TO {}").format(anon, authed, service, sql.Identifier(AUTHENTICATOR)),
        # The marker the event triggers of runtime/tenant_guard.sql look for: "this is tenant code".
        sql.SQL("GRANT run402_tenant TO {}, {}, {}, {}, {}" + no_set).format(owner, sqlrole, anon, authed, service),
        sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, owner),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}, {}").format(schema, anon, authed, service),
        # Functions are dark by default too: nobody but the owner may EXECUTE until exposed. PUBLIC's
        # EXECUTE is a global default a per-schema rule cannot remove; the event trigger in
        # runtime/tenant_guard.sql also revokes it from each new function.
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC").format(owner),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT ALL ON TABLES TO {}")
        .format(owner, schema, service),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT ALL ON SEQUENCES TO {}")
        .format(owner, schema, service),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT EXECUTE ON FUNCTIONS TO {}")
        .format(owner, schema, service),
    ):
        conn.execute(stmt)
    jwt_secret = secrets.token_urlsafe(48)
    conn.execute(
        "INSERT INTO run402_meta.projects (id, name, wallet, tier, schema_slot, jwt_secret, sql_password) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (project_id, name, wallet, tier, slot, jwt_secret, sql_password))
    refresh_postgrest(conn)
    project = Project(project_id, name, wallet, tier, slot, jwt_secret, sql_password, "active", 0, datetime.now())
    return {"project_id": project_id, "anon_key": mint_key(project, "anon"),
            "service_key": mint_key(project, "service_role"), "schema_slot": slot}


async def _provision(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    body = await read_json(request, empty={}, want_object=True)
    tier = body.get("tier") or "prototype"
    if tier not in TIERS:
        raise GatewayError(400, "INVALID_TIER", f"Unknown tier {tier!r}", details={"allowed": list(TIERS)})
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 128 or _NAME_BAD.search(name)):
        raise GatewayError(400, "BAD_PROJECT_NAME", "name must be 1-128 characters without control characters")
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_provision_sync, request, ctx, tier, name)


def _provision_sync(request: Request, ctx: Any, tier: str, name: str | None) -> JSONResponse:
    wallet = wallet_from_siwx(request, ctx)
    with ctx.pool.connection() as conn:
        current, _s, _e = active_tier(conn, wallet)
    if current is not None:
        with ctx.pool.connection() as conn, conn.transaction():
            created = _create_project(conn, wallet, current, name)
        ctx.schema_changed()
        return JSONResponse(created, status_code=201)

    # No active tier: the provision request itself is the paid surface; paying subscribes the
    # wallet to the requested tier and creates the project in the same transaction.
    def grant(conn: psycopg.Connection, payer: str) -> dict[str, Any]:
        subscribe(conn, wallet, tier)
        return _create_project(conn, wallet, tier, name)

    result, _payer = charge(request, ctx, amount=TIERS[tier]["price_micros"], kind="tier_" + tier,
                            description=f"Run402 {tier} tier + project", grant=grant)
    ctx.schema_changed()
    return JSONResponse(result, status_code=201)


def _delete(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    slot = project.schema_slot
    with ctx.pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                     (f"{slot}_sql",))
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(slot)))
        for suffix in _ROLE_SUFFIXES:
            role = _ident(slot, suffix)
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
            conn.execute(sql.SQL("DROP ROLE {}").format(role))
        for table in ("refresh_tokens", "magic_links", "mailbox", "users", "auth_settings", "expose_manifests",
                      # deploys (deploy/content.py, deploy/apply_*.py, web/subdomains.py); CAS objects stay: they are shared
                      "subdomains", "active_releases", "releases", "deploy_events", "deploy_operations",
                      "deploy_plans", "migrations_applied", "content_uploads", "content_plans", "cas_refs",
                      "secrets", "assets", "asset_versions", "asset_variants", "asset_revisions"):
            conn.execute(sql.SQL("DELETE FROM run402_meta.{} WHERE project_id = %s").format(sql.Identifier(table)),
                         (project.id,))
        conn.execute("UPDATE run402_meta.projects SET status = 'purged', deleted_at = now() WHERE id = %s",
                     (project.id,))
        refresh_postgrest(conn)
    ctx.schema_changed()
    return JSONResponse({"status": "purged", "project_id": project.id})


_SCHEMA_SQL = """
SELECT c.relname, c.relrowsecurity,
  (SELECT coalesce(json_agg(json_build_object('name', a.attname,
            'type', format_type(a.atttypid, a.atttypmod), 'nullable', NOT a.attnotnull,
            'default_value', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]')
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT coalesce(json_agg(json_build_object('name', k.conname, 'type',
            CASE k.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'f' THEN 'FOREIGN KEY' WHEN 'u' THEN 'UNIQUE'
                           WHEN 'c' THEN 'CHECK' ELSE k.contype::text END,
            'definition', pg_get_constraintdef(k.oid)) ORDER BY k.conname), '[]')
     FROM pg_constraint k WHERE k.conrelid = c.oid),
  (SELECT coalesce(json_agg(json_build_object('name', p.policyname, 'command', p.cmd,
            'using_expression', p.qual, 'check_expression', p.with_check) ORDER BY p.policyname), '[]')
     FROM pg_policies p WHERE p.schemaname = n.nspname AND p.tablename = c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""


def _schema(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    with ctx.pool.connection() as conn:
        rows = conn.execute(_SCHEMA_SQL, (project.schema_slot,)).fetchall()
    return JSONResponse({"schema": project.schema_slot, "tables": [
        {"name": r[0], "columns": r[2], "constraints": r[3], "rls_enabled": r[1], "policies": r[4]}
        for r in rows]})


def storage_bytes(conn: psycopg.Connection, slot: str) -> int:
    (size,) = conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r','m','p')",
        (slot,)).fetchone()
    return int(size)


def _usage(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    with ctx.pool.connection() as conn:
        tier, _s, expires = active_tier(conn, project.wallet)
        database = storage_bytes(conn, project.schema_slot)
        asset_bytes, asset_keys = asset_usage(conn, project.id)
        (calls,) = conn.execute("SELECT api_calls FROM run402_meta.projects WHERE id = %s",
                                (project.id,)).fetchone()
    limits = TIERS.get(tier or project.tier, TIERS["prototype"])
    return JSONResponse({
        "project_id": project.id, "tier": tier or project.tier, "api_calls": calls,
        "api_calls_limit": limits["api_calls"], "storage_bytes": database + asset_bytes,
        "storage_limit_bytes": limits["storage_mb"] * 1024 * 1024,
        # what the one storage figure is made of: the database, and the blobs it keeps serving
        "database_bytes": database, "asset_bytes": asset_bytes, "asset_keys": asset_keys,
        "status": "active" if tier else "past_due", "lease_expires_at": _iso(expires)})

