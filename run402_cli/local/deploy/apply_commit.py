"""`POST /apply/v1/plans/:id/commit` and `POST /apply/v1/operations/:id/resume`: run an
operation to the end, synchronously.

validate -> stage -> migrate -> activate, one commit per project at a time (advisory lock).
- Migrations run on the project's own login role (`<slot>_sql`, then SET ROLE <slot>_owner),
  never on a superuser session, so their SQL cannot RESET ROLE into the gateway. All new
  migrations of a deploy run in ONE transaction; the expose manifest is validated against the
  catalog *inside* it. Any failure rolls every one of them back and nothing is activated.
- The migration transaction and the activation transaction are on different connections. The
  registry rows are written (unconfirmed, with the migration transaction's xid) just before it
  commits; `txid_status` later tells whether it did. Activation — expose grants, secret
  deletes, the release row, the active pointer, subdomains — is one metadata transaction. If
  activation fails after migrations committed, the operation is `activation_pending` and a
  resume re-runs activation only (SQL is never replayed).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.deploy.apply_plan import Target, compute_target
from run402_cli.local.deploy.apply_store import (
    TERMINAL, active_release, deploy_error, hold_deploy_lock, load_operation, load_plan, migration_checksum,
    operation_snapshot, owned_project, update_operation,
)
from run402_cli.local.control.callers import Project, wallet_from_siwx
from run402_cli.local.deploy.cas import Cas
from run402_cli.local.deploy.content import linked_present
from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.deploy_common import add_event, deployment_host, deployment_id_for, label_url, new_id, \
    project_host, read_json
from run402_cli.local.runtime.db import notify_postgrest
from run402_cli.local.errors import GatewayError
from run402_cli.local.functions.bundles import FunctionBuildFailed, build_missing, function_sources
from run402_cli.local.data.expose import apply_manifest, custom_policies_of, introspect_catalog, run_custom_policies
from run402_cli.local.data.expose_validate import validate as validate_expose
from run402_cli.local.data.tenant_sql import SqlRefused, screen, tenant_session
from run402_cli.local.storage import slice as asset_slice
from run402_cli.local.web.subdomains import claim_release_subdomains
from run402_cli.wire.errors import BASE_RELEASE_CONFLICT, MISSING_REQUIRED_SECRET

__all__: list[str] = []  # handlers only: local/routes.py lists them


class _Failed(Exception):
    def __init__(self, error: dict[str, Any], status: str = "failed") -> None:
        super().__init__(error["message"])
        self.error, self.status = error, status


def _urls(request: Request, conn: psycopg.Connection, project_id: str, deployment_id: str) -> dict[str, str]:
    urls = {"project": label_url(request, project_host(project_id)),
            "release": label_url(request, deployment_host(deployment_id)), "deployment_id": deployment_id}
    for (name,) in conn.execute("SELECT name FROM run402_meta.subdomains WHERE project_id = %s ORDER BY name",
                                (project_id,)):
        urls[f"subdomain:{name}"] = label_url(request, name)
    return urls


def _response(op: dict[str, Any]) -> dict[str, Any]:
    out = {"operation_id": op["id"], "plan_id": op["plan_id"], "status": op["status"]}
    if op["status"] == "ready":
        out.update(release_id=op["release_id"], urls=op["urls"])
    if op["error"]:
        out["error"] = op["error"]
    return out


class _Run:
    """One pass over an operation, holding the project's deploy lock."""

    def __init__(self, ctx: GatewayContext, request: Request, conn: psycopg.Connection, project: Project,
                 plan: dict[str, Any]) -> None:
        self.ctx, self.request, self.conn, self.project, self.plan = ctx, request, conn, project, plan
        self.op_id = plan["operation_id"]

    def event(self, event: dict[str, Any]) -> None:
        add_event(self.conn, self.op_id, self.project.id, event)

    def phase(self, phase: str, status: str, **fields: Any) -> None:
        self.event({"type": "commit.phase", "phase": phase, "status": status, **fields})

    def error(self, code: str, message: str, phase: str, **kw: Any) -> dict[str, Any]:
        return deploy_error(code, message, phase=phase, operation_id=self.op_id, plan_id=self.plan["id"], **kw)

    # -- validate ------------------------------------------------------------------------
    def validate(self) -> Target:
        self.phase("validate", "started")
        active = active_release(self.conn, self.project.id)
        current = active[0] if active else None
        if current != self.plan["base_release_id"]:
            raise _Failed(self.error(
                BASE_RELEASE_CONFLICT, "Another deploy activated a release after this operation was planned.",
                "apply", retryable=True, safe_to_retry=True, resource="release",
                details={"base_release_id": self.plan["base_release_id"], "active_release_id": current},
                next_actions=[{"action": "replan"}]))
        try:
            t = compute_target(self.ctx, self.conn, self.project, self.plan["spec"])
        except GatewayError as exc:
            raise _Failed(self.error(exc.code, exc.message, "validate", details=exc.details or {},
                                     next_actions=exc.next_actions)) from None
        if t.missing_secrets:
            raise _Failed(self.error(MISSING_REQUIRED_SECRET, f"Required secret(s) not set: "
                                     f"{', '.join(t.missing_secrets)}", "validate", resource="secrets",
                                     details={"missing": t.missing_secrets},
                                     next_actions=[{"action": "set_secret", "keys": t.missing_secrets}]))
        if t.unknown_deletes:
            raise _Failed(self.error("SECRET_NOT_FOUND", f"secrets.delete names unknown key(s): "
                                     f"{', '.join(t.unknown_deletes)}", "validate", resource="secrets",
                                     details={"keys": t.unknown_deletes}, next_actions=[{"action": "edit_spec"}]))
        refs = {f["sha256"]: f["size"] for f in t.desired["site"]["files"].values()}
        refs.update({m["sql_ref"]["sha256"]: m["sql_ref"]["size"] for m in t.new_migrations})
        refs.update({r["sha256"]: r["size"] for e in t.desired["functions"].values() if not e.get("bundle")
                     for r in function_sources(e)})
        refs.update({e["sha256"]: e["size_bytes"] for e in self.plan["spec"].get("assets", {}).get("put", [])})
        present = linked_present(self.ctx, self.project.id, list(refs),
                                 release_files=t.base_state["site"]["files"])
        missing = [{"sha256": s, "size": n} for s, n in refs.items() if s not in present]
        if missing:
            raise _Failed(self.error("MISSING_CONTENT", f"{len(missing)} content object(s) were never uploaded",
                                     "validate", resource="content", details={"missing": missing},
                                     next_actions=[{"action": "upload_content"}]))
        if t.assets is not None:  # image fields, stripped bytes, variants: read before activation
            asset_slice.derive_images(self.ctx, t.assets)
        self.phase("validate", "done")
        return t

    # -- stage: bundle every function whose sources changed (the rest keep their base's bundle)
    def stage(self, t: Target) -> None:
        try:
            for name, sha in build_missing(self.ctx, t.desired["functions"]):
                self.event({"type": "function.built", "name": name, "bundle_sha256": sha})
        except FunctionBuildFailed as exc:
            raise _Failed(self.error(exc.error.code, f"functions.{exc.name}: {exc.error.message}", "stage",
                                     resource=f"functions.{exc.name}", details=exc.error.details or {},
                                     next_actions=[{"action": "edit_function", "name": exc.name}])) from None

    # -- migrate -------------------------------------------------------------------------
    def _sql_text(self, m: dict[str, Any]) -> str:
        raw = Cas(self.ctx.cas_dir).path(m["sql_ref"]["sha256"]).read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self._migration_failed(m, "the migration SQL is not UTF-8", None) from None
        try:  # the same friendly screen as `projects sql`; privileges and event triggers are the fence
            screen(text)
        except SqlRefused as exc:
            raise self._migration_failed(m, f"Blocked SQL: {exc.label} (statement {exc.index + 1})", None,
                                         blocked=exc.label, statement=exc.index + 1,
                                         hint="Grants and policies belong in database.expose") from None
        return text

    def _migration_failed(self, m: dict[str, Any], message: str, sqlstate: str | None, **extra: Any) -> _Failed:
        hint = extra.pop("hint", None)
        err = self.error("MIGRATION_FAILED", f"Migration {m['id']!r} failed: {message}", "migrate",
                         mutation_state="rolled_back", resource=f"database.migrations.{m['id']}",
                         details={"migration_id": m["id"], "sqlstate": sqlstate, **extra},
                         next_actions=[{"action": "edit_migration"}])
        if hint:
            err["hint"] = hint
        return _Failed(err)

    def migrate(self, t: Target) -> bool:
        """Run the new migrations (and check expose against the result) in one transaction.
        True if something was committed."""
        expose = self.plan["spec"].get("database", {}).get("expose")
        if not t.new_migrations and expose is None:
            return False
        update_operation(self.conn, self.op_id, status="migrating", phase="migrate")
        self.phase("migrate", "started")
        slot = self.project.schema_slot
        with tenant_session(self.ctx, self.project) as db:
            for m in t.new_migrations:
                text = self._sql_text(m)
                try:
                    db.execute(text)
                except psycopg.Error as exc:
                    db.rollback()
                    raise self._migration_failed(m, (exc.diag.message_primary or str(exc)).strip(),
                                                 exc.sqlstate) from None
            if expose is not None:
                errors, warnings = validate_expose(expose, introspect_catalog(db, slot))
                if errors:
                    db.rollback()
                    err = self.error("INVALID_MANIFEST", f"database.expose has {len(errors)} error(s) against the "
                                     "migrated schema", "migrate", mutation_state="rolled_back",
                                     resource="database.expose", details={"errors": errors, "warnings": warnings},
                                     next_actions=[{"action": "edit_spec", "path": "database.expose"}])
                    raise _Failed(err)
            if not t.new_migrations:
                db.rollback()
                self.phase("migrate", "done")
                return False
            (xid,) = db.execute("SELECT txid_current()").fetchone()
            with self.conn.transaction():
                for m in t.new_migrations:
                    self.conn.execute(
                        "INSERT INTO run402_meta.migrations_applied (project_id, migration_id, checksum, "
                        "operation_id, xid) VALUES (%s, %s, %s, %s, %s)",
                        (self.project.id, m["id"], migration_checksum(m), self.op_id, xid))
                update_operation(self.conn, self.op_id, migrate_xid=xid)
            try:
                db.commit()
            except psycopg.Error as exc:
                self.conn.execute("DELETE FROM run402_meta.migrations_applied WHERE project_id = %s AND xid = %s",
                                  (self.project.id, xid))
                raise self._migration_failed(t.new_migrations[-1], str(exc), exc.sqlstate) from None
        self.conn.execute("UPDATE run402_meta.migrations_applied SET confirmed = true WHERE project_id = %s "
                          "AND xid = %s", (self.project.id, xid))
        self.phase("migrate", "done", migrations=[m["id"] for m in t.new_migrations])
        return True

    # -- activate ------------------------------------------------------------------------
    def activate(self, t: Target, release_id: str) -> dict[str, Any]:
        update_operation(self.conn, self.op_id, status="activating", phase="activate")
        self.phase("activate", "started")
        conn, pid = self.conn, self.project.id
        deployment_id = deployment_id_for(release_id)
        spec = self.plan["spec"]
        expose = spec.get("database", {}).get("expose")
        policies = custom_policies_of(expose, self.project.schema_slot) if expose is not None else []
        run_custom_policies(self.ctx, self.project, policies, dry_run=True)
        with conn.transaction():
            row = conn.execute("SELECT release_id FROM run402_meta.active_releases WHERE project_id = %s FOR UPDATE",
                               (pid,)).fetchone()
            if (row[0] if row else None) != self.plan["base_release_id"]:
                raise GatewayError(409, BASE_RELEASE_CONFLICT, "The active release changed during the commit")
            if "expose" in spec.get("database", {}):
                apply_manifest(conn, self.project, spec["database"]["expose"])
            if t.secret_deletes:
                conn.execute("DELETE FROM run402_meta.secrets WHERE project_id = %s AND key = ANY(%s)",
                             (pid, t.secret_deletes))
            if t.assets is not None:  # asset writes land with the release, or not at all
                asset_slice.activate(conn, self.project, spec["assets"], t.assets)
            (generation,) = conn.execute("SELECT coalesce(max(generation), 0) + 1 FROM run402_meta.releases "
                                         "WHERE project_id = %s", (pid,)).fetchone()
            conn.execute("UPDATE run402_meta.releases SET status = 'superseded', superseded_at = now() "
                         "WHERE project_id = %s AND status = 'active'", (pid,))
            conn.execute(
                "INSERT INTO run402_meta.releases (id, project_id, generation, deployment_id, parent_id, status, "
                "manifest_digest, state, operation_id, plan_id, created_by, activated_at) "
                "VALUES (%s,%s,%s,%s,%s,'active',%s,%s,%s,%s,%s, now())",
                (release_id, pid, generation, deployment_id, self.plan["base_release_id"],
                 self.plan["manifest_digest"], json.dumps(t.desired), self.op_id, self.plan["id"], self.plan["wallet"]))
            conn.execute("INSERT INTO run402_meta.active_releases (project_id, release_id) VALUES (%s, %s) "
                         "ON CONFLICT (project_id) DO UPDATE SET release_id = EXCLUDED.release_id, activated_at = now()",
                         (pid, release_id))
            claim_release_subdomains(conn, pid, t.base_state["subdomains"], t.desired["subdomains"], deployment_id)
            urls = _urls(self.request, conn, pid, deployment_id)
            update_operation(conn, self.op_id, status="ready", phase="ready", release_id=release_id, urls=urls,
                             error=None)
            conn.execute("UPDATE run402_meta.deploy_operations SET activate_attempts = activate_attempts + 1, "
                         "last_activate_attempt_at = now() WHERE id = %s", (self.op_id,))
            self.phase("activate", "done")
            self.event({"type": "ready", "releaseId": release_id, "urls": urls})
            notify_postgrest(conn)
        if t.secret_deletes:
            self.ctx.secrets_changed(pid)  # its function workers start afresh without them
        # The project's own policies, in its own session, once the manifest's grants are in place.
        run_custom_policies(self.ctx, self.project, policies, dry_run=False)
        self.ctx.schema_changed()
        return urls

    def _assets_only(self, t: Target) -> None:
        try:
            with self.conn.transaction():
                asset_slice.activate(self.conn, self.project, self.plan["spec"]["assets"], t.assets)
        except GatewayError as exc:
            raise _Failed(self.error(exc.code, exc.message, "activate", mutation_state="rolled_back",
                                     details=exc.details or {}, next_actions=exc.next_actions)) from None

    # -- the whole operation -------------------------------------------------------------
    def run(self, op: dict[str, Any]) -> None:
        migrated = op["status"] == "activation_pending" or self._migrations_committed(op)
        try:
            if migrated:
                try:
                    t = compute_target(self.ctx, self.conn, self.project, self.plan["spec"])
                    self.stage(t)
                    if t.assets is not None:
                        asset_slice.derive_images(self.ctx, t.assets)
                except GatewayError as exc:
                    raise _Failed(self.error(exc.code, exc.message, "activate", safe_to_retry=True,
                                             mutation_state="partial", details=exc.details or {}),
                                  status="activation_pending") from None
            else:
                if self.plan["expired"]:
                    raise _Failed(self.error("PLAN_EXPIRED", "The plan expired (24 h); plan again", "validate",
                                             next_actions=[{"action": "replan"}]))
                update_operation(self.conn, self.op_id, status="staging", phase="validate",
                                 target_release_id=op["target_release_id"] or new_id("rel"))
                t = self.validate()
                active = active_release(self.conn, self.project.id)
                is_noop = (active is not None and not t.new_migrations and not t.secret_deletes
                           and active[1] == t.desired)  # JSON values: == is canonical equality
                if is_noop:
                    # The release would not change: keep the active one and report it (no new
                    # release); an assets slice is written on its own, in one transaction.
                    if t.assets is not None and t.assets.changed:
                        self._assets_only(t)
                    urls = _urls(self.request, self.conn, self.project.id, deployment_id_for(active[0]))
                    update_operation(self.conn, self.op_id, status="ready", phase="ready", release_id=active[0],
                                     urls=urls, error=None)
                    self.event({"type": "ready", "releaseId": active[0], "urls": urls, "is_noop": True})
                    return
                self.phase("stage", "started")
                self.stage(t)  # site content is already in the CAS; functions are bundled here
                self.phase("stage", "done")
                migrated = self.migrate(t)
        except _Failed as failed:
            update_operation(self.conn, self.op_id, status=failed.status, error=failed.error)
            self.phase(failed.error["phase"], "failed", error=failed.error)
            return
        target = load_operation(self.conn, self.op_id)["target_release_id"] or new_id("rel")  # type: ignore[index]
        try:
            self.activate(t, target)
        except Exception as exc:  # activation is one transaction: it rolled back entirely
            code = exc.code if isinstance(exc, GatewayError) else "ACTIVATION_FAILED"
            message = exc.message if isinstance(exc, GatewayError) else "Activation failed"
            if migrated:
                # retryable:false makes a polling client stop here; an explicit resume may retry.
                err = self.error(code, message + " (migrations are applied; resume re-runs activation only)",
                                 "activate", retryable=False, safe_to_retry=True, mutation_state="partial",
                                 next_actions=[{"action": "resume", "operation_id": self.op_id}])
                status = "activation_pending"
            else:
                err = self.error(code, message, "activate", mutation_state="rolled_back",
                                 details=getattr(exc, "details", None) or {})
                status = "failed"
            if not isinstance(exc, GatewayError):
                import logging

                logging.getLogger("run402.gateway").exception("activation of %s failed", self.op_id)
            update_operation(self.conn, self.op_id, status=status, phase="activate", error=err)
            self.phase("activate", "failed", error=err)

    def _migrations_committed(self, op: dict[str, Any]) -> bool:
        if op["migrate_xid"] is None:
            return False
        (status,) = self.conn.execute("SELECT txid_status(%s)", (op["migrate_xid"],)).fetchone()
        return status == "committed"


