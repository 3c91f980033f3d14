"""The statement reaper: the time limit on tenant work that no tenant can lift.

`statement_timeout` is a setting any session may change for itself (`SET`, or a DO block that
EXECUTEs a built string), so it cannot be the guarantee. This thread, on the gateway's own
superuser connection, cancels every tenant backend — project sessions and PostgREST's (which
run tenant roles) — whose current statement has run longer than the limit, and ends tenant
sessions left idle inside a transaction. A cancelled statement fails with SQLSTATE 57014,
exactly as a statement timeout would.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

__all__ = ["start_reaper"]

log = logging.getLogger("run402.gateway")

_CANCEL = """
SELECT pid, pg_cancel_backend(pid) FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
   AND state IN ('active', 'fastpath function call')
   AND query_start < now() - make_interval(secs => %s)
   AND pg_has_role(usesysid, 'run402_tenant', 'MEMBER')
"""
_END_IDLE = """
SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
   AND state IN ('idle in transaction', 'idle in transaction (aborted)')
   AND state_change < now() - make_interval(secs => %s)
   AND pg_has_role(usesysid, 'run402_tenant', 'MEMBER')
"""


def start_reaper(pool: Any, limit_seconds: Callable[[], float], *, idle_seconds: float = 60.0,
                 every: float = 0.5) -> Callable[[], None]:
    """Start the reaper thread; returns a function that stops it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every):
            try:
                with pool.connection(timeout=1.0) as conn:
                    # Grace of a second over the limit: the session's own statement_timeout, set
                    # to the same limit, normally fires first with its own message.
                    cancelled = conn.execute(_CANCEL, (limit_seconds() + 1.0,)).fetchall()
                    ended = conn.execute(_END_IDLE, (idle_seconds,)).fetchall()
                for pid, _ in cancelled:
                    log.warning("reaper: cancelled tenant statement on backend %s (over %.0f s)", pid,
                                limit_seconds())
                for pid, _ in ended:
                    log.warning("reaper: ended tenant session %s idle in transaction", pid)
            except Exception as exc:  # the database may be restarting: try again next round
                log.debug("reaper round skipped: %s", exc)

    thread = threading.Thread(target=loop, name="run402-reaper", daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(timeout=5)

    return stopper
