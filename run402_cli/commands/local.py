"""`run402 local up|down|status|logs|mailbox`: the local Run402-compatible gateway.

The only module outside `run402_cli/local/` that imports it, and only inside the commands.
`mailbox` is a client of the running gateway (through `api/`), not of its internals."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, group, settings
from run402_cli.errors import LocalError, UsageError

app = group(
    "The local gateway: real PostgreSQL + PostgREST + the Run402 API on 127.0.0.1, no Docker. "
    "Point the CLI at it with RUN402_API_BASE=<api_base>."
)

_LOG_NAMES = ("gateway", "postgres", "postgrest")


def _local_dir() -> Path:
    from run402_cli.local.runtime.layout import default_local_dir

    return default_local_dir()


@dataclass(frozen=True)
class UpOptions:
    port: int | None


@app.command("up")
def up(
    port: Optional[int] = typer.Option(
        None, "--port", help="Port on 127.0.0.1 (0 = any free port). Default: the last one used, else 4020."
    ),
) -> None:
    """Start the local gateway in the background (or reuse the running one); print its api_base.

    Example: export RUN402_API_BASE=$(run402 local up | jq -r .api_base)
    """
    if port is not None and not 0 <= port < 65536:
        raise UsageError(f"--port must be 0-65535, got {port}", code="BAD_FLAG", details={"flag": "--port"})
    run_up(UpOptions(port=port))


def run_up(opts: UpOptions) -> None:
    from run402_cli.local.runtime import supervisor

    output.emit(supervisor.up(_local_dir(), opts.port, output.progress))


@app.command("down")
def down() -> None:
    """Stop the local gateway, PostgREST and PostgreSQL. Data stays for the next `up`.

    Example: run402 local down
    """
    from run402_cli.local.runtime import supervisor

    output.emit(supervisor.down(_local_dir()))


@app.command("status")
def status() -> None:
    """Whether the local gateway runs, where, and its health checks.

    Example: run402 local status
    """
    from run402_cli.local.runtime import supervisor

    output.emit(supervisor.status(_local_dir()))


@app.command("logs")
def logs(
    lines: int = typer.Option(50, "--lines", "-n", help="How many lines from the end of each log."),
    service: Optional[str] = typer.Option(
        None, "--service", help="Only this log: gateway, postgres or postgrest."
    ),
) -> None:
    """The last lines of the gateway, PostgreSQL and PostgREST logs, as JSON.

    Example: run402 local logs --service postgres -n 20
    """
    if lines < 0:
        raise UsageError("--lines must be >= 0", code="BAD_FLAG", details={"flag": "--lines"})
    if service is not None and service not in _LOG_NAMES:
        raise UsageError(
            f"--service must be one of {', '.join(_LOG_NAMES)}", code="BAD_FLAG",
            details={"flag": "--service", "allowed": list(_LOG_NAMES)},
        )
    from run402_cli.local.runtime import supervisor

    names = (service,) if service else _LOG_NAMES
    output.emit(supervisor.logs(_local_dir(), lines, names))


@dataclass(frozen=True)
class MailboxOptions:
    project_id: Optional[str] = None
    to: Optional[str] = None


@app.command("mailbox")
def mailbox(
    ctx: typer.Context,
    project_id: Optional[str] = typer.Argument(
        None, metavar="[PROJECT_ID]", help="prj_... (default: the active project)."
    ),
    to: Optional[str] = typer.Option(None, "--to", help="Only the mail sent to this address."),
) -> None:
    """The mail the local gateway captured for a project (magic links, invites), newest first.

    Example: run402 local mailbox --to ada@example.com | jq -r '.messages[0].body_text'
    """
    if project_id is not None and not project_id.startswith("prj_"):
        raise UsageError(
            f"Argument '{project_id[:64]}' is not a project id. Project IDs must start with 'prj_'.",
            code="BAD_PROJECT_ID",
            hint="Omit the project id to use the active project, or pass the full prj_... id.",
            details={"value": project_id[:64], "expected_prefix": "prj_"},
        )
    if to is not None and not to.strip():
        raise UsageError("--to must not be empty.", code="BAD_FLAG", details={"flag": "--to"})
    run_mailbox(MailboxOptions(project_id=project_id, to=to), ctx)


def run_mailbox(opts: MailboxOptions, ctx: typer.Context) -> None:
    from run402_cli import config
    from run402_cli.api import mailbox as mailbox_api

    s = settings(ctx)
    if not (s.env.get("RUN402_API_BASE") or "").strip():
        raise LocalError(
            "The mailbox lives in the local gateway, and RUN402_API_BASE does not point at one.",
            code="BAD_ENV",
            hint="export RUN402_API_BASE=$(run402 local up | jq -r .api_base)",
            details={"variable": "RUN402_API_BASE"},
        )
    project_id, entry = config.resolve_project(s, opts.project_id)
    with client(ctx) as c:
        data = mailbox_api.list_messages(c, project_id, entry["service_key"], opts.to)
    output.emit(data)
