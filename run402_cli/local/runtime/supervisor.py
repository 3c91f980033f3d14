"""The client side of `run402 local up|down|status|logs`: start the gateway process in the
background, find it again, stop it. Uses only the stdlib and httpx, so it works (and fails
clearly) even when the [local] extra is missing."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from run402_cli.errors import LocalError
from run402_cli.local.runtime.layout import DEFAULT_PORT, LocalLayout

__all__ = ["LOG_NAMES", "down", "logs", "status", "up"]

LOG_NAMES = ("gateway", "postgres", "postgrest")
_REQUIRED_MODULES = ("starlette", "uvicorn", "psycopg", "psycopg_pool", "jwt", "cryptography")
# The first start fetches PostgREST and runs initdb: give it time.
_START_TIMEOUT = 240.0
# After `up` restarted a dead Postgres under a running gateway (the gateway reconnects in ~1 s).
_REVIVE_TIMEOUT = 20.0


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); it is not alive for us.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return True


def _health(api_base: str, timeout: float = 3.0) -> dict[str, Any] | None:
    try:
        resp = httpx.get(api_base + "/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # uvicorn binds with SO_REUSEADDR, so the probe must too: without it the TIME_WAIT
        # connections a stopped or crashed gateway leaves on its port (for up to a minute) count
        # as "in use", though uvicorn could bind at once. A listening socket still conflicts.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _choose_port(layout: LocalLayout, requested: int | None) -> int:
    if requested == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    if requested is not None:
        return requested
    # Keep api_base stable across restarts: a user's RUN402_API_BASE stays valid.
    try:
        return int(layout.port_file.read_text().strip())
    except (OSError, ValueError):
        pass
    env = os.environ.get("RUN402_LOCAL_PORT")
    if env:
        if not env.isdigit() or not 0 < int(env) < 65536:
            raise LocalError(f"RUN402_LOCAL_PORT must be a port number, got {env!r}", code="BAD_ENV")
        return int(env)
    return DEFAULT_PORT


def _tail(path: Path, lines: int) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return []
    return data.splitlines()[-lines:] if lines > 0 else []


def _running(layout: LocalLayout) -> dict[str, Any] | None:
    state = layout.read_state()
    if state and _pid_alive(state.get("pid")):
        return state
    return None


def _local_error(exc: Any) -> LocalError:
    """A pgcluster/postgrest LocalRuntimeError as the CLI's envelope."""
    return LocalError(exc.message, code=exc.code, hint=exc.hint or "Run: run402 local logs", retryable=True)


def _revive_postgres(local_dir: Path, progress: Callable[[dict[str, Any]], None]) -> list[str]:
    """Start Postgres if the running gateway's Postgres is dead; what was restarted.

    The gateway's watchdog would too, within a second; doing it here makes `up` a sure way to
    get a working stack, and the cluster's file lock keeps the two from starting two servers."""
    from run402_cli.local.runtime.pgcluster import LocalRuntimeError, PgCluster, postmaster_pid_of

    if postmaster_pid_of(local_dir) is not None:
        return []
    progress({"event": "local.restarting", "component": "postgres"})
    try:
        PgCluster(local_dir).start()
    except LocalRuntimeError as exc:
        raise _local_error(exc) from None
    return ["postgres"]


def _wait_healthy(api_base: str, timeout: float) -> dict[str, Any] | None:
    """Poll /health until healthy or ``timeout``; the last answer (None if there was none)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        health = _health(api_base, timeout=2)
        last = health if health is not None else last
        if (health is not None and health.get("status") == "healthy") or time.monotonic() > deadline:
            return last
        time.sleep(0.2)


def _components(local_dir: Path, state: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Each part of the stack, looked at directly (pid files checked against /proc), so a dead
    one is named even when the gateway cannot answer."""
    from run402_cli.local.runtime.pgcluster import postmaster_pid_of
    from run402_cli.local.runtime.postgrest import running_pid

    pg, pgrst = postmaster_pid_of(local_dir), running_pid(local_dir / "postgrest")
    return {
        "gateway": {"running": state is not None, "pid": state["pid"] if state else None},
        "postgres": {"running": pg is not None, "pid": pg},
        "postgrest": {"running": pgrst is not None, "pid": pgrst},
    }


def _stop_leftovers(local_dir: Path) -> list[str]:
    """Stop a Postgres / PostgREST still running after their gateway crashed (kill -9)."""
    from run402_cli.local.runtime import procs
    from run402_cli.local.runtime.pgcluster import LocalRuntimeError, PgCluster, postmaster_pid_of
    from run402_cli.local.runtime.postgrest import running_pid

    stopped = []
    pgrst = running_pid(local_dir / "postgrest")
    config = str(local_dir / "postgrest" / "postgrest.conf")
    if pgrst is not None and procs.kill_verified(pgrst, lambda argv: argv[-1] == config):
        stopped.append("postgrest")
    if postmaster_pid_of(local_dir) is not None:
        try:
            PgCluster(local_dir).stop()
        except LocalRuntimeError as exc:
            raise _local_error(exc) from None
        stopped.append("postgres")
    return stopped


