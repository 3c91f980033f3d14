"""The official Node CLI v2.10.0 as a test oracle: where it is, how to run it offline.

- **Where**: `RUN402_REFERENCE_CLI` (the `run402-cli-2.10.0` directory), else
  `shared/reference/run402-cli-2.10.0` in the repository's parent or any ancestor of it. No
  copy of its code lives in this repository.
- **Repaired, not changed**: the stored tree is reduced to the files its author saw it load,
  and one CommonJS file its wallet stack needs (`tslib/tslib.js`, required by `ethers` through
  `siwe`) is missing. When a probe of that stack fails on a missing file of a bundled package,
  the harness copies the tree into a cache and lays that package, at the version the tree
  pins, over it from the npm registry (`npm pack`). The CLI's own files are never touched.
- **Offline**: the CLI reads USDC balances from public chain RPCs (Base, Base Sepolia) before
  signed calls and polls one after the faucet. `offline_chain.mjs`, preloaded with
  `node --import`, is a labelled MOCK of those RPCs (a chain cannot exist on this machine): it
  answers `balanceOf` for testnet USDC from the local gateway's ledger, 0 elsewhere, and
  refuses every other non-loopback request at once instead of letting it time out.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

__all__ = ["REFERENCE_VERSION", "RefResult", "reference_cli", "run_reference"]

REFERENCE_VERSION = "2.10.0"
_TREE_NAME = f"run402-cli-{REFERENCE_VERSION}"
_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[1]
_OFFLINE_CHAIN = _HERE / "offline_chain.mjs"
# The CommonJS stack the CLI loads lazily for wallets (siwe -> ethers -> tslib).
_PROBE_MODULES = ("siwe",)
_MISSING_RE = re.compile(r"Cannot find module '([^']+)'")


class ReferenceUnavailable(RuntimeError):
    pass


@dataclass
class RefResult:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error(self) -> dict[str, Any]:
        """The last JSON line on stderr (the CLI's failure envelope)."""
        lines = [ln for ln in self.stderr.splitlines() if ln.strip().startswith("{")]
        assert lines, f"no JSON on stderr: {self.stderr!r} (stdout {self.stdout!r})"
        return json.loads(lines[-1])


def _find_tree() -> Path:
    explicit = os.environ.get("RUN402_REFERENCE_CLI")
    candidates = [Path(explicit)] if explicit else [
        base / "shared" / "reference" / _TREE_NAME for base in (_REPO.parent, *_REPO.parent.parents)
    ]
    for tree in candidates:
        if (tree / "cli" / "cli.mjs").is_file():
            return tree.resolve()
    raise ReferenceUnavailable(
        f"the official CLI {_TREE_NAME} was not found (looked for shared/reference/{_TREE_NAME} "
        f"beside the repository and above it); set RUN402_REFERENCE_CLI to its directory")


def _missing_package(tree: Path) -> tuple[str, str] | None:
    """(name, version) of a bundled package the probe finds a file missing from, or None."""
    for module in _PROBE_MODULES:
        probe = subprocess.run(
            ["node", "-e", f"require({json.dumps(str(tree / 'node_modules' / module))})"],
            capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            continue
        found = _MISSING_RE.search(probe.stderr)
        if not found:
            raise ReferenceUnavailable(f"the official CLI's {module} does not load: {probe.stderr[-2000:]}")
        rel = Path(found.group(1)).resolve().relative_to(tree / "node_modules")
        name = "/".join(rel.parts[:2]) if rel.parts[0].startswith("@") else rel.parts[0]
        version = json.loads((tree / "node_modules" / name / "package.json").read_text())["version"]
        return name, version
    return None


def _overlay_from_npm(tree: Path, name: str, version: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent"], cwd=tmp,
                                capture_output=True, text=True, timeout=180)
        if packed.returncode != 0:
            raise ReferenceUnavailable(f"npm pack {name}@{version} failed: {packed.stderr[-2000:]}")
        tgz = Path(tmp) / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(tgz) as tar:
            tar.extractall(tmp, filter="data")
        target = tree / "node_modules" / name
        for src in (Path(tmp) / "package").rglob("*"):
            dest = target / src.relative_to(Path(tmp) / "package")
            if src.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
            elif not dest.exists():  # add what is missing; the tree's own files stay as they are
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest)


def _repaired(tree: Path) -> Path:
    if _missing_package(tree) is None:
        return tree
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "run402-tests"
    key = hashlib.sha256(str(tree).encode()).hexdigest()[:12]
    ready = cache / f"{_TREE_NAME}-{key}"
    if (ready / ".complete").exists() and _missing_package(ready) is None:
        return ready
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".building-", dir=cache)) / _TREE_NAME
    shutil.copytree(tree, work, symlinks=True)
    for _ in range(10):
        missing = _missing_package(work)
        if missing is None:
            break
        _overlay_from_npm(work, *missing)
    else:
        raise ReferenceUnavailable("the official CLI still misses files after 10 repairs")
    (work / ".complete").write_text("repaired from npm; see tests/interop/reference.py\n")
    shutil.rmtree(ready, ignore_errors=True)
    os.replace(work, ready)
    shutil.rmtree(work.parent, ignore_errors=True)
    return ready


@lru_cache(maxsize=1)
def reference_cli() -> Path:
    """The `cli.mjs` of a loadable official CLI tree (raises ReferenceUnavailable)."""
    if shutil.which("node") is None:
        raise ReferenceUnavailable("node is not installed (scripts/bootstrap.sh installs it)")
    return _repaired(_find_tree()) / "cli" / "cli.mjs"


def run_reference(args: list[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  input: str | None = None, timeout: float = 120) -> RefResult:
    """Run the official CLI on `args` with `env` (default: this process's), offline;
    `input`, when given, is piped to its stdin."""
    base_env = dict(os.environ if env is None else env)
    preload = f"--import={_OFFLINE_CHAIN.as_uri()}"
    base_env["NODE_OPTIONS"] = (base_env.get("NODE_OPTIONS", "") + " " + preload).strip()
    # No input: stdin is /dev/null, as for a CI step; an empty pipe would be read as a
    # manifest on stdin by the commands that accept one.
    stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
    proc = subprocess.run(["node", str(reference_cli()), *args], env=base_env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, **stdin)
    return RefResult(proc.returncode, proc.stdout, proc.stderr)
