"""`run402 projects quote|provision|list|use|info|keys|sql|schema|usage|delete`.

Project-id positionals: see `_common` (the official CLI's rules).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, List, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, emit_service_key_call, parse_json_flag, settings
from run402_cli.commands.projects._common import (
    RawEnvelope, app, bad_project_id, project_arg, read_file_flag, resolve, strict_project,
)
from run402_cli.errors import LocalError, UsageError

TIERS = ("prototype", "hobby", "team")
DESTROYS = ["schemas", "functions", "subdomains", "mailbox", "blobs", "secrets"]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# --- quote ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteOptions:
    pass


@app.command("quote")
def quote(ctx: typer.Context) -> None:
    """Show the tiers with their prices and limits.

    Example: run402 projects quote
    """
    run_quote(QuoteOptions(), ctx)


def run_quote(opts: QuoteOptions, ctx: typer.Context) -> None:
    from run402_cli.api import tiers

    with client(ctx) as c:
        data = tiers.quote(c)
    output.emit(data)


# --- provision -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvisionOptions:
    tier: str = "prototype"
    name: Optional[str] = None


@app.command("provision")
def provision(
    ctx: typer.Context,
    tier: Optional[str] = typer.Option(None, "--tier", help="prototype (default), hobby or team."),
    name: Optional[str] = typer.Option(None, "--name", help="A label, 1-128 characters."),
) -> None:
    """Provision a new Postgres project and make it the active project.

    Example: run402 projects provision --tier prototype --name my-app
    """
    chosen = tier if tier is not None else "prototype"
    if chosen not in TIERS:
        raise UsageError(
            f"--tier must be one of: {', '.join(TIERS)}; got {chosen!r}",
            code="BAD_FLAG",
            details={"flag": "--tier", "value": chosen, "allowed": list(TIERS)},
        )
    if name is not None:
        if name == "":
            raise UsageError(
                "--name must not be empty.", code="BAD_PROJECT_NAME",
                hint="Provide a 1-128 character name, or omit --name.",
                details={"field": "--name"},
            )
        if len(name) > 128:
            raise UsageError(
                f"--name must be 1-128 characters, got {len(name)}.", code="BAD_PROJECT_NAME",
                details={"field": "--name", "length": len(name), "max": 128},
            )
        if _CONTROL.search(name):
            raise UsageError(
                "--name contains control characters (newline, tab, etc).",
                code="BAD_PROJECT_NAME", hint="Project names should be a single-line label.",
                details={"field": "--name"},
            )
    run_provision(ProvisionOptions(tier=chosen, name=name), ctx)


def run_provision(opts: ProvisionOptions, ctx: typer.Context) -> None:
    from run402_cli import config
    from run402_cli.api import projects

    s = settings(ctx)
    with client(ctx) as c:
        config.require_allowance(s)
        ks = s.keystore()
        before = ks.active_project_id()
        data = projects.provision(c, opts.tier, opts.name)
    if not (
        isinstance(data, dict)
        and isinstance(data.get("project_id"), str)
        and isinstance(data.get("anon_key"), str)
        and isinstance(data.get("service_key"), str)
    ):
        raise LocalError(
            "Provisioning answered without project_id/anon_key/service_key; nothing was saved.",
            code="BAD_RESPONSE",
        )
    project_id = data["project_id"]
    ks.save_project(project_id, {"anon_key": data["anon_key"], "service_key": data["service_key"]})
    ks.set_active(project_id)
    out = dict(data)
    if before and before != project_id:
        out["note"] = f"active project changed: {before} -> {project_id}"
        out["previous_active_project_id"] = before
    output.emit(out)


# --- use / list / info / keys (local) ------------------------------------------------------


@dataclass(frozen=True)
class UseOptions:
    project_id: str


@app.command("use")
def use(
    ctx: typer.Context,
    project_id: str = typer.Argument(..., metavar="PROJECT_ID", help="prj_..."),
) -> None:
    """Set the active project (the default for other project commands).

    Example: run402 projects use prj_1700000000_0001
    """
    run_use(UseOptions(project_id=strict_project(project_id) or project_id), ctx)


def run_use(opts: UseOptions, ctx: typer.Context) -> None:
    s = settings(ctx)
    project_id, _ = resolve(ctx, opts.project_id)
    s.keystore().set_active(project_id)
    output.emit({"status": "ok", "active_project_id": project_id}, compact=True)


@dataclass(frozen=True)
class ListOptions:
    pass


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List the projects saved in the local keystore, marking the active one.

    Example: run402 projects list
    """
    run_list(ListOptions(), ctx)


def run_list(opts: ListOptions, ctx: typer.Context) -> None:
    store = settings(ctx).keystore().load()
    if not store["projects"]:
        output.emit({"status": "ok", "projects": [], "message": "No projects yet."}, compact=True)
        return
    active = store.get("active_project_id")
    output.emit(
        [
            {"project_id": pid, "active": pid == active, "site_url": entry.get("site_url") or None}
            for pid, entry in store["projects"].items()
        ]
    )


@dataclass(frozen=True)
class InfoOptions:
    project_id: Optional[str] = None


@app.command("info")
def info(ctx: typer.Context, project_id: Optional[str] = project_arg()) -> None:
    """Show a project's REST URL and keys (local keystore only).

    Example: run402 projects info
    """
    run_info(InfoOptions(project_id=strict_project(project_id)), ctx)


def run_info(opts: InfoOptions, ctx: typer.Context) -> None:
    api_base = settings(ctx).api_base
    project_id, entry = resolve(ctx, opts.project_id)
    output.emit(
        {
            "project_id": project_id,
            "rest_url": f"{api_base}/rest/v1",
            "anon_key": entry.get("anon_key"),
            "service_key": entry.get("service_key"),
            "site_url": entry.get("site_url") or None,
        }
    )


