"""`run402 deploy apply|resume|list|events|release|diagnose|resolve`: the unified deploy
primitive.

`apply` validates and normalizes the manifest completely (JSON, secret values, empty
manifest, unknown fields, hostile paths, file entries hashed) before anything touches the
network; then plan -> upload what is missing -> commit -> poll (`deploy/flow.py`). Events go
to stderr as JSON lines (a progress bar on a terminal), `--quiet` silences them, and the
result goes to stdout.
"""

from __future__ import annotations

# The verbs register themselves on `app` when imported; one module per verb group.
from run402_cli.commands.deploy import apply, inspect, resolve  # noqa: F401
from run402_cli.commands.deploy._app import app
from run402_cli.commands.deploy._shared import positive_int, read_stdin_source
from run402_cli.commands.deploy.apply import ApplyOptions, ResumeOptions
from run402_cli.commands.deploy.inspect import (
    EventsOptions, ListOptions, ReleaseActiveOptions, ReleaseDiffOptions, ReleaseGetOptions,
)
from run402_cli.commands.deploy.resolve import ResolveOptions
from run402_cli.output import event_sink

__all__ = [
    "apply", "inspect", "resolve",  # the verb modules
    "ApplyOptions", "EventsOptions", "ListOptions", "ReleaseActiveOptions", "ReleaseDiffOptions",
    "ReleaseGetOptions", "ResolveOptions", "ResumeOptions", "app", "event_sink", "positive_int",
    "read_stdin_source",
]
