"""Creating a private cluster (pgcluster.py): initdb once, then the ``run402`` database.

Both steps build under a temporary name and rename, so a crash never leaves a half-initialised
cluster or a ``run402`` database that still has PUBLIC's default privileges. Split from
pgcluster.py, which calls these under its file lock, so that each module stays readable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .pgbin import LocalRuntimeError, _tail, write_private_file

if TYPE_CHECKING:
    from .pgcluster import PgCluster

__all__ = ["create_database", "initdb"]

_HBA = (
    "# run402 local: unix socket only, passwords always checked (no trust, no TCP).\n"
    "local all all scram-sha-256\n"
)


def initdb(cluster: PgCluster) -> None:
    """initdb the cluster's data dir (the caller holds its lock and has checked it is not there yet)."""
    pw = cluster.password()
    parent = cluster.data_dir.parent
    if cluster._is_fallback:
        for d in (parent.parent, parent):  # FALLBACK_ROOT/<hash>: root-owned, traversable, not listable
            d.mkdir(mode=0o711, exist_ok=True)
            os.chmod(d, 0o711)
    parent.mkdir(parents=True, exist_ok=True)
    # initdb into a sibling and rename: a crash mid-initdb never leaves a half cluster at data_dir.
    tmp = parent / (cluster.data_dir.name + ".initdb-tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    cluster._chown(tmp)
    pwdir = Path(tempfile.mkdtemp(prefix="run402-initdb-"))
    try:
        cluster._chown(pwdir)
        pwfile = pwdir / "pw"
        write_private_file(pwfile, pw + "\n", owner=cluster._owner())
        try:
            r = cluster._run(
                [cluster.binaries.bindir / "initdb", "-D", tmp, "--auth=scram-sha-256",
                 f"--username={cluster.superuser}", f"--pwfile={pwfile}", "--encoding=UTF8", "--locale=C"],
                timeout=300, capture_output=True, text=True,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise LocalRuntimeError("POSTGRES_INIT_FAILED", f"initdb could not run: {e}") from None
    finally:
        shutil.rmtree(pwdir, ignore_errors=True)
    if r.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = "\n".join((r.stderr + r.stdout).splitlines()[-20:])
        raise LocalRuntimeError("POSTGRES_INIT_FAILED", f"initdb failed (exit {r.returncode}):\n{tail}")
    write_private_file(tmp / "pg_hba.conf", _HBA, owner=cluster._owner())
    os.rename(tmp, cluster.data_dir)


def create_database(cluster: PgCluster, timeout: float) -> None:
    """Create ``run402`` with nothing granted to PUBLIC; project roles get CONNECT one by one elsewhere.

    It is prepared under a temporary name and renamed, so a crash never leaves a ``run402`` database
    that still has PUBLIC's default privileges.
    """
    import psycopg
    from psycopg import sql

    tmp_name = f"{cluster.dbname}__init"
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = psycopg.connect(
                cluster.conninfo(dbname="postgres"), autocommit=True, connect_timeout=10
            )
            break
        except psycopg.OperationalError as e:
            if time.monotonic() > deadline:
                raise LocalRuntimeError(
                    "POSTGRES_START_FAILED",
                    f"postgres does not accept connections: {e}\n{_tail(cluster.log_path)}",
                ) from None
            time.sleep(0.1)
    with admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (cluster.dbname,)).fetchone():
            return
        tmp, final, owner = (sql.Identifier(n) for n in (tmp_name, cluster.dbname, cluster.superuser))
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(tmp))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'").format(tmp, owner))
        conninfo = cluster.conninfo(dbname=tmp_name)
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as db:
            db.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(tmp))
            db.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(tmp, final))
