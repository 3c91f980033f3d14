"""The expose manifest, applied for real: grants, row-level security, policies, owner
triggers, views, RPC grants.

Convergent: each apply first resets every item the previous manifest or this one names (revoke
from the project's anon/authenticated roles, drop our `run402_*` policies and owner trigger),
then builds exactly what this manifest says, in one transaction. Applying twice leaves the same
catalog; an item dropped from the manifest goes dark again.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg import sql
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.control.callers import Project, project_from_service_key, wallet_from_siwx
from run402_cli.local.context import GatewayContext
from run402_cli.local.runtime.db import notify_postgrest
from run402_cli.local.errors import GatewayError, database_unreachable
from run402_cli.local.data.expose_validate import Catalog, catalog_from_sql, normalize_signature, validate
from run402_cli.local.http_body import read_json

__all__ = ["apply_manifest", "custom_policies_of", "introspect_catalog", "run_custom_policies"]

_POLICY_PREFIX = "run402_"


def introspect_catalog(conn: psycopg.Connection, slot: str) -> Catalog:
    cat = Catalog()
    for table, column, typ in conn.execute(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = %s AND c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped",
        (slot,),
    ).fetchall():
        cat.tables.setdefault(table, {})[column] = typ
    cat.views = {r[0] for r in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('v','m')", (slot,)).fetchall()}
    for name, args in conn.execute(
        "SELECT p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.prokind = 'f'",
        (slot,)).fetchall():
        cat.functions.setdefault(name, []).append(normalize_signature(args))
    return cat


def _roles(slot: str, names: list[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(f"{slot}_{n}") for n in names)


def _reset_table(conn: psycopg.Connection, slot: str, table: str) -> None:
    t = sql.Identifier(slot, table)
    exists = conn.execute("SELECT to_regclass(%s)", (f'"{slot}"."{table}"',)).fetchone()[0]
    if exists is None:
        return
    conn.execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(t, _roles(slot, ["anon", "authenticated"])))
    for (pol,) in conn.execute("SELECT policyname FROM pg_policies WHERE schemaname = %s AND tablename = %s "
                               "AND policyname LIKE 'run402\\_%%'", (slot, table)).fetchall():
        conn.execute(sql.SQL("DROP POLICY {} ON {}").format(sql.Identifier(pol), t))
    conn.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(f"{table}_set_owner"), t))
    conn.execute(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(slot, f"{table}_set_owner_fn")))
    for (seq,) in _owned_sequences(conn, slot, table):
        conn.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(
            sql.Identifier(slot, seq), _roles(slot, ["anon", "authenticated"])))


def _owned_sequences(conn: psycopg.Connection, slot: str, table: str) -> list[tuple[str]]:
    return conn.execute(
        "SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = %s AND t.relname = %s AND d.deptype IN ('a', 'i')", (slot, table)).fetchall()


def _policy(conn: psycopg.Connection, slot: str, table: str, name: str, command: str, roles: list[str],
            using: str | None, check: str | None) -> None:
    q = sql.SQL("CREATE POLICY {} ON {} FOR {} TO {}").format(
        sql.Identifier(_POLICY_PREFIX + name), sql.Identifier(slot, table), sql.SQL(command), _roles(slot, roles))
    if using is not None:
        q = q + sql.SQL(" USING ({})").format(sql.SQL(using))
    if check is not None:
        q = q + sql.SQL(" WITH CHECK ({})").format(sql.SQL(check))
    conn.execute(q)


def _apply_table(conn: psycopg.Connection, slot: str, item: dict[str, Any], cat: Catalog) -> None:
    table = item["name"]
    t = sql.Identifier(slot, table)
    conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t))
    conn.execute(sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(t))
    if not item.get("expose"):
        return
    policy = item["policy"]
    anon_auth = ["anon", "authenticated"]
    writers = anon_auth if policy == "public_read_write_UNRESTRICTED" else ["authenticated"]
    readers = ["authenticated"] if policy == "user_owns_rows" else anon_auth
    if policy == "custom":
        readers = writers = anon_auth
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(t, _roles(slot, readers)))
    conn.execute(sql.SQL("GRANT INSERT, UPDATE, DELETE ON {} TO {}").format(t, _roles(slot, writers)))
    for (seq,) in _owned_sequences(conn, slot, table):
        conn.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(
            sql.Identifier(slot, seq), _roles(slot, writers)))
    if policy == "user_owns_rows":
        col = item["owner_column"]
        is_uuid = cat.tables.get(table, {}).get(col) == "uuid"
        c = sql.Identifier(col).as_string(conn)
        cond = f"{c} = auth.uid()" if is_uuid else f"{c}::text = auth.uid()::text"
        _policy(conn, slot, table, "owner_rows", "ALL", ["authenticated"], cond, cond)
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
            sql.Identifier(f"{table}_{col}_owner_idx"), t, sql.Identifier(col)))
        if item.get("force_owner_on_insert"):
            fn = sql.Identifier(slot, f"{table}_set_owner_fn")
            value = "auth.uid()" if is_uuid else "auth.uid()::text"
            conn.execute(sql.SQL(
                "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF auth.uid() IS NOT NULL THEN NEW.{} := " + value + "; END IF; RETURN NEW; END $$"
            ).format(fn, sql.Identifier(col)))
            conn.execute(sql.SQL("ALTER FUNCTION {}() OWNER TO {}").format(fn, sql.Identifier(f"{slot}_owner")))
            conn.execute(sql.SQL("CREATE TRIGGER {} BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
                sql.Identifier(f"{table}_set_owner"), t, fn))
    elif policy == "public_read_authenticated_write":
        _policy(conn, slot, table, "public_read", "SELECT", anon_auth, "true", None)
        _policy(conn, slot, table, "auth_insert", "INSERT", ["authenticated"], None, "true")
        _policy(conn, slot, table, "auth_update", "UPDATE", ["authenticated"], "true", "true")
        _policy(conn, slot, table, "auth_delete", "DELETE", ["authenticated"], "true", None)
    elif policy == "public_read_write_UNRESTRICTED":
        _policy(conn, slot, table, "unrestricted", "ALL", anon_auth, "true", "true")
    # policy == "custom": the project's own CREATE POLICY statements run in a tenant session, not
    # here (see run_custom_policies); this transaction only dropped their previous versions.


def _apply_view(conn: psycopg.Connection, slot: str, view: dict[str, Any]) -> None:
    v = sql.Identifier(slot, view["name"])
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in view["select"])
    q = sql.SQL("CREATE VIEW {} WITH (security_invoker = true) AS SELECT {} FROM {}").format(
        v, cols, sql.Identifier(slot, view["base"]))
    if view.get("filter"):
        # The condition as PostgreSQL parsed it during validation: one expression, nothing more.
        from run402_cli.local.data.tenant_sql import view_filter

        condition = view_filter(view["filter"])
        if condition is None:
            raise GatewayError(400, "INVALID_MANIFEST", f"views[{view['name']}].filter is not one SQL condition")
        q = q + sql.SQL(" WHERE {}").format(sql.SQL(condition))
    conn.execute(q)
    conn.execute(sql.SQL("ALTER VIEW {} OWNER TO {}").format(v, sql.Identifier(f"{slot}_owner")))
    if view.get("expose", True):
        conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(v, _roles(slot, ["anon", "authenticated"])))


def _function_oids(conn: psycopg.Connection, slot: str, rpc: dict[str, Any]) -> list[int]:
    rows = conn.execute(
        "SELECT p.oid, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.proname = %s",
        (slot, rpc["name"])).fetchall()
    if rpc.get("signature") is None:
        return [r[0] for r in rows]
    want = normalize_signature(rpc["signature"])
    return [r[0] for r in rows if normalize_signature(r[1]) == want]


def _set_rpc_grants(conn: psycopg.Connection, slot: str, rpc: dict[str, Any], grant: bool) -> None:
    for oid in _function_oids(conn, slot, rpc):
        (ident,) = conn.execute("SELECT %s::regprocedure::text", (oid,)).fetchone()
        fn = sql.SQL(ident)  # regprocedure's own text is a correctly quoted signature
        conn.execute(sql.SQL("REVOKE EXECUTE ON FUNCTION {} FROM PUBLIC, {}").format(
            fn, _roles(slot, ["anon", "authenticated"])))
        roles = [r for r in rpc.get("grant_to", []) if r in ("anon", "authenticated")]
        if grant and roles:
            conn.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(fn, _roles(slot, roles)))


def custom_policies_of(manifest: Any, slot: str) -> list[tuple[str, str, str]]:
    """(table, policy name, statement) for every `custom` table of a *valid* manifest: the
    statements as rebuilt from PostgreSQL's parse tree (tenant_sql.custom_policies)."""
    from run402_cli.local.data.tenant_sql import custom_policies, policy_names

    out: list[tuple[str, str, str]] = []
    for item in (manifest.get("tables", []) if isinstance(manifest, dict) else []):
        if isinstance(item, dict) and item.get("policy") == "custom" and isinstance(item.get("custom_sql"), str):
            statements, errors = custom_policies(item["custom_sql"], slot, item["name"])
            if not errors:
                out.extend(zip([item["name"]] * len(statements), policy_names(statements), statements))
    return out


