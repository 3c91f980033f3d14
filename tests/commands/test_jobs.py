"""`run402 jobs submit|get|logs|cancel`: against the session gateway (which runs no managed
jobs: submit is NOT_AVAILABLE_LOCALLY, any job id JOB_NOT_FOUND), bad input (exit 1, one
JSON line, nothing changed, no request), parsing, and the wire shape (Idempotency-Key, body,
query) against the recording stand-in of the hosted API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from run402_cli.commands import jobs as jobs_cmd
from tests.commands._helpers import (
    closed_port, files, ok, ready, record, seed_allowance, seed_projects, usage_error,
)
from tests.interop.recording_server import RecordingServer, Reply

JOB = {"job_type": "kysigned.fflonk_prove.v0_17_0", "input": {"input.json": {"n": 1}}, "max_cost_usd_micros": 50000}
P = "prj_1_1"


def provisioned(cli: Any) -> str:
    ready(cli)
    return ok(cli("projects", "provision"))["project_id"]


# --- against the gateway --------------------------------------------------------------------


def test_submit_is_not_available_locally(cli, api, tmp_path):
    pid = provisioned(cli)
    (tmp_path / "job.json").write_text(json.dumps(JOB))
    for res in (cli("jobs", "submit", "--file", str(tmp_path / "job.json")),
                cli("jobs", "submit", "--stdin", "--project", pid, input=json.dumps(JOB))):
        env = usage_error(res, "NOT_AVAILABLE_LOCALLY")
        assert env["http"] == 501 and env["retryable"] is False and env["mutation_state"] == "none"
        assert "kysigned.fflonk_prove.v0_17_0" in env["message"]
        assert "RUN402_API_BASE=https://api.run402.com" in env["message"]
        assert env["next_actions"] == [{"action": "use_hosted_api", "env": {"RUN402_API_BASE": "https://api.run402.com"}}]


def test_no_job_exists_locally(cli, api):
    provisioned(cli)
    for args in (("get", "job_1"), ("logs", "job_1", "--tail", "5", "--since", "0"), ("cancel", "job_1")):
        env = usage_error(cli("jobs", *args), "JOB_NOT_FOUND")
        assert env["http"] == 404 and env["details"] == {"job_id": "job_1"}, args


def test_a_malformed_request_is_refused_by_the_gateway(cli, api):
    provisioned(cli)
    env = usage_error(cli("jobs", "submit", "--stdin", input='{"job_type": 7, "input": []}'), "BAD_REQUEST")
    assert env["http"] == 400 and len(env["details"]["problems"]) == 3


# --- bad input: exit 1, one JSON line, nothing changed, no request ---------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, isolated_config: Path, tmp_path: Path) -> Path:
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps(JOB))
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "bad.json").write_text("{nope")
    seed_allowance()
    seed_projects([P], active=P)
    return isolated_config


@pytest.mark.parametrize("args,code,stdin", [
    (["submit"], "BAD_USAGE", None),
    (["submit", "--stdin"], "BAD_USAGE", None),  # nothing piped
    (["submit", "--file", "job.json", "--stdin"], "BAD_USAGE", json.dumps(JOB)),
    (["submit", "--file", "nope.json"], "FILE_NOT_FOUND", None),
    (["submit", "--file", "."], "NOT_A_FILE", None),
    (["submit", "--file", "bad.json"], "BAD_JSON", None),
    (["submit", "--file", "list.json"], "BAD_JSON", None),
    (["submit", "--stdin"], "BAD_JSON", "{nope"),
    (["submit", "--stdin"], "BAD_JSON", '"a string"'),
    (["submit", "--file"], "BAD_FLAG", None),
    (["submit", "--file", "job.json", "extra"], "BAD_USAGE", None),
    (["submit", "--file", "job.json", "--project", "prj_9_9"], "PROJECT_NOT_FOUND", None),
    (["submit", "--file", "job.json", "--project", "abc"], "BAD_PROJECT_ID", None),
    (["submit", "--file", "job.json", "--idempotency-key", "k"], "UNKNOWN_FLAG", None),
    (["get"], "BAD_USAGE", None),
    (["get", "job_1", "job_2"], "BAD_USAGE", None),
    (["get", "job_1", "--project", "prj_9_9"], "PROJECT_NOT_FOUND", None),
    (["get", "job_1", "--bogus"], "UNKNOWN_FLAG", None),
    (["logs"], "BAD_USAGE", None),
    (["logs", "job_1", "--tail", "0"], "BAD_FLAG", None),
    (["logs", "job_1", "--tail", "1001"], "BAD_FLAG", None),
    (["logs", "job_1", "--tail", "abc"], "BAD_FLAG", None),
    (["logs", "job_1", "--tail", "1.5"], "BAD_FLAG", None),
    (["logs", "job_1", "--since", "-1"], "BAD_FLAG", None),
    (["logs", "job_1", "--since", "yesterday"], "BAD_FLAG", None),
    (["logs", "job_1", "--since", str(2**53)], "BAD_FLAG", None),
    (["logs", "job_1", "--tail"], "BAD_FLAG", None),
    (["cancel"], "BAD_USAGE", None),
    (["cancel", "job_1", "--yes"], "UNKNOWN_FLAG", None),
])
def test_bad_input(cli, offline, args, code, stdin):
    before = files(offline)
    env = usage_error(cli("jobs", *args, input=stdin), code)  # not NETWORK_ERROR: no request
    assert files(offline) == before
    if code == "BAD_FLAG" and "--tail" in args and len(args) > 3:
        assert env["details"]["flag"] == "--tail"


def test_no_active_project(cli, isolated_config, tmp_path, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_projects([P])
    usage_error(cli("jobs", "get", "job_1"), "NO_ACTIVE_PROJECT")
    usage_error(cli("jobs", "submit", "--stdin", input="{}"), "NO_ACTIVE_PROJECT")


def test_bad_json_details(cli, offline):
    env = usage_error(cli("jobs", "submit", "--stdin", input="[1]"), "BAD_JSON")
    assert env["message"] == "stdin must contain a JSON object" and env["details"] == {"source": "stdin"}
    env = usage_error(cli("jobs", "submit", "--file", "bad.json"), "BAD_JSON")
    assert env["details"]["source"] == "bad.json" and env["details"]["parse_error"]


# --- parse only -----------------------------------------------------------------------------


def test_parse(cli, offline, monkeypatch):
    submits = record(monkeypatch, jobs_cmd, "run_submit")
    gets = record(monkeypatch, jobs_cmd, "run_get")
    logs = record(monkeypatch, jobs_cmd, "run_logs")
    cancels = record(monkeypatch, jobs_cmd, "run_cancel")
    assert cli("jobs", "submit", "--file", "job.json").code == 0
    assert cli("jobs", "submit", "--stdin", "--project", P, input="{}").code == 0
    assert cli("jobs", "get", "--project", P, "job_1").code == 0
    assert cli("jobs", "logs", "job_1", "--tail=05", "--since", "0").code == 0
    assert cli("jobs", "logs", "job_1").code == 0
    assert cli("jobs", "cancel", "job_1").code == 0
    assert submits == [jobs_cmd.SubmitOptions(JOB, P), jobs_cmd.SubmitOptions({}, P)]
    assert gets == [jobs_cmd.GetOptions("job_1", P)]
    assert logs == [jobs_cmd.LogsOptions("job_1", None, 5, 0), jobs_cmd.LogsOptions("job_1")]
    assert cancels == [jobs_cmd.CancelOptions("job_1")]


# --- the wire: what leaves the machine -------------------------------------------------------


def test_wire_shape(cli, offline, monkeypatch):
    run = {"job_id": "job_1", "job_type": JOB["job_type"], "status": "queued", "created_at": "t"}
    routes = {("POST", "/jobs/v1/runs"): Reply(202, run), ("GET", "/jobs/v1/runs/*"): Reply(200, run),
              ("GET", "/jobs/v1/runs/*/logs"): Reply(200, {"logs": []}),
              ("DELETE", "/jobs/v1/runs/*"): Reply(200, {**run, "status": "cancelled"})}
    with RecordingServer(routes) as server:
        monkeypatch.setenv("RUN402_API_BASE", server.url)
        assert ok(cli("jobs", "submit", "--file", "job.json")) == run
        ok(cli("jobs", "submit", "--stdin", input=json.dumps(JOB)))
        assert ok(cli("jobs", "get", "job 1/x")) == run
        assert ok(cli("jobs", "logs", "job_1", "--tail", "100", "--since", "1700000000000")) == {"logs": []}
        assert ok(cli("jobs", "cancel", "job_1"))["status"] == "cancelled"
        sent = server.take()
    assert [(r.method, r.path, r.query) for r in sent] == [
        ("POST", "/jobs/v1/runs", ""), ("POST", "/jobs/v1/runs", ""), ("GET", "/jobs/v1/runs/job%201%2Fx", ""),
        ("GET", "/jobs/v1/runs/job_1/logs", "tail=100&since=1700000000000"), ("DELETE", "/jobs/v1/runs/job_1", "")]
    first, second = sent[0], sent[1]
    assert first.json == JOB and first.headers["content-type"] == "application/json"
    keys = [first.headers["idempotency-key"], second.headers["idempotency-key"]]
    assert all(re.fullmatch(r"job-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", k) for k in keys)
    assert keys[0] != keys[1], "a fresh key per call"
    for req in sent:
        assert req.headers["authorization"] == "Bearer svc-prj_1_1"
        assert "sign-in-with-x" not in req.headers
        assert ("idempotency-key" in req.headers) == (req.method == "POST")