@dataclass(frozen=True)
class KeysOptions:
    project_id: Optional[str] = None


@app.command("keys")
def keys(ctx: typer.Context, project_id: Optional[str] = project_arg()) -> None:
    """Print a project's anon_key and service_key (local keystore only).

    Example: run402 projects keys
    """
    run_keys(KeysOptions(project_id=strict_project(project_id)), ctx)


def run_keys(opts: KeysOptions, ctx: typer.Context) -> None:
    project_id, entry = resolve(ctx, opts.project_id)
    output.emit(
        {
            "project_id": project_id,
            "anon_key": entry.get("anon_key"),
            "service_key": entry.get("service_key"),
        }
    )


# --- sql -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SqlOptions:
    sql: str
    project_id: Optional[str] = None
    params: Optional[tuple[Any, ...]] = None
    file: Optional[str] = None


@app.command("sql")
def sql(
    ctx: typer.Context,
    args: Optional[List[str]] = typer.Argument(
        None, metavar="[PROJECT_ID] [QUERY]", help="Optional prj_... id, then the SQL text."
    ),
    file: Optional[str] = typer.Option(None, "--file", help="Read the SQL from this file."),
    params: Optional[str] = typer.Option(
        None, "--params", help="JSON array of parameters for $1, $2, ..."
    ),
) -> None:
    """Run SQL against a project's database (as the project owner).

    Example: run402 projects sql "SELECT now()"
    """
    positionals = list(args or [])
    project_id: Optional[str] = None
    if positionals and positionals[0].startswith("prj_"):
        project_id = positionals.pop(0)
        if len(positionals) > 1:
            raise UsageError(
                f"Unexpected extra argument: {positionals[1][:64]}",
                hint='Quote the query: run402 projects sql [id] "<sql>"',
            )
    elif positionals and (file is not None or len(positionals) > 1):
        raise bad_project_id(positionals[0])
    if positionals and file is not None:
        raise UsageError(
            "Provide either an inline query or --file <path>, not both.",
            hint="run402 projects sql [id] --file setup.sql",
        )
    parsed: Optional[list[Any]] = None
    if params is not None:
        parsed = parse_json_flag("--params", params, expect=list)
    text = read_file_flag(file, "--file")[0] if file is not None else (positionals[0] if positionals else "")
    if not text.strip():
        raise UsageError(
            "Missing SQL query.", hint='Provide it inline (run402 projects sql "SELECT 1") '
            "or use --file <path>",
        )
    run_sql(
        SqlOptions(
            sql=text, project_id=project_id,
            params=tuple(parsed) if parsed is not None else None, file=file,
        ),
        ctx,
    )


def run_sql(opts: SqlOptions, ctx: typer.Context) -> None:
    from run402_cli.api import projects

    project_id, entry = resolve(ctx, opts.project_id)
    with client(ctx) as c:
        data = projects.sql(
            c, project_id, entry["service_key"], opts.sql,
            list(opts.params) if opts.params is not None else None,
        )
    output.emit(data)


# --- schema / usage ------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaOptions:
    project_id: Optional[str] = None


@app.command("schema")
def schema(ctx: typer.Context, project_id: Optional[str] = project_arg()) -> None:
    """Inspect a project's tables, columns, constraints and RLS policies.

    Example: run402 projects schema
    """
    run_schema(SchemaOptions(project_id=strict_project(project_id)), ctx)


def run_schema(opts: SchemaOptions, ctx: typer.Context) -> None:
    from run402_cli.api import projects

    emit_service_key_call(ctx, opts.project_id, projects.schema)


@dataclass(frozen=True)
class UsageOptions:
    project_id: Optional[str] = None


@app.command("usage")
def usage(ctx: typer.Context, project_id: Optional[str] = project_arg()) -> None:
    """Show a project's API calls and storage against its limits.

    Example: run402 projects usage
    """
    run_usage(UsageOptions(project_id=strict_project(project_id)), ctx)


def run_usage(opts: UsageOptions, ctx: typer.Context) -> None:
    from run402_cli.api import projects

    emit_service_key_call(ctx, opts.project_id, projects.usage)


# --- delete --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeleteOptions:
    project_id: Optional[str] = None
    confirm: bool = False


@app.command("delete")
def delete(
    ctx: typer.Context,
    project_id: Optional[str] = project_arg(),
    confirm: bool = typer.Option(False, "--confirm", help="Required: the delete is irreversible."),
) -> None:
    """Delete a project now and for good (schema, functions, sites, blobs, secrets).

    Example: run402 projects delete prj_1700000000_0001 --confirm
    """
    run_delete(DeleteOptions(project_id=strict_project(project_id), confirm=confirm), ctx)


def run_delete(opts: DeleteOptions, ctx: typer.Context) -> None:
    from run402_cli.api import projects

    project_id, entry = resolve(ctx, opts.project_id)
    if not opts.confirm:
        raise RawEnvelope(
            f"Destructive: deleting project {project_id} drops all DB schemas, functions, "
            "subdomains, mailbox, blobs, and secrets. This is irreversible. "
            "Re-run with --confirm to proceed.",
            code="CONFIRMATION_REQUIRED",
            details={"project_id": project_id, "destroys": list(DESTROYS)},
        )
    with client(ctx) as c:
        projects.delete(c, project_id, entry["service_key"])
    settings(ctx).keystore().remove_project(project_id)
    output.emit({"status": "ok", "message": f"Project {project_id} deleted."}, compact=True)