def run_custom_policies(ctx: GatewayContext, project: Project, policies: list[tuple[str, str, str]], *,
                        dry_run: bool) -> None:
    """Create a manifest's custom policies as the project itself (a tenant session: its owner
    role, never the gateway's superuser), replacing same-named ones. `dry_run` rolls back: run
    before the manifest's own transaction, it catches a bad policy before anything changes."""
    from run402_cli.local.data.tenant_sql import tenant_session

    if not policies:
        return
    slot = project.schema_slot
    with tenant_session(ctx, project) as db:
        for table, name, statement in policies:
            db.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(
                sql.Identifier(name), sql.Identifier(slot, table)))
            db.execute(statement)
        if dry_run:
            db.rollback()
        else:
            db.commit()


def _names(manifest: dict[str, Any], key: str) -> list[str]:
    return [x["name"] for x in manifest.get(key, []) if isinstance(x, dict) and "name" in x]


def apply_manifest(conn: psycopg.Connection, project: Project, manifest: dict[str, Any]) -> dict[str, Any]:
    """Inside the caller's transaction. Raises GatewayError(400) with every error when invalid."""
    slot = project.schema_slot
    cat = introspect_catalog(conn, slot)
    # A view this manifest (re)creates must not count as "existing" for its own name check.
    errors, warnings = validate(manifest, cat)
    if errors:
        raise GatewayError(400, "INVALID_MANIFEST", f"The manifest has {len(errors)} error(s)",
                           category="deploy", extra={"errors": errors, "warnings": warnings},
                           next_actions=[{"action": "edit_request"}])
    row = conn.execute("SELECT manifest FROM run402_meta.expose_manifests WHERE project_id = %s",
                       (project.id,)).fetchone()
    previous: dict[str, Any] = row[0] if row else {}
    # Views go first: they depend on the tables whose grants are reset.
    for name in set(_names(previous, "views")) | set(_names(manifest, "views")):
        conn.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(slot, name)))
    for rpc in previous.get("rpcs", []):
        _set_rpc_grants(conn, slot, rpc, grant=False)
    for name in set(_names(previous, "tables")) | set(_names(manifest, "tables")):
        _reset_table(conn, slot, name)
    # Custom policies of the previous manifest go too (this one's are re-created after it commits).
    for table, name, _statement in custom_policies_of(previous, slot) + custom_policies_of(manifest, slot):
        if conn.execute("SELECT to_regclass(%s)", (f'"{slot}"."{table}"',)).fetchone()[0] is not None:
            conn.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(
                sql.Identifier(name), sql.Identifier(slot, table)))
    for item in manifest.get("tables", []):
        _apply_table(conn, slot, item, cat)
    for view in manifest.get("views", []):
        _apply_view(conn, slot, view)
    for rpc in manifest.get("rpcs", []):
        _set_rpc_grants(conn, slot, rpc, grant=True)
    conn.execute(
        "INSERT INTO run402_meta.expose_manifests (project_id, manifest) VALUES (%s, %s) "
        "ON CONFLICT (project_id) DO UPDATE SET manifest = EXCLUDED.manifest, applied_at = now()",
        (project.id, json.dumps(manifest)))
    notify_postgrest(conn)
    dropped = {k: sorted(set(_names(previous, k)) - set(_names(manifest, k))) for k in ("tables", "views", "rpcs")}
    applied = {k: _names(manifest, k) for k in ("tables", "views", "rpcs")}
    return {"status": "ok", "project_id": project.id, "applied": applied, "dropped": dropped,
            "warnings": warnings}


