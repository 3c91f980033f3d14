"""The unified deploy protocol on the real gateway: plan, commit, idempotency, migrations with
expose, atomic failure, strict validation, operations and release inventories."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from run402_cli.errors import ApiError, PaymentRequired, Unauthorized
from tests.local._deploy_support import (
    anon, commit, deploy, migration, plan, project_host, ref, site, site_spec, upload,
)
from tests.local._support import provision, sql

FILES = {"index.html": b"<h1>v1</h1>", "app.js": b"console.log('v1')", "img/logo.svg": b"<svg/>"}
NOTES_SQL = "create table notes (id serial primary key, body text not null);"
EXPOSE = {"version": "1", "tables": [{"name": "notes", "expose": True, "policy": "public_read_write_UNRESTRICTED",
                                     "i_understand_this_is_unrestricted": True}]}


@pytest.fixture
def project(api):
    return provision("apply")


def _err(exc_info) -> dict:
    return exc_info.value.body if isinstance(exc_info.value.body, dict) else {}


def test_plan_response_is_the_flat_envelope(api, project):
    p = plan(project, site_spec(project, FILES))
    assert p["kind"] == "plan_response" and p["schema_version"] == "agent-deploy-observability.v1"
    assert p["plan_id"].startswith("plan_") and p["operation_id"].startswith("op_")
    assert p["base_release_id"] is None and p["is_noop"] is False and p["payment_required"] is None
    assert len(p["manifest_digest"]) == 64
    assert sorted(m["sha256"] for m in p["missing_content"]) == sorted(hashlib.sha256(b).hexdigest()
                                                                       for b in FILES.values())
    assert all(m["present"] is False for m in p["missing_content"])
    assert [a["path"] for a in p["site"]["added"]] == sorted(FILES)
    assert p["site"]["added"][0]["content_type"] == "text/javascript; charset=utf-8"
    assert p["static_assets"]["added"] == 3
    assert p["static_assets"]["newly_uploaded_cas_bytes"] == sum(len(b) for b in FILES.values())
    assert p["static_assets"]["reused_cas_bytes"] == 0
    assert [w["code"] for w in p["warnings"]] == ["FIRST_DEPLOY"]
    for key in ("functions", "secrets", "subdomains", "routes", "migrations"):
        assert key in p


def test_deploy_then_identical_redeploy_is_a_noop(api, project):
    spec = site_spec(project, FILES)
    first, done = deploy(api.api_base, project, spec, FILES)
    assert done["status"] == "ready" and done["release_id"].startswith("rel_")
    assert done["urls"]["project"].startswith("http://" + project_host(api.api_base, project))
    assert done["urls"]["deployment_id"] == "dpl_" + done["release_id"][4:]
    again = plan(project, spec)
    assert all(m["present"] for m in again["missing_content"])
    assert again["static_assets"]["newly_uploaded_cas_bytes"] == 0
    assert again["static_assets"]["reused_cas_bytes"] == sum(len(b) for b in FILES.values())
    assert again["static_assets"]["unchanged"] == 3
    assert again["is_noop"] is True and again["summary"] == "no changes"
    assert again["base_release_id"] == done["release_id"]
    assert upload(api.api_base, project, again, FILES) is None  # zero PUTs
    noop = commit(project, again["plan_id"])
    assert noop["status"] == "ready" and noop["release_id"] == done["release_id"]
    active = httpx.get(f"{api.api_base}/apply/v1/releases/active", headers=anon(project)).json()
    assert active["release_id"] == done["release_id"] and active["release_generation"] == 1


def test_a_repeated_plan_returns_the_same_plan_and_commit_is_idempotent(api, project):
    spec = site_spec(project, FILES)
    a, b = plan(project, spec), plan(project, spec)
    assert (a["plan_id"], a["operation_id"]) == (b["plan_id"], b["operation_id"])
    keyed = plan(project, spec, idempotency_key="k-1")
    assert keyed["plan_id"] != a["plan_id"]
    assert plan(project, spec, idempotency_key="k-1")["plan_id"] == keyed["plan_id"]
    upload(api.api_base, project, a, FILES)
    first = commit(project, a["plan_id"])
    assert commit(project, a["plan_id"]) == first


def test_migration_expose_and_site_activate_together(api, project):
    m, sql_bytes = migration("001_notes", NOTES_SQL)
    spec = site_spec(project, FILES, database={"migrations": [m], "expose": EXPOSE})
    p, done = deploy(api.api_base, project, spec, {**FILES, "sql": sql_bytes})
    assert p["migrations"]["new"] == [{"id": "001_notes", "checksum_hex": m["checksum"], "transaction": "default"}]
    assert done["status"] == "ready", done
    resp = httpx.post(f"{api.api_base}/rest/v1/notes", headers={**anon(project), "Prefer": "return=representation"},
                      json={"body": "hello"})
    assert resp.status_code == 201, resp.text
    assert site(api.api_base, project_host(api.api_base, project), "/").content == FILES["index.html"]
    inv = httpx.get(f"{api.api_base}/apply/v1/releases/active", headers=anon(project)).json()
    assert [x["migration_id"] for x in inv["migrations_applied"]] == ["001_notes"]
    # Applied once: the same migration again is a registry no-op.
    again = plan(project, spec)
    assert again["migrations"] == {"new": [], "noop": [{"id": "001_notes", "checksum_hex": m["checksum"]}]}
    assert again["is_noop"] is True
    # Same id, other SQL: refused before anything runs.
    changed, _ = migration("001_notes", NOTES_SQL + " -- edited")
    with pytest.raises(ApiError) as info:
        plan(project, {**spec, "database": {"migrations": [changed]}})
    assert info.value.http == 400 and _err(info)["code"] == "MIGRATION_CHECKSUM_MISMATCH"


def test_a_failing_migration_activates_nothing(api, project):
    _, v1 = deploy(api.api_base, project, site_spec(project, FILES), FILES)
    good, good_sql = migration("001_a", "create table a (id int);")
    bad, bad_sql = migration("002_b", "insert into does_not_exist values (1);")
    v2 = {**FILES, "index.html": b"<h1>v2</h1>"}
    expose = {"version": "1", "tables": [{"name": "a", "expose": True, "policy": "public_read_authenticated_write"}]}
    spec = site_spec(project, v2, database={"migrations": [good, bad], "expose": expose},
                     subdomains={"set": [f"fail-{project['project_id'][-6:].replace('_', '-')}"]})
    p, done = deploy(api.api_base, project, spec, {**v2, "a": good_sql, "b": bad_sql})
    assert done["status"] == "failed" and "release_id" not in done
    err = done["error"]
    assert err["code"] == "MIGRATION_FAILED" and err["category"] == "deploy"
    assert (err["retryable"], err["safe_to_retry"], err["mutation_state"], err["phase"]) == \
        (False, True, "rolled_back", "migrate")
    assert err["details"]["operation_id"] == p["operation_id"] and err["details"]["migration_id"] == "002_b"
    assert err["details"]["sqlstate"] == "42P01"
    assert err["next_actions"] == [{"action": "edit_migration"}]
    # Nothing changed: the earlier migration was rolled back too, the site and release stand.
    tables = sql(project, "select count(*) as n from information_schema.tables where table_name = 'a'")["rows"]
    assert tables == [{"n": 0}]
    host = project_host(api.api_base, project)
    assert site(api.api_base, host, "/").content == FILES["index.html"]
    active = httpx.get(f"{api.api_base}/apply/v1/releases/active", headers=anon(project)).json()
    assert active["release_id"] == v1["release_id"] and active["migrations_applied"] == []
    assert active["subdomains"]["names"] == []
    snap = httpx.get(f"{api.api_base}/apply/v1/operations/{p['operation_id']}", headers=anon(project)).json()
    assert snap["status"] == "failed" and snap["error"]["code"] == "MIGRATION_FAILED"
    events = httpx.get(f"{api.api_base}/apply/v1/operations/{p['operation_id']}/events", headers=anon(project))
    phases = [(e.get("phase"), e.get("status")) for e in events.json()["events"] if e["type"] == "commit.phase"]
    assert ("migrate", "failed") in phases and ("activate", "started") not in phases
    # Both migrations are still new: the registry recorded nothing.
    assert [x["id"] for x in plan(project, spec)["migrations"]["new"]] == ["001_a", "002_b"]


def test_a_stale_base_fails_the_commit_safely(api, project):
    deploy(api.api_base, project, site_spec(project, FILES), FILES)
    one = {**FILES, "index.html": b"one"}
    two = {**FILES, "index.html": b"two"}
    p1, p2 = plan(project, site_spec(project, one)), plan(project, site_spec(project, two))
    upload(api.api_base, project, p1, one)
    upload(api.api_base, project, p2, two)
    assert commit(project, p1["plan_id"])["status"] == "ready"
    late = commit(project, p2["plan_id"])
    assert late["status"] == "failed"
    assert late["error"]["code"] == "BASE_RELEASE_CONFLICT"
    assert late["error"]["safe_to_retry"] is True and late["error"]["mutation_state"] == "none"
    assert site(api.api_base, project_host(api.api_base, project), "/").content == b"one"
    # Re-planning on the new base works.
    _, done = deploy(api.api_base, project, site_spec(project, two), two)
    assert done["status"] == "ready"


def test_base_empty_and_pinned_release_ids(api, project):
    _, first = deploy(api.api_base, project, site_spec(project, FILES, base={"release": "empty"}), FILES)
    with pytest.raises(ApiError) as info:
        plan(project, site_spec(project, FILES, base={"release": "empty"}))
    assert info.value.http == 409 and _err(info)["code"] == "BASE_RELEASE_CONFLICT"
    pinned = plan(project, site_spec(project, {"index.html": b"x"}, base={"release_id": first["release_id"]}))
    assert pinned["base_release_id"] == first["release_id"]
    with pytest.raises(ApiError) as info:
        plan(project, site_spec(project, FILES, base={"release_id": "rel_0000000000000000"}))
    assert info.value.http == 404


def test_patch_and_carry_forward(api, project):
    _, first = deploy(api.api_base, project, site_spec(project, FILES), FILES)
    new = b"/* new */"
    spec = {"project": project["project_id"],
            "site": {"patch": {"put": {"extra.css": ref(new)}, "delete": ["app.js"]}}}
    p, done = deploy(api.api_base, project, spec, {"extra.css": new})
    assert [a["path"] for a in p["site"]["added"]] == ["extra.css"] and p["site"]["removed"] == ["app.js"]
    assert done["status"] == "ready"
    host = project_host(api.api_base, project)
    assert site(api.api_base, host, "/extra.css").content == new
    assert site(api.api_base, host, "/app.js").status_code == 404
    assert site(api.api_base, host, "/img/logo.svg").content == FILES["img/logo.svg"]
    # A spec without a site section keeps the site (and the old deployment host still serves v1);
    # the carried-forward files are stored already: nothing counts as newly uploaded.
    p3, third = deploy(api.api_base, project, {"project": project["project_id"], "subdomains": {"set": []}}, {})
    assert p3["static_assets"]["newly_uploaded_cas_bytes"] == 0
    assert p3["static_assets"]["reused_cas_bytes"] == len(new) + len(FILES["index.html"]) + len(FILES["img/logo.svg"])
    assert site(api.api_base, host, "/extra.css").content == new
    dpl = f"dpl-{first['release_id'][4:]}.localhost:{host.rsplit(':', 1)[1]}"
    assert site(api.api_base, dpl, "/app.js").content == FILES["app.js"]


def test_missing_required_secret_warns_then_fails_the_commit(api, project):
    p = plan(project, site_spec(project, FILES, secrets={"require": ["STRIPE_KEY"]}))
    (warning,) = [w for w in p["warnings"] if w["code"] == "MISSING_REQUIRED_SECRET"]
    assert warning["affected"] == ["STRIPE_KEY"] and warning["requires_confirmation"] is True
    upload(api.api_base, project, p, FILES)
    done = commit(project, p["plan_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "MISSING_REQUIRED_SECRET"
    assert done["error"]["mutation_state"] == "none"
    active = httpx.get(f"{api.api_base}/apply/v1/releases/active", headers=anon(project)).json()
    assert active["release_id"] is None


def test_a_commit_with_content_never_uploaded_fails(api, project):
    p = plan(project, site_spec(project, FILES))
    done = commit(project, p["plan_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "MISSING_CONTENT"
    assert len(done["error"]["details"]["missing"]) == 3


def test_dry_run_persists_nothing(api, project):
    dry = plan(project, site_spec(project, FILES), dry_run=True)
    assert dry["plan_id"] is None and dry["operation_id"] is None and dry["expected_events"] == []
    ops = httpx.get(f"{api.api_base}/apply/v1/operations", headers=anon(project)).json()
    assert ops == {"operations": [], "cursor": None}
    with pytest.raises(ApiError) as info:
        plan(project, site_spec(project, FILES), dry_run=True, idempotency_key="k")
    assert _err(info)["code"] == "INVALID_SPEC"


HOSTILE = ["../etc/passwd", "a/../../b", "/abs/path", "a\x00b", "tab\there", "a\\b", "_cas/ab/cd", "_staging/x",
           "x" * 1025, "a//b", "./a", "dir/", ""]


@pytest.mark.parametrize("path", HOSTILE)
def test_hostile_site_paths_are_refused(api, project, path):
    for spec in ({"project": project["project_id"], "site": {"replace": {path: ref(b"x")}}},
                 {"project": project["project_id"], "site": {"patch": {"put": {path: ref(b"x")}}}}):
        with pytest.raises(ApiError) as info:
            plan(project, spec)
        assert info.value.http == 400 and _err(info)["code"] == "INVALID_SPEC"
        assert _err(info)["details"]["path"].startswith("site.")


@pytest.mark.parametrize("spec, where", [
    ({"subdomain": {"set": ["x"]}}, "subdomain"),
    ({"site": {"replcae": {}}}, "site.replcae"),
    ({"site": {"replace": {"a.html": {"sha256": "a" * 64, "size": 1, "extra": 1}}}}, "site.replace['a.html'].extra"),
    ({"site": {"replace": {"a.html": "inline text"}}}, "site.replace['a.html']"),
    ({"site": {"files": {}}}, "site.files"),
    ({"database": {"migrations": [{"id": "1", "sql": "select 1"}]}}, "database.migrations[0]"),
    ({"routes": {"replace": [{"pattern": "/a", "methods": ["GET"], "target": {"type": "static", "file": "a"},
                              "x": 1}]}}, "routes.replace[0].x"),
    ({"routes": {"replace": [{"pattern": "/a/*", "methods": ["GET"], "target": {"type": "static", "file": "a"}}]}},
     "routes.replace[0].pattern"),
    ({"routes": {"replace": [{"pattern": "/a", "methods": ["POST"], "target": {"type": "static", "file": "a"}}]}},
     "routes.replace[0].methods"),
    ({"routes": {"replace": [{"pattern": "/a", "methods": ["GET"],
                              "target": {"type": "static", "file": "missing.html"}}]}}, "routes.replace[0].target.file"),
    ({"secrets": {"require": ["lower"]}}, "secrets.require[0]"),
    ({"base": {"release": "latest"}}, "base.release"),
])
def test_unknown_fields_and_bad_values_are_invalid_spec(api, project, spec, where):
    with pytest.raises(ApiError) as info:
        plan(project, {"project": project["project_id"], **spec})
    assert info.value.http == 400 and _err(info)["code"] == "INVALID_SPEC", _err(info)
    assert _err(info)["details"]["path"] == where


@pytest.mark.parametrize("spec, code, where", [
    ({"assets": {"put": [{"key": "../x", "sha256": "0" * 64, "size_bytes": 1}]}}, "INVALID_SPEC", "assets.put[0].key"),
    ({"assets": {"put": [{"key": "a", "sha256": "0" * 64, "size_bytes": 1}, {"key": "a", "sha256": "1" * 64,
                                                                           "size_bytes": 1}]}},
     "ASSET_DUPLICATE_KEY_IN_PUT", "assets.put[1].key"),
    ({"assets": {"put": [{"key": "a", "sha256": "0" * 64, "size_bytes": 1, "metadata": {"x": {"y": 1}}}]}},
     "INVALID_ASSET_METADATA", "assets.put[0].metadata"),
    ({"assets": {"sync": {"prefix": "img/", "prune": False}}}, "INVALID_SPEC", "assets.sync.prune"),
    ({"routes": {"replace": [{"pattern": "/api/*", "target": {"type": "function", "name": "api"}}]}},
     "INVALID_SPEC", "routes.replace[0].target.name"),
    ({"functions": {"replace": {"Bad": {"source": {"sha256": "0" * 64, "size": 1}}}}}, "INVALID_SPEC",
     "functions.replace.Bad"),
    ({"functions": {"replace": {"api": {"source": {"sha256": "0" * 64, "size": 1}, "deps": ["zod"]}}}},
     "INVALID_SPEC", "functions.replace.api.deps"),
    ({"functions": {"replace": {"api": {"source": {"sha256": "0" * 64, "size": 1}, "schedule": "61 * * * *"}}}},
     "INVALID_SPEC", "functions.replace.api.schedule"),
    ({"functions": {"replace": {"api": {"files": {"a.js": {"sha256": "0" * 64, "size": 1}}}}}},
     "INVALID_SPEC", "functions.replace.api.entrypoint"),
])
def test_slices_refused(api, project, spec, code, where):
    with pytest.raises(ApiError) as info:
        plan(project, {"project": project["project_id"], **spec})
    assert info.value.http == 400 and _err(info)["code"] == code
    assert _err(info)["details"]["path"] == where


def test_only_the_owner_wallet_plans_and_commits(api, project, tmp_path, monkeypatch):
    p = plan(project, site_spec(project, FILES))
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "intruder"))
    intruder = provision("intruder")
    with pytest.raises(Unauthorized) as info:
        plan(intruder, site_spec(project, FILES))
    assert info.value.http == 403
    with pytest.raises(Unauthorized):
        commit(intruder, p["plan_id"])
    # Anon-key reads see only the key's own project.
    resp = httpx.get(f"{api.api_base}/apply/v1/operations/{p['operation_id']}", headers=anon(intruder))
    assert resp.status_code == 404 and resp.json()["code"] == "OPERATION_NOT_FOUND"
    # No SIWX at all is the hosted API's 402 with a sign-in hint, never a payment.
    resp = httpx.post(f"{api.api_base}/apply/v1/plans", json={"spec": site_spec(project, FILES)})
    assert resp.status_code == 402 and resp.json()["code"] == "AUTHENTICATION_REQUIRED"
    with pytest.raises((ApiError, PaymentRequired)):
        project["client"].request("POST", "/apply/v1/plans/plan_nope/commit", json={})


def test_operations_list_get_and_events(api, project):
    p, done = deploy(api.api_base, project, site_spec(project, FILES), FILES)
    snap = httpx.get(f"{api.api_base}/apply/v1/operations/{p['operation_id']}", headers=anon(project)).json()
    for key in ("operation_id", "project_id", "plan_id", "status", "base_release_id", "target_release_id",
                "release_id", "urls", "payment_required", "error", "activate_attempts", "last_activate_attempt_at",
                "created_at", "updated_at"):
        assert key in snap
    assert snap["status"] == "ready" and snap["release_id"] == done["release_id"] and snap["urls"] == done["urls"]
    listing = httpx.get(f"{api.api_base}/apply/v1/operations?limit=1", headers=anon(project)).json()
    assert [o["operation_id"] for o in listing["operations"]] == [p["operation_id"]] and listing["cursor"] is None
    events = httpx.get(f"{api.api_base}/apply/v1/operations/{p['operation_id']}/events", headers=anon(project))
    types = [e["type"] for e in events.json()["events"]]
    assert types[0] == "plan.created" and types[-1] == "ready"
    assert events.json()["events"][-1]["releaseId"] == done["release_id"]
    assert httpx.get(f"{api.api_base}/apply/v1/operations?limit=0", headers=anon(project)).status_code == 400
    assert httpx.get(f"{api.api_base}/apply/v1/operations", headers={}).status_code == 401


def test_release_inventory_and_diff_shapes(api, project):
    _, r1 = deploy(api.api_base, project, site_spec(project, FILES), FILES)
    v2 = {"index.html": b"<h1>v2</h1>", "app.js": FILES["app.js"], "new.txt": b"new"}
    _, r2 = deploy(api.api_base, project, site_spec(project, v2), v2)
    get = httpx.get(f"{api.api_base}/apply/v1/releases/{r1['release_id']}?site_limit=2", headers=anon(project)).json()
    assert get["kind"] == "release_inventory" and get["schema_version"] == "agent-deploy-observability.v1"
    assert get["release_id"] == r1["release_id"] and get["status"] == "superseded" and get["effective"] is True
    assert get["state_kind"] == "effective" and get["superseded_at"] is not None
    assert len(get["site"]["paths"]) == 2 and get["site"]["totals"]["paths"] == 3
    assert get["site"]["paths"][0] == {"path": "app.js", "content_sha256": hashlib.sha256(FILES["app.js"]).hexdigest(),
                                       "content_type": "text/javascript; charset=utf-8"}
    for key in ("parent_id", "manifest_digest", "created_at", "created_by", "activated_at", "operation_id", "plan_id",
                "events_url", "release_generation", "static_manifest_sha256", "static_manifest_metadata",
                "static_public_paths", "functions", "secrets", "subdomains", "routes", "migrations_applied"):
        assert key in get
    assert get["static_manifest_metadata"]["file_count"] == 3
    assert get["static_manifest_metadata"]["spa_fallback"] == "index.html"
    active = httpx.get(f"{api.api_base}/apply/v1/releases/active", headers=anon(project)).json()
    assert active["state_kind"] == "current_live" and active["status"] == "active"
    assert active["release_id"] == r2["release_id"] and active["parent_id"] == r1["release_id"]
    assert active["release_generation"] == 2
    diff = httpx.get(f"{api.api_base}/apply/v1/releases/diff?from={r1['release_id']}&to=active",
                     headers=anon(project)).json()
    assert diff["kind"] == "release_diff" and diff["from_release_id"] == r1["release_id"]
    assert diff["to_release_id"] == r2["release_id"] and diff["is_noop"] is False
    assert [a["path"] for a in diff["site"]["added"]] == ["new.txt"]
    assert diff["site"]["removed"] == ["img/logo.svg"]
    assert [c["path"] for c in diff["site"]["changed"]] == ["index.html"]
    assert diff["static_assets"]["unchanged"] == 1
    assert diff["migrations"] == {"applied_between_releases": []}
    empty = httpx.get(f"{api.api_base}/apply/v1/releases/diff?from=empty&to={r1['release_id']}",
                      headers=anon(project)).json()
    assert len(empty["site"]["added"]) == 3 and empty["from_release_id"] is None
    for query, code, status in (("from=active&to=active", "DIFF_SAME_RELEASE", 400),
                                ("from=active&to=empty", "INVALID_DIFF_TARGET", 400),
                                ("from=bogus&to=active", "INVALID_DIFF_TARGET", 400),
                                (f"from=rel_{'0' * 20}&to=active", "RELEASE_NOT_FOUND", 404)):
        resp = httpx.get(f"{api.api_base}/apply/v1/releases/diff?{query}", headers=anon(project))
        assert (resp.status_code, resp.json()["code"]) == (status, code), query


def test_active_inventory_before_any_release_and_diff_without_one(api, project):
    active = httpx.get(f"{api.api_base}/apply/v1/releases/active", headers=anon(project)).json()
    assert active["release_id"] is None and active["state_kind"] == "current_live"
    assert active["site"] == {"paths": [], "totals": {"paths": 0}}
    resp = httpx.get(f"{api.api_base}/apply/v1/releases/diff?from=empty&to=active", headers=anon(project))
    assert resp.status_code == 404 and resp.json()["code"] == "NO_ACTIVE_RELEASE"


def test_project_delete_removes_its_deploys(api, project, tmp_path, monkeypatch):
    name = "gone-" + project["project_id"][-6:].replace("_", "-")
    deploy(api.api_base, project, site_spec(project, FILES, subdomains={"set": [name]}), FILES)
    project["client"].request("DELETE", f"/projects/v1/{project['project_id']}", bearer=project["service_key"])
    port = api.api_base.rsplit(":", 1)[1]
    assert site(api.api_base, f"{name}.localhost:{port}", "/").status_code == 404
    assert site(api.api_base, project_host(api.api_base, project), "/").status_code == 404
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "next"))
    other = provision("next")
    _, done = deploy(api.api_base, other, site_spec(other, FILES, subdomains={"set": [name]}), FILES)
    assert done["status"] == "ready"  # the name was freed with the project
    assert site(api.api_base, f"{name}.localhost:{port}", "/").status_code == 200


def test_migrations_pass_the_same_sql_fence_as_projects_sql(api, project):
    m, data = migration("001_grant", "create table g (i int); grant select on g to public;")
    _, done = deploy(api.api_base, project, site_spec(project, FILES, database={"migrations": [m]}),
                     {**FILES, "sql": data})
    assert done["status"] == "failed" and done["error"]["code"] == "MIGRATION_FAILED"
    assert done["error"]["details"]["blocked"] == "GRANT" and "database.expose" in done["error"]["hint"]
    assert sql(project, "select to_regclass('g') is null as gone")["rows"] == [{"gone": True}]


def test_resume(api, project):
    p, done = deploy(api.api_base, project, site_spec(project, FILES), FILES)
    snap = project["client"].request("POST", f"/apply/v1/operations/{p['operation_id']}/resume")
    assert snap["status"] == "ready" and snap["release_id"] == done["release_id"]
    failed = plan(project, site_spec(project, {"index.html": b"never uploaded"}))
    assert commit(project, failed["plan_id"])["status"] == "failed"
    with pytest.raises(ApiError) as info:
        project["client"].request("POST", f"/apply/v1/operations/{failed['operation_id']}/resume")
    assert info.value.http == 409 and _err(info)["code"] == "NOT_RESUMABLE"
    with pytest.raises(ApiError) as info:
        project["client"].request("POST", "/apply/v1/operations/op_nope/resume")
    assert info.value.http == 404 and _err(info)["code"] == "OPERATION_NOT_FOUND"