def up(local_dir: Path, port: int | None, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    missing = [m for m in _REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise LocalError(
            f"The local gateway needs extra packages: {', '.join(missing)}",
            code="LOCAL_EXTRA_MISSING", hint="pip install 'run402[local]'",
        )
    layout = LocalLayout(local_dir)
    layout.ensure()
    state = _running(layout)
    if state is not None:
        api_base = state["api_base"]
        restarted = _revive_postgres(local_dir, progress)
        health = _health(api_base)
        if restarted or (health is not None and health.get("status") != "healthy"):
            # The gateway's watchdog reconnects to the restarted parts: give it a moment.
            health = _wait_healthy(api_base, _REVIVE_TIMEOUT) or health
        if health is not None:
            return {"status": "ok", "api_base": api_base, "pid": state["pid"], "reused": True,
                    "restarted": restarted, "local_dir": str(local_dir), "health": health}
    chosen = _choose_port(layout, port)
    if not _port_free(chosen):
        raise LocalError(
            f"Port {chosen} on 127.0.0.1 is already in use", code="LOCAL_PORT_IN_USE",
            hint="Pass --port <n> (or --port 0 for any free port)", details={"port": chosen},
        )
    log_path = layout.logs_dir / "gateway.log"
    started = time.monotonic()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "run402_cli.local.runtime.server", "--dir", str(local_dir), "--port", str(chosen)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True,
        )
    layout.port_file.write_text(str(chosen))
    api_base = f"http://127.0.0.1:{chosen}"
    progress({"event": "local.starting", "api_base": api_base, "pid": proc.pid})
    last_note = started
    while True:
        if proc.poll() is not None:
            raise LocalError(
                f"The local gateway exited during start-up (exit {proc.returncode})",
                code="LOCAL_START_FAILED", hint="Run: run402 local logs",
                details={"log_tail": _tail(log_path, 20)},
            )
        health = _health(api_base, timeout=2)
        if health is not None and health.get("status") == "healthy":
            break
        elapsed = time.monotonic() - started
        if elapsed > _START_TIMEOUT:
            proc.terminate()
            raise LocalError(
                f"The local gateway did not become healthy within {int(_START_TIMEOUT)} s",
                code="LOCAL_START_TIMEOUT", retryable=True, hint="Run: run402 local logs",
                details={"log_tail": _tail(log_path, 20), "health": health},
            )
        if time.monotonic() - last_note > 5:
            progress({"event": "local.waiting", "elapsed_s": round(elapsed, 1)})
            last_note = time.monotonic()
        time.sleep(0.2)
    return {"status": "ok", "api_base": api_base, "pid": proc.pid, "reused": False,
            "local_dir": str(local_dir), "started_in_ms": int((time.monotonic() - started) * 1000),
            "health": health}


def down(local_dir: Path, timeout: float = 60.0) -> dict[str, Any]:
    layout = LocalLayout(local_dir)
    state = _running(layout)
    if state is None:
        layout.state_file.unlink(missing_ok=True)
        out: dict[str, Any] = {"status": "ok", "stopped": False, "message": "The local gateway is not running."}
        leftovers = _stop_leftovers(local_dir) if local_dir.is_dir() else []
        if leftovers:
            out["stopped_leftovers"] = leftovers
        return out
    pid = state["pid"]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    forced = False
    if _pid_alive(pid):
        forced = True
        os.kill(pid, signal.SIGKILL)
        # The gateway could not clean up after itself: stop its Postgres directly.
        from run402_cli.local.runtime.pgcluster import PgCluster

        PgCluster(local_dir).stop()
        layout.state_file.unlink(missing_ok=True)
    return {"status": "ok", "stopped": True, "pid": pid, "forced": forced, "api_base": state.get("api_base")}


def status(local_dir: Path) -> dict[str, Any]:
    """`running` (all parts up and healthy), `degraded` (the gateway answers, a part is down),
    `unresponsive` (the gateway process lives but does not answer) or `stopped`; `components`
    says which part runs, `down` names the ones that do not."""
    layout = LocalLayout(local_dir)
    state = _running(layout)
    components = _components(local_dir, state)
    down = [name for name, c in components.items() if not c["running"]]
    if state is None:
        out: dict[str, Any] = {"status": "stopped", "local_dir": str(local_dir), "components": components}
        left = [n for n in ("postgres", "postgrest") if n not in down]
        if left:
            verb = "is" if len(left) == 1 else "are"
            out["message"] = f"The gateway is not running, but {' and '.join(left)} {verb} still running"
            out["hint"] = "run402 local down stops them; run402 local up reuses them"
        return out
    health = _health(state["api_base"])
    if health is None:
        overall = "unresponsive"
    elif down or health.get("status") != "healthy":
        overall = "degraded"
    else:
        overall = "running"
    out = {"status": overall, "api_base": state["api_base"], "pid": state["pid"], "local_dir": str(local_dir),
           "started_at": state.get("started_at"), "components": components, "down": down, "health": health}
    if down:
        out["message"] = f"{' and '.join(down)} {'is' if len(down) == 1 else 'are'} not running"
        out["hint"] = "The gateway restarts it within seconds; `run402 local up` does it now"
    return out


def logs(local_dir: Path, lines: int, names: tuple[str, ...] = LOG_NAMES) -> dict[str, Any]:
    layout = LocalLayout(local_dir)
    return {"local_dir": str(local_dir),
            "logs": {name: _tail(layout.logs_dir / f"{name}.log", lines) for name in names}}
