"""Tenant SQL: every statement a project supplies runs here, and only here.

`projects sql`, migrations in deploys and the expose manifest's `custom_sql` all go through
`tenant_session()`: a connection whose *session user* is the project's own login role
(`<slot>_sql`, NOINHERIT, member of `<slot>_owner`), never the gateway's superuser connection
with SET ROLE. So `RESET ROLE`, `SET SESSION AUTHORIZATION` or any trick of that family lands on
`<slot>_sql`, which can do nothing but connect.

What the guarantee rests on, deepest first:
- PostgreSQL privileges: project roles are not superuser, cannot create roles, own only their
  schema; the gateway's metadata schema is granted to nobody.
- Event triggers owned by the superuser (runtime/tenant_guard.sql) refuse GRANT / REVOKE / ALTER DEFAULT
  PRIVILEGES from tenant code however it is wrapped, take PUBLIC's EXECUTE away from every new
  function, and refuse functions that pin resource settings for themselves; set_config() is
  not executable by tenants.
- The gateway's statement reaper (runtime/reaper.py) cancels tenant statements that outlive the limit,
  whatever `statement_timeout` the session set for itself.

`screen()` on top of that is a friendly early error (code SQL_BLOCKED, naming the statement),
computed with PostgreSQL's own parser (pglast wraps libpg_query) in linear time, never with
regular expressions over the request.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import psycopg
from psycopg import sql

__all__ = [
    "PINNED_SETTINGS", "SqlRefused", "custom_policies", "policy_names", "screen", "split",
    "statement_timeout_seconds", "tenant_session", "view_filter",
]


def statement_timeout_seconds() -> float:
    """How long one tenant statement may run (the reaper enforces it). RUN402_LOCAL_STATEMENT_TIMEOUT
    overrides the default of 30 s (the tests use a short one)."""
    try:
        return max(1.0, float(os.environ.get("RUN402_LOCAL_STATEMENT_TIMEOUT", "30")))
    except ValueError:
        return 30.0


# Set at the start of every tenant session (the role's own defaults could be changed by the
# tenant with ALTER ROLE <itself> SET, so they are not relied on).
def _pinned() -> dict[str, str]:
    timeout_ms = int(statement_timeout_seconds() * 1000)
    return {
        "statement_timeout": f"{timeout_ms}ms",
        "lock_timeout": f"{min(timeout_ms, 10_000)}ms",
        "idle_in_transaction_session_timeout": "60s",
        "work_mem": "16MB",
    }


PINNED_SETTINGS = frozenset({*_pinned(), "search_path", "role", "session_authorization",
                             "maintenance_work_mem", "hash_mem_multiplier", "temp_buffers",
                             "idle_session_timeout", "transaction_timeout"})


class _IdleSessions:
    """Tenant sessions kept for their next statement: a login as the project's role costs a
    SCRAM exchange (~6 ms here), more than the statement an agent usually sends.

    Kept per login (the conninfo: cluster, role, password), so a session only ever goes back to
    the project whose role it is; at most MAX_IDLE per login and MAX_TOTAL in all (the oldest
    goes first: idle backends count against PostgreSQL's max_connections, and many projects must
    not fill it), closed after IDLE_SECONDS unused. A session is given back only when its block
    ended without an error and it is idle (no transaction); before it is used again it is reset
    with DISCARD ALL (settings, role, temporary objects, prepared statements, cursors, advisory
    locks, LISTEN) and pinned anew. One that fails that reset (terminated by project deletion or
    the reaper) is closed, and a new login takes its place."""

    MAX_IDLE = 2  # a project runs at most SQL_PER_PROJECT (2) statements at once
    MAX_TOTAL = 8  # as many as tenant statements may run at once (SQL_THREADS)
    IDLE_SECONDS = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: dict[str, list[tuple[psycopg.Connection, float]]] = {}

    def _expire(self, now: float) -> list[psycopg.Connection]:
        """Drop what idled too long (the lock held); returns the connections to close."""
        stale = []
        for key in list(self._idle):
            entries = self._idle[key]
            stale += [c for c, since in entries if now - since > self.IDLE_SECONDS or c.closed]
            entries[:] = [(c, since) for c, since in entries if now - since <= self.IDLE_SECONDS and not c.closed]
            if not entries:
                del self._idle[key]
        return stale

    def take(self, key: str) -> psycopg.Connection | None:
        with self._lock:
            stale = self._expire(time.monotonic())
            entries = self._idle.get(key)
            found = entries.pop()[0] if entries else None
            if entries == []:
                del self._idle[key]
        for conn in stale:
            conn.close()
        return found

    def give(self, key: str, conn: psycopg.Connection) -> None:
        now = time.monotonic()
        with self._lock:
            stale = self._expire(now)
            entries = self._idle.setdefault(key, [])
            if len(entries) >= self.MAX_IDLE:
                stale.append(conn)
            else:
                entries.append((conn, now))
                while sum(len(v) for v in self._idle.values()) > self.MAX_TOTAL:
                    oldest = min(self._idle, key=lambda k: self._idle[k][0][1])
                    stale.append(self._idle[oldest].pop(0)[0])
                    if not self._idle[oldest]:
                        del self._idle[oldest]
        for old in stale:
            old.close()

    def __len__(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._idle.values())


_IDLE = _IdleSessions()


def _setup(slot: str) -> sql.Composed:
    # one round trip: statements without parameters go as one simple query
    setup = [sql.SQL("SET ROLE {}").format(sql.Identifier(f"{slot}_owner")),
             sql.SQL("SET search_path TO {}").format(sql.Identifier(slot))]
    setup += [sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
              for name, value in _pinned().items()]
    return sql.SQL("; ").join(setup)


def _reused(key: str, setup: sql.Composed) -> psycopg.Connection | None:
    conn = _IDLE.take(key)
    if conn is None:
        return None
    try:
        # Its own round trip: it cannot run in a transaction block. Never as a prepared statement:
        # psycopg prepares a query it has run 5 times, and a prepared DISCARD ALL deallocates
        # itself, so every 7th reuse failed here and paid a fresh login (~6 ms) instead.
        conn.execute("DISCARD ALL", prepare=False)
        conn.execute(setup)
        return conn
    except psycopg.Error:
        conn.close()
        return None


@contextmanager
def tenant_session(ctx: Any, project: Any, *, connect_timeout: int = 2) -> Iterator[psycopg.Connection]:
    """A non-autocommit connection as the project's login role, acting as its owner, with the
    project schema first on the search path. The caller commits; leaving rolls back."""
    slot = project.schema_slot
    key = ctx.conninfo(user=f"{slot}_sql", password=project.sql_password)
    setup = _setup(slot)
    conn = _reused(key, setup)
    if conn is None:
        conn = psycopg.connect(key, connect_timeout=connect_timeout, autocommit=True)
        try:
            conn.execute(setup)
        except BaseException:
            conn.close()
            raise
    conn.autocommit = False
    reusable = False
    try:
        yield conn
        reusable = True
    finally:
        try:
            if reusable and not conn.closed:
                conn.rollback()  # what the caller did not commit is not kept
                conn.autocommit = True
                reusable = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        except psycopg.Error:
            reusable = False
        if reusable:
            _IDLE.give(key, conn)
        else:
            conn.close()


@dataclass
class SqlRefused(Exception):
    label: str          # what kind of statement, e.g. "GRANT"
    index: int          # 0-based position among the statements
    statement: str      # the statement's text (first 200 characters)
    hint: str

    def __str__(self) -> str:
        return f"Blocked SQL: {self.label} (statement {self.index + 1})"


_GRANTS_HINT = "Grants and policies come from the expose manifest (projects apply-expose, or database.expose)"
_SETTINGS_HINT = "The search path and resource limits of a project are fixed; use schema-qualified names"


def _refusal(stmt: Any) -> tuple[str, str] | None:
    """(label, hint) when the statement is one a project may not run, else None."""
    from pglast import ast, enums

    kind = type(stmt).__name__
    simple = {
        "CreateExtensionStmt": ("CREATE EXTENSION", "Extensions are managed by the platform"),
        "AlterSystemStmt": ("ALTER SYSTEM", "Server settings are not a project's to change"),
        "CreateSchemaStmt": ("CREATE SCHEMA", "A project has exactly one schema, its own"),
        "AlterOwnerStmt": ("ALTER ... OWNER", "Objects belong to the project's owner role"),
        "GrantStmt": ("GRANT" if getattr(stmt, "is_grant", True) else "REVOKE", _GRANTS_HINT),
        "GrantRoleStmt": ("GRANT ROLE", _GRANTS_HINT),
        "AlterDefaultPrivilegesStmt": ("ALTER DEFAULT PRIVILEGES", _GRANTS_HINT),
        "CreateRoleStmt": ("CREATE ROLE", "Roles are managed by the platform"),
        "AlterRoleStmt": ("ALTER ROLE", "Roles are managed by the platform"),
        "AlterRoleSetStmt": ("ALTER ROLE ... SET", "Roles are managed by the platform"),
        "DropRoleStmt": ("DROP ROLE", "Roles are managed by the platform"),
        "LoadStmt": ("LOAD", "Libraries are managed by the platform"),
        "CreatePLangStmt": ("CREATE LANGUAGE", "Languages are managed by the platform"),
        "AlterDatabaseStmt": ("ALTER DATABASE", "The database is shared"),
        "AlterDatabaseSetStmt": ("ALTER DATABASE", "The database is shared"),
        "CreateEventTrigStmt": ("CREATE EVENT TRIGGER", "Event triggers are the platform's"),
    }
    if kind in simple:
        return simple[kind]
    if isinstance(stmt, ast.CopyStmt) and (stmt.is_program or stmt.filename is not None):
        return ("COPY ... PROGRAM" if stmt.is_program else "COPY to/from a server file",
                "Use COPY ... FROM STDIN / TO STDOUT, or INSERT / SELECT")
    if isinstance(stmt, ast.DropStmt) and stmt.removeType == enums.ObjectType.OBJECT_SCHEMA:
        return "DROP SCHEMA", "A project has exactly one schema, its own"
    if isinstance(stmt, ast.AlterObjectSchemaStmt):
        return "ALTER ... SET SCHEMA", "A project has exactly one schema, its own"
    if isinstance(stmt, ast.VariableSetStmt):
        if stmt.kind == enums.VariableSetKind.VAR_RESET_ALL:
            return "RESET ALL", _SETTINGS_HINT
        name = (stmt.name or "").lower()
        if name in PINNED_SETTINGS:
            verb = "RESET" if stmt.kind == enums.VariableSetKind.VAR_RESET else "SET"
            return f"{verb} {name}", _SETTINGS_HINT
    return None


def _calls_set_config(stmt: Any) -> bool:
    from pglast import ast
    from pglast.visitors import Visitor

    found = False

    class _Calls(Visitor):
        def visit_FuncCall(self, ancestors: Any, node: Any) -> None:
            nonlocal found
            names = [getattr(n, "sval", "") for n in node.funcname or ()]
            if names and names[-1].lower() == "set_config":
                found = True

    _Calls()(ast.RawStmt(stmt=stmt) if not isinstance(stmt, ast.RawStmt) else stmt)
    return found


def split(query: str) -> list[str] | None:
    """The statements of `query`, as PostgreSQL's grammar splits them; None when it does not
    parse (PostgreSQL will then report the syntax error itself)."""
    from pglast import parser

    try:
        return [s for s in parser.split(query) if s.strip()]
    except parser.ParseError:
        return None


def screen(query: str) -> list[str] | None:
    """Raise SqlRefused for the first statement a project may not run; return the statements
    (None when the text does not parse)."""
    from pglast import parser

    try:
        parsed = parser.parse_sql(query)
    except parser.ParseError:
        return None
    statements = split(query) or []
    for i, raw in enumerate(parsed):
        refusal = _refusal(raw.stmt)
        if refusal is None and _calls_set_config(raw.stmt):
            refusal = ("set_config()", _SETTINGS_HINT)
        if refusal is not None:
            text = statements[i] if i < len(statements) else ""
            raise SqlRefused(refusal[0], i, text.strip()[:200], refusal[1])
    return statements


def custom_policies(custom_sql: str, slot: str, table: str) -> tuple[list[str], list[dict[str, Any]]]:
    """An expose manifest's `custom_sql` for `table`: (statements to run, errors).

    Only CREATE POLICY on that table of the project's schema is accepted. `anon` and
    `authenticated` name the project's own roles (as they do on the hosted platform); `public`
    is kept; any other role is an error. Each offending statement is one error with its index.
    Statements are rebuilt from the parse tree, schema-qualified, so what runs is exactly what
    was checked."""
    from pglast import ast, parser
    from pglast.enums import RoleSpecType
    from pglast.stream import RawStream

    try:
        parsed = parser.parse_sql(custom_sql)
    except parser.ParseError as exc:
        return [], [{"code": "custom-sql-invalid", "table": table,
                     "message": f"tables[{table}].custom_sql does not parse: {exc}"}]
    texts = split(custom_sql) or []
    out: list[str] = []
    errors: list[dict[str, Any]] = []
    role_map = {"anon": f"{slot}_anon", "authenticated": f"{slot}_authenticated"}

    def error(i: int, why: str) -> None:
        text = texts[i].strip()[:200] if i < len(texts) else ""
        errors.append({"code": "custom-sql-not-policy", "table": table, "statement": i + 1, "sql": text,
                       "message": f"tables[{table}].custom_sql statement {i + 1}: {why}"})

    for i, raw in enumerate(parsed):
        stmt = raw.stmt
        if not isinstance(stmt, ast.CreatePolicyStmt):
            error(i, f"only CREATE POLICY is accepted, not {type(stmt).__name__.removesuffix('Stmt')}")
            continue
        rv = stmt.table
        if rv.relname != table or rv.schemaname not in (None, slot) or rv.catalogname is not None:
            error(i, f"a policy here must be ON {table} (the table this entry is for)")
            continue
        roles = []
        bad = None
        for spec in stmt.roles or ():
            if spec.roletype == RoleSpecType.ROLESPEC_PUBLIC:
                roles.append(spec)
            elif spec.roletype == RoleSpecType.ROLESPEC_CSTRING and spec.rolename in role_map:
                roles.append(ast.RoleSpec(roletype=RoleSpecType.ROLESPEC_CSTRING, rolename=role_map[spec.rolename]))
            else:
                bad = spec.rolename or str(spec.roletype)
        if bad is not None:
            error(i, f"role {bad!r} is not one of anon, authenticated, public")
            continue
        stmt.roles = tuple(roles) if roles else None
        stmt.table = ast.RangeVar(schemaname=slot, relname=table, inh=True, relpersistence="p")
        out.append(RawStream()(stmt))
    if not parsed:
        errors.append({"code": "custom-sql-not-policy", "table": table,
                       "message": f"tables[{table}].custom_sql holds no statement"})
    return out, errors


def view_filter(condition: str) -> str | None:
    """A view's `filter` as PostgreSQL parses it: the condition rebuilt from its parse tree, or
    None when it is not exactly one boolean expression (a second statement, a UNION, a LIMIT
    smuggled after it). The gateway builds the view with the rebuilt text only."""
    from pglast import ast, enums, parser
    from pglast.stream import RawStream

    try:
        parsed = parser.parse_sql(f"SELECT 1 WHERE {condition}")
    except parser.ParseError:
        return None
    if len(parsed) != 1 or not isinstance(parsed[0].stmt, ast.SelectStmt):
        return None
    stmt = parsed[0].stmt
    if stmt.op != enums.SetOperation.SETOP_NONE or stmt.whereClause is None or any(
            getattr(stmt, f) for f in ("fromClause", "groupClause", "havingClause", "sortClause", "limitCount",
                                      "limitOffset", "lockingClause", "withClause", "windowClause", "intoClause")):
        return None
    return RawStream()(stmt.whereClause)


def policy_names(statements: list[str]) -> list[str]:
    """The policy names CREATE POLICY statements (already checked) define."""
    from pglast import parser

    return [raw.stmt.policy_name for s in statements for raw in parser.parse_sql(s)]
