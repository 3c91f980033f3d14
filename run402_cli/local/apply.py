"""The `/apply/v1` route table: plans (apply_plan), commit and resume (apply_commit), and the
read-only operations/releases/resolve endpoints (releases). Split by concern so each module
stays small; this is the one list app.py registers."""

from __future__ import annotations

from run402_cli.local import apply_commit, apply_plan, releases

__all__ = ["routes"]

routes = [*apply_plan.routes, *apply_commit.routes, *releases.routes]
