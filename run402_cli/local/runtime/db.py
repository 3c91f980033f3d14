"""The gateway's database plumbing: the connection pool, the bootstrap of the metadata
schema and the shared roles, and telling PostgREST which project schemas exist."""

from __future__ import annotations

import logging
from contextlib import contextmanager
import hashlib
from importlib import resources
from typing import Any, Iterator

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from run402_cli.local.errors import DatabaseUnavailable

__all__ = ["AUTHENTICATOR", "NOBODY", "GatewayPool", "bootstrap", "open_pool", "refresh_postgrest"]

log = logging.getLogger("run402.gateway")

AUTHENTICATOR = "run402_authenticator"  # the role PostgREST logs in as; NOINHERIT, switches per request
NOBODY = "run402_nobody"                # PostgREST's fallback anon role: owns nothing, granted nothing
_EMPTY_SCHEMA = "run402_empty"          # PostgREST needs at least one schema before any project exists


# How long a request may wait for a pooled connection while Postgres is believed up. Long enough
# that a burst on a busy pool queues instead of failing; a dead Postgres does not wait for it
# (the watchdog flags it, see GatewayPool).
POOL_WAIT = 10.0


class GatewayPool:
    """The gateway's connection pool: a psycopg_pool.ConnectionPool that knows when Postgres is down.

    `down` is the set of components the watchdog found dead (shared with GatewayContext.down).
    While it holds "postgres", `connection()` raises DatabaseUnavailable at once instead of
    waiting POOL_WAIT seconds for a connection that cannot come. `suspend()` closes the inner
    pool, which also fails the requests already waiting in it; `resume()` puts in a fresh one
    once Postgres is back, so no request meets a connection broken by the restart, and none waits
    for psycopg_pool's reconnect backoff (which grows to many seconds during an outage)."""

    def __init__(self, conninfo: str, down: set[str], *, timeout: float = POOL_WAIT, max_size: int = 10):
        self._conninfo = conninfo
        self._down = down
        self.timeout = timeout
        self._max_size = max_size
        self._pool = self._new(open_timeout=30)

    def _new(self, open_timeout: float) -> ConnectionPool:
        pool = ConnectionPool(self._conninfo, min_size=1, max_size=self._max_size, open=False,
                              timeout=self.timeout, kwargs={"autocommit": True})
        try:
            pool.open(wait=True, timeout=open_timeout)
        except BaseException:
            pool.close(timeout=1)
            raise
        return pool

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        if "postgres" in self._down:
            raise DatabaseUnavailable()
        with self._pool.connection(timeout=self.timeout if timeout is None else timeout) as conn:
            yield conn

    def suspend(self) -> None:
        """Postgres is gone: fail the waiting requests now (PoolClosed, rendered as a 503)."""
        self._pool.close(timeout=1)

    def resume(self, open_timeout: float = 10.0) -> None:
        """Postgres is back: swap in a fresh pool (raises if it cannot connect within the timeout)."""
        new = self._new(open_timeout)
        old, self._pool = self._pool, new
        old.close(timeout=1)

    def close(self, timeout: float = 5.0) -> None:
        self._pool.close(timeout=timeout)

    def __getattr__(self, name: str) -> Any:
        # Everything else (get_stats, name, ...) is the current inner pool's.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._pool, name)


def open_pool(conninfo: str, down: set[str] | None = None) -> GatewayPool:
    return GatewayPool(conninfo, set() if down is None else down)


def notify_channel(installation_secret: str) -> str:
    """PostgREST's reload channel: unguessable for tenants (see PostgrestConfig.db_channel)."""
    return "pgrst_" + hashlib.sha256(b"run402-notify:" + installation_secret.encode()).hexdigest()[:24]


def notify_postgrest(conn: psycopg.Connection, what: str = "reload schema") -> None:
    """Ask PostgREST to reload its schema cache (or config), on the gateway's private channel."""
    conn.execute("SELECT run402_meta.notify_postgrest(%s)", (what,))


def bootstrap(conn: psycopg.Connection, *, authenticator_password: str, channel: str = "pgrst") -> None:
    """Idempotent: safe at every start."""
    conn.execute(resources.files("run402_cli.local.runtime").joinpath("meta.sql").read_text())
    conn.execute("INSERT INTO run402_meta.settings (key, value) VALUES ('postgrest_channel', %s) "
                 "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (channel,))
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
    # The rules PostgreSQL enforces on every project's SQL (event triggers, revocations); after the
    # authenticator exists, which keeps set_config().
    conn.execute(resources.files("run402_cli.local.runtime").joinpath("tenant_guard.sql").read_text())
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
    notify_postgrest(conn, "reload config")
    notify_postgrest(conn, "reload schema")
