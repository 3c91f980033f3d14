"""Invoking a project's function: its image, its environment, its logs.

One FunctionRuntime per gateway (`ctx.functions`), created in the app's lifespan, closed
with it (which kills every worker). Three callers: direct invokes (`/functions/v1/<name>`),
routes on a site's host, and the scheduler.

The environment a worker gets is its own project's and nothing else: RUN402_API_BASE (this
gateway), RUN402_PROJECT_ID, RUN402_ANON_KEY, RUN402_SERVICE_KEY, RUN402_JWT_SECRET (that
project's own signing secret) and the project's secrets.
"""

from __future__ import annotations

import os
import secrets as _secrets
import time
from datetime import datetime, timezone
from typing import Any

import jwt as pyjwt

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import Project
from run402_cli.local.functions.bundles import read_bundle
from run402_cli.local.functions.pool import WorkerPool
from run402_cli.local.functions.workers import FunctionImage, Invocation, Outcome, env_digest, project_uid

__all__ = ["FunctionRuntime", "new_request_id"]

MAX_LOG_LINES = 1000          # per invocation
MAX_LOG_BYTES = 1024 * 1024   # per invocation
KEEP_LOG_ROWS = 5000          # per function


def new_request_id() -> str:
    return "req_" + _secrets.token_hex(12)


def function_key(project: Project, role: str) -> str:
    """The project's anon/service key as a function sees it: stable for the project's life (iat =
    its creation), so a worker's environment changes only when something in it really does."""
    iat = int(project.created_at.timestamp())
    return pyjwt.encode({"role": role, "project_id": project.id, "iss": "run402", "iat": iat},
                        project.jwt_secret, algorithm="HS256")


class _Logs:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []
        self.size = 0
        self.dropped = 0

    def __call__(self, level: str, ts: float, message: str) -> None:
        if len(self.rows) >= MAX_LOG_LINES or self.size + len(message) > MAX_LOG_BYTES:
            self.dropped += 1
            return
        self.size += len(message)
        self.rows.append((level, ts, message))


class FunctionRuntime:
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self._pool: WorkerPool | None = None
        self._installation = ctx.cas_dir
        self._writes = 0
        self._pending: list[tuple[Any, ...]] = []
        self._flusher: Any = None
        self._flush_lock: Any = None

    def pool(self) -> WorkerPool:
        if self._pool is None:
            from run402_cli.local.functions.toolchain import node_binary, node_permission_flag

            node = node_binary()
            self._pool = WorkerPool(node, permission_flag=node_permission_flag(node))
        return self._pool

    async def start(self) -> None:
        import asyncio

        self._flush_lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._pool is not None:
            self._pool.close()
        try:
            await self.flush()
        except Exception:  # the database may be going down with us
            pass

    # -- environment -------------------------------------------------------------------------
    def _environment(self, project: Project) -> dict[str, str]:
        from run402_cli.local.secrets.store import secret_values

        with self.ctx.pool.connection() as conn:
            values = secret_values(self.ctx, conn, project.id)
        env = dict(values)
        env.update({
            "RUN402_API_BASE": self.ctx.api_base,
            "RUN402_PROJECT_ID": project.id,
            "RUN402_ANON_KEY": function_key(project, "anon"),
            "RUN402_SERVICE_KEY": function_key(project, "service_role"),
            "RUN402_JWT_SECRET": project.jwt_secret,
            "NODE_ENV": "production",
            "TZ": "UTC",
        })
        return env

    def image(self, project: Project, name: str, entry: dict[str, Any]) -> FunctionImage:
        cfg = entry["config"]
        version = self.ctx.secret_versions.get(project.id, 0)
        return FunctionImage(project_id=project.id, name=name, bundle_sha256=entry["bundle"]["sha256"],
                             timeout_seconds=int(cfg["timeoutSeconds"]), memory_mb=int(cfg["memoryMb"]),
                             env_digest=f"{version}:{env_digest({'jwt': project.jwt_secret})}",
                             uid=project_uid(self._installation, project.schema_slot) if os.geteuid() == 0 else None)

    # -- invoking ------------------------------------------------------------------------------
    async def invoke(self, project: Project, name: str, entry: dict[str, Any], inv: Invocation) -> Outcome:
        from starlette.concurrency import run_in_threadpool

        image = self.image(project, name, entry)

        async def load() -> tuple[bytes, dict[str, str]]:
            return await run_in_threadpool(lambda: (read_bundle(self.ctx, entry), self._environment(project)))

        logs = _Logs()
        outcome = await self.pool().invoke(image, load, inv, logs)
        status = outcome.status if outcome.code is None else outcome.code
        logs("info", time.time() * 1000, f"END RequestId: {inv.request_id} {status} "
                                          f"{outcome.duration_ms:.1f} ms{' (cold start)' if outcome.cold else ''}"
                                          + (f"; {logs.dropped} log line(s) dropped" if logs.dropped else ""))
        self._pending.extend((project.id, name, inv.request_id, datetime.fromtimestamp(ts / 1000, timezone.utc),
                              level, message.replace("\x00", "")) for level, ts, message in logs.rows)
        self._kick()
        return outcome

    # -- logs: written behind the response, in batches; read-your-writes through flush() ---------
    def _kick(self) -> None:
        import asyncio

        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        import asyncio

        await asyncio.sleep(0.05)
        await self.flush()

    async def flush(self) -> None:
        """Store every log line of finished invocations (the logs endpoint calls it first)."""
        from starlette.concurrency import run_in_threadpool

        async with self._flush_lock:
            rows, self._pending = self._pending, []
            if rows:
                await run_in_threadpool(self._store_logs, rows)

    def _store_logs(self, rows: list[tuple[Any, ...]]) -> None:
        with self.ctx.pool.connection() as conn, conn.transaction():
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO run402_meta.function_logs (project_id, function_name, request_id, ts, level, message) "
                    "VALUES (%s, %s, %s, %s, %s, %s)", rows)
            self._writes += 1
            if self._writes % 50 == 0:
                for project_id, name in {(r[0], r[1]) for r in rows}:
                    conn.execute(
                        "DELETE FROM run402_meta.function_logs WHERE project_id = %s AND function_name = %s AND id < "
                        "(SELECT id FROM run402_meta.function_logs WHERE project_id = %s AND function_name = %s "
                        "ORDER BY id DESC OFFSET %s LIMIT 1)", (project_id, name, project_id, name, KEEP_LOG_ROWS))
