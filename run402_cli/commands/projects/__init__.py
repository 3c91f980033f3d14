"""`run402 projects ...`: the group, split by concern.

- `core`: quote, provision, use, list, info, keys, sql, schema, usage, delete
- `data`: rest, apply-expose, validate-expose, get-expose, promote-user, demote-user

Importing the package registers every command on `app` (in this order).
"""

from __future__ import annotations

from run402_cli.commands.projects import core, data
from run402_cli.commands.projects._common import app

__all__ = ["app", "core", "data"]