async def _json(request: Request) -> Any:
    return await read_json(request)


def _sync_apply(request: Request, ctx: GatewayContext, manifest: Any) -> JSONResponse:
    project = project_from_service_key(request, ctx, request.path_params["id"])
    if isinstance(manifest, dict):
        manifest.pop("$schema", None)
    policies = custom_policies_of(manifest, project.schema_slot)
    try:
        run_custom_policies(ctx, project, policies, dry_run=True)
        with ctx.pool.connection() as conn, conn.transaction():
            result = apply_manifest(conn, project, manifest)
        run_custom_policies(ctx, project, policies, dry_run=False)
    except psycopg.Error as exc:
        if database_unreachable(exc):
            raise
        raise GatewayError(400, "EXPOSE_APPLY_FAILED", (exc.diag.message_primary or str(exc)).strip(),
                           category="deploy", details={"sqlstate": exc.sqlstate},
                           extra={"mutation_state": "rolled_back"}) from None
    ctx.schema_changed()
    return JSONResponse(result)


async def _apply(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    manifest = await _json(request)
    return await run_in_threadpool(_sync_apply, request, request.app.state.ctx, manifest)


def _introspect_manifest(conn: psycopg.Connection, slot: str) -> dict[str, Any]:
    """What is exposed right now, when no manifest was ever applied."""
    tables = []
    for (name,) in conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                "WHERE n.nspname = %s AND c.relkind IN ('r','p') ORDER BY 1", (slot,)).fetchall():
        granted = conn.execute(
            "SELECT count(*) FROM information_schema.role_table_grants WHERE table_schema = %s "
            "AND table_name = %s AND grantee = ANY(%s)", (slot, name, [f"{slot}_anon", f"{slot}_authenticated"])
        ).fetchone()[0]
        tables.append({"name": name, "expose": bool(granted), **({"policy": "custom"} if granted else {})})
    return {"version": "1", "tables": tables, "views": [], "rpcs": []}


