"""`functions update`, `functions list` and `functions delete`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, positive_int, resolve_project
from run402_cli.commands.functions._common import app, check_target, name_arg, project_arg, schedule_flag
from run402_cli.errors import UsageError


# --- update ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateOptions:
    project_id: str
    name: str
    schedule: Optional[str] = None  # '': remove it (sent as null)
    timeout: Optional[int] = None
    memory: Optional[int] = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.schedule is not None:
            body["schedule"] = self.schedule or None
        config = {k: v for k, v in (("timeout", self.timeout), ("memory", self.memory)) if v is not None}
        if config:
            body["config"] = config
        return body


@app.command("update")
def update(
    ctx: typer.Context,
    project_id: Optional[str] = project_arg(),
    name: Optional[str] = name_arg(),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="A new 5-field cron schedule (UTC); '' removes it."),
    schedule_remove: bool = typer.Option(False, "--schedule-remove", help="Remove the schedule."),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Timeout in seconds."),
    memory: Optional[str] = typer.Option(None, "--memory", help="Memory in MB."),
) -> None:
    """Change a function's schedule, timeout or memory without redeploying its code (at least one).

    Example: run402 functions update prj_abc123 send-reminders --schedule '0 */4 * * *'
    """
    pid, fn = check_target(ctx, project_id, name, "run402 functions update <project_id> <name> "
                           "[--schedule '<cron>'|''] [--schedule-remove] [--timeout s] [--memory mb]")
    if schedule is not None and schedule_remove:
        raise UsageError("--schedule and --schedule-remove are mutually exclusive.",
                         details={"flags": ["--schedule", "--schedule-remove"]})
    opts = UpdateOptions(project_id=pid, name=fn, schedule="" if schedule_remove else schedule_flag(schedule),
                         timeout=positive_int(timeout, "--timeout"), memory=positive_int(memory, "--memory"))
    if not opts.body():
        raise UsageError("Nothing to update: give at least one of --schedule, --schedule-remove, --timeout, --memory.",
                         hint="e.g. run402 functions update <project_id> <name> --timeout 15")
    run_update(opts, ctx)


def run_update(opts: UpdateOptions, ctx: typer.Context) -> None:
    from run402_cli.api import functions
    from run402_cli.deploy import preflight

    _, entry = resolve_project(ctx, opts.project_id)
    key = entry["service_key"]
    with client(ctx) as c:
        preflight.check_function(c, key, opts.project_id, opts.name, timeout=opts.timeout,
                                 memory=opts.memory, schedule=opts.schedule)
        output.emit(functions.update(c, key, opts.project_id, opts.name, opts.body()))


# --- list, delete ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListOptions:
    project_id: str


@app.command("list")
def list_(ctx: typer.Context, project_id: Optional[str] = project_arg()) -> None:
    """List a project's functions, with their schedules and last runs.

    Example: run402 functions list prj_abc123
    """
    if not project_id:
        raise UsageError("Missing <project_id>.", hint="run402 functions list <project_id>")
    resolve_project(ctx, project_id)
    run_list(ListOptions(project_id=project_id), ctx)


def run_list(opts: ListOptions, ctx: typer.Context) -> None:
    from run402_cli.api import functions

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        output.emit(functions.list_(c, entry["service_key"], opts.project_id))


@dataclass(frozen=True)
class DeleteOptions:
    project_id: str
    name: str


@app.command("delete")
def delete(ctx: typer.Context, project_id: Optional[str] = project_arg(),
           name: Optional[str] = name_arg("The function to delete.")) -> None:
    """Delete a function (its URL stops answering at once; a schedule stops with it).

    Example: run402 functions delete prj_abc123 stripe-webhook
    """
    pid, fn = check_target(ctx, project_id, name, "run402 functions delete <project_id> <name>")
    run_delete(DeleteOptions(project_id=pid, name=fn), ctx)


def run_delete(opts: DeleteOptions, ctx: typer.Context) -> None:
    from run402_cli.api import functions

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        functions.delete(c, entry["service_key"], opts.project_id, opts.name)
    output.emit({"status": "ok", "message": f"Function '{opts.name}' deleted."}, compact=True)
