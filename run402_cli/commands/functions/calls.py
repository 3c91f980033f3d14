"""`functions invoke` and `functions logs` (one fetch, or `--follow`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, positive_int, resolve_project
from run402_cli.commands.functions._common import app, bad_flag, check_target, name_arg, project_arg
from run402_cli.errors import UsageError

FOLLOW_INTERVAL_S = 3.0
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


# --- invoke ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvokeOptions:
    project_id: str
    name: str
    method: str = "POST"
    body: Optional[str] = None


@app.command("invoke")
def invoke(
    ctx: typer.Context,
    project_id: Optional[str] = project_arg(),
    name: Optional[str] = name_arg(),
    method: Optional[str] = typer.Option(None, "--method", help="The HTTP method (default POST)."),
    body: Optional[str] = typer.Option(None, "--body", help="The request body, sent as it is (not for GET/HEAD)."),
) -> None:
    """Call a deployed function directly, with the project's service key, and print its answer.

    A JSON answer is printed as JSON, anything else as text; an error status is the usual JSON
    error line.

    Example: run402 functions invoke prj_abc123 stripe-webhook --body '{"event":"test"}'
    """
    pid, fn = check_target(ctx, project_id, name,
                           "run402 functions invoke <project_id> <name> [--method M] [--body '<text>']")
    verb = method or "POST"
    if verb.upper() in _METHODS:
        verb = verb.upper()
    elif not set(verb) <= _TOKEN or verb.upper() in ("CONNECT", "TRACE"):
        raise UsageError(f"--method {verb[:40]!r} is not an HTTP method a function can be called with.",
                         code="BAD_FLAG", hint="GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS",
                         details={"flag": "--method", "value": verb[:40]})
    run_invoke(InvokeOptions(project_id=pid, name=fn, method=verb, body=body or None), ctx)


def run_invoke(opts: InvokeOptions, ctx: typer.Context) -> None:
    from run402_cli.api import functions

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        answer = functions.invoke(c, entry["service_key"], opts.name, method=opts.method, body=opts.body)
    if isinstance(answer, str):
        output.emit_text(answer)
    else:
        output.emit(answer)


# --- logs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogsOptions:
    project_id: str
    name: str
    tail: int = 50
    since_ms: Optional[int] = None
    request_id: Optional[str] = None
    follow: bool = False


def since_ms(value: str) -> int:
    """`--since`: epoch milliseconds, or an ISO-8601 date or time (UTC unless it says otherwise)."""
    from datetime import datetime, timezone

    from run402_cli.commands._options import MAX_SAFE_INTEGER

    raw = value.strip()
    ms: Optional[int] = None
    if raw.isascii() and raw.isdigit():
        ms = int(raw) if len(raw.lstrip("0")) <= 16 else None
    elif raw:
        try:
            when = datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1:] in "Zz" else raw)
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            ms = int(when.timestamp() * 1000) if when.year >= 1970 else None
    if ms is None or not 0 <= ms <= MAX_SAFE_INTEGER:
        raise bad_flag("--since", value[:80], f"Invalid --since value: {value[:80]}",
                       "Epoch milliseconds (1774792800000) or an ISO-8601 time (2026-03-29T14:00:00Z).")
    return ms


@app.command("logs")
def logs(
    ctx: typer.Context,
    project_id: Optional[str] = project_arg(),
    name: Optional[str] = name_arg(),
    tail: Optional[str] = typer.Option(None, "--tail", help="How many of the latest entries (default 50, at most 1000)."),
    since: Optional[str] = typer.Option(None, "--since", help="Only entries from this time: ISO-8601 or epoch ms."),
    request_id: Optional[str] = typer.Option(
        None, "--request-id", help="Only entries of this request (req_..., from a routed 500's X-Run402-Request-Id)."),
    follow: bool = typer.Option(False, "--follow", help="Keep polling every 3 s and print new entries as lines "
                                                        "'[<timestamp>] <message>' until Ctrl-C."),
) -> None:
    """Print a function's recent log entries, or follow them as they come.

    Example: run402 functions logs prj_abc123 stripe-webhook --since 2026-03-29T14:00:00Z
    """
    from run402_cli.wire.functions import LOG_TAIL_DEFAULT, LOG_TAIL_MAX, request_id_problem

    pid, fn = check_target(ctx, project_id, name, "run402 functions logs <project_id> <name> [--tail n] "
                           "[--since iso|epochms] [--request-id req_...] [--follow]")
    n = positive_int(tail, "--tail", maximum=LOG_TAIL_MAX) or LOG_TAIL_DEFAULT
    start = since_ms(since) if since else None
    if request_id and request_id_problem(request_id):
        raise bad_flag("--request-id", request_id[:80], f"Invalid --request-id value: {request_id[:80]}",
                       "The req_... id of a routed request (its X-Run402-Request-Id header).",
                       expected="req_ + 4-128 of A-Z a-z 0-9 _ -")
    run_logs(LogsOptions(project_id=pid, name=fn, tail=n, since_ms=start, request_id=request_id or None,
                         follow=follow), ctx)


def _entry_ms(entry: dict[str, Any]) -> int:
    """An entry's time in epoch ms (a number as it is, an ISO string parsed); 0 when unreadable."""
    import math
    from datetime import datetime, timezone

    ts = entry.get("timestamp")
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        return int(ts) if math.isfinite(ts) else 0
    if isinstance(ts, str) and ts:
        try:
            when = datetime.fromisoformat(ts[:-1] + "+00:00" if ts[-1] in "Zz" else ts)
        except ValueError:
            return 0
        return int((when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp() * 1000)
    return 0


def _identity(entry: dict[str, Any]) -> str:
    if entry.get("event_id"):
        return str(entry["event_id"])
    return f"{entry.get('log_stream_name') or ''}:{entry.get('timestamp') or ''}:{entry.get('message') or ''}"


@dataclass
class LogCursor:
    """What `--follow` has printed: the latest timestamp seen, and the entries at it."""

    high_ms: Optional[int] = None  # None: nothing yet (everything is new)
    at_high: set[str] = field(default_factory=set)

    def fresh(self, entries: list[Any]) -> list[dict[str, Any]]:
        """The entries not printed yet, in the order given; moves the cursor past them."""
        out, top = [], self.high_ms
        for e in (x for x in entries if isinstance(x, dict)):
            ms, ident = _entry_ms(e), _identity(e)
            if self.high_ms is not None and (ms < self.high_ms or (ms == self.high_ms and ident in self.at_high)):
                continue
            out.append(e)
            top = ms if top is None else max(top, ms)
        if out and top is not None:
            keep = self.at_high if top == self.high_ms else set()
            self.at_high = keep | {_identity(e) for e in entries if isinstance(e, dict) and _entry_ms(e) == top}
            self.high_ms = top
        return out


def _pause(seconds: float) -> None:
    import time

    time.sleep(seconds)


def run_logs(opts: LogsOptions, ctx: typer.Context) -> None:
    from run402_cli.api import functions

    _, entry = resolve_project(ctx, opts.project_id)
    key = entry["service_key"]
    with client(ctx) as c:
        def fetch(since: Optional[int]) -> list[Any]:
            data = functions.logs(c, key, opts.project_id, opts.name, tail=opts.tail, since_ms=since,
                                  request_id=opts.request_id)
            found = data.get("logs") if isinstance(data, dict) else None
            return found if isinstance(found, list) else []

        if not opts.follow:
            output.emit({"logs": fetch(opts.since_ms)})
            return
        cursor = LogCursor(high_ms=opts.since_ms)
        try:
            while True:
                for e in cursor.fresh(fetch(cursor.high_ms)):
                    output.emit_text(f"[{e.get('timestamp', '')}] {e.get('message', '')}")
                _pause(FOLLOW_INTERVAL_S)
        except KeyboardInterrupt:  # Ctrl-C is how --follow ends: exit 0, nothing more
            return
