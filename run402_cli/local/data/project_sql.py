"""`POST /projects/v1/admin/:id/sql`: a project's own SQL, run as the project (tenant_sql.py).

Bounded on every side: the caller is authenticated (service key) before the body is read; the
body is capped by the gateway's body limits; the statements are screened by PostgreSQL's
parser; they run in a tenant session whose statements the reaper cancels past the time limit;
and the result is never held whole. The last statement's rows are returned up to
MAX_ROWS rows or MAX_RESULT_BYTES of JSON, whichever comes first; past that the response says
`"truncated": true` (with the limits), and a final SELECT is read through a server-side cursor,
so the rows past the limit are never computed. Rows of earlier statements are discarded as they
stream in.

JSON has no NaN or Infinity: float and numeric NaN / Infinity / -Infinity are returned as the
strings "NaN", "Infinity", "-Infinity", as PostgreSQL's own to_json() writes them.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from run402_cli.local.control.callers import project_from_service_key, service_key_gate_key
from run402_cli.local.runtime.db import notify_postgrest
from run402_cli.local.errors import GatewayError, database_unreachable
from run402_cli.local.http_body import read_body, read_json_bytes
from run402_cli.local.data.tenant_sql import SqlRefused, screen, tenant_session

__all__ = ["MAX_RESULT_BYTES", "MAX_ROWS", "jsonable", "run_tenant_statements", "sql_error"]

MAX_ROWS = 10_000
MAX_RESULT_BYTES = 10 * 1024 * 1024
_FETCH_CHUNK = 500
# Statement kinds after which PostgREST's schema cache cannot be stale: everything else
# (DDL, DO blocks, unparsable text) triggers a reload.
_NO_DDL = {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "ExplainStmt",
           "VariableShowStmt", "TransactionStmt", "CopyStmt", "LockStmt", "CallStmt"}


def jsonable(value: Any) -> Any:
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        if value.is_nan():
            return "NaN"
        if value.is_infinite():
            return "Infinity" if value > 0 else "-Infinity"
        return str(value)
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    return str(value)


def sql_error(exc: psycopg.Error) -> GatewayError:
    diag = exc.diag
    details = {k: v for k, v in {"sqlstate": exc.sqlstate, "detail": diag.message_detail,
                                 "hint": diag.message_hint, "position": diag.statement_position}.items() if v}
    message = (diag.message_primary or str(exc)).strip()
    if exc.sqlstate == "57014":  # query_canceled: the reaper or the session's own timeout
        return GatewayError(400, "SQL_TIMEOUT", message, details=details, retryable=False,
                            hint="A statement may run for a limited time; make it cheaper or split it")
    return GatewayError(400, "SQL_ERROR", message, details=details, hint=diag.message_hint or None)


class _Result:
    """The last statement's rows, encoded as they arrive, and whether a limit cut them short."""

    def __init__(self) -> None:
        self.rows: list[str] = []
        self.size = 0
        self.truncated = False
        self.rowcount = 0
        self.kinds: list[str | None] = []  # each statement's parse node name (None: unparsable)

    def reset(self) -> None:
        self.rows, self.size, self.truncated, self.rowcount = [], 0, False, 0

    def add(self, names: list[str], row: Any) -> bool:
        """Keep one row; False once a limit is reached (the row is not kept)."""
        if len(self.rows) >= MAX_ROWS:
            self.truncated = True
            return False
        encoded = json.dumps(dict(zip(names, (jsonable(v) for v in row))), allow_nan=False,
                             separators=(",", ":"), ensure_ascii=False)
        if self.size + len(encoded) > MAX_RESULT_BYTES:
            self.truncated = True
            return False
        self.rows.append(encoded)
        self.size += len(encoded) + 1
        return True


def _shape(statement: str) -> tuple[str, str | None]:
    """(how to run it, its statement kind). How: "select" (a plain SELECT: a server-side cursor
    can read it), "rows" (may return rows: stream them), or "command" (returns none, or
    unparsable: PostgreSQL will say why). Kind: the parse node's name, None when unparsable."""
    from pglast import ast, parser

    try:
        (raw,) = parser.parse_sql(statement)
    except (parser.ParseError, ValueError):
        return "command", None
    stmt = raw.stmt
    kind = type(stmt).__name__
    if isinstance(stmt, ast.SelectStmt):
        return ("select" if stmt.intoClause is None else "command"), kind
    if isinstance(stmt, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)):
        return ("rows" if getattr(stmt, "returningList", None) else "command"), kind
    if isinstance(stmt, (ast.ExplainStmt, ast.VariableShowStmt, ast.CallStmt, ast.FetchStmt)):
        return "rows", kind
    return "command", kind


