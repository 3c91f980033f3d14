"""The gateway process: `python -m run402_cli.local.runtime.server --dir D --port P`.

Started in the background by `run402 local up`. It owns the stack for its lifetime: it starts
PostgreSQL and PostgREST, serves the API with uvicorn, keeps both alive (watchdog.py), and on
SIGTERM stops all of it. On SIGKILL it cannot: PostgREST then dies with it (parent-death signal,
postgrest.py) while Postgres, a daemon, keeps running for the next start to reuse.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path

import psycopg
import uvicorn

from run402_cli.local.app import build_app
from run402_cli.local.context import GatewayContext
from run402_cli.local.runtime.db import AUTHENTICATOR, NOBODY, bootstrap, notify_channel, open_pool
from run402_cli.local.errors import DatabaseUnavailable
from run402_cli.local.runtime.layout import LocalLayout
from run402_cli.local.runtime.pgcluster import PgCluster
from run402_cli.local.runtime.postgrest import PostgrestConfig, PostgrestProcess, find_or_fetch_postgrest
from run402_cli.local.runtime.uploads import UploadProcess
from run402_cli.local.runtime.watchdog import Watchdog

__all__ = ["free_port", "serve"]

log = logging.getLogger("run402.gateway")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _treasury_address(key: str) -> str:
    from run402_cli.wallet import address_of

    return address_of(key).lower()


def serve(local_dir: Path, port: int) -> None:
    layout = LocalLayout(local_dir)
    layout.ensure()
    logging.basicConfig(
        filename=layout.logs_dir / "gateway.log", level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # health probes would flood the log
    secrets = layout.secrets()
    api_base = f"http://127.0.0.1:{port}"
    log.info("starting gateway pid=%s dir=%s api_base=%s", os.getpid(), local_dir, api_base)

    cluster = PgCluster(local_dir)
    cluster.ensure_initialized()
    cluster.start()
    postgrest: PostgrestProcess | None = None
    uploads: UploadProcess | None = None
    pool = None
    watchdog: Watchdog | None = None
    down: set[str] = set()  # shared by the pool, the context and the watchdog

    def conninfo(**kw: str) -> str:
        # A project's own login connection (projects sql, migrations): fail as fast as the pool.
        if "postgres" in down:
            raise DatabaseUnavailable()
        return cluster.conninfo(**kw)

    try:
        with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
            bootstrap(conn, authenticator_password=secrets["authenticator_password"],
                      channel=notify_channel(secrets["postgrest_jwt_secret"]))
        pgrst_port, admin_port = free_port(), free_port()
        postgrest = PostgrestProcess(
            find_or_fetch_postgrest(local_dir),
            PostgrestConfig(
                db_uri=cluster.libpq_uri(user=AUTHENTICATOR, password=secrets["authenticator_password"]),
                jwt_secret=secrets["postgrest_jwt_secret"],
                server_port=pgrst_port, admin_port=admin_port, db_schemas="run402_empty",
                db_anon_role=NOBODY, db_channel=notify_channel(secrets["postgrest_jwt_secret"]),
            ),
            workdir=local_dir / "postgrest",
            log_path=layout.logs_dir / "postgrest.log",
        )
        postgrest.start()  # also kills a PostgREST a crashed gateway left behind (pid file)
        pool = open_pool(cluster.conninfo(), down)
        ctx = GatewayContext(
            pool=pool,
            conninfo=conninfo,
            postgrest_url=f"http://127.0.0.1:{pgrst_port}",
            postgrest_admin_url=f"http://127.0.0.1:{admin_port}",
            postgrest_jwt_secret=secrets["postgrest_jwt_secret"],
            treasury_address=_treasury_address(secrets["treasury_key"]),
            cas_dir=str(layout.cas_dir),
            secrets_key=bytes.fromhex(secrets["secrets_key"]),
            blob_url_key=bytes.fromhex(secrets["blob_url_secret"]),
            down=down,
            postgres_alive=cluster.is_running,
            api_base=api_base,
        )
        # The PUTs of a deploy in a process of their own (runtime/uploads.py), spawned from this
        # thread, which lives as long as the gateway (its parent-death signal is the thread's).
        uploads = upload_process = UploadProcess(ctx.cas_dir, layout.logs_dir / "uploads.log")
        upload_process.start()
        ctx.upload_port = lambda: upload_process.port
        app = build_app(ctx)
        # Its thread lives as long as the gateway, so a PostgREST it respawns keeps its parent.
        watchdog = Watchdog(cluster, pool, postgrest, down)
        watchdog.start()
        layout.write_state({"pid": os.getpid(), "port": port, "api_base": api_base,
                            "started_at": time.time(), "local_dir": str(local_dir)})
        # proxy_headers off: the gateway is nobody's reverse proxy, and uvicorn trusts 127.0.0.1's
        # X-Forwarded-For by default, which would let any local client pick its own address (and
        # with it a fresh sign-in budget, limits.LoginThrottle). The peer is the client.
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                               access_log=False, proxy_headers=False,
                                               timeout_graceful_shutdown=10))
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler that
        # was installed before it; a no-op one lets us reach `finally` and stop the stack.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        server.run()
    finally:
        log.info("stopping gateway")
        if watchdog is not None:
            watchdog.stop()  # no restart races the shutdown below
        try:
            if uploads is not None:
                uploads.stop()
            if pool is not None:
                pool.close()
            if postgrest is not None:
                postgrest.stop()
            cluster.stop()
        finally:
            if watchdog is not None:
                watchdog.release()
            layout.state_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="run402-local-gateway")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)
    try:
        serve(args.dir, args.port)
    except Exception:
        log.exception("gateway failed")
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
