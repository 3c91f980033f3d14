"""A private PostgreSQL cluster for the local gateway.

Why a cluster of our own: the local gateway must behave like the hosted one (real Postgres, real
roles, grants and RLS), without touching a system-wide server or opening a TCP port. So every local
dir gets its own cluster that is reachable only through a unix socket in a 0700 directory, and
that still checks passwords (scram-sha-256, even locally), so per-project roles behave as they do
in production.

Running as root (CI, containers): postgres refuses to run as root, so initdb / pg_ctl / postgres
run as an unprivileged OS user. That user must be able to traverse every ancestor of the data
dir; when the natural place (``local_dir/pg``) is not reachable for it (root's 0700 home, pytest's
0700 temp dirs), the cluster lives under ``/var/lib/run402-local/<hash>/pg`` instead, and the
choice is recorded in ``local_dir/pg-location`` so later runs find it again. Finding the binaries
and that OS user is pgbin.py's part; initdb and creating the ``run402`` database, pginit.py's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from . import pginit, procs
from .pgbin import (  # noqa: F401  (re-exported: the names callers have always imported from here)
    _NOT_FOUND_HINT,
    LocalRuntimeError,
    PgBinaries,
    _binaries_usable_by,
    _find_pg_binaries,
    _pg_os_user,
    _tail,
    _traversable,
    find_pg_binaries,
    write_private_file,
)

__all__ = [
    "LocalRuntimeError",
    "PgBinaries",
    "PgCluster",
    "find_pg_binaries",
    "postmaster_pid_of",
    "write_private_file",
]

SUPERUSER = "run402_admin"
DBNAME = "run402"
PORT = 5432
# Every connection we build waits at most this long for the server: a hung or restarting Postgres
# must turn into a quick "database unavailable", not a request that hangs (libpq has no default).
CONNECT_TIMEOUT = 2
FALLBACK_ROOT = Path("/var/lib/run402-local")


_PG_NAMES = ("postgres", "postmaster")


def _pid_is_postgres(pid: int) -> bool:
    # A SIGKILLed postmaster stays a zombie until PID 1 reaps it, and a zombie still answers
    # kill(0) and still has its comm: procs.alive counts it as dead, so it gets restarted.
    if not procs.alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() in _PG_NAMES
    except OSError:
        return True  # no /proc (not Linux): trust kill()


def postmaster_pid_of(local_dir: Path) -> int | None:
    """The pid of the running postmaster of ``local_dir``'s cluster, None if it is not running.

    Needs neither the binaries nor the OS user, so `run402 local status` can answer cheaply."""
    local_dir = Path(local_dir).absolute()
    try:
        data_dir = Path((local_dir / "pg-location").read_text().strip())
    except OSError:
        data_dir = local_dir / "pg"
    pid = procs.read_pid(data_dir / "postmaster.pid")
    return pid if pid is not None and _pid_is_postgres(pid) else None


# --------------------------------------------------------------------------- the cluster


class PgCluster:
    """One private cluster per local dir. Methods are safe to call from several processes (file lock)."""

    superuser = SUPERUSER
    dbname = DBNAME
    port = PORT

    def __init__(self, local_dir: Path, binaries: PgBinaries | None = None):
        self.local_dir = Path(local_dir).absolute()
        self._user = _pg_os_user()
        usable = _binaries_usable_by(self._user) if self._user else (lambda b: True)
        if binaries is None:
            binaries = _find_pg_binaries(usable)
        elif not usable(binaries):
            raise LocalRuntimeError(
                "POSTGRES_NOT_FOUND",
                f"{binaries.bindir} is not executable by OS user {self._user.name}",
                _NOT_FOUND_HINT,
            )
        self.binaries = binaries
        self.log_path = self.local_dir / "logs" / "postgres.log"
        self._secret_path = self.local_dir / "pg-superuser.secret"
        self._location_path = self.local_dir / "pg-location"
        self.data_dir = self._choose_data_dir()
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        # Short on purpose: unix socket paths are limited to ~107 bytes, pytest temp dirs are long.
        self.socket_dir = Path(f"/tmp/.run402-pg-{digest}")

    # ---- location & ownership

    def _choose_data_dir(self) -> Path:
        with contextlib.suppress(OSError):
            recorded = Path(self._location_path.read_text().strip())
            if recorded.is_absolute():
                return recorded
        natural = self.local_dir / "pg"
        if self._user is None or _traversable(natural.parent, self._user):
            return natural
        digest = hashlib.sha256(str(self.local_dir.resolve()).encode()).hexdigest()[:16]
        return FALLBACK_ROOT / digest / "pg"

    @property
    def _is_fallback(self) -> bool:
        return self.data_dir.parent.parent == FALLBACK_ROOT

    def _owner(self) -> tuple[int, int] | None:
        return (self._user.uid, self._user.gid) if self._user else None

    def _chown(self, path: Path) -> None:
        if self._user:
            os.chown(path, self._user.uid, self._user.gid)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialize init/start/stop across processes (two CLI invocations racing to start the gateway)."""
        self.local_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.local_dir / "pg.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _run(self, args: list, timeout: float, **kw) -> subprocess.CompletedProcess:
        """Run a Postgres tool, as the unprivileged OS user when we are root, with a clean environment.

        PG* variables are dropped so a user's PGDATA/PGHOST cannot redirect our tools.
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        if self._user:
            kw.update(user=self._user.uid, group=self._user.gid, extra_groups=list(self._user.groups))
            env.update(USER=self._user.name, LOGNAME=self._user.name, HOME="/")
        return subprocess.run(
            [str(a) for a in args], env=env, cwd="/", stdin=subprocess.DEVNULL, timeout=timeout, **kw
        )

    # ---- secret

    def password(self) -> str:
        """The superuser password; generated (and stored 0600) before the first initdb."""
        with contextlib.suppress(FileNotFoundError):
            return self._secret_path.read_text().strip()
        if self._initialized():
            raise LocalRuntimeError(
                "POSTGRES_SECRET_MISSING",
                f"{self._secret_path} is missing but the cluster at {self.data_dir} exists",
                "restore the file, or delete the cluster to start afresh",
            )
        self.local_dir.mkdir(parents=True, exist_ok=True)
        write_private_file(self._secret_path, secrets.token_urlsafe(32) + "\n")
        return self._secret_path.read_text().strip()

    # ---- lifecycle

    def _initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def ensure_initialized(self) -> bool:
        """initdb once; True if this call created the cluster."""
        with self._lock():
            return self._ensure_initialized()

    def _ensure_initialized(self) -> bool:
        if self._initialized():
            self._record_location()
            return False
        pginit.initdb(self)
        self._record_location()
        return True

    def _record_location(self) -> None:
        with contextlib.suppress(OSError):
            if self._location_path.read_text().strip() == str(self.data_dir):
                return
        write_private_file(self._location_path, f"{self.data_dir}\n", mode=0o644)

    def _ensure_socket_dir(self) -> None:
        """(Re)create the private socket dir; /tmp may have been cleaned, or squatted by someone else."""
        d = self.socket_dir
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o700)
        st = os.lstat(d)
        want_uid = self._user.uid if self._user else os.geteuid()
        if stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and self._user:
            self._chown(d)  # we (root) just created it
        elif st.st_uid != want_uid or not stat.S_ISDIR(st.st_mode):
            raise LocalRuntimeError(
                "POSTGRES_START_FAILED",
                f"socket dir {d} exists but is not a directory owned by uid {want_uid}",
                f"remove {d}",
            )
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(d, 0o700)

    def is_running(self) -> bool:
        return self.postmaster_pid() is not None

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, else None. A new pid means someone restarted it."""
        pid = self._postmaster_pid()
        return pid if pid is not None and _pid_is_postgres(pid) else None

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _stop_orphans(self, grace: float = 5.0) -> None:
        """Wait for (then kill) backends a SIGKILLed postmaster left running in the data dir.

        They notice the postmaster's death and exit on their own, usually at once. But the stale
        pid file we remove next is what would make a new postmaster refuse to start while old
        backends still use the shared memory, so we make sure they are gone ourselves."""
        deadline = time.monotonic() + grace
        while (orphans := procs.pids_with_cwd(self.data_dir, _PG_NAMES)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + grace
        while procs.pids_with_cwd(self.data_dir, _PG_NAMES) and time.monotonic() < deadline:
            time.sleep(0.05)

    def _clear_stale_pid(self) -> None:
        """Drop a postmaster.pid whose process is gone or is not postgres (pid reuse after a reboot/crash).

        Postgres itself only checks that the pid is alive, so a reused pid would block start forever.
        """
        for f in (self.data_dir / "postmaster.pid", self.socket_dir / f".s.PGSQL.{PORT}.lock"):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()

    def start(self, timeout: float = 30.0) -> None:
        """Start if not running, wait until it accepts connections, create ``run402`` if missing."""
        with self._lock():
            self._ensure_initialized()
            self._ensure_socket_dir()
            if not self.is_running():
                self._stop_orphans()
                self._clear_stale_pid()
                self._pg_ctl_start(timeout)
            pginit.create_database(self, timeout)

    def _pg_ctl_start(self, timeout: float) -> None:
        # Command-line settings beat postgresql.conf and ALTER SYSTEM: no TCP, whatever the conf says.
        opts = ["-c", "listen_addresses=", "-c", f"unix_socket_directories={self.socket_dir}",
                "-c", "unix_socket_permissions=0700", "-c", "max_connections=200",
                "-c", "shared_buffers=128MB", "-p", str(PORT)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # We open the log ourselves (0600: failed statements may echo passwords) and hand the fd to
        # pg_ctl/postgres, so the postgres OS user never needs access to local_dir.
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            r = self._run(
                [self.binaries.bindir / "pg_ctl", "-D", self.data_dir, "-w",
                 "-t", str(max(1, int(timeout))), "-o", " ".join(shlex.quote(o) for o in opts), "start"],
                timeout=timeout + 15, stdout=log_fd, stderr=log_fd,
            )
            ok = r.returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        finally:
            os.close(log_fd)
        if not ok or not self.is_running():
            raise LocalRuntimeError(
                "POSTGRES_START_FAILED",
                f"postgres did not start; last lines of {self.log_path}:\n{_tail(self.log_path)}",
            )

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (rolls back open transactions); no error if not running."""
        with self._lock():
            if not self.is_running():
                return
            try:
                r = self._run(
                    [self.binaries.bindir / "pg_ctl", "-D", self.data_dir, "-m", "fast", "-w", "-t",
                     str(max(1, int(timeout))), "stop"],
                    timeout=timeout + 15, capture_output=True, text=True,
                )
                detail = (r.stderr or r.stdout).strip()
            except (OSError, subprocess.SubprocessError) as e:
                detail = str(e)
            if self.is_running():
                raise LocalRuntimeError("POSTGRES_STOP_FAILED", f"pg_ctl stop failed: {detail}")

    def destroy(self) -> None:
        """Stop and delete the cluster, its socket dir, secret and location record (for reset and tests)."""
        self.stop()
        with self._lock():
            shutil.rmtree(self.data_dir.parent if self._is_fallback else self.data_dir, ignore_errors=True)
            shutil.rmtree(self.socket_dir, ignore_errors=True)
            for f in (self._secret_path, self._location_path):
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()

    # ---- connection strings

    def conninfo(
        self, *, user: str | None = None, password: str | None = None, dbname: str | None = None
    ) -> str:
        """libpq key=value conninfo over the private socket; defaults to the superuser and ``run402``."""
        if user is None:
            user = SUPERUSER
            password = self.password() if password is None else password
        parts = {"host": str(self.socket_dir), "port": str(PORT), "user": user, "dbname": dbname or DBNAME,
                 "connect_timeout": str(CONNECT_TIMEOUT)}
        if password is not None:
            parts["password"] = password
        return " ".join(f"{k}={_cq(v)}" for k, v in parts.items())

    def libpq_uri(self, *, user: str, password: str, dbname: str | None = None) -> str:
        """postgres:// URI (for PostgREST's db-uri) over the private socket."""
        user, password, db = (quote(v, safe="") for v in (user, password, dbname or DBNAME))
        return f"postgres://{user}:{password}@/{db}?host={quote(str(self.socket_dir), safe='')}&port={PORT}"


def _cq(value: str) -> str:
    """Quote a libpq conninfo value."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
