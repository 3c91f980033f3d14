"""Warm Node workers for deployed functions: spawned once, reused, killed at their caps.

A worker is one `node` process running runner.mjs for one function image (project, name,
bundle, limits, environment). It serves one invocation at a time, like a Lambda instance;
a function gets more workers when its invocations overlap (pool.py keeps them).

How a worker is confined — each layer on its own would leave a gap:
- spawned without a shell, in a session (and process group) of its own, with an empty
  environment; its project's ids, keys, JWT secret and secrets reach it over its socket
  and are set into `process.env` there, so `/proc/<pid>/environ` holds nothing;
- Node's permission model (`--experimental-permission`): no file system access (the runner
  and the bundle arrive as `--eval` text and over the socket), no child processes, no
  worker threads, no native addons;
- when the gateway runs as root, the worker runs as an unprivileged uid of its project's own
  (not the Postgres user, not another project's), so the kernel keeps it out of the gateway's
  0700 data directory and out of other projects' workers;
- time: the invocation's timeout kills the process group; memory: V8's heap limit, and the
  worker's RSS checked while it runs (killed over the cap); response size: the runner stops
  reading past 6 MiB.
A killed or crashed worker is dropped; the next invocation starts a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Callable

__all__ = ["FunctionImage", "Invocation", "LogSink", "MAX_RESPONSE_BYTES", "MemoryExceeded", "Outcome", "Worker",
           "WorkerDied", "env_digest", "project_uid"]

MAX_RESPONSE_BYTES = 6 * 1024 * 1024
_FRAME = struct.Struct(">II")
_UID_BASE = 300_000
_RUNNER: str | None = None


def _parent_death_signal() -> Callable[[], None] | None:
    """A preexec hook making the kernel SIGKILL the worker if the gateway dies (Linux), so no
    worker outlives a gateway that was killed without its shutdown running."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG

    return hook


_DIE_WITH_PARENT = _parent_death_signal()


def _runner_source() -> str:
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = resources.files("run402_cli.local.functions").joinpath("runner.mjs").read_text("utf-8")
    return _RUNNER


@dataclass(frozen=True)
class FunctionImage:
    """Everything that makes two workers interchangeable. A new bundle, limit or secret is a new image."""

    project_id: str
    name: str
    bundle_sha256: str
    timeout_seconds: int
    memory_mb: int
    env_digest: str
    uid: int | None = None          # the project's own OS uid when the gateway is root


@dataclass
class Invocation:
    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes
    kind: str                        # direct | routed | schedule
    request_id: str


@dataclass
class Outcome:
    """A response (`status` set) or a failure (`code` set; the worker may be gone)."""

    status: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)
    body: bytes = b""
    code: str | None = None
    message: str = ""
    cold: bool = False
    duration_ms: float = 0.0


LogSink = Callable[[str, float, str], None]   # (level, epoch ms, message)


def project_uid(installation: str, schema_slot: str) -> int:
    """A uid no other project of this installation (and likely of no other) shares."""
    n = int(schema_slot.lstrip("p") or 0) % 10_000
    spread = int(hashlib.sha256(installation.encode()).hexdigest()[:8], 16) % 2_000
    return _UID_BASE + spread * 10_000 + n


def env_digest(env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(env, sort_keys=True).encode()).hexdigest()


class WorkerDied(Exception):
    """The worker's socket closed or sent garbage: the process is gone or going."""


class Worker:
    def __init__(self, image: FunctionImage) -> None:
        self.image = image
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.busy = False
        self.last_used = time.monotonic()
        self.sink: LogSink | None = None
        self._pumps: list[asyncio.Task[None]] = []

    # -- frames ---------------------------------------------------------------------------------
    def _send(self, header: dict[str, Any], body: bytes = b"") -> None:
        assert self.writer is not None
        h = json.dumps(header, separators=(",", ":")).encode()
        self.writer.write(_FRAME.pack(len(h), len(body)) + h + body)

    async def _recv(self) -> tuple[dict[str, Any], bytes]:
        assert self.reader is not None
        try:
            hl, bl = _FRAME.unpack(await self.reader.readexactly(8))
            if hl > 1 << 20 or bl > MAX_RESPONSE_BYTES + (1 << 20):
                raise WorkerDied("oversized frame")
            header = json.loads(await self.reader.readexactly(hl))
            body = await self.reader.readexactly(bl) if bl else b""
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise WorkerDied(str(exc)) from None
        return header, body

    async def _next(self) -> tuple[dict[str, Any], bytes]:
        """The next frame that is not a log line (log lines go to the sink)."""
        while True:
            header, body = await self._recv()
            if header.get("t") == "log":
                if self.sink is not None:
                    self.sink(str(header.get("level", "info")), float(header.get("ts") or time.time() * 1000),
                              str(header.get("message", "")))
                continue
            return header, body

    # -- life -----------------------------------------------------------------------------------
    async def start(self, node: str, permission_flag: str, bundle: bytes, env: dict[str, str]) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        img = self.image
        args = [node, f"--max-old-space-size={img.memory_mb}", permission_flag, "--no-warnings",
                "--disable-proto=delete", "--input-type=module", "--eval", _runner_source(), str(child.fileno())]
        kw: dict[str, Any] = {}
        if img.uid is not None:
            kw.update(user=img.uid, group=img.uid, extra_groups=[])
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, pass_fds=(child.fileno(),), env={}, cwd="/",
                start_new_session=True, preexec_fn=_DIE_WITH_PARENT, **kw)
        finally:
            child.close()
        self.reader, self.writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 20)
        for stream, level in ((self.proc.stdout, "info"), (self.proc.stderr, "error")):
            self._pumps.append(asyncio.ensure_future(self._pump(stream, level)))
        self._send({"t": "init", "env": env, "projectId": img.project_id, "maxResponseBytes": MAX_RESPONSE_BYTES},
                   bundle)
        header, _ = await self._next()
        if header.get("t") != "ready":
            self.kill()
            raise RuntimeError(str(header.get("message") or "the worker did not start"))

    async def _pump(self, stream: asyncio.StreamReader | None, level: str) -> None:
        """What Node itself prints outside the runner's capture (a fatal heap error, say)."""
        if stream is None:
            return
        with contextlib.suppress(Exception):
            while line := await stream.readline():
                text = line.decode("utf-8", "replace").rstrip()
                if text and self.sink is not None:
                    self.sink(level, time.time() * 1000, text[:16384])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def rss_mb(self) -> float:
        if self.proc is None:
            return 0.0
        try:
            with open(f"/proc/{self.proc.pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
        except (OSError, ValueError, IndexError):
            return 0.0

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()

    async def invoke(self, inv: Invocation) -> Outcome:
        self._send({"t": "invoke", "id": inv.request_id, "method": inv.method, "url": inv.url,
                    "headers": inv.headers, "kind": inv.kind, "requestId": inv.request_id}, inv.body)
        header, body = await self._next()
        if header.get("t") == "result":
            return Outcome(status=int(header["status"]), headers=[tuple(h) for h in header.get("headers", [])],
                           cookies=list(header.get("cookies", [])), body=body)
        return Outcome(code=str(header.get("code") or "FUNCTION_ERROR"), message=str(header.get("message", "")))


class MemoryExceeded(Exception):
    """The worker went over its memory cap (and was killed)."""
