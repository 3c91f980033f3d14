"""The gateway's watchdog: a thread that notices a dead Postgres or PostgREST and brings it back.

Why a thread of the gateway: Postgres is a daemon (pg_ctl), not our child, so nothing tells us it
died (kill -9, OOM killer); and while it is dead every request should fail fast with a 503
instead of waiting for the pool. Every INTERVAL seconds the watchdog looks at the postmaster pid
(pid file + /proc, no connection) and at the PostgREST child:

- Postgres gone: flag it in `down` (requests now get DATABASE_UNAVAILABLE at once), close the
  pool (requests already waiting fail too), restart it with PgCluster.start() — under the
  cluster's file lock, so a concurrent `run402 local up` does not start a second one. Nothing
  is re-bootstrapped: crash recovery replays the WAL, committed data is all there.
- Postgres running with a new pid (we restarted it, or `run402 local up` did): fresh pool,
  clear the flag, and give PostgREST a moment to reconnect on its own, else restart it (its own
  reconnect backoff grows to tens of seconds during a long outage).
- PostgREST gone: restart it. It is spawned from this long-lived thread on purpose: its
  parent-death signal fires when the spawning thread ends (postgrest.py), so the thread stays
  alive until the gateway has stopped the children (`stop()` ... `release()`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from run402_cli.local.runtime.pgcluster import LocalRuntimeError

__all__ = ["INTERVAL", "Watchdog"]

log = logging.getLogger("run402.gateway")

INTERVAL = 0.5              # a pid-file read and a poll(): cheap enough to look twice a second
POSTGREST_GRACE = 2.0       # PostgREST retries its connection itself; after this, restart it
MAX_BACKOFF = 30.0          # between failed restarts (disk full, binary gone): retry, not flood


class _Backoff:
    """When the next restart attempt of a component may run: at once, then 1, 2, 4 ... s after failures."""

    def __init__(self) -> None:
        self.failures = 0
        self.not_before = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self.not_before

    def failed(self) -> None:
        self.failures += 1
        self.not_before = time.monotonic() + min(MAX_BACKOFF, 2.0 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures, self.not_before = 0, 0.0


class Watchdog:
    def __init__(self, cluster: Any, pool: Any, postgrest: Any, down: set[str], interval: float = INTERVAL):
        self.cluster = cluster
        self.pool = pool
        self.postgrest = postgrest
        self.down = down
        self.interval = interval
        self.restarts = {"postgres": 0, "postgrest": 0}
        self._pg_pid = cluster.postmaster_pid()
        self._pg_back_at: float | None = None
        self._pg_backoff, self._pgrst_backoff = _Backoff(), _Backoff()
        self._stop = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="run402-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No check runs once this returns, and none will again. The thread stays alive (so the
        children it spawned keep their parent) until release()."""
        self._stop.set()
        self._lock.acquire()

    def release(self, timeout: float = 5.0) -> None:
        """The children are stopped: let the thread end."""
        self._released.set()
        self._lock.release()  # a thread waiting for it sees the stop flag and leaves
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self._stop.is_set():
                    break
                try:
                    self.check()
                except Exception:  # a watchdog that dies watches nothing: log and look again
                    log.exception("watchdog check failed")
        self._released.wait()

    # ------------------------------------------------------------------ one look

    def check(self) -> None:
        pid = self.cluster.postmaster_pid()
        if pid is None:
            self._postgres_lost()
            pid = self._restart_postgres()
            if pid is None:
                return
        if pid != self._pg_pid or "postgres" in self.down:
            self._postgres_back(pid)
        self._check_postgrest()

    def _postgres_lost(self) -> None:
        if "postgres" in self.down:
            return
        log.warning("postgres is not running (last pid %s): failing requests fast and restarting it",
                    self._pg_pid)
        self.down.add("postgres")
        self.pool.suspend()

    def _restart_postgres(self) -> int | None:
        if not self._pg_backoff.ready():
            return None
        try:
            self.cluster.start()
        except LocalRuntimeError as exc:
            self._pg_backoff.failed()
            log.error("could not restart postgres (attempt %d): %s", self._pg_backoff.failures,
                      exc.message.splitlines()[0])
            return None
        self._pg_backoff.succeeded()
        self.restarts["postgres"] += 1
        return self.cluster.postmaster_pid()

    def _postgres_back(self, pid: int) -> None:
        try:
            self.pool.resume()
        except Exception as exc:  # died again, or not accepting yet: stay down, look again
            log.warning("postgres (pid %s) does not accept pool connections yet: %s", pid, exc)
            self.down.add("postgres")
            return
        log.info("postgres is up (pid %s, was %s); the pool is fresh", pid, self._pg_pid)
        self._pg_pid = pid
        self._pg_back_at = time.monotonic()
        self.down.discard("postgres")

    def _check_postgrest(self) -> None:
        if not self.postgrest.is_alive():
            log.warning("postgrest is not running: restarting it")
            self.down.add("postgrest")
            self._restart_postgrest()
            return
        if self._pg_back_at is None:
            return
        if self.postgrest.ready():
            self._pg_back_at = None
        elif time.monotonic() - self._pg_back_at > POSTGREST_GRACE:
            log.warning("postgrest did not reconnect after postgres came back: restarting it")
            self.postgrest.stop()
            self._restart_postgrest()

    def _restart_postgrest(self) -> None:
        self.down.add("postgrest")
        if not self._pgrst_backoff.ready():
            return
        try:
            self.postgrest.start(timeout=15)
        except LocalRuntimeError as exc:
            self._pgrst_backoff.failed()
            log.error("could not restart postgrest (attempt %d): %s", self._pgrst_backoff.failures,
                      exc.message.splitlines()[0])
            return
        self._pgrst_backoff.succeeded()
        self.restarts["postgrest"] += 1
        self._pg_back_at = None
        self.down.discard("postgrest")
        log.info("postgrest is up again (pid %s)", self.postgrest.pid)
