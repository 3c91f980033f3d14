"""The local gateway's processes under crashes, against real processes (no mocks): kill -9 of the
gateway, of Postgres, of PostgREST. What must die with the gateway, what must come back, what a
client sees meanwhile, and that `local up|down|status` cope.

One private gateway for the module (these tests kill its processes, so not the session one);
each test leaves it running and healthy for the next.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.conftest import destroy_local

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and PR_SET_PDEATHSIG")


def _alive(pid: int | None) -> bool:
    """Running, and not a zombie (a SIGKILLed daemon may wait a while for PID 1 to reap it)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError, TypeError):
        return False


def _refused(api_base: str) -> bool:
    host, port = api_base.removeprefix("http://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def _wait(what: str, pred: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def _live_procs(match: Callable[[list[str]], bool]) -> dict[int, list[str]]:
    """Every live process whose argv `match`es, found through /proc, whoever started it."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = [a.decode() for a in Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[:-1]]
        except OSError:
            continue
        if match(argv) and _alive(int(entry)):
            found[int(entry)] = argv
    return found


@dataclass
class Stack:
    local_dir: Path
    env: dict[str, str]
    api_base: str

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "run402_cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def cli_json(self, *args: str) -> dict[str, Any]:
        r = self.cli(*args)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "run402_cli", *args], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def gateway_pid(self) -> int:
        return json.loads((self.local_dir / "state.json").read_text())["pid"]

    def postmaster_pid(self) -> int | None:
        from run402_cli.local.runtime.pgcluster import PgCluster

        try:
            pid = int((PgCluster(self.local_dir).data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _alive(pid) else None

    def postgrest_procs(self) -> dict[int, list[str]]:
        """Every live PostgREST on this gateway's config file, found through /proc, whoever started it."""
        conf = str(self.local_dir / "postgrest" / "postgrest.conf")
        return _live_procs(lambda argv: len(argv) >= 2 and Path(argv[0]).name == "postgrest" and argv[-1] == conf)

    def upload_procs(self) -> list[int]:
        """Every live upload process (runtime/uploads.py) on this gateway's CAS, found through /proc."""
        cas = str(self.local_dir / "cas")
        return list(_live_procs(lambda argv: "run402_cli.local.runtime.uploads" in argv and argv[-1] == cas))

    def healthy(self) -> bool:
        try:
            return httpx.get(self.api_base + "/health", timeout=3).json().get("status") == "healthy"
        except (httpx.HTTPError, ValueError):
            return False


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    local_dir = Path(tempfile.mkdtemp(prefix="run402-lifecycle-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUN402_")}
    env["RUN402_LOCAL_DIR"] = str(local_dir)
    s = Stack(local_dir, env, "")
    try:
        s.api_base = s.cli_json("local", "up", "--port", "0")["api_base"]
        yield s
    finally:
        with contextlib.suppress(Exception):
            os.kill(s.gateway_pid(), signal.SIGCONT)  # in case a test failed while it was frozen
        s.cli("local", "down")
        destroy_local(local_dir)


@contextlib.contextmanager
def _cluster_lock(stack: Stack) -> Iterator[None]:
    """Hold the cluster's start/stop lock: the watchdog cannot restart Postgres while we look."""
    fd = os.open(stack.local_dir / "pg.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_postgrest_dies_with_a_sigkilled_gateway_and_up_works_at_once(stack):
    gateway = stack.gateway_pid()
    postgrest = list(stack.postgrest_procs())
    assert len(postgrest) == 1
    # A keep-alive connection open when the gateway dies: its server side ends in TIME_WAIT on
    # the gateway's port, which a probe binding without SO_REUSEADDR takes for "in use".
    with httpx.Client() as keep:
        assert keep.get(stack.api_base + "/health", timeout=5).status_code == 200
        os.kill(gateway, signal.SIGKILL)
        # Not just its main thread: the sockets close when the last thread is gone.
        _wait("the gateway's port to close", lambda: _refused(stack.api_base), 5)
    _wait("PostgREST to die with its gateway", lambda: not _alive(postgrest[0]), 5)
    assert stack.postmaster_pid() is not None  # Postgres is a daemon: it outlives the gateway on purpose
    status = stack.cli_json("local", "status")
    assert status["status"] == "stopped" and "postgres is still running" in status["message"]
    assert status["components"]["postgres"]["running"] and not status["components"]["postgrest"]["running"]

    started = time.monotonic()
    up = stack.cli_json("local", "up")  # no --port: the same port as before
    assert up["api_base"] == stack.api_base and up["reused"] is False
    assert up["health"]["status"] == "healthy"
    assert time.monotonic() - started < 30
    assert len(stack.postgrest_procs()) == 1


def test_the_upload_process_dies_with_a_sigkilled_gateway_and_up_starts_one(stack):
    (uploads,) = stack.upload_procs()
    os.kill(stack.gateway_pid(), signal.SIGKILL)
    _wait("the gateway's port to close", lambda: _refused(stack.api_base), 5)
    _wait("the upload process to die with its gateway", lambda: not _alive(uploads), 5)
    assert stack.cli_json("local", "up")["health"]["status"] == "healthy"
    assert len(stack.upload_procs()) == 1


def _content_plan(stack: Stack, project: dict[str, Any], data: bytes) -> dict[str, Any]:
    import hashlib

    resp = httpx.post(f"{stack.api_base}/content/v1/plans", headers={"apikey": project["anon_key"]},
                      json={"content": [{"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_a_dead_upload_process_hands_the_uploads_back_to_the_gateway(stack, tmp_path):
    cfg = {**stack.env, "RUN402_CONFIG_DIR": str(tmp_path), "RUN402_API_BASE": stack.api_base}
    run = lambda *a: subprocess.run([sys.executable, "-m", "run402_cli", *a], env=cfg,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    assert run("init", "--json").returncode == 0 and run("tier", "set", "prototype").returncode == 0
    made = run("projects", "provision", "--name", "uploads")
    assert made.returncode == 0, made.stderr
    project = json.loads(made.stdout)
    (uploads,) = stack.upload_procs()
    os.kill(uploads, signal.SIGKILL)
    _wait("the upload process to die", lambda: not _alive(uploads), 5)
    data = os.urandom(2000)
    plan = _content_plan(stack, project, data)
    url = plan["missing"][0]["parts"][0]["url"]
    assert url.startswith(stack.api_base + "/_upload/")
    assert httpx.put(url, content=data).status_code == 200
    done = httpx.post(f"{stack.api_base}/content/v1/plans/{plan['plan_id']}/commit",
                      headers={"apikey": project["anon_key"]}, json={})
    assert done.status_code == 200 and len(done.json()["committed"]) == 1
    # The next start brings it back (each test leaves the stack as it found it).
    assert stack.cli_json("local", "down")["stopped"] is True
    assert stack.cli_json("local", "up")["health"]["status"] == "healthy"
    assert len(stack.upload_procs()) == 1


def _stale_postgrest(stack: Stack, binary: str) -> subprocess.Popen:
    """A PostgREST a crashed gateway left running on this config (one from before PDEATHSIG,
    say), recorded in the pid file as the gateway records its own."""
    conf = stack.local_dir / "postgrest" / "postgrest.conf"
    stale = subprocess.Popen([binary, str(conf)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    (stack.local_dir / "postgrest" / "postgrest.pid").write_text(f"{stale.pid}\n")
    return stale


def test_down_after_a_crash_stops_what_the_gateway_left_running(stack):
    binary = next(iter(stack.postgrest_procs().values()))[0]
    gateway = stack.gateway_pid()
    os.kill(gateway, signal.SIGKILL)
    _wait("the gateway's port to close", lambda: _refused(stack.api_base), 5)
    stale = _stale_postgrest(stack, binary)
    try:
        down = stack.cli_json("local", "down")
        assert down["stopped"] is False and sorted(down["stopped_leftovers"]) == ["postgres", "postgrest"]
        _wait("the leftover PostgREST to be stopped", lambda: stale.poll() is not None, 10)
        assert stack.postmaster_pid() is None
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
    assert stack.cli_json("local", "up")["health"]["status"] == "healthy"


def test_down_then_up_and_a_stale_postgrest_is_killed_but_not_a_stranger(stack):
    binary = next(iter(stack.postgrest_procs().values()))[0]
    pid_file = stack.local_dir / "postgrest" / "postgrest.pid"
    with httpx.Client() as keep:  # as above: `down` must not leave the port unusable either
        assert keep.get(stack.api_base + "/health", timeout=5).status_code == 200
        down = stack.cli_json("local", "down")
    assert down["stopped"] is True and not down["forced"]
    assert stack.postgrest_procs() == {} and stack.postmaster_pid() is None

    # The next start must kill a stale PostgREST rather than run a second one.
    stale = _stale_postgrest(stack, binary)
    try:
        assert stack.cli_json("local", "up")["health"]["status"] == "healthy"
        _wait("the stale PostgREST to be killed", lambda: stale.poll() is not None, 10)
    finally:
        if stale.poll() is None:
            stale.kill()
            stale.wait()
    assert len(stack.postgrest_procs()) == 1

    # The pid file naming an unrelated process (pid reuse): it must be left alone.
    assert stack.cli_json("local", "down")["stopped"] is True
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        pid_file.write_text(f"{stranger.pid}\n")
        assert stack.cli_json("local", "up")["health"]["status"] == "healthy"
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def _project(stack: Stack, monkeypatch) -> dict[str, Any]:
    from run402_cli.api.client import Client
    from run402_cli.config import Settings, write_allowance
    from run402_cli.wallet import address_of, generate_private_key

    monkeypatch.setenv("RUN402_API_BASE", stack.api_base)
    settings = Settings()
    key = generate_private_key()
    write_allowance(settings.allowance_path, {"address": address_of(key), "privateKey": key})
    with Client(settings) as client:
        client.request("POST", "/faucet/v1", json={"address": address_of(key)}, wallet_auth=False)
        return client.request("POST", "/projects/v1", json={"tier": "prototype"})


def _assert_fast_503(call: Callable[[], httpx.Response]) -> None:
    started = time.monotonic()
    resp = call()
    elapsed = time.monotonic() - started
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["code"] == "DATABASE_UNAVAILABLE" and body["retryable"] is True, body
    assert "postgres" in body["message"], body
    assert elapsed < 2.0, f"took {elapsed:.2f} s"


def test_dead_postgres_gives_a_fast_503_then_comes_back_with_the_data(stack, monkeypatch):
    project = _project(stack, monkeypatch)
    auth = {"Authorization": f"Bearer {project['service_key']}"}
    admin = f"{stack.api_base}/projects/v1/admin/{project['project_id']}"

    def sql(query: str) -> httpx.Response:
        # 5 s: long enough for a healthy answer, short enough that a hang fails the test quickly.
        return httpx.post(admin + "/sql", content=query, headers={**auth, "Content-Type": "text/plain"}, timeout=5)

    created = sql("create table kept (v text); insert into kept values ('still here')")
    assert created.status_code == 200, created.text

    with _cluster_lock(stack):  # Postgres stays down while we look
        os.kill(stack.postmaster_pid(), signal.SIGKILL)
        _wait("postgres to die", lambda: stack.postmaster_pid() is None, 5)
        _assert_fast_503(lambda: sql("select v from kept"))          # a project login connection
        _assert_fast_503(lambda: httpx.get(admin + "/usage", headers=auth, timeout=5))  # the pool
        time.sleep(1.2)  # the watchdog has noticed by now: the fast path
        _assert_fast_503(lambda: sql("select 1"))
        _assert_fast_503(lambda: httpx.get(admin + "/usage", headers=auth, timeout=5))
        status = stack.cli_json("local", "status")
        assert status["status"] == "degraded" and status["down"] == ["postgres"]
        assert "postgres" in status["message"]
        assert status["components"]["postgres"]["running"] is False
        assert status["components"]["gateway"]["running"] and status["components"]["postgrest"]["running"]

    _wait("the gateway to bring postgres back", lambda: sql("select v from kept").status_code == 200, 20)
    assert sql("select v from kept").json()["rows"] == [{"v": "still here"}]
    _wait("a healthy gateway", stack.healthy, 15)
    status = stack.cli_json("local", "status")
    assert status["status"] == "running" and status["down"] == []


def test_up_restarts_a_dead_postgres_under_a_running_gateway(stack):
    gateway = stack.gateway_pid()
    os.kill(gateway, signal.SIGSTOP)  # its watchdog is frozen too: only `local up` can revive Postgres
    try:
        os.kill(stack.postmaster_pid(), signal.SIGKILL)
        _wait("postgres to die", lambda: stack.postmaster_pid() is None, 5)
        up = stack.popen("local", "up")
        _wait("`local up` to restart postgres", stack.postmaster_pid, 30)
    finally:
        os.kill(gateway, signal.SIGCONT)
    out, err = up.communicate(timeout=60)
    assert up.returncode == 0, err
    result = json.loads(out)
    assert result["reused"] is True and result["pid"] == gateway
    assert result["restarted"] == ["postgres"]
    assert result["health"]["status"] == "healthy"


def test_a_dead_postgrest_is_restarted(stack):
    (old,) = stack.postgrest_procs()
    os.kill(old, signal.SIGKILL)
    new = _wait("a new PostgREST", lambda: [p for p in stack.postgrest_procs() if p != old], 15)
    assert len(new) == 1
    _wait("a healthy gateway", stack.healthy, 15)
    status = stack.cli_json("local", "status")
    assert status["status"] == "running"
    assert status["components"]["postgrest"] == {"running": True, "pid": new[0]}


def test_database_errors_are_503_whichever_module_hits_them():
    """errors.py maps an unreachable database to the 503 envelope generically: a raw psycopg
    error, and a 4xx GatewayError some module raised while handling one. Other errors stay 500."""
    psycopg = pytest.importorskip("psycopg")
    import asyncio

    from starlette.applications import Starlette
    from starlette.routing import Route

    from run402_cli.local.errors import GatewayError, database_unreachable, handle_gateway_error, handle_unexpected

    def connect_nowhere() -> None:
        # A real connection failure: a socket directory where no server listens.
        with tempfile.TemporaryDirectory() as d:
            psycopg.connect(f"host={d} port=5432 dbname=x user=x connect_timeout=2")

    def raw(request):
        connect_nowhere()

    def wrapped(request):
        try:
            connect_nowhere()
        except psycopg.Error as exc:
            raise GatewayError(400, "SQL_ERROR", str(exc)) from None

    def bug(request):
        raise RuntimeError("a bug")

    app = Starlette(routes=[Route("/raw", raw), Route("/wrapped", wrapped), Route("/bug", bug)],
                    exception_handlers={GatewayError: handle_gateway_error, Exception: handle_unexpected})
    app.state.ctx = SimpleNamespace(down=set(), postgres_alive=lambda: False)

    async def get_all() -> list[httpx.Response]:
        # Starlette re-raises after rendering a 500-class handler's answer; we want the answer.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return [await client.get(path) for path in ("/raw", "/wrapped", "/bug")]

    *unavailable, other = asyncio.run(get_all())
    for resp in unavailable:
        assert resp.status_code == 503, resp.text
        body = resp.json()
        assert body["code"] == "DATABASE_UNAVAILABLE" and body["retryable"] is True
        assert "postgres is not running" in body["message"] and resp.headers["retry-after"] == "1"
    assert other.status_code == 500 and other.json()["code"] == "INTERNAL_ERROR"
    assert not database_unreachable(psycopg.errors.QueryCanceled("statement timeout"))  # the statement's fault
