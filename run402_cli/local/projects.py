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

import json
import re
import secrets
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from run402_cli.local.auth import Project, mint_key, project_from_service_key, wallet_from_siwx
from run402_cli.local.db import AUTHENTICATOR, refresh_postgrest
from run402_cli.local.errors import GatewayError
from run402_cli.local.ledger import charge
from run402_cli.local.tiers import TIERS, _iso, active_tier, subscribe

__all__ = ["routes"]

_NAME_BAD = re.compile(r"[\x00-\x1f\x7f]")
# Defense in depth only (the roles are the real fence); the list is the hosted API's.
_BLOCKED = [
    (re.compile(r"\bcreate\s+extension\b", re.I), "CREATE EXTENSION"),
    (re.compile(r"\bcopy\b[\s\S]*\bprogram\b", re.I), "COPY ... PROGRAM"),
    (re.compile(r"\balter\s+system\b", re.I), "ALTER SYSTEM"),
    (re.compile(r"\bset\s+(?:session\s+|local\s+)?search_path\b", re.I), "SET search_path"),
    (re.compile(r"\b(?:create|drop|alter)\s+schema\b", re.I), "CREATE/DROP SCHEMA"),
    (re.compile(r"\bgrant\b", re.I), "GRANT"),
    (re.compile(r"\brevoke\b", re.I), "REVOKE"),
    (re.compile(r"\b(?:create|drop|alter)\s+(?:role|user)\b", re.I), "CREATE/DROP ROLE"),
    (re.compile(r"\bset\s+(?:session\s+)?(?:role|session\s+authorization)\b", re.I), "SET ROLE"),
]
_STATEMENT_TIMEOUT = "30s"
_ROLE_SUFFIXES = ("anon", "authenticated", "service", "sql", "owner")


def _ident(*parts: str) -> sql.Identifier:
    return sql.Identifier("_".join(parts))


def _create_project(conn: psycopg.Connection, wallet: str, tier: str, name: str | None) -> dict[str, Any]:
    """All of it in the caller's transaction: roles, schema, row, PostgREST config."""
    (n,) = conn.execute("SELECT nextval('run402_meta.schema_slot_seq')").fetchone()
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
        sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(sqlrole, sql.Literal(_STATEMENT_TIMEOUT)),
        sql.SQL("GRANT CONNECT ON DATABASE run402 TO {}").format(sqlrole),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(anon),
        sql.SQL("CREATE ROLE {} NOLOGIN").format(authed),
        sql.SQL("CREATE ROLE {} NOLOGIN BYPASSRLS").format(service),
        sql.SQL("GRANT {}, {}, {} TO {}").format(anon, authed, service, sql.Identifier(AUTHENTICATOR)),
        sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, owner),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}, {}").format(schema, anon, authed, service),
        # Functions are dark by default too: nobody but the owner may EXECUTE until exposed.
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC")
        .format(owner, schema),
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
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise GatewayError(400, "BAD_JSON", "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "BAD_JSON", "Request body must be a JSON object")
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
                      # deploys (content.py, apply_*.py, subdomains.py); CAS objects stay: they are shared
                      "subdomains", "active_releases", "releases", "deploy_events", "deploy_operations",
                      "deploy_plans", "migrations_applied", "content_uploads", "content_plans", "cas_refs",
                      "secrets"):
            conn.execute(sql.SQL("DELETE FROM run402_meta.{} WHERE project_id = %s").format(sql.Identifier(table)),
                         (project.id,))
        conn.execute("UPDATE run402_meta.projects SET status = 'purged', deleted_at = now() WHERE id = %s",
                     (project.id,))
        refresh_postgrest(conn)
    ctx.schema_changed()
    return JSONResponse({"status": "purged", "project_id": project.id})


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


async def _read_sql(request: Request) -> tuple[str, list[Any] | None]:
    raw = await request.body()
    if "application/json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(raw)
        except ValueError:
            raise GatewayError(400, "BAD_JSON", "Request body is not valid JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("sql"), str):
            raise GatewayError(400, "BAD_REQUEST", "Body must be {sql: string, params?: array}")
        params = body.get("params")
        if params is not None and not isinstance(params, list):
            raise GatewayError(400, "BAD_REQUEST", "params must be an array")
        return body["sql"], params or None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        raise GatewayError(400, "BAD_REQUEST", "SQL must be UTF-8 text") from None


async def _sql(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    query, params = await _read_sql(request)
    if not query.strip():
        raise GatewayError(400, "BAD_REQUEST", "Empty SQL")
    for pattern, label in _BLOCKED:
        if pattern.search(query):
            raise GatewayError(400, "SQL_BLOCKED", f"Blocked SQL pattern: {label}",
                               hint="Use the expose manifest (projects apply-expose) for grants and policies")
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_sql_sync, request, ctx, query, params)


def _sql_sync(request: Request, ctx: Any, query: str, params: list[Any] | None) -> JSONResponse:
    project = project_from_service_key(request, ctx, request.path_params["id"])
    slot = project.schema_slot
    try:
        with psycopg.connect(ctx.conninfo(user=f"{slot}_sql", password=project.sql_password)) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(_ident(slot, "owner")))
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(slot)))
            cur = psycopg.RawCursor(conn) if params else conn.cursor()
            cur.execute(query, params)
            rows: list[dict[str, Any]] = []
            rowcount = cur.rowcount
            while True:  # several statements: report the last one's result
                if cur.description is not None:
                    names = [c.name for c in cur.description]
                    rows = [dict(zip(names, (_jsonable(v) for v in r))) for r in cur.fetchall()]
                else:
                    rows = []
                rowcount = cur.rowcount
                if not cur.nextset():
                    break
            conn.commit()
    except psycopg.Error as exc:
        diag = exc.diag
        details = {k: v for k, v in {"sqlstate": exc.sqlstate, "detail": diag.message_detail,
                                     "hint": diag.message_hint, "position": diag.statement_position}.items() if v}
        raise GatewayError(400, "SQL_ERROR", (diag.message_primary or str(exc)).strip(),
                           details=details) from None
    _schema_may_have_changed(ctx)
    return JSONResponse({"status": "ok", "schema": slot, "rows": rows, "rowCount": max(rowcount, 0)})


def _schema_may_have_changed(ctx: Any) -> None:
    """Project SQL may have created or altered tables: PostgREST must reload its cache."""
    with ctx.pool.connection() as conn:
        conn.execute("NOTIFY pgrst, 'reload schema'")
    ctx.schema_changed()


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
        used = storage_bytes(conn, project.schema_slot)
        (calls,) = conn.execute("SELECT api_calls FROM run402_meta.projects WHERE id = %s",
                                (project.id,)).fetchone()
    limits = TIERS.get(tier or project.tier, TIERS["prototype"])
    return JSONResponse({
        "project_id": project.id, "tier": tier or project.tier, "api_calls": calls,
        "api_calls_limit": limits["api_calls"], "storage_bytes": used,
        "storage_limit_bytes": limits["storage_mb"] * 1024 * 1024,
        "status": "active" if tier else "past_due", "lease_expires_at": _iso(expires)})


routes = [
    Route("/projects/v1", _provision, methods=["POST"]),
    Route("/projects/v1/{id}", _delete, methods=["DELETE"]),
    Route("/projects/v1/admin/{id}/sql", _sql, methods=["POST"]),
    Route("/projects/v1/admin/{id}/schema", _schema, methods=["GET"]),
    Route("/projects/v1/admin/{id}/usage", _usage, methods=["GET"]),
]
