"""Reading and writing deploy metadata: who may deploy a project, the active release, the
migration registry, operation snapshots. Plan, commit and the observability endpoints all go
through here, so a row means the same thing to each of them."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from run402_cli.local.deploy.apply_state import EMPTY_STATE
from run402_cli.local.control.callers import Project, load_project
from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.deploy_common import iso
from run402_cli.local.errors import GatewayError

__all__ = [
    "hold_deploy_lock",
    "TERMINAL", "active_release", "deploy_error", "load_operation", "load_release", "migration_checksum",
    "operation_snapshot", "owned_project", "registry", "settle_registry", "update_operation", "load_plan",
]

TERMINAL = ("ready", "failed", "rolled_back", "needs_repair")


def hold_deploy_lock(conn: psycopg.Connection, project_id: str, kind: str) -> None:
    """Inside the caller's transaction: wait for, then hold until it ends, the project's `kind`
    deploy lock (a row of run402_meta.deploy_locks, out of every tenant's reach)."""
    conn.execute("INSERT INTO run402_meta.deploy_locks (project_id, kind) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (project_id, kind))
    conn.execute("SELECT 1 FROM run402_meta.deploy_locks WHERE project_id = %s AND kind = %s FOR UPDATE",
                 (project_id, kind))


def owned_project(ctx: GatewayContext, wallet: str, project_id: str) -> Project:
    project = load_project(ctx, project_id)
    if project is None:
        raise GatewayError(404, "PROJECT_NOT_FOUND", f"Project {project_id} not found", category="lifecycle")
    if project.wallet != wallet:
        raise GatewayError(403, "FORBIDDEN", "This wallet does not own the project", category="auth",
                           details={"project_id": project_id})
    return project


def active_release(conn: psycopg.Connection, project_id: str) -> tuple[str, dict[str, Any], int] | None:
    row = conn.execute(
        "SELECT r.id, r.state, r.generation FROM run402_meta.active_releases a "
        "JOIN run402_meta.releases r ON r.id = a.release_id WHERE a.project_id = %s", (project_id,)).fetchone()
    return (row[0], {**EMPTY_STATE, **row[1]}, row[2]) if row else None


def load_release(conn: psycopg.Connection, project_id: str, release_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, project_id, generation, deployment_id, parent_id, status, manifest_digest, state, operation_id, "
        "plan_id, created_by, created_at, activated_at, superseded_at FROM run402_meta.releases "
        "WHERE id = %s AND project_id = %s", (release_id, project_id)).fetchone()
    if row is None:
        return None
    keys = ("id", "project_id", "generation", "deployment_id", "parent_id", "status", "manifest_digest", "state",
            "operation_id", "plan_id", "created_by", "created_at", "activated_at", "superseded_at")
    rel = dict(zip(keys, row))
    rel["state"] = {**EMPTY_STATE, **rel["state"]}
    return rel


def settle_registry(conn: psycopg.Connection, project_id: str) -> None:
    """Resolve registry rows written just before their migration transaction committed: keep
    those whose transaction committed, drop those that aborted (a crash in between)."""
    conn.execute("UPDATE run402_meta.migrations_applied SET confirmed = true WHERE project_id = %s "
                 "AND NOT confirmed AND txid_status(xid) = 'committed'", (project_id,))
    conn.execute("DELETE FROM run402_meta.migrations_applied WHERE project_id = %s AND NOT confirmed "
                 "AND coalesce(txid_status(xid), 'aborted') = 'aborted'", (project_id,))


def registry(conn: psycopg.Connection, project_id: str) -> dict[str, dict[str, Any]]:
    settle_registry(conn, project_id)
    rows = conn.execute("SELECT migration_id, checksum, applied_at FROM run402_meta.migrations_applied "
                        "WHERE project_id = %s AND confirmed ORDER BY applied_at, migration_id", (project_id,)).fetchall()
    return {mid: {"checksum": c, "applied_at": at} for mid, c, at in rows}


def migration_checksum(m: dict[str, Any]) -> str:
    return m.get("checksum") or m["sql_ref"]["sha256"]


def deploy_error(code: str, message: str, *, phase: str, operation_id: str, plan_id: str,
                 retryable: bool = False, safe_to_retry: bool = True, mutation_state: str = "none",
                 details: dict[str, Any] | None = None, next_actions: list[dict[str, Any]] | None = None,
                 resource: str | None = None) -> dict[str, Any]:
    """The GatewayDeployError carried by a failed commit / operation snapshot."""
    err = {"code": code, "message": message, "category": "deploy", "phase": phase, "retryable": retryable,
           "safe_to_retry": safe_to_retry, "mutation_state": mutation_state,
           "details": {"operation_id": operation_id, "plan_id": plan_id, **(details or {})},
           "next_actions": next_actions or [], "operation_id": operation_id, "plan_id": plan_id}
    if resource:
        err["resource"] = resource
    return err


_OP_COLS = ("id, project_id, plan_id, status, phase, base_release_id, target_release_id, release_id, urls, error, "
            "migrate_xid, activate_attempts, last_activate_attempt_at, created_at, updated_at")


def load_operation(conn: psycopg.Connection, operation_id: str, project_id: str | None = None) -> dict[str, Any] | None:
    q = f"SELECT {_OP_COLS} FROM run402_meta.deploy_operations WHERE id = %s"
    args: tuple[Any, ...] = (operation_id,)
    if project_id is not None:
        q += " AND project_id = %s"
        args += (project_id,)
    row = conn.execute(q, args).fetchone()
    return dict(zip([c.strip() for c in _OP_COLS.split(",")], row)) if row else None


def operation_snapshot(op: dict[str, Any]) -> dict[str, Any]:
    return {"operation_id": op["id"], "project_id": op["project_id"], "plan_id": op["plan_id"],
            "status": op["status"], "phase": op["phase"], "base_release_id": op["base_release_id"],
            "target_release_id": op["target_release_id"], "release_id": op["release_id"], "urls": op["urls"],
            "payment_required": None, "error": op["error"], "activate_attempts": op["activate_attempts"],
            "last_activate_attempt_at": iso(op["last_activate_attempt_at"]),
            "created_at": iso(op["created_at"]), "updated_at": iso(op["updated_at"])}


def update_operation(conn: psycopg.Connection, operation_id: str, **fields: Any) -> None:
    sets, args = [], []
    for key, value in fields.items():
        sets.append(f"{key} = %s")
        args.append(json.dumps(value) if key in ("urls", "error") and value is not None else value)
    conn.execute(f"UPDATE run402_meta.deploy_operations SET {', '.join(sets)}, updated_at = now() WHERE id = %s",
                 (*args, operation_id))


def load_plan(conn: psycopg.Connection, plan_id: str) -> dict[str, Any] | None:
    """A plan row as a dict (its spec, base and operation), or None."""
    row = conn.execute("SELECT id, project_id, operation_id, wallet, base_mode, base_release_id, manifest_digest, "
                       "spec, expires_at < now() FROM run402_meta.deploy_plans WHERE id = %s", (plan_id,)).fetchone()
    keys = ("id", "project_id", "operation_id", "wallet", "base_mode", "base_release_id", "manifest_digest", "spec",
            "expired")
    return dict(zip(keys, row)) if row else None
