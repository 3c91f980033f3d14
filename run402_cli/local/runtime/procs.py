"""Looking at and stopping processes the gateway did not necessarily start itself (stdlib only).

Why this exists: after a crash (kill -9 of the gateway, of Postgres, a reboot) the pid files we
keep may name a process that is gone, a zombie nobody has reaped yet, or an unrelated program
that reused the pid. Before the gateway kills or trusts a recorded pid it checks, through
/proc, that the process really is the one it recorded. Without /proc (not Linux) the checks
fall back to "alive", which never leads to killing a stranger: `kill_verified` needs /proc.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

__all__ = ["alive", "cmdline", "dies_with_parent", "kill_verified", "pids_with_cwd", "read_pid", "stop_child"]


def _state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat, None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # The command name may hold spaces and parentheses: the state follows the last ')'.
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def alive(pid: int | None) -> bool:
    """Whether ``pid`` runs. A zombie is dead for us: its parent (often PID 1, which may reap late)
    has just not collected it yet, and it answers kill(0) all the same."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, but another user's (the postgres OS user when we are not root)
    if not Path("/proc/self").exists():
        return True
    state = _state(pid)
    if state in ("Z", "X"):
        # A SIGKILLed multi-threaded process shows its main thread as a zombie while the other
        # threads still exit, its files (listening socket included) still open: not gone yet.
        try:
            return len(os.listdir(f"/proc/{pid}/task")) > 1
        except OSError:
            return False
    return state is not None


def cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]] if raw else None


def read_pid(path: Path) -> int | None:
    """The pid on the first line of ``path``, None if missing or not a number."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pids_with_cwd(directory: Path, names: tuple[str, ...]) -> list[int]:
    """Live processes named one of ``names`` (/proc/<pid>/comm) whose working directory is
    ``directory``. Postgres backends chdir into their data dir, so this finds the backends a
    SIGKILLed postmaster left behind, whatever pid file is (or is not) still there."""
    want = os.path.realpath(directory)
    found = []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() not in names:
                continue
            if os.readlink(f"/proc/{pid}/cwd") != want:
                continue
        except OSError:
            continue
        if alive(pid):
            found.append(pid)
    return found


def kill_verified(pid: int | None, is_ours: Callable[[list[str]], bool], timeout: float = 5.0) -> bool:
    """SIGTERM ``pid``, then SIGKILL after ``timeout``, but only if /proc shows it alive and its
    command line passes ``is_ours``. True if such a process was found (and is now gone)."""
    if not alive(pid):
        return False
    argv = cmdline(pid)  # type: ignore[arg-type]
    if not argv or not is_ours(argv):
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, timeout)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)  # type: ignore[arg-type]
        deadline = time.monotonic() + wait
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not alive(pid):
            return True
    return not alive(pid)


# A child of the gateway (PostgREST, the upload process) must die with it, even when the gateway
# is SIGKILLed and cannot stop it: on Linux the child asks the kernel for SIGKILL when its parent
# dies (PR_SET_PDEATHSIG), then execs the program (the setting survives execve). This runs as a
# tiny launcher program rather than in a preexec_fn, which is unsafe in a threaded parent (the
# gateway runs threads). The "parent" the kernel watches is the spawning *thread*: spawn only
# from long-lived threads (the main thread, the watchdog). The getppid check closes the race
# where the gateway died before prctl ran.
_PDEATHSIG_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:\n"  # 1 = PR_SET_PDEATHSIG
    "    sys.exit('prctl(PR_SET_PDEATHSIG) failed: errno %d' % ctypes.get_errno())\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('the gateway died while its child was starting')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def dies_with_parent(argv: list[str]) -> list[str]:
    """`argv` (an absolute program path first) run so that it dies with this process (Linux)."""
    if platform.system() != "Linux":
        return argv
    return [sys.executable, "-I", "-S", "-c", _PDEATHSIG_LAUNCHER, str(os.getpid()), *argv]


def stop_child(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM a child of ours, then SIGKILL after `timeout`; always reaps it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
