"""The deploy flow (deploy/flow.py) below the CLI.

Against the session gateway: a real BASE_RELEASE_CONFLICT (another deploy lands between our
plan and our commit) is retried from a fresh plan; a file that changes after hashing stops
the deploy before anything is committed.

Hosted-only behaviour, with a strict mock transport (every request must match a stub, every
stub must be used): the local gateway commits synchronously and serves single-part uploads
of small files from itself, so polling, multipart parts, presigned-URL checksums and upload
retries only happen against the hosted API and S3.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest

from run402_cli import config
from run402_cli.api.client import Client
from run402_cli.deploy import flow
from run402_cli.deploy.hashcache import HashCache, hash_walk
from run402_cli.deploy.spec import site_release_from_bytes, site_release_from_walk
from run402_cli.deploy.walk import walk_dir
from run402_cli.errors import LocalError
from tests.local._support import provision


# --- against the session gateway ------------------------------------------------------------


def test_base_release_conflict_is_retried_from_a_fresh_plan(api):
    project = provision("conflict")
    client = project["client"]
    seen: list[dict[str, Any]] = []
    intruded = []

    def sink(event: dict[str, Any]) -> None:
        seen.append(event)
        if event["type"] == "commit.phase" and not intruded:  # just before our commit
            intruded.append(flow.apply(client, site_release_from_bytes(project["project_id"], {"index.html": b"other"}),
                                       anon_key=project["anon_key"]))

    mine = site_release_from_bytes(project["project_id"], {"index.html": b"mine", "a.css": b"a"})
    out = flow.apply(client, mine, anon_key=project["anon_key"], on_event=sink, sleep=lambda s: None)
    assert out.attempts == 2
    (retry,) = [e for e in seen if e["type"] == "deploy.retry"]
    assert retry["code"] == "BASE_RELEASE_CONFLICT" and retry["attempt"] == 1 and retry["nextAttempt"] == 2
    assert retry["maxAttempts"] == 3 and 250 <= retry["delayMs"] <= 350
    assert [e["type"] for e in seen].count("plan.started") == 2
    assert out.result["release_id"] != intruded[0].result["release_id"]


def test_base_empty_is_not_retried(api):
    project = provision("no-retry")
    client = project["client"]
    flow.apply(client, site_release_from_bytes(project["project_id"], {"index.html": b"1"}), anon_key=project["anon_key"])
    release = site_release_from_bytes(project["project_id"], {"index.html": b"2"})
    release.spec["base"] = {"release": "empty"}  # "fail if a release exists"
    events: list[dict[str, Any]] = []
    with pytest.raises(Exception) as info:
        flow.apply(client, release, anon_key=project["anon_key"], on_event=events.append, sleep=lambda s: None)
    assert info.value.to_envelope()["status"] == "error"
    assert not [e for e in events if e["type"] == "deploy.retry"]


def test_a_file_changed_after_hashing_stops_the_deploy(api, tmp_path):
    project = provision("changed")
    root = tmp_path / "site"
    root.mkdir()
    for i in range(3):
        (root / f"p{i}.html").write_text(f"<p>{i}</p>")
    walk = walk_dir(root)
    hashes, _ = hash_walk(walk, HashCache(walk.root, None))
    release = site_release_from_walk(project["project_id"], walk, hashes)
    (root / "p1.html").write_text("<p>changed!</p>")
    with pytest.raises(LocalError) as info:
        flow.apply(project["client"], release, anon_key=project["anon_key"])
    assert info.value.code == "FILE_CHANGED_DURING_DEPLOY" and info.value.details["label"] == "p1.html"
    active = project["client"].request("GET", "/apply/v1/releases/active", headers={"apikey": project["anon_key"]},
                                       wallet_auth=False)
    assert active["release_id"] is None, "nothing was committed"


# --- hosted-only: a strict mock -------------------------------------------------------------


class Hosted:
    """# mock: hosted-only. Stubs keyed by (method, path); each is a list of responses served
    in order. An unexpected request fails; `verify()` fails on unused responses."""

    def __init__(self) -> None:
        self.stubs: dict[tuple[str, str], list[Callable[[httpx.Request], httpx.Response]]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *responses: Any) -> None:
        funcs = [r if callable(r) else (lambda req, r=r: httpx.Response(200, json=r)) for r in responses]
        self.stubs.setdefault((method, path), []).extend(funcs)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = (request.method, request.url.path)
        queue = self.stubs.get(key)
        assert queue, f"unexpected request {key}"
        return queue.pop(0)(request)

    def verify(self) -> None:
        left = {k: len(v) for k, v in self.stubs.items() if v}
        assert not left, f"stubs never used: {left}"


@pytest.fixture
def hosted(tmp_path: Path) -> tuple[Hosted, Client]:
    mock = Hosted()
    settings = config.Settings(env={"RUN402_API_BASE": "https://api.example.test",
                                    "RUN402_CONFIG_DIR": str(tmp_path / "cfg")})
    client = Client(settings, transport=httpx.MockTransport(mock.handler))
    yield mock, client
    mock.verify()


def plan_for(release: Any, present: set[str] = frozenset(), **extra: Any) -> dict[str, Any]:
    return {"kind": "plan_response", "schema_version": "agent-deploy-observability.v1", "plan_id": "plan_1",
            "operation_id": "op_1", "base_release_id": None, "manifest_digest": "d", "is_noop": False,
            "summary": "s", "warnings": [], "payment_required": None,
            "missing_content": [{"sha256": c.sha256, "size": c.size, "present": c.sha256 in present}
                                for c in release.contents.values()], **extra}


def snapshot(status: str, **extra: Any) -> dict[str, Any]:
    return {"operation_id": "op_1", "project_id": "prj_1", "plan_id": "plan_1", "status": status, **extra}


READY = snapshot("ready", release_id="rel_1", urls={"project": "https://p.example/", "deployment_id": "dpl_1"})


def test_polls_until_ready_with_phase_events_and_cadence(hosted):
    mock, client = hosted
    release = site_release_from_bytes("prj_1", {"a.html": b"a"})
    mock.on("POST", "/apply/v1/plans", plan_for(release, present={hashlib.sha256(b"a").hexdigest()}))
    mock.on("POST", "/apply/v1/plans/plan_1/commit", {"operation_id": "op_1", "status": "running"})
    mock.on("GET", "/apply/v1/operations/op_1", snapshot("staging"), snapshot("staging"), snapshot("migrating"),
            snapshot("activating"), READY)
    events: list[dict[str, Any]] = []
    sleeps: list[float] = []
    out = flow.apply(client, release, anon_key="ak", on_event=events.append, sleep=sleeps.append)
    assert out.result["release_id"] == "rel_1" and out.result["urls"]["deployment_id"] == "dpl_1"
    phases = [(e["phase"], e["status"]) for e in events if e["type"] == "commit.phase"]
    assert phases == [("validate", "started"), ("stage", "started"), ("stage", "done"), ("migrate", "started"),
                      ("migrate", "done"), ("activate", "started"), ("activate", "done")]
    assert events[-1] == {"type": "ready", "releaseId": "rel_1", "urls": READY["urls"], "slice_kinds": ["release"]}
    assert sleeps == [1.0, 1.0, 1.0, 1.0]
    assert all(r.headers["apikey"] == "ak" for r in mock.requests if r.url.path.startswith("/apply/v1/operations"))
    commit = next(r for r in mock.requests if r.url.path.endswith("/commit"))
    assert json.loads(commit.content) == {}


def test_failed_operation_closes_the_phase_and_raises(hosted):
    mock, client = hosted
    release = site_release_from_bytes("prj_1", {"a.html": b"a"})
    mock.on("POST", "/apply/v1/plans", plan_for(release, present={hashlib.sha256(b"a").hexdigest()}))
    mock.on("POST", "/apply/v1/plans/plan_1/commit", {"operation_id": "op_1", "status": "running"})
    error = {"code": "migration_failed", "message": "boom", "phase": "migrate", "retryable": False,
             "safe_to_retry": True, "mutation_state": "rolled_back", "details": {"sqlstate": "42P01"}}
    mock.on("GET", "/apply/v1/operations/op_1", snapshot("migrating"), snapshot("failed", error=error))
    events: list[dict[str, Any]] = []
    with pytest.raises(flow.DeployError) as info:
        flow.apply(client, release, anon_key="ak", on_event=events.append, sleep=lambda s: None)
    env = info.value.to_envelope()
    assert env["code"] == "MIGRATION_FAILED" and env["mutation_state"] == "rolled_back"
    assert env["operation_id"] == "op_1" and env["plan_id"] == "plan_1" and env["safe_to_retry"] is True
    assert list(env)[:5] == ["status", "code", "message", "retryable", "safe_to_retry"]
    assert [(e["phase"], e["status"]) for e in events if e["type"] == "commit.phase"][-1] == ("migrate", "failed")


def test_activation_pending_with_a_terminal_error_stops_polling(hosted):
    mock, client = hosted
    release = site_release_from_bytes("prj_1", {"a.html": b"a"})
    mock.on("POST", "/apply/v1/plans", plan_for(release, present={hashlib.sha256(b"a").hexdigest()}))
    mock.on("POST", "/apply/v1/plans/plan_1/commit", {"operation_id": "op_1", "status": "activation_pending"})
    mock.on("GET", "/apply/v1/operations/op_1", snapshot("activation_pending"),
            snapshot("activation_pending", error={"code": "FUNCTION_ACTIVATE_FAILED", "retryable": True}))
    events: list[dict[str, Any]] = []
    with pytest.raises(flow.DeployError) as info:
        flow.apply(client, release, anon_key="ak", on_event=events.append, sleep=lambda s: None)
    assert info.value.code == "FUNCTION_ACTIVATE_FAILED"
    assert ("activate", "failed") in [(e["phase"], e["status"]) for e in events if e["type"] == "commit.phase"]


def test_polling_times_out_with_a_504_envelope(hosted):
    mock, client = hosted
    now = [0.0]
    release = site_release_from_bytes("prj_1", {"a.html": b"a"})
    mock.on("POST", "/apply/v1/plans", plan_for(release, present={hashlib.sha256(b"a").hexdigest()}))
    mock.on("POST", "/apply/v1/plans/plan_1/commit", {"operation_id": "op_1", "status": "running"})
    mock.on("GET", "/apply/v1/operations/op_1", *[snapshot("schema_settling")] * 200)
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    with pytest.raises(flow.DeployError) as info:
        flow.apply(client, release, anon_key="ak", sleep=sleep, clock=lambda: now[0])
    env = info.value.to_envelope()
    assert env["code"] == "INTERNAL_ERROR" and env["http"] == 504 and env["retryable"] is True
    assert env["phase"] == "schema_settling" and env["operation_id"] == "op_1"
    assert sleeps[:30] == [1.0] * 30, "1 s apart for the first 30 s"
    grown = sleeps[30:]
    assert all(b == min(a * 1.5, 30.0) for a, b in zip(grown, grown[1:])) and max(sleeps) == 30.0
    assert 600 <= sum(sleeps) < 600 + 30
    mock.stubs.clear()  # the unused tail of the generous stub list is fine


def _content_plan(sha: str, parts: list[tuple[int, int, str]], mode: str) -> dict[str, Any]:
    return {"plan_id": "cplan_1", "expires_at": "2099-01-01T00:00:00Z", "entries": [{"sha256": sha, "missing": True}],
            "missing": [{"sha256": sha, "mode": mode, "upload_id": "u_1", "staging_key": "_staging/u_1",
                         "part_size_bytes": 4, "part_count": len(parts), "expires_at": "2099-01-01T00:00:00Z",
                         "parts": [{"part_number": i + 1, "byte_start": a, "byte_end": b, "url": url}
                                   for i, (a, b, url) in enumerate(parts)]}]}


def test_multipart_upload_checksums_etags_and_retries(hosted):
    mock, client = hosted
    data = b"0123456789"
    sha = hashlib.sha256(data).hexdigest()
    release = site_release_from_bytes("prj_1", {"big.bin": data})
    mock.on("POST", "/apply/v1/plans", plan_for(release))
    mock.on("POST", "/content/v1/plans", _content_plan(sha, [
        (0, 3, "https://s3.example.test/up?part=1"),
        (4, 7, "https://s3.example.test/up?part=2&x-amz-checksum-sha256=presigned"),
        (8, 9, "https://s3.example.test/up?part=3")], "multipart"))
    got: dict[str, tuple[bytes, str | None]] = {}

    def put(request: httpx.Request) -> httpx.Response:
        part = request.url.params["part"]
        got[part] = (request.content, request.headers.get("x-amz-checksum-sha256"))
        assert "content-type" not in request.headers and "authorization" not in request.headers
        return httpx.Response(200, headers={"ETag": f'"etag-{part}"'})

    mock.on("PUT", "/up", put, lambda r: httpx.Response(503, text="slow down"), put, put)
    mock.on("POST", "/content/v1/plans/cplan_1/commit", {})
    mock.on("POST", "/apply/v1/plans/plan_1/commit", READY)
    sleeps: list[float] = []
    events: list[dict[str, Any]] = []
    out = flow.apply(client, release, anon_key="ak", on_event=events.append, sleep=sleeps.append)
    assert got["1"] == (b"0123", base64.b64encode(hashlib.sha256(b"0123").digest()).decode())
    assert got["2"] == (b"4567", None), "the URL already carries the checksum: no header"
    assert got["3"] == (b"89", base64.b64encode(hashlib.sha256(b"89").digest()).decode())
    assert sleeps == [1.0] and out.bytes_put == 10 and out.objects_uploaded == 1
    cplan = next(r for r in mock.requests if r.url.path == "/content/v1/plans")
    assert json.loads(cplan.content) == {"content": [{"sha256": sha, "size": 10, "content_type": "application/octet-stream"}]}
    assert cplan.headers["apikey"] == "ak"
    assert [e for e in events if e["type"] == "content.upload.progress"] == [
        {"type": "content.upload.progress", "label": "big.bin", "sha256": sha, "done": 1, "total": 1, "slice_kind": "release"}]


def test_single_part_checksum_is_the_object_digest_and_multipart_needs_etags(hosted):
    mock, client = hosted
    release = site_release_from_bytes("prj_1", {"a.txt": b"abc", "b.txt": b"defgh"})
    sha_a, sha_b = hashlib.sha256(b"abc").hexdigest(), hashlib.sha256(b"defgh").hexdigest()
    mock.on("POST", "/apply/v1/plans", plan_for(release))
    cp = _content_plan(sha_a, [(0, 2, "https://s3.example.test/a")], "single")
    cp["missing"] += _content_plan(sha_b, [(0, 2, "https://s3.example.test/b"), (3, 4, "https://s3.example.test/b")],
                                   "multipart")["missing"]
    mock.on("POST", "/content/v1/plans", cp)
    mock.on("PUT", "/a", lambda r: httpx.Response(
        200 if r.headers["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(sha_a)).decode() else 400))
    mock.on("PUT", "/b", lambda r: httpx.Response(200))  # no ETag on a multipart part
    with pytest.raises(flow.DeployError) as info:
        flow.apply(client, release, anon_key="ak", sleep=lambda s: None, workers=1)
    assert info.value.code == "CONTENT_UPLOAD_FAILED"


def test_client_errors_on_upload_are_not_retried(hosted):
    mock, client = hosted
    release = site_release_from_bytes("prj_1", {"a.txt": b"abc"})
    sha = hashlib.sha256(b"abc").hexdigest()
    mock.on("POST", "/apply/v1/plans", plan_for(release))
    mock.on("POST", "/content/v1/plans", _content_plan(sha, [(0, 2, "https://s3.example.test/a")], "single"))
    mock.on("PUT", "/a", lambda r: httpx.Response(400, json={"code": "CONTENT_DIGEST_MISMATCH", "message": "no"}))
    with pytest.raises(Exception) as info:
        flow.apply(client, release, anon_key="ak", sleep=lambda s: pytest.fail("no retry on 400"))
    assert info.value.to_envelope()["code"] == "CONTENT_DIGEST_MISMATCH"
    assert info.value.to_envelope()["http"] == 400


def test_present_refs_are_skipped_and_a_missing_ref_without_bytes_fails(hosted):
    mock, client = hosted
    release = site_release_from_bytes("prj_1", {"a.txt": b"abc"})
    ghost = "f" * 64
    plan = plan_for(release, present={hashlib.sha256(b"abc").hexdigest()})
    plan["missing_content"].append({"sha256": ghost, "size": 1, "present": False})
    mock.on("POST", "/apply/v1/plans", plan)
    events: list[dict[str, Any]] = []
    with pytest.raises(flow.DeployError) as info:
        flow.apply(client, release, anon_key="ak", on_event=events.append)
    assert info.value.code == "CONTENT_UPLOAD_FAILED" and info.value.body["sha256"] == ghost
    assert not [e for e in events if e["type"] == "content.upload.skipped"], "fails before any upload work"


def test_legacy_plan_envelope_and_client_warning_merge(hosted):
    mock, client = hosted
    release = site_release_from_bytes("prj_1", {"a.txt": b"abc"})
    release.client_warnings = [{"code": "WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS", "requires_confirmation": True,
                                "severity": "warn", "message": "m", "affected": ["/a/*"]}]
    legacy = {"plan_id": "plan_1", "operation_id": "op_1", "base_release_id": None, "manifest_digest": "d",
              "missing_content": [], "diff": {"resources": {"site": {"added": 1}}}}
    mock.on("POST", "/apply/v1/plans", legacy)
    with pytest.raises(flow.DeployError) as info:
        flow.apply(client, release, anon_key="ak")
    assert info.value.code == "WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS"
    assert info.value.body["unacknowledged_warning_codes"] == ["WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS"]
    mock.on("POST", "/apply/v1/plans", legacy)
    mock.on("POST", "/apply/v1/plans/plan_1/commit", READY)
    events: list[dict[str, Any]] = []
    out = flow.apply(client, release, anon_key="ak", on_event=events.append,
                     allowed_warning_codes=["WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS"])
    assert out.result["diff"] == {"resources": {"site": {"added": 1}}}
    assert [w["code"] for w in out.result["warnings"]] == ["WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS"]
    assert events[1] == {"type": "plan.diff", "diff": {"resources": {"site": {"added": 1}}}}


def test_huge_specs_use_manifest_ref(hosted, monkeypatch):
    mock, client = hosted
    monkeypatch.setattr(flow, "INLINE_SPEC_LIMIT", 100)
    release = site_release_from_bytes("prj_1", {f"p{i}.html": b"x" for i in range(5)})
    release.idempotency_key = "idem-1"
    body = json.dumps(release.spec, separators=(",", ":")).encode()
    sha = hashlib.sha256(body).hexdigest()

    def content_plan(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {"content": [
            {"sha256": sha, "size": len(body), "content_type": "application/vnd.run402.deploy-manifest+json"}]}
        return httpx.Response(200, json=_content_plan(sha, [(0, len(body) - 1, "https://s3.example.test/m")], "single"))

    def plan(request: httpx.Request) -> httpx.Response:
        assert json.loads(request.content) == {
            "spec": {"project": "prj_1"}, "idempotency_key": "idem-1",
            "manifest_ref": {"sha256": sha, "size": len(body), "contentType": "application/vnd.run402.deploy-manifest+json"}}
        return httpx.Response(200, json=plan_for(release, present={hashlib.sha256(b"x").hexdigest()}))

    mock.on("POST", "/content/v1/plans", content_plan)
    mock.on("PUT", "/m", lambda r: httpx.Response(200 if r.content == body else 400))
    mock.on("POST", "/content/v1/plans/cplan_1/commit", {})
    mock.on("POST", "/apply/v1/plans", plan)
    mock.on("POST", "/apply/v1/plans/plan_1/commit", lambda r: httpx.Response(
        200, json=READY if json.loads(r.content) == {"idempotency_key": "idem-1"} else {}))
    assert flow.apply(client, release, anon_key="ak").result["release_id"] == "rel_1"
    with pytest.raises(LocalError) as info:
        flow.dry_run(client, release)
    assert info.value.code == "DRY_RUN_REQUIRES_INLINE_SPEC"


def test_resume_uses_the_snapshot_project_key_for_polling(hosted):
    mock, client = hosted
    mock.on("POST", "/apply/v1/operations/op_1/resume", snapshot("activating"))
    mock.on("GET", "/apply/v1/operations/op_1", READY)
    asked: list[Any] = []
    out = flow.resume(client, "op_1", anon_key_for=lambda p: asked.append(p) or "key-of-prj_1", sleep=lambda s: None)
    assert out == {"release_id": "rel_1", "operation_id": "op_1", "urls": READY["urls"], "diff": {}, "warnings": []}
    assert asked == ["prj_1"]
    poll = next(r for r in mock.requests if r.method == "GET")
    assert poll.headers["apikey"] == "key-of-prj_1"
    resume = next(r for r in mock.requests if r.method == "POST")
    assert "apikey" not in resume.headers and resume.content == b""


def test_a_batch_is_committed_while_the_next_one_still_uploads(hosted, monkeypatch):
    """Content plans of 2 objects: batch 1's uploads wait until batch 0 is committed, which
    only a pipelined deploy does (one that commits everything at the end would hang here)."""
    mock, client = hosted
    monkeypatch.setattr(flow, "CONTENT_PLAN_BATCH", 2)
    files = {f"f{i}.txt": f"file {i}".encode() for i in range(4)}
    release = site_release_from_bytes("prj_1", files)
    batch_of = {hashlib.sha256(b).hexdigest(): i // 2 for i, b in enumerate(files.values())}
    mock.on("POST", "/apply/v1/plans", plan_for(release))
    plans: list[list[str]] = []

    def content_plan(request: httpx.Request) -> httpx.Response:
        shas = [c["sha256"] for c in json.loads(request.content)["content"]]
        plans.append(shas)
        n = len(plans)
        return httpx.Response(200, json={"plan_id": f"cplan_{n}", "expires_at": "2099-01-01T00:00:00Z", "missing": [
            {"sha256": sha, "mode": "single", "upload_id": f"u_{sha[:8]}", "part_count": 1,
             "parts": [{"part_number": 1, "byte_start": 0, "byte_end": 5, "url": f"https://s3.example.test/o?sha={sha}"}]}
            for sha in shas]})

    first_committed = threading.Event()

    def put(request: httpx.Request) -> httpx.Response:
        if batch_of[request.url.params["sha"]] == 1:
            assert first_committed.wait(10), "batch 0 was not committed while batch 1 uploaded"
        return httpx.Response(200, headers={"ETag": '"e"'})

    def commit_first(request: httpx.Request) -> httpx.Response:
        first_committed.set()
        return httpx.Response(200, json={})

    mock.on("POST", "/content/v1/plans", content_plan, content_plan)
    mock.on("PUT", "/o", *[put] * 4)
    mock.on("POST", "/content/v1/plans/cplan_1/commit", commit_first)
    mock.on("POST", "/content/v1/plans/cplan_2/commit", {})
    mock.on("POST", "/apply/v1/plans/plan_1/commit", READY)
    events: list[dict[str, Any]] = []
    out = flow.apply(client, release, anon_key="ak", on_event=events.append, sleep=lambda s: None, workers=2)
    assert out.objects_uploaded == 4 and [len(p) for p in plans] == [2, 2]
    progress = [e for e in events if e["type"] == "content.upload.progress"]
    assert [e["done"] for e in progress] == [1, 2, 3, 4] and {e["total"] for e in progress} == {4}
    paths = [r.url.path for r in mock.requests]
    assert paths.index("/content/v1/plans/cplan_2/commit") < paths.index("/apply/v1/plans/plan_1/commit")


def test_a_failed_batch_stops_the_deploy_before_its_commit(hosted, monkeypatch):
    mock, client = hosted
    monkeypatch.setattr(flow, "CONTENT_PLAN_BATCH", 1)
    release = site_release_from_bytes("prj_1", {"a.txt": b"abc", "b.txt": b"def"})
    mock.on("POST", "/apply/v1/plans", plan_for(release))
    asked: list[str] = []

    def content_plan(request: httpx.Request) -> httpx.Response:
        (sha,) = [c["sha256"] for c in json.loads(request.content)["content"]]
        asked.append(sha)
        body = _content_plan(sha, [(0, 2, f"https://s3.example.test/o?sha={sha}")], "single")
        return httpx.Response(200, json={**body, "plan_id": f"cplan_{len(asked)}"})

    mock.on("POST", "/content/v1/plans", content_plan, content_plan)
    refuse = lambda r: httpx.Response(400, json={"code": "CONTENT_DIGEST_MISMATCH", "message": "no"})  # noqa: E731
    mock.on("PUT", "/o", refuse, refuse)
    with pytest.raises(Exception) as info:
        flow.apply(client, release, anon_key="ak", sleep=lambda s: None, workers=1)
    assert info.value.to_envelope()["code"] == "CONTENT_DIGEST_MISMATCH"
    assert not any(r.url.path.endswith("/commit") for r in mock.requests)
    mock.stubs.clear()  # the second batch's upload may never have started
