"""`run402 deploy apply|resume|list|events|release|diagnose|resolve`: bad input, parsing, and
real deploys against the session gateway (migrations + expose + site, a failing migration,
no-op re-runs, the warning gate, release inventory/diff, URL diagnostics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from run402_cli import config
from run402_cli.api import projects as api_projects
from run402_cli.api.client import Client
from run402_cli.commands import deploy as deploy_cmd
from run402_cli.deploy.resolve import build_summary, normalize_request
from tests.commands._helpers import (
    closed_port, files, ok, ready, record, seed_allowance, seed_projects, usage_error,
)

TODOS_SQL = "CREATE TABLE todos (id serial primary key, title text not null);"
EXPOSE = {"version": "1", "tables": [{"name": "todos", "expose": True, "policy": "public_read_authenticated_write"}]}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUN402_CACHE_DIR", str(tmp_path / "hash-cache-root"))
    return tmp_path / "hash-cache-root"


def provisioned(cli: Any) -> dict[str, Any]:
    ready(cli)
    return ok(cli("projects", "provision"))


def events(res: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in res.stderr.splitlines() if line.strip()]


def apply(cli: Any, manifest: dict[str, Any], *args: str) -> Any:
    return cli("deploy", "apply", "--spec", json.dumps(manifest), *args)


def fetch(url: str, path: str) -> httpx.Response:
    parts = urlsplit(url)
    return httpx.get(f"http://127.0.0.1:{parts.port}{path}", headers={"Host": parts.netloc})


def release_manifest(tmp_path: Path) -> Path:
    (tmp_path / "web").mkdir(exist_ok=True)
    (tmp_path / "web" / "app.js").write_text("console.log('todos')")
    (tmp_path / "sql").mkdir(exist_ok=True)
    (tmp_path / "sql" / "002.sql").write_text("ALTER TABLE todos ADD COLUMN done boolean NOT NULL DEFAULT false;")
    manifest = tmp_path / "release.json"
    manifest.write_text(json.dumps({
        "$schema": "https://run402.com/schemas/release-spec.v1.json",
        "database": {
            "migrations": [{"id": "001_todos", "sql": TODOS_SQL},
                           {"id": "002_done", "sql_path": "sql/002.sql"}],
            "expose": EXPOSE,
        },
        "site": {"replace": {"index.html": "<h1>todos</h1>", "app.js": {"path": "web/app.js"}}},
    }))
    return manifest


# --- end to end -----------------------------------------------------------------------------


def test_apply_migration_expose_and_site_then_noop_rerun(cli, api, tmp_path):
    project = provisioned(cli)
    manifest = release_manifest(tmp_path)

    res = cli("deploy", "apply", "--manifest", str(manifest))
    assert res.code == 0, res.stderr
    body = json.loads(res.stdout)
    assert body["status"] == "ok" and body["release_id"].startswith("rel_")
    assert body["operation_id"].startswith("op_")
    assert set(body) == {"status", "release_id", "operation_id", "urls", "diff", "warnings"}
    assert [m["id"] for m in body["diff"]["migrations"]["new"]] == ["001_todos", "002_done"]
    kinds = [e["type"] for e in events(res)]
    assert kinds[0] == "plan.started" and kinds[-1] == "ready" and "commit.phase" in kinds
    ready_event = events(res)[-1]
    assert ready_event["releaseId"] == body["release_id"] and ready_event["slice_kinds"] == ["release"]

    # the migrations ran, in the project's schema, and the expose manifest took effect
    c = Client(config.Settings())
    rows = api_projects.sql(c, project["project_id"], project["service_key"],
                            "SELECT column_name FROM information_schema.columns WHERE table_name = 'todos' "
                            "AND table_schema = current_schema() ORDER BY ordinal_position")
    assert "done" in json.dumps(rows)
    resp = httpx.get(f"{api.api_base}/rest/v1/todos", headers={"apikey": project["anon_key"]})
    assert resp.status_code == 200 and resp.json() == []
    # the site is live
    assert fetch(body["urls"]["project"], "/app.js").content == b"console.log('todos')"

    # same spec again: a no-op, migrations registered as such, nothing uploaded
    res = cli("deploy", "apply", "--manifest", str(manifest))
    again = json.loads(res.stdout)
    assert again["diff"]["is_noop"] is True
    assert [m["id"] for m in again["diff"]["migrations"]["noop"]] == ["001_todos", "002_done"]
    assert again["diff"]["migrations"]["new"] == []
    assert again["release_id"] == body["release_id"]
    assert not [e for e in events(res) if e["type"] == "content.upload.progress"]

    # deploy apply does not touch last_deployment_id (only sites deploy* do)
    assert "last_deployment_id" not in config.Settings().keystore().get(project["project_id"])

    # list / events
    listed = ok(cli("deploy", "list", "--limit", "10"))
    assert body["operation_id"] in [o["operation_id"] for o in listed["operations"]]
    assert "cursor" in listed
    evs = ok(cli("deploy", "events", body["operation_id"]))
    assert evs["status"] == "ok" and isinstance(evs["events"], list) and evs["events"]


def test_failing_migration_changes_nothing(cli, api, tmp_path):
    provisioned(cli)
    first = json.loads(apply(cli, {"site": {"replace": {"index.html": "<h1>v1</h1>"}}}, "--quiet").stdout)
    res = apply(cli, {"database": {"migrations": [{"id": "bad", "sql": "CREATE TABLE x (id int REFERENCES nope(id));"}]},
                      "site": {"replace": {"index.html": "<h1>v2</h1>"}}}, "--quiet")
    assert res.code == 1 and res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1
    env = json.loads(lines[0])
    assert env["status"] == "error" and env["code"] == "MIGRATION_FAILED"
    assert env["mutation_state"] in ("rolled_back", "none", "not_started")
    assert env["operation_id"].startswith("op_") and env["plan_id"].startswith("plan_")
    assert env["phase"] == "migrate" and env["retryable"] is False
    assert env["trace_id"] is None and isinstance(env["next_actions"], list)
    active = ok(cli("deploy", "release", "active"))["release"]
    assert active["release_id"] == first["release_id"], "the previous release stays active"
    assert fetch(first["urls"]["project"], "/index.html").content == b"<h1>v1</h1>"


def test_warning_gate_and_allow_flags(cli, api):
    provisioned(cli)
    spec = {"secrets": {"require": ["OPENAI_API_KEY"]}, "site": {"replace": {"index.html": "x"}}}
    res = apply(cli, spec)
    assert res.code == 1 and res.stdout == ""
    env = json.loads(res.stderr.splitlines()[-1])
    assert env["code"] == "MISSING_REQUIRED_SECRET" and env["phase"] == "plan" and env["resource"] == "warnings"
    assert env["unacknowledged_warning_codes"] == ["MISSING_REQUIRED_SECRET"]
    assert env["fix"] == {"action": "review_warnings", "path": "warnings"}
    assert "secrets set" in env["hint"] and any("OPENAI_API_KEY" in a for a in env["next_actions"])
    kinds = [e["type"] for e in events(res)[:-1]]
    assert "plan.warnings" in kinds and "commit.phase" not in kinds and "content.upload.progress" not in kinds
    # acknowledged: the gate opens; the gateway still refuses to commit without the secret
    for flag in (["--allow-warning", "MISSING_REQUIRED_SECRET"], ["--allow-warnings"]):
        env = usage_error(apply(cli, spec, *flag, "--quiet"), "MISSING_REQUIRED_SECRET")
        assert env["phase"] == "validate" and env["mutation_state"] == "none", env
        assert "unacknowledged_warning_codes" not in env, "past the gate: the commit refused it"
    # an unrelated acknowledgement does not open the gate
    env = usage_error(apply(cli, spec, "--allow-warning", "FIRST_DEPLOY", "--quiet"), "MISSING_REQUIRED_SECRET")
    assert env["phase"] == "plan" and env["allowed_warning_codes"] == ["FIRST_DEPLOY"]


def test_release_get_active_diff(cli, api):
    provisioned(cli)
    empty = ok(cli("deploy", "release", "active"))["release"]
    assert empty["release_id"] is None
    one = json.loads(apply(cli, {"site": {"replace": {"a.html": "A", "b.html": "B"}}}, "--quiet").stdout)
    two = json.loads(apply(cli, {"site": {"replace": {"a.html": "A2", "c.html": "C"}}}, "--quiet").stdout)
    got = ok(cli("deploy", "release", "get", one["release_id"], "--site-limit", "1"))["release"]
    assert got["release_id"] == one["release_id"] and got["kind"] == "release_inventory"
    assert len(got["site"]["paths"]) == 1
    active = ok(cli("deploy", "release", "active"))["release"]
    assert active["release_id"] == two["release_id"] and active["state_kind"] == "current_live"
    assert sorted(p["path"] for p in active["site"]["paths"]) == ["a.html", "c.html"]
    diff = ok(cli("deploy", "release", "diff", "--from", one["release_id"], "--to", "active"))["diff"]
    assert diff["kind"] == "release_diff"
    assert [a["path"] for a in diff["site"]["added"]] == ["c.html"]
    assert diff["site"]["removed"] == ["b.html"]
    assert [c["path"] for c in diff["site"]["changed"]] == ["a.html"]
    full = ok(cli("deploy", "release", "diff", "--from", "empty", "--to", "active"))["diff"]
    assert full["site"]["totals"]["added"] == 2 if "totals" in full["site"] else len(full["site"]["added"]) == 2


def test_diagnose_and_resolve(cli, api):
    project = provisioned(cli)
    out = json.loads(apply(cli, {"site": {"replace": {"index.html": "<h1>i</h1>", "docs/guide.txt": "g"}}},
                           "--quiet").stdout)
    host = urlsplit(out["urls"]["project"]).netloc
    url = f"http://{host}/docs/guide.txt"

    d = ok(cli("deploy", "diagnose", url + "?q=1#top"))
    assert d["status"] == "ok" and d["would_serve"] is True and d["diagnostic_status"] == 200
    assert d["match"] == "static_exact"
    assert d["summary"] == f"GET {url} would serve an exact static file."
    assert d["request"] == {"project": project["project_id"], "project_scope": "credential_lookup_only",
                            "project_sent_to_gateway": False, "original_url": url + "?q=1#top",
                            "host": host.split(":")[0], "path": "/docs/guide.txt", "method": "GET",
                            "ignored": {"query": "?q=1", "fragment": "#top"}}
    assert [w["code"] for w in d["warnings"]] == ["query_ignored", "fragment_ignored"]
    assert d["next_steps"] == [] and d["resolution"]["asset_path"] == "docs/guide.txt"
    assert list(d) == ["status", "would_serve", "diagnostic_status", "match", "summary", "request",
                       "warnings", "resolution", "next_steps"]

    miss = ok(cli("deploy", "resolve", "--host", host.split(":")[0], "--path", "/nope.txt", "--method", "get"))
    assert miss["would_serve"] is False and miss["match"] == "none"
    assert miss["request"]["method"] == "GET"
    assert [s["code"] for s in miss["next_steps"]] == ["check_static_path", "check_spa_fallback"]
    assert miss["summary"].endswith("did not match a materialized static file or SPA fallback.")

    unknown = ok(cli("deploy", "resolve", "--url", "http://no-such-host.localhost/"))
    assert unknown["would_serve"] is False and unknown["match"] == "host_missing"
    assert unknown["diagnostic_status"] == 404
    assert [s["code"] for s in unknown["next_steps"]] == ["check_domain_binding", "check_dns", "check_credentials"]

    post = ok(cli("deploy", "resolve", "--url", url, "--method", "POST"))
    assert post["request"]["method"] == "POST"
    assert post["would_serve"] == build_summary(post["resolution"], post["request"])["would_serve"]


# --- the resolve summary, exactly (pure) ----------------------------------------------------


REQ = normalize_request(project="prj_1_1", url="https://x.run402.com/a")


@pytest.mark.parametrize("resolution,would_serve,category,next_codes", [
    ({"match": "static_exact", "authorized": True, "result": 200, "authorization_result": "authorized"}, True, "static", []),
    ({"match": "spa_fallback", "authorized": True, "result": 200}, True, "static", []),
    ({"match": "static_exact", "authorized": True, "result": 200, "authorization_result": "missing_cas_object",
      "cas_object": {"sha256": "ab", "exists": False, "expected_size": 3}}, False, "cas",
     ["redeploy_static_asset", "inspect_release_asset"]),
    ({"match": "static_exact", "authorized": True, "result": 200,
      "cas_object": {"sha256": "ab", "exists": True, "expected_size": 3, "actual_size": 2}}, False, "cas",
     ["inspect_cas_object", "redeploy_static_asset"]),
    ({"match": "route_method_miss", "authorized": True, "result": 405, "allow": ["GET", "HEAD"]}, False,
     "route_method", ["check_route_methods", "inspect_route"]),
    ({"match": "route_function", "authorized": True, "result": 200, "route": {"pattern": "/a"}}, True, "route", []),
    ({"match": "host_missing", "authorized": False, "result": 404, "fallback_state": "not_used"}, False, "host",
     ["check_domain_binding", "check_dns", "check_credentials"]),
    ({"match": "active_release_missing", "authorized": False, "result": 404}, False, "release",
     ["check_active_release", "deploy_release"]),
    ({"match": "none", "authorized": False, "result": 404}, False, "miss", ["check_static_path", "check_spa_fallback"]),
    ({"match": "spa_fallback_missing", "authorized": False, "result": 404}, False, "fallback", ["restore_spa_fallback"]),
    ({"match": "path_error", "authorized": False, "result": 400}, False, "path", ["check_public_path"]),
    ({"match": "static_exact", "authorized": True, "result": 200, "authorization_result": "not_public"}, False, "static", []),
    ({"match": "brand_new", "authorized": True, "result": 503}, False, "unknown", ["inspect_resolution"]),
])
def test_resolve_summary(resolution, would_serve, category, next_codes):
    s = build_summary(resolution, REQ)
    assert (s["would_serve"], s["category"], [n["code"] for n in s["next_steps"]]) == (would_serve, category, next_codes)
    assert s["diagnostic_status"] == resolution["result"] and s["match"] == resolution["match"]


def test_resolve_summary_sentences():
    s = build_summary({"match": "route_method_miss", "authorized": True, "result": 405, "allow": ["GET", "HEAD"]}, REQ)
    assert s["summary"] == ("GET https://x.run402.com/a matched a deploy route pattern, but the method is not "
                            "allowed. Allowed methods: GET, HEAD.")
    assert s["next_steps"][0]["message"] == "Retry with one of the allowed methods (GET, HEAD) or update the route method list."
    s = build_summary({"match": "static_exact", "authorized": True, "result": 200,
                       "authorization_result": "missing_cas_object", "cas_object": {"sha256": "abc", "exists": False}}, REQ)
    assert s["summary"] == ("GET https://x.run402.com/a matched static content, but the backing CAS object is "
                            "missing for CAS object abc.")
    host_req = normalize_request(project="p", host="Example.COM", method="head")
    assert host_req == {"project": "p", "project_scope": "credential_lookup_only", "project_sent_to_gateway": False,
                        "host": "Example.COM", "path": "/", "method": "HEAD"}
    s = build_summary({"match": "odd", "authorized": True, "result": 302}, host_req)
    assert s["summary"] == "HEAD https://Example.COM/ resolved with gateway match odd."
    url_req = normalize_request(project="p", url="HTTP://Ex.com:80/a/./b/../c")
    assert (url_req["host"], url_req["path"]) == ("ex.com", "/a/c")
    assert build_summary({"match": "none", "authorized": False, "result": 404}, url_req)["summary"].startswith(
        "GET http://ex.com/a/c did not match")


# --- bad input ------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, isolated_config: Path) -> Path:
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_allowance()
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_1")
    return isolated_config


GOOD = json.dumps({"site": {"replace": {"index.html": "x"}}})


@pytest.mark.parametrize("args,stdin,code", [
    ([], None, "BAD_USAGE"),
    (["--spec", GOOD, "--manifest", "m.json"], None, "BAD_USAGE"),
    (["--spec", GOOD], GOOD, "BAD_USAGE"),
    (["--spec", GOOD, "--spec", GOOD], None, "BAD_USAGE"),
    (["--manifest", "/nonexistent/m.json"], None, "BAD_USAGE"),
    (["--spec", "{nope"], None, "BAD_USAGE"),
    ([], "{nope", "BAD_USAGE"),
    (["--spec", "{}"], None, "MANIFEST_EMPTY"),
    (["--spec", "[]"], None, "MANIFEST_EMPTY"),
    (["--spec", json.dumps({"site": {"replace": {}}})], None, "MANIFEST_EMPTY"),
    (["--spec", json.dumps({"assets": {"put": [{"key": "a", "source": "x"}]}})], None, "MANIFEST_EMPTY"),
    (["--spec", json.dumps({"secrets": {"set": {"A": "v"}}})], None, "UNSAFE_SECRET_MANIFEST"),
    (["--spec", json.dumps({"secrets": [{"A": "v"}]})], None, "UNSAFE_SECRET_MANIFEST"),
    (["--spec", json.dumps({"site": {"replace": {"a": "b"}}, "subdomain": {"set": ["x"]}})], None, "INVALID_SPEC"),
    (["--spec", json.dumps({"site": {"replace": {"../../etc/passwd": "x"}}})], None, "INVALID_SPEC"),
    (["--spec", json.dumps({"site": {"replace": {"a\\b": "x"}}})], None, "INVALID_SPEC"),
    (["--spec", json.dumps({"site": {"replace": {"/abs": "x"}}})], None, "INVALID_SPEC"),
    (["--spec", json.dumps({"site": {"replace": {"a\u0000b": "x"}}})], None, "INVALID_SPEC"),
    (["--spec", json.dumps({"subdomains": {"set": ["a-1", "b-2"]}})], None, "SUBDOMAIN_MULTI_NOT_SUPPORTED"),
    (["--spec", json.dumps({"project_id": "prj_1_2", "site": {"replace": {"a": "b"}}}), "--project", "prj_1_1"], None, "BAD_USAGE"),
    (["--spec", json.dumps({"project_id": "prj_9_9", "site": {"replace": {"a": "b"}}})], None, "PROJECT_NOT_FOUND"),
    (["--spec", GOOD, "--project", "abc"], None, "BAD_PROJECT_ID"),
    (["--spec", json.dumps({"site": {"replace": {"a": {"path": "/nonexistent/x.html"}}}})], None, "FILE_NOT_FOUND"),
    (["--spec", json.dumps({"routes": {"replace": [{"pattern": "/x/*", "methods": ["GET"], "target": {"type": "static", "file": "a.html"}}]}})], None, "INVALID_SPEC"),
    (["--spec", GOOD, "--allow-warning", ""], None, "BAD_FLAG"),
    (["--spec", GOOD, "--allow-warning"], None, "BAD_FLAG"),
    (["--spec", GOOD, "--allow"], None, "UNKNOWN_FLAG"),
    (["--spec", GOOD, "extra"], None, "BAD_USAGE"),
])
def test_apply_bad_input(cli, offline, args, stdin, code):
    before = files(offline)
    usage_error(cli("deploy", "apply", *args, input=stdin), code)
    assert files(offline) == before


def test_apply_reports_the_field(cli, offline):
    env = usage_error(cli("deploy", "apply", "--spec", json.dumps({"site": {"replcae": {"a": "b"}}})), "INVALID_SPEC")
    assert env["details"]["field"] == "site.replcae" and env["hint"] == "Did you mean 'site.replace'?"
    env = usage_error(cli("deploy", "apply", "--spec", "{}"), "MANIFEST_EMPTY")
    assert env["details"] == {"field": "spec", "meaningful_keys": ["database", "site", "functions", "secrets",
                                                                 "subdomains", "routes", "checks", "i18n"]}
    env = usage_error(cli("deploy", "apply", "--spec", "{x"), "BAD_USAGE")
    assert env["details"]["source"] == "spec" and "parse_error" in env["details"]


def test_apply_needs_an_allowance_and_a_project(cli, isolated_config):
    usage_error(cli("deploy", "apply", "--spec", GOOD), "NO_ACTIVE_PROJECT")
    seed_projects(["prj_1_1"], active="prj_1_1")
    usage_error(cli("deploy", "apply", "--spec", GOOD), "NO_ALLOWANCE")


@pytest.mark.parametrize("args,code", [
    (["resume"], "BAD_USAGE"),
    (["resume", "abc"], "OPERATION_NOT_FOUND"),
    (["resume", "op_1", "--nope"], "UNKNOWN_FLAG"),
    (["list", "--limit", "0"], "BAD_FLAG"),
    (["list", "--limit", "ten"], "BAD_FLAG"),
    (["list", "--limit", "-1"], "BAD_FLAG"),
    (["list", "--limit", "1.5"], "BAD_FLAG"),
    (["list", "--project", "abc"], "BAD_PROJECT_ID"),
    (["list", "--project", "prj_9_9"], "PROJECT_NOT_FOUND"),
    (["list", "extra"], "BAD_USAGE"),
    (["events"], "BAD_USAGE"),
    (["events", "rel_1"], "OPERATION_NOT_FOUND"),
    (["release"], None),
    (["release", "get"], "BAD_USAGE"),
    (["release", "get", "rel_1", "--site-limit", "x"], "BAD_FLAG"),
    (["release", "active", "--site-limit", "0"], "BAD_FLAG"),
    (["release", "diff", "--from", "empty"], "BAD_USAGE"),
    (["release", "diff", "--to", "active"], "BAD_USAGE"),
    (["release", "diff", "--from", "active", "--to", "empty"], "BAD_USAGE"),
    (["release", "diff", "--from", "empty", "--to", "active", "--limit", "0"], "BAD_FLAG"),
    (["release", "nope"], "BAD_USAGE"),
    (["diagnose"], "BAD_USAGE"),
    (["diagnose", "https://a.com/", "https://b.com/"], "BAD_USAGE"),
    (["diagnose", "ftp://a.com/x"], "BAD_USAGE"),
    (["diagnose", "not a url"], "BAD_USAGE"),
    (["diagnose", "https://user:pw@a.com/"], "BAD_USAGE"),
    (["diagnose", "https://a.com/", "--method", "G ET"], "BAD_USAGE"),
    (["diagnose", "https://a.com/", "--project", "prj_9_9"], "PROJECT_NOT_FOUND"),
    (["resolve"], "BAD_USAGE"),
    (["resolve", "--url", "https://a.com/", "--host", "a.com"], "BAD_USAGE"),
    (["resolve", "--url", "https://a.com/", "--path", "/x"], "BAD_USAGE"),
    (["resolve", "--host", "a.com/x"], "BAD_USAGE"),
    (["resolve", "--host", "https://a.com"], "BAD_USAGE"),
    (["resolve", "--host", "a b.com"], "BAD_USAGE"),
    (["resolve", "--host", "a.com", "--path", "x"], "BAD_USAGE"),
    (["resolve", "--host", "a.com", "--path", "/x?y=1"], "BAD_USAGE"),
    (["resolve", "--host", "a.com", "--method", "GET POST"], "BAD_USAGE"),
    (["resolve", "--host"], "BAD_FLAG"),
])
def test_other_bad_input(cli, offline, args, code):
    before = files(offline)
    res = cli("deploy", *args)
    if code is None:  # a bare group prints its help
        assert res.code == 0 and res.stdout.startswith(" ".join(["run402 deploy", *args]) + " — ")
        return
    env = usage_error(res, code)
    assert files(offline) == before
    if args[:2] == ["diagnose", "https://user:pw@a.com/"]:
        assert "pw" not in json.dumps(env) and env["details"]["input"]["url"] == "https://a.com/"


def test_list_and_events_need_an_allowance(cli, isolated_config):
    seed_projects(["prj_1_1"], active="prj_1_1")
    usage_error(cli("deploy", "list"), "NO_ALLOWANCE")
    usage_error(cli("deploy", "events", "op_1"), "NO_ALLOWANCE")
    usage_error(cli("deploy", "resume", "op_1"), "NO_ALLOWANCE")


# --- parse only -----------------------------------------------------------------------------


def test_parse_apply(cli, offline, monkeypatch, tmp_path):
    calls = record(monkeypatch, deploy_cmd.apply, "run_apply")
    manifest = release_manifest(tmp_path)
    assert cli("deploy", "apply", "--manifest", str(manifest)).code == 0
    assert cli("deploy", "apply", "--spec", GOOD, "--project", "prj_1_2", "--final-only",
               "--allow-warning", "A", "--allow-warning", "B", "--allow-warnings").code == 0
    assert cli("deploy", "apply", "--quiet", input=json.dumps({"project_id": "prj_1_2", "idempotency_key": "k",
                                                                "routes": {"replace": []}})).code == 0
    first, second, third = calls
    assert first.source == "manifest" and first.release.project == "prj_1_1" and first.anon_key == "anon-prj_1_1"
    spec = first.release.spec
    assert [m["id"] for m in spec["database"]["migrations"]] == ["001_todos", "002_done"]
    assert spec["database"]["expose"] == EXPOSE and set(spec["site"]["replace"]) == {"index.html", "app.js"}
    assert first.quiet is False and first.allow_warnings is False and first.allow_warning == ()
    assert (second.source, second.release.project, second.quiet, second.allow_warning, second.allow_warnings) == (
        "spec", "prj_1_2", True, ("A", "B"), True)
    assert (third.source, third.release.project, third.release.idempotency_key) == ("stdin", "prj_1_2", "k")
    assert third.release.spec == {"project": "prj_1_2", "routes": {"replace": []}}


def test_parse_other_commands(cli, offline, monkeypatch):
    verbs = {"run_resume": deploy_cmd.apply, "run_resolve": deploy_cmd.resolve}  # the rest: inspect
    recorded = {name: record(monkeypatch, verbs.get(name, deploy_cmd.inspect), name) for name in (
        "run_resume", "run_list", "run_events", "run_release_get", "run_release_active", "run_release_diff",
        "run_resolve")}
    for argv in (["resume", "op_1", "--quiet"], ["list", "--limit", "3"], ["events", "op_2", "--project", "prj_1_2"],
                 ["release", "get", "rel_1", "--site-limit", "9"], ["release", "active"],
                 ["release", "diff", "--from", "empty", "--to", "rel_2", "--limit", "5"],
                 ["diagnose", "--project=prj_1_2", "https://a.com/x?y", "--method=post"],
                 ["resolve", "--host=a.com", "--method", "HEAD"]):
        res = cli("deploy", *argv)
        assert res.code == 0, (argv, res.stderr)
    assert recorded["run_resume"] == [deploy_cmd.ResumeOptions("op_1", True)]
    assert recorded["run_list"] == [deploy_cmd.ListOptions(None, 3)]
    assert recorded["run_events"] == [deploy_cmd.EventsOptions("op_2", "prj_1_2")]
    assert recorded["run_release_get"] == [deploy_cmd.ReleaseGetOptions("rel_1", None, 9)]
    assert recorded["run_release_active"] == [deploy_cmd.ReleaseActiveOptions(None, None)]
    assert recorded["run_release_diff"] == [deploy_cmd.ReleaseDiffOptions("empty", "rel_2", None, 5)]
    diag, res = recorded["run_resolve"]
    assert diag.project_id == "prj_1_2" and diag.request["method"] == "POST" and diag.request["path"] == "/x"
    assert diag.request["ignored"] == {"query": "?y"} and diag.send_path is True
    assert res.request == {"project": "prj_1_1", "project_scope": "credential_lookup_only",
                           "project_sent_to_gateway": False, "host": "a.com", "path": "/", "method": "HEAD"}
    assert res.send_path is False


def test_an_open_stdin_pipe_counts_as_a_source_and_is_never_read(offline, tmp_path):
    """A pipe nobody writes to (CI runners, harnesses) must not hang `--spec`: it is a second
    source (BAD_USAGE, as the official CLI), detected with fstat, not by reading."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "RUN402_CONFIG_DIR": str(offline)}
    proc = subprocess.Popen([sys.executable, "-m", "run402_cli", "deploy", "apply", "--spec", GOOD],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        proc.wait(timeout=60)
    finally:
        proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.returncode == 1 and out == b""
    env_ = json.loads(err.decode().strip())
    assert env_["code"] == "BAD_USAGE" and env_["details"] == {"sources": ["--spec", "stdin"]}
    proc = subprocess.run([sys.executable, "-m", "run402_cli", "deploy", "apply", "--spec", "{}"],
                          stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60)
    assert json.loads(proc.stderr)["code"] == "MANIFEST_EMPTY", "/dev/null is not a source"
