"""What the host provides for the private PostgreSQL cluster: the server binaries, and (when we are
root) the unprivileged OS user they run as; plus the local runtime's error type and its writer of
private files, which pgcluster.py and postgrest.py share.

Split from pgcluster.py, which re-exports these names, so that each module stays readable.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

__all__ = ["LocalRuntimeError", "PgBinaries", "find_pg_binaries", "write_private_file"]

_TOOLS = ("initdb", "pg_ctl", "postgres")
_NOT_FOUND_HINT = (
    "pip install 'run402[local]' (ships pgserver) or apt-get install postgresql, or set RUN402_PG_BIN"
)


class LocalRuntimeError(Exception):
    """A failure of the local runtime, with a stable UPPER_SNAKE ``code`` callers can branch on."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.hint = hint


def write_private_file(
    path: Path, data: str | bytes, mode: int = 0o600, owner: tuple[int, int] | None = None
) -> None:
    """Write ``path`` atomically (temp file in the same dir, fsync, rename) with ``mode`` from the start.

    Why: secrets must never exist, even briefly, with a wider mode, and a crash must leave either
    the old or the new content, never a truncated file.
    """
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- binaries


@dataclass(frozen=True)
class PgBinaries:
    bindir: Path
    version: int  # major version, e.g. 15


def _probe(bindir: Path) -> PgBinaries | None:
    """PgBinaries for ``bindir`` if it holds working initdb/pg_ctl/postgres, else None."""
    if not all((bindir / n).is_file() and os.access(bindir / n, os.X_OK) for n in _TOOLS):
        return None
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"\(PostgreSQL\)\s+(\d+)", out.stdout)
    return PgBinaries(bindir, int(m.group(1))) if out.returncode == 0 and m else None


def _candidate_dirs() -> Iterator[Path]:
    # Locate the pgserver wheel without importing it (its import has side effects).
    spec = importlib.util.find_spec("pgserver")
    if spec and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            yield Path(loc) / "pginstall" / "bin"
    system = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    yield from sorted(system, key=lambda p: int(p.parent.name), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        yield Path(os.path.realpath(initdb)).parent


def _find_pg_binaries(usable=lambda b: True) -> PgBinaries:
    env = os.environ.get("RUN402_PG_BIN")
    if env:  # an explicit choice must not silently fall back to something else
        found = _probe(Path(env))
        if found is None or not usable(found):
            raise LocalRuntimeError(
                "POSTGRES_NOT_FOUND",
                f"RUN402_PG_BIN={env} does not hold working initdb/pg_ctl/postgres",
                _NOT_FOUND_HINT,
            )
        return found
    for d in _candidate_dirs():
        found = _probe(d)
        if found is not None and usable(found):
            return found
    raise LocalRuntimeError(
        "POSTGRES_NOT_FOUND", "no usable PostgreSQL server binaries found", _NOT_FOUND_HINT
    )


def find_pg_binaries() -> PgBinaries:
    """The PostgreSQL server binaries to use.

    Order: $RUN402_PG_BIN (no fallback when set), the pgserver wheel's pginstall/bin, the highest
    /usr/lib/postgresql/*/bin, then initdb on PATH.
    """
    return _find_pg_binaries()


# --------------------------------------------------------------------------- OS user (root only)


class _OsUser(NamedTuple):
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def _pg_os_user() -> _OsUser | None:
    """The unprivileged user postgres runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("RUN402_PG_OS_USER")
    if not name:
        name = "postgres"
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return _user(name)
        name = "run402pg"
        try:
            pwd.getpwnam(name)
        except KeyError:
            try:
                subprocess.run(
                    ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                    check=True, capture_output=True, text=True,
                )
            except (OSError, subprocess.CalledProcessError) as e:
                raise LocalRuntimeError(
                    "POSTGRES_INIT_FAILED", f"running as root and could not create OS user {name}: {e}",
                    "set RUN402_PG_OS_USER to an existing unprivileged user",
                ) from None
    return _user(name)


def _user(name: str) -> _OsUser:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise LocalRuntimeError(
            "POSTGRES_INIT_FAILED", f"OS user {name!r} does not exist", "set RUN402_PG_OS_USER"
        ) from None
    if pw.pw_uid == 0:
        raise LocalRuntimeError(
            "POSTGRES_INIT_FAILED", f"OS user {name!r} is root; postgres refuses to run as root"
        )
    return _OsUser(name, pw.pw_uid, pw.pw_gid, tuple(os.getgrouplist(name, pw.pw_gid)))


def _user_may(st: os.stat_result, user: _OsUser, bits: int) -> bool:
    """Classic mode-bit check for another user (os.access only answers for ourselves). bits: 4=r 2=w 1=x."""
    shift = 6 if st.st_uid == user.uid else 3 if st.st_gid in user.groups else 0
    return (st.st_mode >> shift) & bits == bits


def _traversable(path: Path, user: _OsUser) -> bool:
    """Whether ``user`` can reach ``path``: every existing ancestor (and path, if a dir) grants it x."""
    path = Path(os.path.realpath(path))
    for p in [path, *path.parents]:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue  # we will create it with the right owner/mode
        if stat.S_ISDIR(st.st_mode) and not _user_may(st, user, 1):
            return False
    return True


def _binaries_usable_by(user: _OsUser):
    def ok(b: PgBinaries) -> bool:
        return _traversable(b.bindir, user) and all(
            _user_may(os.stat(b.bindir / n), user, 1) for n in _TOOLS
        )
    return ok
