"""What the `functions` verbs share: the group, the positionals and their check, and the
flag parsers both `deploy` and `update` use (`--schedule`, `--deps`)."""

from __future__ import annotations

from typing import Any, Optional

import typer

from run402_cli.commands._options import group, resolve_project
from run402_cli.errors import UsageError

__all__ = ["app", "bad_flag", "check_target", "deps_flag", "name_arg", "project_arg", "schedule_flag"]

app = group(help="Functions: deploy, invoke, tail the logs of, reschedule, list and delete a project's "
                 "serverless functions.")


def project_arg() -> Any:
    return typer.Argument(None, metavar="PROJECT_ID", help="prj_... (required).")


def name_arg(help: str = "The function's name (its URL is /functions/v1/<name>).") -> Any:
    return typer.Argument(None, metavar="NAME", help=help)


def check_target(ctx: typer.Context, project_id: Optional[str], name: Optional[str],
                 usage: str) -> tuple[str, str]:
    """The positionals, checked: a present project id, a valid function name."""
    from run402_cli.wire.functions import FUNCTION_NAME, function_name_problem

    if not project_id:
        raise UsageError("Missing <project_id>.", hint=usage)
    if not name:
        raise UsageError("Missing <name>.", hint=usage)
    problem = function_name_problem(name)
    if problem:
        raise UsageError(f"Invalid function name {name[:80]!r}: {problem}.", hint="e.g. send-reminders",
                         details={"name": name[:80], "pattern": f"^{FUNCTION_NAME.pattern}$"})
    resolve_project(ctx, project_id)  # BAD_PROJECT_ID / PROJECT_NOT_FOUND, before any request
    return project_id, name


def bad_flag(flag: str, value: Any, message: str, hint: Optional[str] = None, **details: Any) -> UsageError:
    return UsageError(message, hint=hint, details={"flag": flag, "value": value, **details})


def schedule_flag(value: Optional[str]) -> Optional[str]:
    """`--schedule`: None when absent, '' to clear it, else a valid cron expression."""
    from run402_cli.wire.cron import CronError, parse

    if not value:
        return value
    try:
        parse(value)
    except CronError as err:
        extra = {"cron_field": err.field} if err.field else {}
        raise bad_flag("--schedule", value[:200], f"Invalid --schedule: {err.message}",
                       "5 fields: minute hour day-of-month month day-of-week, e.g. '*/15 * * * *'; "
                       "'' removes the schedule.", **extra) from None
    return value


def deps_flag(value: Optional[str]) -> Optional[tuple[str, ...]]:
    from run402_cli.wire.functions import deps_problem

    if value is None or value == "":
        return None
    deps = [d.strip() for d in value.split(",")]
    if "" in deps:
        raise bad_flag("--deps", value[:200], "--deps is a comma-separated list of npm package specs, "
                       "with no empty entries.", 'e.g. --deps "lodash,date-fns@^3"')
    problem = deps_problem(deps)
    if problem is not None:
        index, why = problem
        what = f"--deps entry {deps[index][:80]!r}" if index is not None else "--deps"
        raise bad_flag("--deps", value[:200], f"{what} {why}.", **({"index": index} if index is not None else {}))
    return tuple(deps)
