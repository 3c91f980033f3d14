"""The `deploy` group and its `release` sub-group (the verbs register on them)."""

from __future__ import annotations

from run402_cli.commands._options import group

__all__ = ["app", "release_app"]

app = group(help="Unified deploy: apply a release spec, resume, inspect operations, releases and URLs.")
release_app = group(help="Inspect release inventories and diffs.")
app.add_typer(release_app, name="release")
