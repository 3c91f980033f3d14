"""What every capability module gets: the pool, how to reach Postgres and PostgREST, the treasury,
the key project secrets are encrypted with."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

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
    # AES-256-GCM key of project secrets at rest (secrets/store.py): 32 bytes, from the
    # installation secrets (runtime/layout.py `secrets_key`). Empty: secrets cannot be used.
    secrets_key: bytes = b""
    # HMAC key of signed blob URLs (storage/serve.py), from the installation secrets
    # (`blob_url_secret`). Empty: no URL can be signed.
    blob_url_key: bytes = b""
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
    # This gateway's own base URL (what functions get as RUN402_API_BASE).
    api_base: str = "http://127.0.0.1"
    # The upload process's port while it runs (runtime/uploads.py), else None: content plans
    # then hand out the gateway's own upload URLs.
    upload_port: Callable[[], int | None] = lambda: None
    # The functions room's runtime (functions/runtime.FunctionRuntime), made in the app's lifespan.
    functions: Any = None
    # A project's secrets change count: part of its workers' identity, so a changed secret
    # starts fresh workers (functions/runtime.py). Bumped by the secrets API and by deploys.
    secret_versions: dict[str, int] = field(default_factory=dict)

    def secrets_changed(self, project_id: str) -> None:
        self.secret_versions[project_id] = self.secret_versions.get(project_id, 0) + 1

    def schema_changed(self) -> None:
        self.schema_changed_at = time.monotonic()
