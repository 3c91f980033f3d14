"""PgCluster against a real PostgreSQL (one cluster for the module, no mocks)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

from run402_cli.local.runtime.pgcluster import LocalRuntimeError, PgCluster, find_pg_binaries  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = PgCluster(tmp_path_factory.mktemp("local"))
    c.start()
    yield c
    c.destroy()


def test_start_and_query(cluster):
    assert cluster.is_running()
    with psycopg.connect(cluster.conninfo()) as conn:
        row = conn.execute("SELECT current_user, current_database()").fetchone()
    assert row == ("run402_admin", "run402")


def test_ensure_initialized_is_idempotent(cluster):
    assert cluster.ensure_initialized() is False


def test_second_start_is_a_noop(cluster):
    with psycopg.connect(cluster.conninfo()) as conn:
        started = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
    first = (cluster.data_dir / "postmaster.pid").read_text().splitlines()[0]
    cluster.start()
    assert (cluster.data_dir / "postmaster.pid").read_text().splitlines()[0] == first
    with psycopg.connect(cluster.conninfo()) as conn:
        assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] == started


def test_data_survives_restart(cluster):
    with psycopg.connect(cluster.conninfo()) as conn:
        conn.execute("CREATE TABLE keep (v text)")
        conn.execute("INSERT INTO keep VALUES ('still here')")
    cluster.stop()
    assert not cluster.is_running()
    cluster.stop()  # stopping a stopped cluster is fine
    cluster.start()
    with psycopg.connect(cluster.conninfo()) as conn:
        assert conn.execute("SELECT v FROM keep").fetchone() == ("still here",)


def test_stale_pid_file_is_ignored(cluster):
    cluster.stop()
    # A pid file naming a live process that is not postgres (pid reuse after a crash or reboot).
    (cluster.data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n{cluster.data_dir}\n")
    assert not cluster.is_running()
    cluster.start()
    assert cluster.is_running()
    with psycopg.connect(cluster.conninfo()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_socket_dir_recreated(cluster):
    cluster.stop()
    os.rmdir(cluster.socket_dir)  # /tmp cleaned while stopped
    cluster.start()
    st = os.stat(cluster.socket_dir)
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert len(str(cluster.socket_dir / ".s.PGSQL.5432")) < 100


def test_secret_file_is_private(cluster):
    secret = cluster.local_dir / "pg-superuser.secret"
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    assert secret.read_text().strip() == cluster.password()
    assert len(cluster.password()) >= 40


def test_no_tcp(cluster):
    with psycopg.connect(cluster.conninfo()) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        assert conn.execute("SELECT inet_server_addr()").fetchone() == (None,)
    hba = (cluster.data_dir / "pg_hba.conf").read_text()
    rules = [line for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    assert rules == ["local all all scram-sha-256"]


def test_wrong_password_refused(cluster):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(cluster.conninfo(password="not-the-password"))


def test_public_has_no_privileges(cluster):
    with psycopg.connect(cluster.conninfo()) as conn:
        row = conn.execute(
            "SELECT has_database_privilege('public', 'run402', 'CONNECT'),"
            "       has_database_privilege('public', 'run402', 'TEMP'),"
            "       has_schema_privilege('public', 'public', 'USAGE')"
        ).fetchone()
    assert row == (False, False, False)


def test_libpq_uri_connects(cluster):
    uri = cluster.libpq_uri(user="run402_admin", password=cluster.password())
    assert uri.startswith("postgres://run402_admin:") and "host=%2Ftmp%2F" in uri
    with psycopg.connect(uri) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("run402",)


def test_location_is_stable(cluster):
    again = PgCluster(cluster.local_dir)
    assert again.data_dir == cluster.data_dir and again.socket_dir == cluster.socket_dir
    assert again.is_running()
    if os.geteuid() == 0:
        # pytest's temp dirs are 0700 root: the postgres OS user cannot reach them, so we fell back.
        owner = os.stat(cluster.data_dir).st_uid
        assert owner != 0
        assert stat.S_IMODE(os.stat(cluster.data_dir).st_mode) == 0o700
        assert (cluster.local_dir / "pg-location").read_text().strip() == str(cluster.data_dir)


def test_find_pg_binaries_env(cluster, monkeypatch, tmp_path):
    monkeypatch.setenv("RUN402_PG_BIN", str(cluster.binaries.bindir))
    found = find_pg_binaries()
    assert found.bindir == cluster.binaries.bindir and found.version >= 13
    monkeypatch.setenv("RUN402_PG_BIN", str(tmp_path))
    with pytest.raises(LocalRuntimeError) as e:
        find_pg_binaries()
    assert e.value.code == "POSTGRES_NOT_FOUND" and e.value.hint


def test_start_failure_reports_log(tmp_path):
    bad = PgCluster(tmp_path / "bad")
    try:
        bad.ensure_initialized()
        with open(bad.data_dir / "postgresql.conf", "a") as f:
            f.write("\nmax_wal_senders = 'nope'\n")
        with pytest.raises(LocalRuntimeError) as e:
            bad.start(timeout=10)
        assert e.value.code == "POSTGRES_START_FAILED"
        assert "max_wal_senders" in e.value.message
    finally:
        bad.destroy()