def run_operation(ctx: GatewayContext, request: Request, project: Project, plan: dict[str, Any]) -> dict[str, Any]:
    # One operation per project at a time: a row lock held on its own connection for the whole run
    # (the run itself commits several transactions on `conn`).
    with ctx.pool.connection() as lock_conn, lock_conn.transaction():
        hold_deploy_lock(lock_conn, project.id, "commit")
        with ctx.pool.connection() as conn:
            op = load_operation(conn, plan["operation_id"])
            assert op is not None
            if op["status"] not in TERMINAL:
                _Run(ctx, request, conn, project, plan).run(op)
            return load_operation(conn, plan["operation_id"])  # type: ignore[return-value]


def _commit_sync(request: Request, body: Any) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    if body is not None and (not isinstance(body, dict) or set(body) - {"idempotency_key"}):
        raise GatewayError(400, "BAD_REQUEST", "Body must be {} or {idempotency_key}")
    wallet = wallet_from_siwx(request, ctx)
    with ctx.pool.connection() as conn:
        plan = load_plan(conn, request.path_params["id"])
    if plan is None:
        raise GatewayError(404, "PLAN_NOT_FOUND", f"Plan {request.path_params['id']} not found", category="deploy")
    project = owned_project(ctx, wallet, plan["project_id"])
    return JSONResponse(_response(run_operation(ctx, request, project, plan)))


async def _commit(request: Request) -> JSONResponse:
    body = await read_json(request)
    return await run_in_threadpool(_commit_sync, request, body)


def _resume_sync(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    wallet = wallet_from_siwx(request, ctx)
    op_id = request.path_params["id"]
    with ctx.pool.connection() as conn:
        op = load_operation(conn, op_id)
        plan = load_plan(conn, op["plan_id"]) if op else None
    if op is None or plan is None:
        raise GatewayError(404, "OPERATION_NOT_FOUND", f"Operation {op_id} not found", category="deploy")
    project = owned_project(ctx, wallet, op["project_id"])
    if op["status"] in ("planning", "failed", "rolled_back", "needs_repair"):
        raise GatewayError(409, "NOT_RESUMABLE", f"Operation {op_id} is {op['status']}; nothing to resume",
                           category="deploy", details={"status": op["status"]},
                           hint="Commit the plan (a planned operation) or plan again (a failed one)")
    return JSONResponse(operation_snapshot(run_operation(ctx, request, project, plan)))


async def _resume(request: Request) -> JSONResponse:
    return await run_in_threadpool(_resume_sync, request)

