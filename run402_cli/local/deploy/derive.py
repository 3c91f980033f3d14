"""A release derived from the active one by a platform API rather than a plan
(`functions deploy|update|delete`): the same immutable release row, the same atomic pointer
move, the same deploy lock as a commit — so a function changed through the API and one
changed by `deploy apply` are the same thing, and the next apply carries it forward.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Callable

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import Project
from run402_cli.local.deploy.apply_state import EMPTY_STATE
from run402_cli.local.deploy.apply_store import active_release, hold_deploy_lock
from run402_cli.local.deploy.deploy_common import deployment_id_for, new_id

__all__ = ["derive_release"]


def derive_release(ctx: GatewayContext, project: Project, change: Callable[[dict[str, Any]], dict[str, Any]],
                   *, created_by: str) -> tuple[str, dict[str, Any]]:
    """Apply `change` to a copy of the active state (or the empty one) and activate the result.
    `change` runs under the project's deploy lock and may raise to abort; (release id, state)."""
    pid = project.id
    with ctx.pool.connection() as lock_conn, lock_conn.transaction():
        hold_deploy_lock(lock_conn, pid, "commit")
        with ctx.pool.connection() as conn, conn.transaction():
            active = active_release(conn, pid)
            base = copy.deepcopy(active[1]) if active else copy.deepcopy(EMPTY_STATE)
            state = change({**copy.deepcopy(EMPTY_STATE), **base})
            release_id = new_id("rel")
            deployment_id = deployment_id_for(release_id)
            (generation,) = conn.execute("SELECT coalesce(max(generation), 0) + 1 FROM run402_meta.releases "
                                         "WHERE project_id = %s", (pid,)).fetchone()
            conn.execute("UPDATE run402_meta.releases SET status = 'superseded', superseded_at = now() "
                         "WHERE project_id = %s AND status = 'active'", (pid,))
            digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
            conn.execute(
                "INSERT INTO run402_meta.releases (id, project_id, generation, deployment_id, parent_id, status, "
                "manifest_digest, state, created_by, activated_at) VALUES (%s,%s,%s,%s,%s,'active',%s,%s,%s, now())",
                (release_id, pid, generation, deployment_id, active[0] if active else None, digest,
                 json.dumps(state), created_by))
            conn.execute("INSERT INTO run402_meta.active_releases (project_id, release_id) VALUES (%s, %s) "
                         "ON CONFLICT (project_id) DO UPDATE SET release_id = EXCLUDED.release_id, activated_at = now()",
                         (pid, release_id))
            # Claimed subdomains follow the project's latest release, as after a commit.
            conn.execute("UPDATE run402_meta.subdomains SET deployment_id = %s, updated_at = now() "
                         "WHERE project_id = %s", (deployment_id, pid))
    return release_id, state