def _run_last_select(conn: psycopg.Connection, statement: str, params: list[Any] | None, out: _Result) -> None:
    cur_cls = psycopg.RawServerCursor if params else psycopg.ServerCursor
    with cur_cls(conn, "run402_result") as cur:
        cur.execute(statement, params)
        names = [c.name for c in cur.description or ()]
        while not out.truncated:
            chunk = cur.fetchmany(_FETCH_CHUNK)
            for row in chunk:
                if not out.add(names, row):
                    break
            if len(chunk) < _FETCH_CHUNK:  # a short FETCH is the end: no round trip to learn it again
                break
    out.rowcount = len(out.rows)


def _run_streamed(conn: psycopg.Connection, statement: str, params: list[Any] | None, out: _Result,
                  keep: bool) -> None:
    cur = psycopg.RawCursor(conn) if params else conn.cursor()
    count = 0
    for row in cur.stream(statement, params):  # constant memory, whatever the row count
        count += 1
        if keep and not out.truncated:
            out.add([c.name for c in cur.description or ()], row)
    out.rowcount = count


def _run_command(conn: psycopg.Connection, statement: str, params: list[Any] | None, out: _Result,
                 keep: bool) -> None:
    cur = psycopg.RawCursor(conn) if params else conn.cursor()
    cur.execute(statement, params)
    if keep and cur.description is not None:  # a statement the parser could not classify
        names = [c.name for c in cur.description]
        while (row := cur.fetchone()) is not None and out.add(names, row):
            pass
    out.rowcount = max(cur.rowcount, 0)


def run_tenant_statements(conn: psycopg.Connection, statements: list[str], params: list[Any] | None) -> _Result:
    """Run statements in the caller's transaction; the last one's rows, bounded."""
    out = _Result()
    kinds: list[str | None] = []
    for i, statement in enumerate(statements):
        last = i == len(statements) - 1
        out.reset()
        shape, kind = _shape(statement)
        kinds.append(kind)
        if last and shape == "select":
            _run_last_select(conn, statement, params, out)
        elif shape in ("select", "rows"):
            _run_streamed(conn, statement, params, out, keep=last)
        else:
            _run_command(conn, statement, params, out, keep=last)
    out.kinds = kinds
    return out


async def _read_sql(request: Request) -> tuple[str, list[Any] | None]:
    raw = await read_body(request)
    if "application/json" in request.headers.get("content-type", ""):
        body = read_json_bytes(raw)
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


def _refused(exc: SqlRefused) -> GatewayError:
    return GatewayError(400, "SQL_BLOCKED", f"Blocked SQL: {exc.label} (statement {exc.index + 1})",
                        hint=exc.hint, details={"blocked": exc.label, "statement": exc.index + 1,
                                                "sql": exc.statement})


def _ddl_possible(kinds: list[str | None]) -> bool:
    """Whether PostgREST's schema cache may be stale after statements of these kinds (an
    unparsable statement, None, counts as possibly DDL)."""
    return any(kind not in _NO_DDL for kind in kinds)


async def _sql(request: Request) -> Response:
    ctx = request.app.state.ctx
    # Per-project gate + dedicated threads: one project's slow SQL cannot take them all (control/limits.py).
    # The gate key is only the project's once its service key is verified, so the body below is
    # read for authenticated callers; anyone else is refused by _sql_sync before any SQL runs.
    gate = await service_key_gate_key(request, ctx, request.path_params["id"])
    query, params = await _read_sql(request)
    if not query.strip():
        raise GatewayError(400, "BAD_REQUEST", "Empty SQL")
    return await ctx.limits.run_sql(gate, _sql_sync, request, ctx, query, params)


def _sql_sync(request: Request, ctx: Any, query: str, params: list[Any] | None) -> Response:
    project = project_from_service_key(request, ctx, request.path_params["id"])
    try:
        statements = screen(query)
    except SqlRefused as exc:
        raise _refused(exc) from None
    if statements is None or params:  # unparsable: PostgreSQL reports the error; params: one statement
        statements = [query]
    try:
        with tenant_session(ctx, project) as conn:
            result = run_tenant_statements(conn, statements, params)
            conn.commit()
    except psycopg.Error as exc:
        if database_unreachable(exc):
            raise  # the gateway's 503 (errors.py), not the tenant's SQL error
        raise sql_error(exc) from None
    if _ddl_possible(result.kinds):
        _schema_may_have_changed(ctx)
    head = {"status": "ok", "schema": project.schema_slot}
    tail: dict[str, Any] = {"rowCount": result.rowcount}
    if result.truncated:
        tail.update(truncated=True, limits={"max_rows": MAX_ROWS, "max_bytes": MAX_RESULT_BYTES})
    # The rows are already JSON: join them instead of encoding them a second time.
    body = (json.dumps(head)[:-1] + ',"rows":[' + ",".join(result.rows) + "]," + json.dumps(tail)[1:])
    return Response(body.encode(), media_type="application/json")


def _schema_may_have_changed(ctx: Any) -> None:
    """Project SQL may have created or altered tables: PostgREST must reload its cache."""
    with ctx.pool.connection() as conn:
        notify_postgrest(conn)
    ctx.schema_changed()

