"""Scheduled functions on a gateway of their own, whose scheduler clock runs 900 times faster
than the wall clock (RUN402_LOCAL_SCHEDULE_CLOCK_RATE, a test-only knob): a 15-minute schedule,
the prototype tier's shortest, fires every second. schedule_meta survives `local down`/`up`."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest

from tests.commands._helpers import ok, ready
from tests.conftest import _ENV_VARS, _run402, destroy_local


@pytest.fixture
def fast_gateway(monkeypatch: pytest.MonkeyPatch):
    import os

    local_dir = Path(tempfile.mkdtemp(prefix="run402-test-sched-"))
    env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    env.update(RUN402_LOCAL_DIR=str(local_dir), RUN402_LOCAL_SCHEDULE_CLOCK_RATE="900")
    up = _run402(["local", "up", "--port", "0"], env)
    assert up.returncode == 0, up.stderr
    monkeypatch.setenv("RUN402_API_BASE", json.loads(up.stdout)["api_base"])
    try:
        yield env
    finally:
        _run402(["local", "down"], env, timeout=120)
        destroy_local(local_dir)


def _meta(cli, project_id: str) -> dict:
    fns = ok(cli("functions", "list", project_id))["functions"]
    return {f["name"]: f for f in fns}["tick"]


def test_a_schedule_fires_and_survives_a_restart(cli, fast_gateway, tmp_path: Path):
    ready(cli)
    project_id = ok(cli("projects", "provision"))["project_id"]
    src = tmp_path / "tick.mjs"
    src.write_text("export default async (req) => { const b = await req.json(); "
                   "console.log('tick', b.trigger, req.headers.get('x-run402-trigger')); return new Response('ok'); }")
    deployed = ok(cli("functions", "deploy", project_id, "tick", "--file", str(src), "--schedule", "*/15 * * * *"))
    assert deployed["schedule"] == "*/15 * * * *"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        meta = _meta(cli, project_id)["schedule_meta"]
        if (meta.get("run_count") or 0) >= 2:
            break
        time.sleep(0.5)
    assert meta["run_count"] >= 2 and meta["last_status"] == "success" and meta["last_error"] is None
    assert meta["next_run_at"] > meta["last_run_at"]
    logs = ok(cli("functions", "logs", project_id, "tick", "--tail", "20"))["logs"]
    assert any(e["message"] == "tick schedule schedule" for e in logs)

    down = _run402(["local", "down"], fast_gateway, timeout=120)
    assert down.returncode == 0, down.stderr
    up = _run402(["local", "up", "--port", "0"], fast_gateway)
    assert up.returncode == 0, up.stderr
    cli_env_base = json.loads(up.stdout)["api_base"]
    import os

    os.environ["RUN402_API_BASE"] = cli_env_base
    kept = _meta(cli, project_id)["schedule_meta"]["run_count"]
    assert kept >= meta["run_count"]  # kept across the restart
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _meta(cli, project_id)["schedule_meta"]["run_count"] <= kept:
        time.sleep(0.5)
    assert _meta(cli, project_id)["schedule_meta"]["run_count"] > kept

    # Removing the schedule stops it; schedule_meta goes with it.
    updated = ok(cli("functions", "update", project_id, "tick", "--schedule-remove"))
    assert updated["schedule"] is None
    assert "schedule_meta" not in _meta(cli, project_id) or _meta(cli, project_id)["schedule_meta"] is None
