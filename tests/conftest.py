"""Shared fixtures.

- Every test gets its own config dir (RUN402_CONFIG_DIR under tmp_path) and a clean environment.
- `gateway` is ONE real local gateway per test session (real Postgres, real PostgREST, real
  HTTP), started through the CLI itself (`run402 local up --port 0`) in a temp data dir.
- `cli(...)` runs the real CLI in-process and returns its exit code and both streams.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from run402_cli.app import run

_ENV_VARS = (
    "RUN402_API_BASE",
    "RUN402_DEPLOY_API_BASE",
    "RUN402_CONFIG_DIR",
    "RUN402_ALLOWANCE_PATH",
    "RUN402_PROJECT",
    "RUN402_PROJECT_ID",
    "RUN402_BASE_SEPOLIA_RPC_URL",
    "RUN402_BASE_RPC_URL",
)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error(self) -> dict[str, Any]:
        """The one JSON error line on stderr (asserts there is exactly one line)."""
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        assert len(lines) >= 1, f"no stderr; stdout={self.stdout!r}"
        return json.loads(lines[-1])


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(config))
    return config


@pytest.fixture
def cli():
    """cli("projects", "list") -> Result. Runs main's logic in-process on the current env."""

    def invoke(*args: str, input: str | None = None) -> Result:
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(input or "")
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = run(list(args))
        finally:
            sys.stdin = old_stdin
        return Result(code, out.getvalue(), err.getvalue())

    return invoke


STATEMENT_TIMEOUT_S = 6


@dataclass
class Gateway:
    api_base: str
    local_dir: Path
    env: dict[str, str]


def _run402(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "run402_cli", *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )


def destroy_local(local_dir: Path) -> None:
    """Remove a stopped test gateway's data, including a cluster placed outside it (root)."""
    import shutil

    from run402_cli.local.runtime.pgcluster import PgCluster

    try:
        PgCluster(local_dir).destroy()
    except Exception:
        pass
    shutil.rmtree(local_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def gateway() -> Any:
    local_dir = Path(tempfile.mkdtemp(prefix="run402-test-local-"))
    env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    env["RUN402_LOCAL_DIR"] = str(local_dir)
    # A short statement limit, so the test that a tenant cannot lift it finishes quickly.
    env["RUN402_LOCAL_STATEMENT_TIMEOUT"] = str(STATEMENT_TIMEOUT_S)
    proc = _run402(["local", "up", "--port", "0"], env)
    if proc.returncode != 0:
        logs = _run402(["local", "logs"], env)
        pytest.fail(f"local up failed: {proc.stderr}\n{logs.stdout}")
    api_base = json.loads(proc.stdout)["api_base"]
    try:
        yield Gateway(api_base=api_base, local_dir=local_dir, env=env)
    finally:
        _run402(["local", "down"], env, timeout=120)
        destroy_local(local_dir)


@pytest.fixture
def api(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """Point the CLI under test at the session gateway."""
    monkeypatch.setenv("RUN402_API_BASE", gateway.api_base)
    return gateway
