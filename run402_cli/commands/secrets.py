"""`run402 secrets set|list|delete`: a project's write-only secrets (its functions see them as
environment variables), with the project's service key.

The project id is a required positional (no active-project default, as in the official CLI).
`set` takes its value from exactly one source: the third positional, `--file <path>` (`-` or
/dev/stdin: stdin) or `--stdin`. Key and value are checked here, before any request. No error
of this module shows a value, or anything on the command line that could be one: an invalid
key, a surplus positional or an odd `-…` token is described, never echoed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, List, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import (
    StrictCommand, client, group, read_file_flag, read_stdin_source, resolve_project,
)
from run402_cli.errors import UsageError

app = group(help="Secrets: write-only values a project's functions read as environment variables.")

_STDIN_ALIASES = ("-", "/dev/stdin")
_FLAG_SHAPE = re.compile(r"^--[a-z][a-z0-9-]{0,40}(=.*)?$")
_SET_USAGE = "run402 secrets set <project_id> <KEY> (<value> | --file <path> | --stdin)"


def _project_arg() -> Any:
    return typer.Argument(None, metavar="PROJECT_ID", help="prj_... (required).")


def _require(value: Optional[str], what: str, usage: str) -> str:
    if not value:
        raise UsageError(f"Missing {what}.", hint=f"Usage: {usage}")
    return value


def _check_key(key: str) -> None:
    from run402_cli.wire.secrets import secret_key_problem

    problem = secret_key_problem(key)
    if problem:
        code, message, details = problem
        raise UsageError(message, code=code, details=details, hint="e.g. STRIPE_SECRET_KEY")


class _SetCommand(StrictCommand):
    """`secrets set` argv may hold a secret value: a token the parser would reject as an
    unknown flag is reported without being shown, unless it is shaped like a flag name."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        known = {o for p in self.get_params(ctx) for o in getattr(p, "opts", []) if o.startswith("-")}
        for arg in args:
            if arg == "--":
                break
            if (arg.startswith("-") and arg != "-" and arg.split("=", 1)[0] not in known
                    and not _FLAG_SHAPE.match(arg)):
                raise UsageError(
                    "Unknown flag (not shown: it may be a secret value).", code="UNKNOWN_FLAG",
                    hint="A value that starts with '-' goes after '--', or use --stdin / --file.",
                    details={"closest": []})
        return super().parse_args(ctx, args)


# --- set ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetOptions:
    project_id: str
    key: str
    value: str
    source: str  # inline | --file | --file stdin | --stdin

    def __repr__(self) -> str:  # the value never reaches a log or a traceback
        return f"SetOptions(project_id={self.project_id!r}, key={self.key!r}, value=<{self.source}>)"


def _missing_stdin() -> UsageError:
    return UsageError(
        "Missing secret value on stdin.",
        hint="Pipe a value, use --file <path>, or provide an inline value only when shell history "
             "exposure is acceptable.",
        next_actions=[
            {"action": "pipe_value", "command": 'printf %s "$VALUE" | run402 secrets set <project> <KEY> --stdin'},
            {"action": "read_file", "command": "run402 secrets set <project> <KEY> --file <path>"},
        ])


def _read_value(inline: Optional[str], file: Optional[str], stdin: bool) -> tuple[str, str]:
    """(value, source) from exactly one source."""
    sources = []
    if inline is not None:
        sources.append("inline")
    if file is not None:
        sources.append("--file stdin" if file in _STDIN_ALIASES else "--file")
    if stdin:
        sources.append("--stdin")
    if len(sources) > 1:
        raise UsageError("Provide exactly one secret value source.", details={"sources": sources},
                         hint="Use one of: inline value, --file <path>, or --stdin.")
    if not sources:
        raise UsageError(
            "Missing secret value.",
            hint="Pipe a value to --stdin, use --file <path>, or provide an inline value only when "
                 "shell history exposure is acceptable.")
    source = sources[0]
    if source == "inline":
        return inline, source  # type: ignore[return-value]
    if source == "--file":
        return read_file_flag(file, "--file", verbatim=True)[0], source  # type: ignore[arg-type]
    reader = read_stdin_source(verbatim=True)
    if reader is None:  # a terminal, /dev/null, or no stdin at all
        raise _missing_stdin()
    try:
        value = reader()
    except UnicodeDecodeError:
        raise UsageError("The secret value on stdin is not valid UTF-8.", code="BAD_SECRET_VALUE") from None
    if not value:
        raise _missing_stdin()
    return value, source


