"""A gateway killed (SIGKILL) in the middle of an upload: nothing half-done becomes visible, and
after `run402 local up` the same deploy simply runs again to completion.

A private gateway (own RUN402_LOCAL_DIR), because this test kills it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from run402_cli.config import Settings
from tests.conftest import _ENV_VARS, destroy_local
from tests.local._deploy_support import commit, plan, project_host, site, site_spec, upload
from tests.local._support import provision


def _run402(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "run402_cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (the gateway's PostgREST), read from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


def _cas_files(local_dir: Path) -> list[Path]:
    return [p for p in (local_dir / "cas" / "sha256").rglob("*") if p.is_file()]


def test_sigkill_mid_upload_then_up_and_redeploy(tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS and not k.startswith("RUN402_")}
    local_dir = tmp_path / "local"
    env["RUN402_LOCAL_DIR"] = str(local_dir)
    orphans: list[int] = []
    first = _run402(["local", "up", "--port", "0"], env)
    assert first.returncode == 0, first.stderr
    api_base = json.loads(first.stdout)["api_base"]
    try:
        monkeypatch.setenv("RUN402_API_BASE", api_base)
        project = provision("faults")
        v1 = {"index.html": b"<h1>v1</h1>", "app.js": b"v1()"}
        p1 = plan(project, site_spec(project, v1))
        upload(api_base, project, p1, v1)
        assert commit(project, p1["plan_id"])["status"] == "ready"
        host = project_host(api_base, project)

        big = os.urandom(17 * 1024 * 1024)  # multipart: three parts
        v2 = {"big.bin": big, "index.html": b"<h1>v2</h1>", "app.js": b"v2()"}
        p2 = plan(project, site_spec(project, v2))
        cplan = upload(api_base, project, p2, v2, stop_after_parts=1)  # part 1 of big.bin, then the crash
        assert cplan is not None and cplan["missing"][0]["mode"] == "multipart"
        assert site(api_base, host, "/").content == b"<h1>v1</h1>"  # during the upload: v1
        project["client"].close()  # let the client close its connections first (no TIME_WAIT on the port)

        status = json.loads(_run402(["local", "status"], env).stdout)
        pid = status["pid"]
        orphans = _children(pid)
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid)

        second = _run402(["local", "up"], env)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["api_base"] == api_base
        # After the crash: still exactly v1, nothing of v2.
        assert site(api_base, host, "/").content == b"<h1>v1</h1>"
        assert site(api_base, host, "/big.bin").status_code == 404
        big_sha = hashlib.sha256(big).hexdigest()
        assert not (local_dir / "cas" / "sha256" / big_sha[:2] / big_sha[2:]).exists()

        # The whole deploy again, from the plan: it completes.
        project["client"] = type(project["client"])(Settings())
        again = plan(project, site_spec(project, v2))
        assert again["plan_id"] == p2["plan_id"]  # the interrupted plan is found again
        assert not next(m for m in again["missing_content"] if m["sha256"] == big_sha)["present"]
        upload(api_base, project, again, v2)
        done = commit(project, again["plan_id"])
        assert done["status"] == "ready", done
        assert site(api_base, host, "/").content == b"<h1>v2</h1>"
        assert site(api_base, host, "/big.bin").content == big
        assert site(api_base, host, "/app.js").content == b"v2()"

        files = _cas_files(local_dir)
        assert len(files) >= 5
        for path in files:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            assert digest == path.parent.name + path.name, path
        project["client"].close()
    finally:
        _run402(["local", "down"], env)
        for orphan in orphans:  # the killed gateway's PostgREST outlived it
            if _alive(orphan):
                os.kill(orphan, signal.SIGTERM)
        destroy_local(local_dir)
