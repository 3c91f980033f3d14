"""What the `projects` commands share: the group, project-id positional rules, file flags.

Project-id positionals follow the official CLI: a first positional that
starts with `prj_` is the project; otherwise the active project is used. Strict forms
(`info`, `keys`, `schema`, `usage`, `get-expose`, `delete`) reject any other first positional
(BAD_PROJECT_ID); `sql` and `apply-expose` take one bare positional (the query or manifest).
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from run402_cli.commands._options import group, read_file_flag, resolve_project
from run402_cli.errors import Run402Error, UsageError

__all__ = [
    "RawEnvelope",
    "app",
    "bad_project_id",
    "project_arg",
    "read_file_flag",
    "resolve",
    "split_project",
    "strict_project",
]

app = group(
    help="Postgres projects: provision, keys, SQL, REST, expose manifest, users, usage, delete."
)


def project_arg() -> Any:
    return typer.Argument(None, metavar="[PROJECT_ID]", help="prj_... (default: the active project).")


class RawEnvelope(Run402Error):
    """An error the official CLI prints as a bare {status, code, message, details} line."""

    def to_envelope(self) -> dict[str, Any]:
        return {"status": "error", "code": self.code, "message": self.message, "details": self.details}


def bad_project_id(value: str) -> UsageError:
    shown = value if len(value) <= 64 else value[:61] + "..."
    return UsageError(
        f"Argument '{shown}' is not a project id. Project IDs must start with 'prj_'.",
        code="BAD_PROJECT_ID",
        hint="Omit the project id to use the active project, or pass the full prj_... id.",
        details={"value": shown, "expected_prefix": "prj_"},
    )


def strict_project(value: Optional[str]) -> Optional[str]:
    if value is not None and not value.startswith("prj_"):
        raise bad_project_id(value)
    return value


def split_project(args: Optional[list[str]], *, max_bare: int, usage: str) -> tuple[Optional[str], list[str]]:
    """(project id or None, the bare positionals after it). More than `max_bare` of those is
    BAD_USAGE (extra positionals are a usage error)."""
    positionals = list(args or [])
    project_id = positionals.pop(0) if positionals and positionals[0].startswith("prj_") else None
    if len(positionals) > max_bare:
        extra = positionals[max_bare]
        raise UsageError(
            f"Unexpected extra argument: {extra[:64]}", hint=f"Usage: {usage}",
            details={"argument": extra[:64]},
        )
    return project_id, positionals


resolve = resolve_project  # the one resolver (commands/_options.py), under the name this group uses
