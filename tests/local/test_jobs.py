"""`/jobs/v1/runs` on the local gateway: authenticated like every service-key route, the
request's shape checked, and then 501 NOT_AVAILABLE_LOCALLY (nothing accepted); no job id
exists locally (404 JOB_NOT_FOUND)."""

from __future__ import annotations

import httpx
import pytest

from tests.local._support import provision

JOB = {"job_type": "kysigned.fflonk_prove.v0_17_0", "input": {"input.json": {}}, "max_cost_usd_micros": 50000}


@pytest.fixture
def project(api):
    return provision("jobs")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Idempotency-Key": "job-00000000-0000-4000-8000-000000000000"}


def test_submit_answers_not_available_locally(api, project):
    resp = httpx.post(f"{api.api_base}/jobs/v1/runs", headers=bearer(project["service_key"]), json=JOB)
    assert resp.status_code == 501
    body = resp.json()
    assert body["code"] == "NOT_AVAILABLE_LOCALLY" and body["retryable"] is False
    assert "kysigned.fflonk_prove.v0_17_0" in body["message"] and "https://api.run402.com" in body["message"]
    assert body["details"] == {"job_type": JOB["job_type"], "project_id": project["project_id"],
                               "hosted_api": "https://api.run402.com"}
    assert body["mutation_state"] == "none" and body["trace_id"].startswith("trc_")


@pytest.mark.parametrize("headers, status", [({}, 401), ({"Authorization": "Bearer nope"}, 401)])
def test_submit_needs_a_service_key(api, project, headers, status):
    resp = httpx.post(f"{api.api_base}/jobs/v1/runs", headers=headers, json=JOB)
    assert resp.status_code == status and resp.json()["code"] == "UNAUTHORIZED"


def test_an_anon_key_is_refused_before_the_body_is_judged(api, project):
    resp = httpx.post(f"{api.api_base}/jobs/v1/runs", headers=bearer(project["anon_key"]), json={"bad": 1})
    assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN"


@pytest.mark.parametrize("body, problems", [
    ({}, 3),
    ({**JOB, "job_type": ""}, 1),
    ({**JOB, "input": "x"}, 1),
    ({**JOB, "max_cost_usd_micros": True}, 1),
    ({**JOB, "max_cost_usd_micros": 1.5}, 1),
    ({**JOB, "max_cost_usd_micros": -1}, 1),
])
def test_submit_checks_the_shape(api, project, body, problems):
    resp = httpx.post(f"{api.api_base}/jobs/v1/runs", headers=bearer(project["service_key"]), json=body)
    assert resp.status_code == 400 and resp.json()["code"] == "BAD_REQUEST"
    assert len(resp.json()["details"]["problems"]) == problems


def test_submit_bodies(api, project):
    url, headers = f"{api.api_base}/jobs/v1/runs", bearer(project["service_key"])
    assert httpx.post(url, headers=headers, json=[JOB]).json()["code"] == "BAD_JSON"
    resp = httpx.post(url, headers={**headers, "Content-Type": "text/plain"}, content=b"{}")
    assert resp.status_code == 415  # a cross-origin "simple" POST cannot reach it


def test_no_job_exists_locally(api, project):
    headers = bearer(project["service_key"])
    for method, path in (("GET", "/jobs/v1/runs/job_1"), ("GET", "/jobs/v1/runs/job_1/logs"),
                         ("DELETE", "/jobs/v1/runs/job_1")):
        resp = httpx.request(method, f"{api.api_base}{path}", headers=headers)
        assert resp.status_code == 404 and resp.json()["code"] == "JOB_NOT_FOUND", (method, path)
        assert httpx.request(method, f"{api.api_base}{path}").status_code == 401