def _get(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    project = project_from_service_key(request, ctx, request.path_params["id"])
    with ctx.pool.connection() as conn:
        row = conn.execute("SELECT manifest FROM run402_meta.expose_manifests WHERE project_id = %s",
                           (project.id,)).fetchone()
        if row:
            manifest, source = row[0], "applied"
        else:
            manifest, source = _introspect_manifest(conn, project.schema_slot), "introspected"
    manifest = {"version": "1", "tables": [], "views": [], "rpcs": [], **manifest}
    return JSONResponse({"status": "ok", "project_id": project.id, "source": source, "manifest": manifest})


def _validation(manifest: Any, migration_sql: Any, live: Catalog | None) -> dict[str, Any]:
    if migration_sql is not None and not isinstance(migration_sql, str):
        raise GatewayError(400, "BAD_REQUEST", "migration_sql must be a string")
    cat = live
    if migration_sql:
        parsed = catalog_from_sql(migration_sql)
        cat = parsed if cat is None else cat.merge(parsed)
    errors, warnings = validate(manifest, cat)
    return {"status": "ok", "hasErrors": bool(errors), "errors": errors, "warnings": warnings}


def _body_parts(body: Any) -> tuple[Any, Any]:
    if not isinstance(body, dict) or "manifest" not in body:
        raise GatewayError(400, "BAD_REQUEST", "Body must be {manifest: object, migration_sql?: string}")
    return body["manifest"], body.get("migration_sql")


async def _validate_project(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    manifest, migration_sql = _body_parts(await _json(request))

    def work() -> JSONResponse:
        ctx = request.app.state.ctx
        project = project_from_service_key(request, ctx, request.path_params["id"])
        with ctx.pool.connection() as conn:
            live = introspect_catalog(conn, project.schema_slot)
        return JSONResponse(_validation(manifest, migration_sql, live))

    return await run_in_threadpool(work)


async def _validate_projectless(request: Request) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    manifest, migration_sql = _body_parts(await _json(request))
    await run_in_threadpool(wallet_from_siwx, request, request.app.state.ctx)
    return JSONResponse(_validation(manifest, migration_sql, None))

