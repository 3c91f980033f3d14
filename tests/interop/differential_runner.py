"""Runs one differential case through both CLIs and reduces each run to what we compare.

Per case: one RecordingServer (the stand-in API, answering from differential_world); per CLI:
its own HOME, config dir and working dir, seeded and filled identically, the same env; the
official CLI first, then ours (each run's requests are taken off the server before the next).

What is compared (`Observed`), and how it is normalised:
- the exit code;
- the error `code` of the last JSON `status: "error"` line on stderr ("" when there is none);
- the stdout shape: empty, text (help, a bare address), a JSON scalar, an array, or an object
  with its set of top-level keys (values carry paths, keys and times that legitimately vary);
- the requests: method, path, query (as sorted pairs: parameter order carries no meaning),
  body (JSON compared as data; text as text; bytes by digest), the body's media type, and the
  project credentials (`authorization: Bearer <key>`, `apikey`), which are deterministic
  because the keystore is seeded. Ignored: SIGN-IN-WITH-X and x402 payment headers (signed,
  with nonces and timestamps), user agents, header order. Wallet addresses generated during
  the run (`init` on a fresh dir) are replaced by a placeholder. Chain traffic is dropped on
  both sides: ours reads balances from `<api>/rpc/v1/<chain>`, the official CLI from public
  RPCs answered by offline_chain.mjs (whose ledger reads carry `x-offline-chain-mock`);
- the local state after the run: allowance.json's keys, projects.json's ids and active id.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from tests.interop import reference
from tests.interop.differential_table import Case
from tests.interop.differential_world import ADDRESS, FILES, world_routes
from tests.interop.recording_server import Recorded, RecordingServer

__all__ = ["Observed", "Outcome", "run_case"]

REPO = Path(__file__).resolve().parents[2]
PRELOAD = f"--import={(Path(reference.__file__).parent / 'offline_chain.mjs').as_uri()}"
TIMEOUT_S = 60
_ADDR = re.compile(r"0x[0-9a-fA-F]{40}")
# Headers that name a project credential: compared by value (the seeded keys are fixed).
_CRED_HEADERS = ("authorization", "apikey")


@dataclass(frozen=True)
class Observed:
    exit: int
    error: str  # the error code, "" for no error line, "?" for an error line without a code
    stdout: str  # "empty" | "text" | "scalar" | "array" | "object"
    keys: tuple[str, ...]  # top-level keys when stdout is an object
    requests: tuple[tuple[Any, ...], ...]  # normalised, sorted
    state: tuple[Any, ...]
    raw_stdout: str
    raw_stderr: str

    @property
    def sends(self) -> list[str]:
        return [f"{r[0]} {r[1]}" for r in self.requests]

    def summary(self) -> dict[str, Any]:
        return {"exit": self.exit, "error": self.error, "stdout": self.stdout, "keys": list(self.keys),
                "requests": [list(r) for r in self.requests], "state": self.state,
                "stderr": self.raw_stderr[-600:], "stdout_head": self.raw_stdout[:300]}


@dataclass(frozen=True)
class Outcome:
    official: Observed
    ours: Observed


def _error_code(stderr: str) -> str:
    code = ""
    for line in stderr.splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("status") == "error":
            code = data.get("code") if isinstance(data.get("code"), str) else "?"
    return code


def _shape(stdout: str) -> tuple[str, tuple[str, ...]]:
    if not stdout.strip():
        return "empty", ()
    try:
        data = json.loads(stdout)
    except ValueError:
        return "text", ()
    if isinstance(data, dict):
        return "object", tuple(sorted(data))
    if isinstance(data, list):
        return "array", ()
    return "scalar", ()


def _generated(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        value = m.group(0)
        if value.lower() == ADDRESS.lower():
            return value
        return "0x<generated:lower>" if value == value.lower() else "0x<generated:mixed>"
    return _ADDR.sub(sub, text)


def _body(req: Recorded) -> str | None:
    if not req.body:
        return None
    if req.json is not None or req.body.strip() == b"null":
        return _generated(json.dumps(req.json, sort_keys=True))
    try:
        return "text:" + _generated(req.body.decode("utf-8"))
    except UnicodeDecodeError:
        return "sha256:" + hashlib.sha256(req.body).hexdigest()


def _normalise(requests: list[Recorded]) -> tuple[tuple[Any, ...], ...]:
    out = []
    for req in requests:
        if req.path.startswith("/rpc/v1/") or "x-offline-chain-mock" in req.headers:
            continue  # chain reads, not API calls (see the module docstring)
        media = req.headers.get("content-type", "").split(";")[0].strip().lower() if req.body else ""
        creds = tuple((h, req.headers[h]) for h in _CRED_HEADERS if h in req.headers)
        query = tuple(sorted(parse_qsl(req.query, keep_blank_values=True)))
        out.append((req.method, _generated(req.path), query, _body(req), media, creds))
    return tuple(sorted(out, key=repr))


def _state(config_dir: Path) -> tuple[Any, ...]:
    allowance: Any = None
    path = config_dir / "allowance.json"
    if path.exists():
        try:
            allowance = tuple(sorted(json.loads(path.read_text())))
        except ValueError:
            allowance = "unreadable"
    projects: Any = None
    if (config_dir / "projects.json").exists():
        store = json.loads((config_dir / "projects.json").read_text())
        projects = (tuple(sorted(store.get("projects", {}))), store.get("active_project_id"))
    return ("allowance", allowance, "projects", projects)


def _prepare(case: Case, root: Path, api: str) -> tuple[dict[str, str], Path, Path]:
    home, config_dir, work = root / "home", root / "home" / "config", root / "work"
    work.mkdir(parents=True)
    config_dir.mkdir(parents=True)
    case.seed.write(config_dir)
    for fixture in case.files:
        for name, text in FILES[fixture].items():
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            (work / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUN402_", "NODE_", "GITHUB_", "ACTIONS_"))}
    env.update(HOME=str(home), RUN402_CONFIG_DIR=str(config_dir), PYTHONPATH=str(REPO))
    for name, value in case.full_env.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value.replace("{api}", api)
    return env, config_dir, work


def _run(who: str, case: Case, server: RecordingServer, root: Path) -> Observed:
    env, config_dir, work = _prepare(case, root, server.url)
    if who == "official":
        env["NODE_OPTIONS"] = PRELOAD
        cmd = ["node", str(reference.reference_cli()), *case.argv]
    else:
        cmd = [sys.executable, "-m", "run402_cli", *case.argv]
    stdin: Any = subprocess.DEVNULL if case.stdin is None else None
    try:
        proc = subprocess.run(cmd, env=env, cwd=work, input=case.stdin, stdin=stdin, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out, err = -9, str(exc.stdout or ""), f"TIMEOUT after {TIMEOUT_S}s " + str(exc.stderr or "")
    stdout, keys = _shape(out)
    return Observed(code, _error_code(err), stdout, keys, _normalise(server.take()), _state(config_dir), out, err)


def run_case(case: Case) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="run402-diff-") as tmp, RecordingServer() as server:
        server.routes.update(world_routes(server, balance=case.balance))
        server.routes.update(case.routes)
        official = _run("official", case, server, Path(tmp) / "official")
        ours = _run("ours", case, server, Path(tmp) / "ours")
    return Outcome(official, ours)
