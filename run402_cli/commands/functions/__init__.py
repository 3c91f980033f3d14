"""`run402 functions deploy|invoke|logs|update|list|delete`: a project's serverless functions,
with the project's service key (spec/api-deploy.md §5.1).

The project id is a required positional (no active-project default, as in the official CLI).
Everything that can be checked here is, before any request: the function name, integer flags,
`--deps` entries, the cron schedule (`wire.cron`), the code file, `--since` and `--request-id`;
then, for a timeout, memory size or schedule, the tier preflight (`deploy/preflight.py`).
An empty string for an optional text flag counts as not given (as in the official CLI), except
`--schedule ''`, which clears the schedule.
"""

from __future__ import annotations

# The verbs register themselves on `app` when imported, in the official CLI's order.
from run402_cli.commands.functions import deploy, calls, manage  # noqa: F401  (isort: skip)
from run402_cli.commands.functions._common import app
from run402_cli.commands.functions.calls import InvokeOptions, LogCursor, LogsOptions, since_ms
from run402_cli.commands.functions.deploy import DeployOptions
from run402_cli.commands.functions.manage import DeleteOptions, ListOptions, UpdateOptions

__all__ = [
    "calls", "deploy", "manage",  # the verb modules
    "DeleteOptions", "DeployOptions", "InvokeOptions", "ListOptions", "LogCursor", "LogsOptions",
    "UpdateOptions", "app", "since_ms",
]
