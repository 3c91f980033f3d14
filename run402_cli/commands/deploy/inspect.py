"""`deploy list|events|release get|active|diff`: what operations and releases exist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, project_opt, resolve_project, settings
from run402_cli.commands.deploy._app import app, release_app
from run402_cli.commands.deploy._shared import check_operation_id, positive_int
from run402_cli.errors import UsageError



# --- list / events --------------------------------------------------------------------------


@dataclass(frozen=True)
class ListOptions:
    project_id: Optional[str] = None
    limit: Optional[int] = None


@app.command("list")
def list_(
    ctx: typer.Context,
    project: Optional[str] = project_opt(),
    limit: Optional[str] = typer.Option(None, "--limit", help="At most this many operations (positive integer)."),
) -> None:
    """List a project's recent deploy operations, newest first.

    Example: run402 deploy list --limit 5
    """
    from run402_cli import config

    opts = ListOptions(project_id=project, limit=positive_int(limit, "--limit"))
    resolve_project(ctx, opts.project_id)
    config.require_allowance(settings(ctx))
    run_list(opts, ctx)


def run_list(opts: ListOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = api.list_operations(c, entry.get("anon_key"), limit=opts.limit)
    data = data if isinstance(data, dict) else {}
    output.emit({"status": "ok", "operations": data.get("operations", []), "cursor": data.get("cursor")})


@dataclass(frozen=True)
class EventsOptions:
    operation_id: str
    project_id: Optional[str] = None


@app.command("events")
def events(
    ctx: typer.Context,
    operation_id: Optional[str] = typer.Argument(None, metavar="OPERATION_ID", help="op_..."),
    project: Optional[str] = project_opt(),
) -> None:
    """Fetch the recorded event stream of a deploy operation.

    Example: run402 deploy events op_0123abcd
    """
    from run402_cli import config

    opts = EventsOptions(operation_id=check_operation_id(operation_id, "run402 deploy events <operation_id>"),
                         project_id=project)
    resolve_project(ctx, opts.project_id)
    config.require_allowance(settings(ctx))
    run_events(opts, ctx)


def run_events(opts: EventsOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = api.operation_events(c, entry.get("anon_key"), opts.operation_id)
    output.emit({"status": "ok", **(data if isinstance(data, dict) else {"events": data})})


# --- release get / active / diff ------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseGetOptions:
    release_id: str
    project_id: Optional[str] = None
    site_limit: Optional[int] = None


@release_app.command("get")
def release_get(
    ctx: typer.Context,
    release_id: Optional[str] = typer.Argument(None, metavar="RELEASE_ID", help="rel_..."),
    project: Optional[str] = project_opt(),
    site_limit: Optional[str] = typer.Option(None, "--site-limit", help="At most this many site paths (gateway default 5000)."),
) -> None:
    """Show the inventory of one release: site paths, routes, migrations, subdomains.

    Example: run402 deploy release get rel_0123abcd
    """
    if not release_id:
        raise UsageError("Missing <release_id>.", hint="run402 deploy release get <release_id>")
    opts = ReleaseGetOptions(release_id=release_id, project_id=project,
                             site_limit=positive_int(site_limit, "--site-limit"))
    resolve_project(ctx, opts.project_id)
    run_release_get(opts, ctx)


def run_release_get(opts: ReleaseGetOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        release = api.get_release(c, entry.get("anon_key"), opts.release_id, site_limit=opts.site_limit)
    output.emit({"status": "ok", "release": release})


@dataclass(frozen=True)
class ReleaseActiveOptions:
    project_id: Optional[str] = None
    site_limit: Optional[int] = None


@release_app.command("active")
def release_active(
    ctx: typer.Context,
    project: Optional[str] = project_opt(),
    site_limit: Optional[str] = typer.Option(None, "--site-limit", help="At most this many site paths (gateway default 5000)."),
) -> None:
    """Show the live release inventory of the project (release_id null if none was activated).

    Example: run402 deploy release active
    """
    opts = ReleaseActiveOptions(project_id=project, site_limit=positive_int(site_limit, "--site-limit"))
    resolve_project(ctx, opts.project_id)
    run_release_active(opts, ctx)


def run_release_active(opts: ReleaseActiveOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        release = api.active_release(c, entry.get("anon_key"), site_limit=opts.site_limit)
    output.emit({"status": "ok", "release": release})


@dataclass(frozen=True)
class ReleaseDiffOptions:
    from_: str
    to: str
    project_id: Optional[str] = None
    limit: Optional[int] = None


@release_app.command("diff")
def release_diff(
    ctx: typer.Context,
    from_: Optional[str] = typer.Option(None, "--from", help="empty, active or rel_..."),
    to: Optional[str] = typer.Option(None, "--to", help="active or rel_..."),
    project: Optional[str] = project_opt(),
    limit: Optional[str] = typer.Option(None, "--limit", help="At most this many entries per site bucket (gateway default 1000)."),
) -> None:
    """Diff two releases: site paths, routes, functions, secrets, subdomains, migrations.

    Example: run402 deploy release diff --from empty --to active
    """
    if not from_ or not to:
        raise UsageError("Missing --from or --to release target.",
                         hint="run402 deploy release diff --from empty --to active")
    if to == "empty":
        raise UsageError("--to cannot be empty. Use active or a release id.",
                         details={"flag": "--to", "value": to})
    opts = ReleaseDiffOptions(from_=from_, to=to, project_id=project, limit=positive_int(limit, "--limit"))
    resolve_project(ctx, opts.project_id)
    run_release_diff(opts, ctx)


def run_release_diff(opts: ReleaseDiffOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        diff = api.diff_releases(c, entry.get("anon_key"), opts.from_, opts.to, limit=opts.limit)
    output.emit({"status": "ok", "diff": diff})


# --- diagnose / resolve ---------------------------------------------------------------------
