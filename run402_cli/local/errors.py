"""Gateway errors: capability code raises GatewayError; one handler renders the envelope
the hosted API sends (`message`, `code`, `retryable`, ...). A 500 gets a trace id and never a
traceback.

A database that cannot be reached is not an internal error: whatever module hit it, and however
(a pool wait, a broken pooled connection, a failed psycopg.connect as a project's login role),
the client gets 503 DATABASE_UNAVAILABLE, retryable, naming postgres. The handlers detect it
generically (`database_unreachable`), also when capability code caught the psycopg error and
raised its own 4xx GatewayError while handling it."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.wire.errors import INTERNAL_ERROR, error_body

__all__ = [
    "DatabaseUnavailable", "GatewayError", "database_unreachable", "error_response",
    "handle_gateway_error", "handle_unexpected",
]

log = logging.getLogger("run402.gateway")


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        category: str | None = None,
        retryable: bool = False,
        safe_to_retry: bool = True,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
        next_actions: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.category = category
        self.retryable = retryable
        self.safe_to_retry = safe_to_retry
        self.hint = hint
        self.details = details
        self.next_actions = next_actions or []
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.code, category=self.category, retryable=self.retryable,
                          safe_to_retry=self.safe_to_retry, hint=self.hint, details=self.details,
                          next_actions=self.next_actions, extra=self.extra)


class DatabaseUnavailable(GatewayError):
    """503: Postgres is down (the watchdog knows it and is restarting it), or a connection to it
    failed or broke. `safe_to_retry` is False when a statement may have been running."""

    def __init__(self, reason: str = "postgres is not running; the local gateway is restarting it",
                 *, safe_to_retry: bool = True, component: str = "postgres") -> None:
        super().__init__(
            503, "DATABASE_UNAVAILABLE", f"The database is unavailable: {reason}.",
            retryable=True, safe_to_retry=safe_to_retry,
            hint="Retry in a few seconds; `run402 local status` shows which component is down.",
            details={"component": component},
            next_actions=[{"action": "retry", "hint": "after a second or two"}],
            headers={"Retry-After": "1"},
            extra={"retry_after_seconds": 1, "mutation_state": "none" if safe_to_retry else "unknown"},
        )


def database_unreachable(exc: BaseException | None) -> bool:
    """Whether ``exc`` says the database cannot be reached, as opposed to a statement failing:
    a pool that gave no connection (timeout, closed by the watchdog), or a psycopg
    OperationalError without SQLSTATE (could not connect, connection lost), a connection
    exception (08xxx) or a shutdown (57P01 admin, 57P02 crash, 57P03 cannot connect now)."""
    try:
        import psycopg
        from psycopg_pool import PoolClosed, PoolTimeout
    except ImportError:  # the [local] extra is missing: nothing of ours raised it
        return False
    if isinstance(exc, (PoolTimeout, PoolClosed)):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


def _postgres_down(request: Request) -> bool:
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        return False
    if "postgres" in getattr(ctx, "down", ()):
        return True
    alive = getattr(ctx, "postgres_alive", None)
    return alive is not None and not alive()


def _unavailable(request: Request, exc: BaseException) -> DatabaseUnavailable:
    from psycopg_pool import PoolClosed, PoolTimeout

    if _postgres_down(request):
        reason = "postgres is not running; the local gateway is restarting it"
    elif isinstance(exc, PoolTimeout):
        reason = "no connection to postgres became free in time (postgres is busy or not answering)"
    else:
        reason = "the connection to postgres failed"
    # Waiting for the pool means no statement ran; a broken connection may have been mid-statement.
    return DatabaseUnavailable(reason, safe_to_retry=isinstance(exc, (PoolTimeout, PoolClosed)))


def _unreachable_cause(exc: BaseException) -> BaseException | None:
    """The database error ``exc`` was raised from or while handling, if any (a few links deep)."""
    seen = exc
    for _ in range(5):
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        if seen is None:
            return None
        if database_unreachable(seen):
            return seen
    return None


def error_response(err: GatewayError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


def _log_unavailable(request: Request, err: DatabaseUnavailable, exc: BaseException) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s: %s", request.method, request.url.path,
                type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return error_response(err)


async def handle_gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    # e.g. `except psycopg.Error: raise GatewayError(400, "EXPOSE_APPLY_FAILED", ...)` when the
    # psycopg error was a dead database: the client's request was fine, the database was not.
    if not isinstance(exc, DatabaseUnavailable) and exc.status < 500:
        cause = _unreachable_cause(exc)
        if cause is not None:
            return _log_unavailable(request, _unavailable(request, cause), cause)
    return error_response(exc)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette sends here what escapes the routes' handlers, and also what middleware raises
    # (SiteDispatch reads the database before any route runs).
    if isinstance(exc, GatewayError):
        return await handle_gateway_error(request, exc)
    if database_unreachable(exc):
        return _log_unavailable(request, _unavailable(request, exc), exc)
    body = error_body("Internal error", INTERNAL_ERROR, retryable=True, safe_to_retry=False)
    log.exception("unhandled error %s on %s %s", body["trace_id"], request.method, request.url.path)
    return JSONResponse(body, status_code=500)