@app.command("set", cls=_SetCommand)
def set_(
    ctx: typer.Context,
    args: Optional[List[str]] = typer.Argument(
        None, metavar="PROJECT_ID KEY [VALUE]",
        help="prj_..., the key (exposed as process.env.KEY), and the value unless --file/--stdin."),
    file: Optional[str] = typer.Option(
        None, "--file", help="Read the value from this file (UTF-8, verbatim); - or /dev/stdin: stdin."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the value from stdin until EOF."),
) -> None:
    """Set (or overwrite) a project secret. Prefer --stdin or --file: an inline value lands in
    shell history.

    Example: printf %s "$STRIPE_KEY" | run402 secrets set prj_abc123 STRIPE_KEY --stdin
    """
    positionals = list(args or [])
    if len(positionals) > 3:
        raise UsageError(
            f"Unexpected extra argument for secrets set ({len(positionals) - 3} more; not shown).",
            hint="Quote a value that has spaces, or pass it with --stdin / --file.")
    project_id = _require(positionals[0] if positionals else None, "<project_id>", _SET_USAGE)
    key = _require(positionals[1] if len(positionals) > 1 else None, "<KEY>", _SET_USAGE)
    value, source = _read_value(positionals[2] if len(positionals) > 2 else None, file, stdin)
    _check_key(key)
    from run402_cli.wire.secrets import secret_value_problem

    problem = secret_value_problem(value)
    if problem:
        code, message, details = problem
        raise UsageError(message, code=code, details=details or None)
    resolve_project(ctx, project_id)
    run_set(SetOptions(project_id=project_id, key=key, value=value, source=source), ctx)


def run_set(opts: SetOptions, ctx: typer.Context) -> None:
    from run402_cli.api import secrets

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        secrets.set_(c, opts.project_id, entry["service_key"], opts.key, opts.value)
    output.emit({"status": "ok", "message": f"Secret '{opts.key}' set for project {opts.project_id}."},
                compact=True)


# --- list -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListOptions:
    project_id: str


@app.command("list")
def list_(ctx: typer.Context, project_id: Optional[str] = _project_arg()) -> None:
    """List a project's secret keys and timestamps (values are never returned).

    Example: run402 secrets list prj_abc123
    """
    pid = _require(project_id, "<project_id>", "run402 secrets list <project_id>")
    resolve_project(ctx, pid)
    run_list(ListOptions(project_id=pid), ctx)


def run_list(opts: ListOptions, ctx: typer.Context) -> None:
    from run402_cli.api import secrets

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        output.emit(secrets.list_(c, opts.project_id, entry["service_key"]))


# --- delete ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeleteOptions:
    project_id: str
    key: str


@app.command("delete")
def delete(
    ctx: typer.Context,
    project_id: Optional[str] = _project_arg(),
    key: Optional[str] = typer.Argument(None, metavar="KEY", help="The secret to remove."),
) -> None:
    """Delete a project secret (functions stop seeing it on their next start).

    Example: run402 secrets delete prj_abc123 STRIPE_KEY
    """
    usage = "run402 secrets delete <project_id> <KEY>"
    pid = _require(project_id, "<project_id>", usage)
    name = _require(key, "<KEY>", usage)  # not pattern-checked: a legacy key must stay deletable
    resolve_project(ctx, pid)
    run_delete(DeleteOptions(project_id=pid, key=name), ctx)


def run_delete(opts: DeleteOptions, ctx: typer.Context) -> None:
    from run402_cli.api import secrets

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        secrets.delete(c, opts.project_id, entry["service_key"], opts.key)
    output.emit({"status": "ok", "message": f"Secret '{opts.key}' deleted."}, compact=True)
