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
from run402_cli.local.layout import DEFAULT_PORT, LocalLayout

__all__ = ["LOG_NAMES", "down", "logs", "status", "up"]

LOG_NAMES = ("gateway", "postgres", "postgrest")
_REQUIRED_MODULES = ("starlette", "uvicorn", "psycopg", "psycopg_pool", "jwt")
# The first start fetches PostgREST and runs initdb: give it time.
_START_TIMEOUT = 240.0


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
        health = _health(state["api_base"])
        if health is not None:
            return {"status": "ok", "api_base": state["api_base"], "pid": state["pid"], "reused": True,
                    "local_dir": str(local_dir), "health": health}
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
            [sys.executable, "-m", "run402_cli.local.server", "--dir", str(local_dir), "--port", str(chosen)],
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
        return {"status": "ok", "stopped": False, "message": "The local gateway is not running."}
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
        from run402_cli.local.pgcluster import PgCluster

        PgCluster(local_dir).stop()
        layout.state_file.unlink(missing_ok=True)
    return {"status": "ok", "stopped": True, "pid": pid, "forced": forced, "api_base": state.get("api_base")}


def status(local_dir: Path) -> dict[str, Any]:
    layout = LocalLayout(local_dir)
    state = _running(layout)
    if state is None:
        return {"status": "stopped", "local_dir": str(local_dir)}
    health = _health(state["api_base"])
    return {"status": "running" if health else "unresponsive", "api_base": state["api_base"],
            "pid": state["pid"], "local_dir": str(local_dir), "started_at": state.get("started_at"),
            "health": health}


def logs(local_dir: Path, lines: int, names: tuple[str, ...] = LOG_NAMES) -> dict[str, Any]:
    layout = LocalLayout(local_dir)
    return {"local_dir": str(local_dir),
            "logs": {name: _tail(layout.logs_dir / f"{name}.log", lines) for name in names}}
