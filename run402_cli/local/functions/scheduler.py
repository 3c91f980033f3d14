"""Scheduled functions: every active release's `schedule`s, fired on time by one loop.

`run402_meta.function_schedules` holds each scheduled function's schedule_meta (next_run_at,
last_run_at, last_status, run_count, last_error), so schedules survive `local down`/`up`: a run
missed while the gateway was down fires once when it is back. Every tick the table is made to
match the active releases (new schedules get a next_run_at, changed ones a new one, removed
ones go). Projects whose wallet's tier lease has lapsed are dormant: their schedules wait.
At most one run per function is in flight; a run that outlasts its slot skips, never piles up.

`RUN402_LOCAL_SCHEDULE_CLOCK_RATE` (tests only) makes the scheduler's clock run that many
times faster than the wall clock, so a test sees a minute-long schedule fire in a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import load_project
from run402_cli.local.functions.runtime import new_request_id
from run402_cli.local.functions.workers import Invocation
from run402_cli.wire import cron

__all__ = ["SchedulerClock", "start_scheduler"]

log = logging.getLogger("run402.gateway")
TICK_SECONDS = 1.0


class SchedulerClock:
    def __init__(self, rate: float = 1.0) -> None:
        self.rate = rate
        self._real0 = time.time()

    @classmethod
    def from_env(cls) -> "SchedulerClock":
        try:
            rate = float(os.environ.get("RUN402_LOCAL_SCHEDULE_CLOCK_RATE", "1"))
        except ValueError:
            rate = 1.0
        return cls(rate if math.isfinite(rate) and 0 < rate <= 3600 else 1.0)

    def now(self) -> datetime:
        real = time.time()
        return datetime.fromtimestamp(self._real0 + (real - self._real0) * self.rate, timezone.utc)


_DESIRED_SQL = """
SELECT a.project_id, f.key, f.value->>'schedule'
FROM run402_meta.active_releases a
JOIN run402_meta.releases r ON r.id = a.release_id
JOIN run402_meta.projects p ON p.id = a.project_id AND p.status = 'active'
JOIN run402_meta.accounts w ON w.wallet = p.wallet AND w.lease_expires_at > now()
CROSS JOIN LATERAL jsonb_each(coalesce(r.state->'functions', '{}'::jsonb)) f
WHERE f.value->>'schedule' IS NOT NULL AND f.value->>'schedule' <> ''
"""


def _reconcile(ctx: GatewayContext, now: datetime) -> list[tuple[str, str, str]]:
    """Make the table match the active releases; the (project, function, schedule) due now."""
    due = []
    with ctx.pool.connection() as conn, conn.transaction():
        desired = {(p, n): s for p, n, s in conn.execute(_DESIRED_SQL).fetchall()}
        rows = {(p, n): (s, nxt) for p, n, s, nxt in conn.execute(
            "SELECT project_id, function_name, schedule, next_run_at FROM run402_meta.function_schedules")}
        for key in rows.keys() - desired.keys():
            # Unscheduled or gone; a dormant project's rows stay (they are not in `desired`, but
            # its functions are): only drop what no active release schedules any more.
            if not _still_scheduled(conn, *key):
                conn.execute("DELETE FROM run402_meta.function_schedules WHERE project_id = %s AND function_name = %s",
                             key)
        for (pid, name), expr in desired.items():
            try:
                schedule = cron.parse(expr)
            except cron.CronError:
                continue
            have = rows.get((pid, name))
            if have is None or have[0] != expr or have[1] is None:
                conn.execute(
                    "INSERT INTO run402_meta.function_schedules (project_id, function_name, schedule, next_run_at) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (project_id, function_name) DO UPDATE SET "
                    "schedule = EXCLUDED.schedule, next_run_at = EXCLUDED.next_run_at",
                    (pid, name, expr, schedule.next_after(now)))
            elif have[1] <= now:
                due.append((pid, name, expr))
    return due


def _still_scheduled(conn: Any, project_id: str, name: str) -> bool:
    row = conn.execute("SELECT r.state->'functions'->%s->>'schedule' FROM run402_meta.active_releases a "
                       "JOIN run402_meta.releases r ON r.id = a.release_id WHERE a.project_id = %s",
                       (name, project_id)).fetchone()
    return bool(row and row[0])


def _record(ctx: GatewayContext, pid: str, name: str, expr: str, ran_at: datetime, status: str,
            error: str | None, next_run: datetime) -> None:
    with ctx.pool.connection() as conn:
        conn.execute("UPDATE run402_meta.function_schedules SET last_run_at = %s, last_status = %s, last_error = %s, "
                     "run_count = run_count + 1, next_run_at = %s WHERE project_id = %s AND function_name = %s "
                     "AND schedule = %s", (ran_at, status, error, next_run, pid, name, expr))


class Scheduler:
    def __init__(self, ctx: GatewayContext, clock: SchedulerClock) -> None:
        self.ctx, self.clock = ctx, clock
        self.running: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def tick(self) -> None:
        now = self.clock.now()
        due = await run_in_threadpool(_reconcile, self.ctx, now)
        for pid, name, expr in due:
            if (pid, name) in self.running:
                continue
            self.running[(pid, name)] = asyncio.ensure_future(self._fire(pid, name, expr, now))

    async def _fire(self, pid: str, name: str, expr: str, now: datetime) -> None:
        from run402_cli.local.functions.invoke import active_functions

        status, error = "error", None
        try:
            project = await run_in_threadpool(load_project, self.ctx, pid)
            entry = (await active_functions(self.ctx, pid)).get(name) if project else None
            if project is None or entry is None or not entry.get("bundle"):
                error = "the function is no longer in the active release"
            else:
                request_id = new_request_id()
                body = json.dumps({"trigger": "schedule", "schedule": expr,
                                   "scheduled_at": now.isoformat().replace("+00:00", "Z")}).encode()
                inv = Invocation(method="POST", url=f"{self.ctx.api_base}/functions/v1/{name}", body=body,
                                 kind="schedule", request_id=request_id,
                                 headers=[("content-type", "application/json"), ("x-run402-trigger", "schedule"),
                                          ("x-run402-request-id", request_id)])
                outcome = await self.ctx.functions.invoke(project, name, entry, inv)
                if outcome.code is None and outcome.status is not None and outcome.status < 400:
                    status = "success"
                else:
                    error = outcome.code or f"HTTP {outcome.status}"
        except Exception as exc:  # a schedule must never take the loop down
            log.exception("scheduled run of %s/%s failed", pid, name)
            error = type(exc).__name__
        finally:
            try:
                nxt = cron.parse(expr).next_after(self.clock.now())
                await run_in_threadpool(_record, self.ctx, pid, name, expr, now, status, error, nxt)
            except Exception:
                log.exception("recording the scheduled run of %s/%s failed", pid, name)
            self.running.pop((pid, name), None)


def start_scheduler(ctx: GatewayContext, clock: SchedulerClock | None = None) -> Callable[[], Awaitable[None]]:
    """Start the loop in the running event loop; returns an awaitable stopper."""
    sched = Scheduler(ctx, clock or SchedulerClock.from_env())
    stopping = asyncio.Event()

    async def loop() -> None:
        while not stopping.is_set():
            try:
                await sched.tick()
            except Exception:  # the database restarting, say: try again next tick
                log.debug("scheduler tick failed", exc_info=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), TICK_SECONDS)

    task = asyncio.ensure_future(loop())

    async def stop() -> None:
        stopping.set()
        for t in list(sched.running.values()):
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)

    return stop

