"""Turning a function's sources into the one ES module its workers load.

The sources (a single module, or several files and an entrypoint; .js, .mjs or .ts) are
written to a fresh temp dir, `--deps` are installed there by npm (scripts never run; packages
with native binaries refused), and esbuild bundles them with the published `@run402/functions`
behind an entry wrapper that re-exports the library's `runWithContext`, so the runner and the
function's own imports share one copy of it (one request context). Imports are fenced to the
build dir and the toolchain (bundle.mjs). Bundle size: a warning past 10 MB, refused past 25 MB.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from run402_cli.local.errors import GatewayError
from run402_cli.local.functions.toolchain import toolchain
from run402_cli.wire.functions import dep_problem
from run402_cli.wire.release import release_path_problem

__all__ = ["Built", "build_function", "registry_dep_problem", "split_dep"]

WARN_BYTES = 10 * 1024 * 1024
MAX_BYTES = 25 * 1024 * 1024
_PKG_NAME = re.compile(r"^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
# A version range or dist-tag: never a path, URL, git or alias spec (those could reach the disk).
_RANGE = re.compile(r"^[A-Za-z0-9.^~<>=|* +-]{1,100}$")
_ENTRY = "__run402_entry__.mjs"


@dataclass
class Built:
    bundle: bytes
    sha256: str
    deps_resolved: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _failed(message: str, logs: list[str] | None = None, code: str = "FUNCTION_BUILD_FAILED") -> GatewayError:
    return GatewayError(400, code, message, category="deploy", details={"logs": logs or []},
                        extra={"phase": "build", "logs": logs or []})


def split_dep(spec: str) -> tuple[str, str | None]:
    """`zod@^3` -> ("zod", "^3"); `@scope/pkg@1` -> ("@scope/pkg", "1"); `left-pad` -> ("left-pad", None)."""
    at = spec.find("@", 1)
    return (spec, None) if at < 0 else (spec[:at], spec[at + 1:])


def registry_dep_problem(spec: object) -> str | None:
    """wire.functions.dep_problem (what the CLI checks too), then the gateway's own fence: a
    dependency comes from the registry by name and version range, never from a path, URL, git
    repository or alias (npm would read those from this machine's disk or anywhere)."""
    problem = dep_problem(spec)
    if problem:
        return problem
    assert isinstance(spec, str)
    name, version = split_dep(spec)
    if not _PKG_NAME.match(name):
        return f"{name!r} is not an npm package name"
    if version is not None and not _RANGE.match(version):
        return f"{spec!r}: only a registry version range or tag is accepted (no paths, URLs, git or aliases)"
    return None


def _install_deps(tc, build_dir: Path, deps: list[str]) -> dict[str, str]:
    if tc.npm is None:
        raise _failed("--deps needs npm on the gateway's PATH")
    wanted = dict(split_dep(d) for d in deps)
    (build_dir / "package.json").write_text(json.dumps(
        {"name": "run402-function", "private": True, "dependencies": {n: v or "*" for n, v in wanted.items()}}))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "npm_config_registry", "NPM_CONFIG_REGISTRY",
                                                        "npm_config_cache", "XDG_CACHE_HOME")}
    env.update(npm_config_update_notifier="false", npm_config_fund="false", npm_config_audit="false")
    try:
        r = subprocess.run([tc.npm, "install", "--ignore-scripts", "--omit=dev", "--no-package-lock"],
                           cwd=build_dir, env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise _failed("npm install of the dependencies took more than 300 s") from None
    if r.returncode != 0:
        raise _failed("npm install of the dependencies failed", r.stderr.splitlines()[-15:])
    native = []
    for root, dirs, files in os.walk(build_dir / "node_modules"):
        if "binding.gyp" in files or any(f.endswith(".node") for f in files):
            native.append(os.path.relpath(root, build_dir / "node_modules"))
            dirs.clear()
    if native:
        raise _failed(f"dependencies with native binaries cannot run in functions: {', '.join(sorted(native)[:5])}",
                      code="FUNCTION_NATIVE_DEPENDENCY")
    resolved = {}
    for name in wanted:
        try:
            resolved[name] = json.loads((build_dir / "node_modules" / name / "package.json").read_text())["version"]
        except (OSError, ValueError, KeyError):
            resolved[name] = "unknown"
    return resolved


def build_function(files: dict[str, bytes], entrypoint: str, deps: list[str] | None = None) -> Built:
    """Bundle `files` (release paths -> bytes) whose module `entrypoint` default-exports the handler."""
    for p in files:
        problem = release_path_problem(p)
        if problem:
            raise _failed(f"function file {p!r}: {problem}")
    if entrypoint not in files:
        raise _failed(f"entrypoint {entrypoint!r} is not one of the function's files")
    if not entrypoint.endswith((".js", ".mjs", ".cjs", ".ts", ".mts", ".jsx", ".tsx")):
        raise _failed(f"entrypoint {entrypoint!r} must be a .js, .mjs or .ts module")
    tc = toolchain()
    with tempfile.TemporaryDirectory(prefix="run402-build-") as tmp:
        build_dir = Path(tmp) / "src"
        build_dir.mkdir()
        for rel, data in files.items():
            target = build_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        deps_resolved = _install_deps(tc, build_dir, deps) if deps else {}
        (build_dir / _ENTRY).write_text(
            f"import handler from {json.dumps('./' + entrypoint)};\n"
            "export { runWithContext } from \"@run402/functions\";\nexport default handler;\n")
        out = Path(tmp) / "bundle.mjs"
        script = resources.files("run402_cli.local.functions").joinpath("bundle.mjs").read_text("utf-8")
        env = {"PATH": os.environ.get("PATH", ""), "ESBUILD_BINARY_PATH": str(tc.esbuild)}
        try:
            r = subprocess.run([tc.node, "--input-type=module", "--eval", script, str(tc.node_modules / "esbuild"),
                                str(build_dir), _ENTRY, str(out), str(build_dir), str(tc.node_modules)],
                               capture_output=True, text=True, timeout=120, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise _failed("esbuild took more than 120 s") from None
        try:
            report = json.loads(r.stdout)
        except ValueError:
            raise _failed("esbuild failed", (r.stderr or r.stdout).splitlines()[-15:]) from None
        if not report.get("ok"):
            logs = [line.replace(str(build_dir) + "/", "") for line in report.get("errors", [])]
            raise _failed(f"The function did not build: {logs[0] if logs else 'esbuild failed'}", logs)
        bundle = out.read_bytes()
    warnings = list(report.get("warnings", []))[:10]
    if len(bundle) > MAX_BYTES:
        raise _failed(f"The bundled function is {len(bundle)} bytes; the limit is {MAX_BYTES} (25 MB)",
                      code="FUNCTION_TOO_LARGE")
    if len(bundle) > WARN_BYTES:
        warnings.append(f"The bundled function is {len(bundle) / 1e6:.1f} MB (over 10 MB); cold starts get slower")
    return Built(bundle=bundle, sha256=hashlib.sha256(bundle).hexdigest(), deps_resolved=deps_resolved,
                 warnings=warnings)
