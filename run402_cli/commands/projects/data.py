"""`run402 projects rest|apply-expose|validate-expose|get-expose|promote-user|demote-user`:
the project's data plane and who may reach it.

Project-id positionals: see `_common` (the official CLI's rules). `get-expose` is strict; `rest`,
`promote-user` and `demote-user` take their own bare positionals after an optional `prj_` id;
`apply-expose` follows `sql` (one bare positional, the manifest); `validate-expose` falls back
to the active project and then to projectless validation (wallet-authed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, emit_service_key_call, parse_json_flag, read_stdin_source, settings
from run402_cli.commands.projects._common import (
    app, bad_project_id, project_arg, read_file_flag, resolve, split_project, strict_project,
)
from run402_cli.errors import UsageError

REST_METHODS = ("GET", "POST", "PATCH", "DELETE")
_REST_USAGE = 'run402 projects rest [id] <table> ["<query>"]'


# --- rest ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestOptions:
    table: str
    project_id: Optional[str] = None
    query: Optional[str] = None
    method: str = "GET"
    body: Any = None


@app.command("rest")
def rest(
    ctx: typer.Context,
    args: Optional[List[str]] = typer.Argument(
        None, metavar='[PROJECT_ID] TABLE ["QUERY"]',
        help="Optional prj_... id, the table, then a PostgREST query (select=a,b&id=eq.1).",
    ),
    method: Optional[str] = typer.Option(None, "--method", help="GET (default), POST, PATCH or DELETE."),
    body: Optional[str] = typer.Option(
        None, "--body", help="JSON to send with POST (rows to insert) or PATCH (columns to set)."
    ),
) -> None:
    """Query a table through the REST API (PostgREST) with the project's anon key.

    Example: run402 projects rest items "select=id,title&order=id.desc&limit=10"
    """
    project_id, positionals = split_project(args, max_bare=2, usage=_REST_USAGE)
    if not positionals or not positionals[0].strip():
        raise UsageError(
            f"Missing <table> argument. Usage: {_REST_USAGE}",
            hint="Run 'run402 projects schema <id>' to list tables.",
        )
    verb = (method if method is not None else "GET").upper()
    if verb not in REST_METHODS:
        raise UsageError(
            f"--method must be one of: {', '.join(REST_METHODS)}; got {method!r}", code="BAD_FLAG",
            details={"flag": "--method", "value": method, "allowed": list(REST_METHODS)},
        )
    parsed: Any = None
    if body is not None:
        parsed = parse_json_flag("--body", body)
        if verb not in ("POST", "PATCH"):
            raise UsageError(
                f"--body is sent only with --method POST or PATCH, not {verb}.",
                hint="Add --method POST to insert rows, or --method PATCH with a filter to update them.",
                details={"flag": "--body", "method": verb},
            )
    run_rest(
        RestOptions(
            table=positionals[0], project_id=project_id,
            query=positionals[1] if len(positionals) > 1 else None, method=verb, body=parsed,
        ),
        ctx,
    )


def run_rest(opts: RestOptions, ctx: typer.Context) -> None:
    from run402_cli.api import rest as rest_api

    _, entry = resolve(ctx, opts.project_id)
    with client(ctx) as c:
        data = rest_api.rest(c, entry["anon_key"], opts.table, opts.query, opts.method, opts.body)
    output.emit(data)


# --- apply-expose / get-expose -------------------------------------------------------------


@dataclass(frozen=True)
class ApplyExposeOptions:
    manifest: Any
    project_id: Optional[str] = None
    file: Optional[str] = None


@app.command("apply-expose")
def apply_expose(
    ctx: typer.Context,
    args: Optional[List[str]] = typer.Argument(
        None, metavar="[PROJECT_ID] [MANIFEST_JSON]", help="Optional prj_... id, then the manifest JSON."
    ),
    file: Optional[str] = typer.Option(None, "--file", help="Read the manifest from this JSON file."),
) -> None:
    """Apply an expose manifest: which tables, views and RPCs anon/authenticated may reach.

    Example: run402 projects apply-expose --file manifest.json
    """
    positionals = list(args or [])
    project_id: Optional[str] = None
    if positionals and positionals[0].startswith("prj_"):
        project_id = positionals.pop(0)
        if len(positionals) > 1:
            raise UsageError(
                f"Unexpected extra argument: {positionals[1][:64]}",
                hint="Quote the manifest: run402 projects apply-expose [id] '<json>'",
            )
    elif positionals and (file is not None or len(positionals) > 1):
        raise bad_project_id(positionals[0])
    if positionals and file is not None:
        raise UsageError(
            "Provide either inline manifest JSON or --file <path>, not both.",
            hint="run402 projects apply-expose [id] --file manifest.json",
        )
    raw = read_file_flag(file, "--file")[0] if file is not None else (positionals[0] if positionals else "")
    if not raw.strip():
        raise UsageError("Missing manifest.", hint="Provide inline JSON or use --file <path>")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise UsageError(
            "Invalid JSON for manifest", field="--file" if file is not None else None,
            hint="The manifest is a JSON object: {\"version\":\"1\",\"tables\":[...]}",
            details={"parse_error": str(exc)},
        ) from None
    run_apply_expose(ApplyExposeOptions(manifest=manifest, project_id=project_id, file=file), ctx)


def run_apply_expose(opts: ApplyExposeOptions, ctx: typer.Context) -> None:
    from run402_cli.api import expose

    project_id, entry = resolve(ctx, opts.project_id)
    with client(ctx) as c:
        data = expose.apply(c, project_id, entry["service_key"], opts.manifest)
    output.emit(data)


@dataclass(frozen=True)
class GetExposeOptions:
    project_id: Optional[str] = None


@app.command("get-expose")
def get_expose(ctx: typer.Context, project_id: Optional[str] = project_arg()) -> None:
    """Show the project's expose manifest (applied, or introspected from the database).

    Example: run402 projects get-expose
    """
    run_get_expose(GetExposeOptions(project_id=strict_project(project_id)), ctx)


def run_get_expose(opts: GetExposeOptions, ctx: typer.Context) -> None:
    from run402_cli.api import expose

    emit_service_key_call(ctx, opts.project_id, expose.get)


# --- validate-expose -----------------------------------------------------------------------


@dataclass(frozen=True)
class ValidateExposeOptions:
    manifest_text: str
    project_id: Optional[str] = None
    migration_sql: Optional[str] = None  # from --migration-sql or the --migration-file's text


@app.command("validate-expose")
def validate_expose(
    ctx: typer.Context,
    args: Optional[List[str]] = typer.Argument(
        None, metavar="[PROJECT_ID] [MANIFEST_JSON]",
        help="Optional prj_... id, then the manifest JSON (or --file, or stdin).",
    ),
    file: Optional[str] = typer.Option(None, "--file", help="Read the manifest from this JSON file."),
    migration_file: Optional[str] = typer.Option(
        None, "--migration-file", help="Migration SQL to check references against (never run)."
    ),
    migration_sql: Optional[str] = typer.Option(
        None, "--migration-sql", help="Inline migration SQL to check references against (never run)."
    ),
) -> None:
    """Validate an expose manifest without applying it; findings are data (exit 0 with hasErrors).

    Example: run402 projects validate-expose --file manifest.json --migration-file setup.sql
    """
    project_id: Optional[str] = None
    inline: Optional[str] = None
    for arg in args or []:
        if project_id is None and arg.startswith("prj_"):
            project_id = arg
        elif inline is None:
            inline = arg
        else:
            raise UsageError(
                f"Unexpected extra argument: {arg[:64]}",
                hint="run402 projects validate-expose [id] <manifest_json>",
                details={"argument": arg[:64]},
            )
    if file is not None and inline is not None:
        raise UsageError(
            "Provide either inline manifest JSON or --file <path>, not both.",
            hint="run402 projects validate-expose [id] --file manifest.json",
        )
    if migration_file is not None and migration_sql is not None:
        raise UsageError("Provide either --migration-file or --migration-sql, not both.")
    raw = read_file_flag(file, "--file")[0] if file is not None else inline
    migration = (
        read_file_flag(migration_file, "--migration-file")[0] if migration_file is not None else migration_sql
    )
    if not raw and (stdin := read_stdin_source()) is not None:
        raw = stdin()
    if not raw or not raw.strip():
        raise UsageError(
            "Missing manifest.", hint="Provide inline JSON, pipe JSON to stdin, or use --file <path>"
        )
    run_validate_expose(
        ValidateExposeOptions(
            manifest_text=raw, project_id=project_id, migration_sql=migration,
        ),
        ctx,
    )


def run_validate_expose(opts: ValidateExposeOptions, ctx: typer.Context) -> None:
    from run402_cli import config
    from run402_cli.api import expose

    s = settings(ctx)
    project_id = opts.project_id or s.keystore().active_project_id()
    entry: Optional[dict[str, Any]] = None
    if project_id is not None:
        project_id, entry = resolve(ctx, project_id)
    else:
        config.require_allowance(s)
    try:
        manifest = json.loads(opts.manifest_text)
    except ValueError as exc:
        # As the SDK: an unparseable manifest is a finding, and nothing is sent.
        issue = {
            "type": "schema-shape", "severity": "error",
            "detail": f"The manifest is not valid JSON: {exc}",
            "fix": 'Pass a JSON object such as {"version":"1","tables":[]}',
        }
        output.emit({"status": "ok", "hasErrors": True, "errors": [issue], "warnings": []})
        return
    with client(ctx) as c:
        if entry is not None and project_id is not None:
            data = expose.validate_project(c, project_id, entry["service_key"], manifest, opts.migration_sql)
        else:
            data = expose.validate_projectless(c, manifest, opts.migration_sql)
    if isinstance(data, dict):
        data = {"status": "ok", **{k: v for k, v in data.items() if k != "status"}}
    output.emit(data)


# --- promote-user / demote-user ------------------------------------------------------------


@dataclass(frozen=True)
class PromoteUserOptions:
    email: str
    project_id: Optional[str] = None


@dataclass(frozen=True)
class DemoteUserOptions:
    email: str
    project_id: Optional[str] = None


def _role_args(args: Optional[List[str]], verb: str) -> tuple[Optional[str], str]:
    usage = f"run402 projects {verb} [id] <email>"
    project_id, positionals = split_project(args, max_bare=1, usage=usage)
    if not positionals or not positionals[0].strip():
        raise UsageError("Missing <email>.", hint=f"run402 projects {verb} <project_id> <email>")
    return project_id, positionals[0]


_EMAIL_ARG = typer.Argument(None, metavar="[PROJECT_ID] EMAIL", help="Optional prj_... id, then the user's email.")


@app.command("promote-user")
def promote_user(ctx: typer.Context, args: Optional[List[str]] = _EMAIL_ARG) -> None:
    """Promote a project user to the project_admin role.

    Example: run402 projects promote-user ada@example.com
    """
    project_id, email = _role_args(args, "promote-user")
    run_promote_user(PromoteUserOptions(email=email, project_id=project_id), ctx)


def run_promote_user(opts: PromoteUserOptions, ctx: typer.Context) -> None:
    from run402_cli.api import auth

    project_id, entry = resolve(ctx, opts.project_id)
    with client(ctx) as c:
        auth.promote_user(c, project_id, entry["service_key"], opts.email)
    output.emit({"status": "ok", "email": opts.email}, compact=True)


@app.command("demote-user")
def demote_user(ctx: typer.Context, args: Optional[List[str]] = _EMAIL_ARG) -> None:
    """Demote a project_admin back to the authenticated role.

    Example: run402 projects demote-user ada@example.com
    """
    project_id, email = _role_args(args, "demote-user")
    run_demote_user(DemoteUserOptions(email=email, project_id=project_id), ctx)


def run_demote_user(opts: DemoteUserOptions, ctx: typer.Context) -> None:
    from run402_cli.api import auth

    project_id, entry = resolve(ctx, opts.project_id)
    with client(ctx) as c:
        auth.demote_user(c, project_id, entry["service_key"], opts.email)
    output.emit({"status": "ok", "email": opts.email}, compact=True)
