"""What every capability module gets: the pool, how to reach Postgres and PostgREST, the treasury."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from psycopg_pool import ConnectionPool

from run402_cli.local.control.limits import Limits

__all__ = ["GatewayContext"]


@dataclass
class GatewayContext:
    pool: ConnectionPool        # in the gateway a runtime.db.GatewayPool: the same connection(), but fails fast when down
    # conninfo(user=..., password=...) for a project's own login role (see control/projects.py)
    conninfo: Callable[..., str]
    postgrest_url: str          # http://127.0.0.1:<port>
    postgrest_admin_url: str    # http://127.0.0.1:<admin port>
    postgrest_jwt_secret: str
    treasury_address: str       # the local testnet payee (lowercase)
    cas_dir: str
    started_at: float = field(default_factory=time.time)
    # When a project's schema last changed (monotonic): PostgREST reloads its schema cache
    # asynchronously after a NOTIFY, so the proxy retries "not found" for a moment after it.
    schema_changed_at: float = 0.0
    # Rate limits, per-project concurrency gates and the verified-project cache (control/limits.py):
    # process-wide, so one tenant's burst is measured against everything it sends.
    limits: Limits = field(default_factory=Limits)
    # Components the watchdog (runtime/watchdog.py) found dead and is restarting: "postgres", "postgrest".
    # The same set object as the pool's (runtime.db.GatewayPool), so requests fail fast with a 503
    # instead of waiting for a connection that cannot come.
    down: set[str] = field(default_factory=set)
    # A cheap liveness check of the postmaster (pid file + /proc, no connection), for the moment
    # before the watchdog notices: errors.py uses it to say what is down. None: unknown.
    postgres_alive: Callable[[], bool] | None = None

    def schema_changed(self) -> None:
        self.schema_changed_at = time.monotonic()
