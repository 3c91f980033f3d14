"""`run402 blob ...`: the `assets` commands under their older name, for agents that know it
(hidden from the help and the generated reference, which list `assets`)."""

from __future__ import annotations

from run402_cli.commands.assets import blob_app as app

__all__ = ["app"]

app.info.hidden = True
