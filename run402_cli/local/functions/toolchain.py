"""Node, esbuild and the published `@run402/functions`, found or fetched once.

The hosted platform bundles `@run402/functions` into every function with esbuild; so do we,
with the same published packages from npm, cached per user (like PostgREST, runtime/postgrest.py)
so a test suite that makes many local dirs fetches them once. Nothing is fetched until the
first function is built; offline and uncached, a build fails with `FUNCTIONS_TOOLCHAIN_MISSING`
saying what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from run402_cli.local.errors import GatewayError

__all__ = ["ESBUILD_VERSION", "FUNCTIONS_VERSION", "Toolchain", "node_binary", "node_permission_flag", "toolchain"]

ESBUILD_VERSION = "0.28.2"
FUNCTIONS_VERSION = "3.13.0"       # the runtime_version a deploy reports
_LOCK = threading.Lock()
_CACHED: "Toolchain | None" = None


def _missing(message: str) -> GatewayError:
    return GatewayError(503, "FUNCTIONS_TOOLCHAIN_MISSING", message, retryable=True,
                        hint="Functions need Node.js >= 20 and npm on PATH (the first build fetches esbuild and "
                             "@run402/functions from the npm registry); or set RUN402_NODE_BIN")


def node_binary() -> str:
    env = os.environ.get("RUN402_NODE_BIN")
    node = env or shutil.which("node")
    if not node or not os.access(node, os.X_OK):
        raise _missing(f"Node.js was not found ({'RUN402_NODE_BIN=' + env if env else 'no node on PATH'})")
    return node


def node_permission_flag(node: str) -> str:
    """Node's permission model is `--experimental-permission` on 20/21, `--permission` from 22."""
    major = _node_major(node)
    if major < 20:
        raise _missing(f"Node.js {major} is too old (functions need >= 20)")
    return "--permission" if major >= 22 else "--experimental-permission"


@dataclass(frozen=True)
class Toolchain:
    node: str
    node_major: int
    esbuild: Path               # the native esbuild binary
    node_modules: Path          # holds @run402/functions (resolved for every function)
    npm: str | None

    @property
    def permission_flag(self) -> str:
        return "--permission" if self.node_major >= 22 else "--experimental-permission"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "run402" / f"functions-toolchain-{ESBUILD_VERSION}-{FUNCTIONS_VERSION}"


def _node_major(node: str) -> int:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        raise _missing(f"{node} --version failed") from None
    m = re.match(r"v(\d+)\.", out.strip())
    if not m:
        raise _missing(f"{node} --version printed {out.strip()!r}")
    return int(m.group(1))


def _complete(root: Path) -> bool:
    return ((root / "node_modules" / "@run402" / "functions" / "package.json").is_file()
            and (root / "node_modules" / "@esbuild").is_dir())


def _fetch(root: Path, npm: str) -> None:
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".fetch-") as tmp:
        env = dict(os.environ, npm_config_update_notifier="false", npm_config_fund="false",
                   npm_config_audit="false")
        try:
            r = subprocess.run([npm, "install", "--prefix", tmp, "--ignore-scripts", "--no-save",
                                f"esbuild@{ESBUILD_VERSION}", f"@run402/functions@{FUNCTIONS_VERSION}"],
                               cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.SubprocessError) as exc:
            raise _missing(f"npm install of the functions toolchain failed: {exc}") from None
        if r.returncode != 0 or not _complete(Path(tmp)):
            tail = "\n".join(r.stderr.splitlines()[-10:])
            raise _missing(f"npm install of esbuild@{ESBUILD_VERSION} and @run402/functions@{FUNCTIONS_VERSION} "
                           f"failed: {tail}")
        try:
            os.replace(tmp, root)
        except OSError:
            if not _complete(root):  # someone else won the race: theirs is as good
                raise
        else:
            os.mkdir(tmp)  # TemporaryDirectory wants something to remove


def _esbuild_binary(root: Path) -> Path:
    for platform_dir in sorted((root / "node_modules" / "@esbuild").iterdir()):
        cand = platform_dir / "bin" / "esbuild"
        if cand.is_file():
            os.chmod(cand, 0o755)
            return cand
    raise _missing(f"no esbuild binary under {root}/node_modules/@esbuild")


def toolchain() -> Toolchain:
    """The toolchain, fetching it on first use (thread-safe; later calls are free)."""
    global _CACHED
    if _CACHED is not None:
        return _CACHED
    with _LOCK:
        if _CACHED is None:
            node = node_binary()
            major = _node_major(node)
            if major < 20:
                raise _missing(f"Node.js {major} is too old (functions need >= 20)")
            root = _cache_root()
            npm = shutil.which("npm")
            if not _complete(root):
                if not npm:
                    raise _missing("esbuild and @run402/functions are not cached and npm is not on PATH")
                _fetch(root, npm)
            _CACHED = Toolchain(node=node, node_major=major, esbuild=_esbuild_binary(root),
                                node_modules=root / "node_modules", npm=npm)
    return _CACHED
