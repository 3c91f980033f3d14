"""The gateway's database plumbing: the connection pool, the bootstrap of the metadata
schema and the shared roles, and telling PostgREST which project schemas exist."""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

__all__ = ["AUTHENTICATOR", "NOBODY", "bootstrap", "open_pool", "refresh_postgrest"]

AUTHENTICATOR = "run402_authenticator"  # the role PostgREST logs in as; NOINHERIT, switches per request
NOBODY = "run402_nobody"                # PostgREST's fallback anon role: owns nothing, granted nothing
_EMPTY_SCHEMA = "run402_empty"          # PostgREST needs at least one schema before any project exists


def open_pool(conninfo: str) -> ConnectionPool:
    pool = ConnectionPool(conninfo, min_size=1, max_size=10, open=False, kwargs={"autocommit": True})
    pool.open(wait=True, timeout=30)
    return pool


def bootstrap(conn: psycopg.Connection, *, authenticator_password: str) -> None:
    """Idempotent: safe at every start."""
    conn.execute(resources.files("run402_cli.local").joinpath("meta.sql").read_text())
    for role, login in ((AUTHENTICATOR, True), (NOBODY, False)):
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} NOINHERIT {}").format(
                sql.Identifier(role), sql.SQL("LOGIN" if login else "NOLOGIN")))
    conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN NOINHERIT PASSWORD {}").format(
        sql.Identifier(AUTHENTICATOR), sql.Literal(authenticator_password)))
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(NOBODY), sql.Identifier(AUTHENTICATOR)))
    conn.execute(sql.SQL("GRANT CONNECT ON DATABASE run402 TO {}").format(sql.Identifier(AUTHENTICATOR)))
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(_EMPTY_SCHEMA)))
    refresh_postgrest(conn)


def refresh_postgrest(conn: psycopg.Connection) -> None:
    """PostgREST reads its schema list from the authenticator role's settings (db-config);
    a NOTIFY makes it reload without a restart."""
    slots = [r[0] for r in conn.execute(
        "SELECT schema_slot FROM run402_meta.projects WHERE status <> 'purged' ORDER BY schema_slot"
    ).fetchall()]
    schemas = ",".join([*slots, _EMPTY_SCHEMA])
    conn.execute(sql.SQL("ALTER ROLE {} SET pgrst.db_schemas = {}").format(
        sql.Identifier(AUTHENTICATOR), sql.Literal(schemas)))
    conn.execute("NOTIFY pgrst, 'reload config'")
    conn.execute("NOTIFY pgrst, 'reload schema'")
