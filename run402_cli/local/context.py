"""What every capability module gets: the pool, how to reach Postgres and PostgREST, the treasury."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from psycopg_pool import ConnectionPool

__all__ = ["GatewayContext"]


@dataclass
class GatewayContext:
    pool: ConnectionPool
    # conninfo(user=..., password=...) for a project's own login role (see projects.py)
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

    def schema_changed(self) -> None:
        self.schema_changed_at = time.monotonic()
