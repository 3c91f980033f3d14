"""Functions on the real gateway: the official quick-start manifest through our CLI, routed
requests on the site's host, the published @run402/functions inside a function (db with RLS,
adminDb, sql, auth, secrets), the caps (timeout, memory, response size) and the pool's recovery,
and logs by request id.

Functions run on real Node with the real esbuild and @run402/functions from npm (fetched once
per user into ~/.cache/run402)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.commands._helpers import ok, ready
from tests.local._deploy_support import project_host, site
from tests.local._support import expose, provision, signup_and_login, sql

pytestmark = pytest.mark.usefixtures("api")

QUICKSTART = {
    "site": {"replace": {
        "index.html": {"data": "<!doctype html><main id='app'></main><script>fetch('/api/hello')</script>"},
        "events.html": {"data": "<!doctype html><h1>Events</h1>"},
        "login.html": {"data": "<!doctype html><form method=post><h1>Sign in</h1></form>"},
    }, "public_paths": {"mode": "explicit", "replace": {
        "/": {"asset": "index.html", "cache_class": "html"},
        "/events": {"asset": "events.html", "cache_class": "html"},
        "/login": {"asset": "login.html", "cache_class": "html"},
    }}},
    "functions": {"replace": {
        "api": {"runtime": "node22", "source": {"data": "export default async function handler(req) { const url = "
                                                        "new URL(req.url); return Response.json({ ok: true, path: "
                                                        "url.pathname }); }"}},
        "login": {"runtime": "node22", "source": {"data": "export default async function handler(req) { "
                                                          "return Response.json({ ok: true }); }"}},
    }},
    "routes": {"replace": [
        {"pattern": "/api/*", "methods": ["GET", "POST", "OPTIONS"], "target": {"type": "function", "name": "api"}},
        {"pattern": "/login", "methods": ["POST"], "target": {"type": "function", "name": "login"}},
    ]},
}


def _deploy_fn(api_base: str, project: dict[str, Any], name: str, code: str, **extra: Any) -> httpx.Response:
    return httpx.post(f"{api_base}/projects/v1/admin/{project['project_id']}/functions",
                      headers={"Authorization": f"Bearer {project['service_key']}"},
                      json={"name": name, "code": code, **extra}, timeout=120)


def _invoke(api_base: str, project: dict[str, Any], name: str, query: str = "", *, method: str = "POST",
            key: str | None = None, **kw: Any) -> httpx.Response:
    headers = {"apikey": key or project["service_key"], **kw.pop("headers", {})}
    return httpx.request(method, f"{api_base}/functions/v1/{name}{query}", headers=headers, timeout=60, **kw)


def test_quickstart_manifest_deploys_and_serves(cli, api, tmp_path: Path):
    ready(cli)
    project_id = ok(cli("projects", "provision"))["project_id"]
    manifest = tmp_path / "run402.json"
    manifest.write_text(json.dumps({"project_id": project_id, **QUICKSTART}))
    result = ok(cli("deploy", "apply", "--manifest", str(manifest), "--quiet"))
    assert result["release_id"].startswith("rel_")
    host = project_host(api.api_base, {"project_id": project_id})

    hello = site(api.api_base, host, "/api/hello?from=browser", headers={"Accept": "application/json"})
    assert hello.status_code == 200 and hello.json() == {"ok": True, "path": "/api/hello"}
    assert hello.headers["cache-control"] == "private, no-store"
    assert hello.headers["x-run402-request-id"].startswith("req_")
    assert site(api.api_base, host, "/login", "POST", data={"u": "x"}).json() == {"ok": True}
    page = site(api.api_base, host, "/login")
    assert page.status_code == 200 and "Sign in" in page.text and page.headers["content-type"].startswith("text/html")
    denied = site(api.api_base, host, "/api/x", "DELETE")
    assert denied.status_code == 405
    assert set(denied.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST", "OPTIONS"}
    assert "Events" in site(api.api_base, host, "/events").text
    # HEAD reaches the function (GET matches HEAD) and gets no body.
    head = site(api.api_base, host, "/api/hello", "HEAD")
    assert head.status_code == 200 and head.content == b""

    listed = ok(cli("functions", "list", project_id))["functions"]
    assert [f["name"] for f in listed] == ["api", "login"]
    assert listed[0]["runtime"] == "node22" and listed[0]["timeout"] == 10 and listed[0]["memory"] == 128


ROUTED = """
export default async (req) => {
  const url = new URL(req.url);
  if (url.pathname.endsWith("/redirect")) return Response.redirect(new URL("/elsewhere", req.url), 302);
  if (url.pathname.endsWith("/boom")) throw new Error("kaboom");
  const headers = new Headers({ "content-type": "application/json" });
  headers.append("set-cookie", "a=1; Path=/");
  headers.append("set-cookie", "b=2; Path=/; HttpOnly");
  const body = req.method === "POST" ? await req.text() : null;
  return new Response(JSON.stringify({ url: req.url, method: req.method, body,
                                       host: req.headers.get("host") }), { status: 201, headers });
};
"""


def test_routed_requests_see_the_public_url_and_keep_cookies(api):
    project = provision("routed")
    assert _deploy_fn(api.api_base, project, "app", ROUTED).status_code == 201
    spec = {"project": project["project_id"], "routes": {"replace": [
        {"pattern": "/app/*", "target": {"type": "function", "name": "app"}}]}}
    from tests.local._deploy_support import deploy

    _, done = deploy(api.api_base, project, spec, {})
    assert done["status"] == "ready", done
    host = project_host(api.api_base, project)
    r = site(api.api_base, host, "/app/x?q=1&r=%20", "POST", content=b"payload")
    assert r.status_code == 201
    assert r.json() == {"url": f"http://{host}/app/x?q=1&r=%20", "method": "POST", "body": "payload", "host": host}
    assert r.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    moved = site(api.api_base, host, "/app/redirect")
    assert moved.status_code == 302 and moved.headers["location"] == f"http://{host}/elsewhere"
    # A failing function fails closed: an error with the request id, never a static file.
    boom = site(api.api_base, host, "/app/boom")
    assert boom.status_code == 500 and boom.json()["code"] == "FUNCTION_ERROR"
    assert boom.json()["request_id"] == boom.headers["x-run402-request-id"]
    # A deploy that carries the function forward keeps serving it (functions deployed through
    # the API live in the release like any other part of it).
    _, again = deploy(api.api_base, project, {"project": project["project_id"], "subdomains": {"set": []}}, {})
    assert again["status"] == "ready"
    assert site(api.api_base, host, "/app/y").status_code == 201


HELPER = """
import { db, adminDb, auth } from "@run402/functions";
export default async (req) => {
  const mode = new URL(req.url).searchParams.get("mode");
  if (mode === "mine") return Response.json(await db(req).from("notes").select("body").order("id"));
  if (mode === "all") return Response.json(await adminDb().from("notes").select("body").order("id"));
  if (mode === "sql") return Response.json(await adminDb().sql("select count(*)::int as n from notes where body like $1", ["a%"]));
  if (mode === "user") { const u = await auth.user(); return Response.json(u && { id: u.id, email: u.email }); }
  if (mode === "secret") return Response.json({ value: process.env.MY_SECRET ?? null });
  if (mode === "insert") return Response.json(await db(req).from("notes").insert({ body: "from-fn" }).select("body"));
  return new Response("unknown mode", { status: 400 });
};
"""


def test_helper_library_against_the_gateway(api, cli):
    project = provision("helper")
    sql(project, "create table notes (id serial primary key, owner_id uuid, body text not null)")
    expose(project, {"version": "1", "tables": [{"name": "notes", "expose": True, "policy": "user_owns_rows",
                                                 "owner_column": "owner_id", "force_owner_on_insert": True}]})
    a = signup_and_login(api.api_base, project, "a@fn.example")
    b = signup_and_login(api.api_base, project, "b@fn.example")
    sql(project, f"insert into notes (owner_id, body) values ('{a['user']['id']}', 'a1'), "
                 f"('{b['user']['id']}', 'b1'), ('{a['user']['id']}', 'a2')")
    deployed = _deploy_fn(api.api_base, project, "helper", HELPER)
    assert deployed.status_code == 201, deployed.text
    body = deployed.json()
    assert body["status"] == "deployed" and body["runtime_version"] == "3.13.0" and body["deps_resolved"] == {}

    as_a = {"Authorization": f"Bearer {a['access_token']}"}
    mine = _invoke(api.api_base, project, "helper", "?mode=mine", key=project["anon_key"], headers=as_a)
    assert mine.status_code == 200, mine.text
    assert mine.json() == [{"body": "a1"}, {"body": "a2"}]
    everything = _invoke(api.api_base, project, "helper", "?mode=all")
    assert everything.json() == [{"body": "a1"}, {"body": "b1"}, {"body": "a2"}]
    counted = _invoke(api.api_base, project, "helper", "?mode=sql").json()
    rows = counted["rows"] if isinstance(counted, dict) else counted
    assert rows == [{"n": 2}]
    who = _invoke(api.api_base, project, "helper", "?mode=user", key=project["anon_key"], headers=as_a).json()
    assert who == {"id": a["user"]["id"], "email": "a@fn.example"}
    assert _invoke(api.api_base, project, "helper", "?mode=user", key=project["anon_key"]).json() is None
    inserted = _invoke(api.api_base, project, "helper", "?mode=insert", key=project["anon_key"], headers=as_a)
    assert inserted.json() == [{"body": "from-fn"}]
    owner = sql(project, "select owner_id::text from notes where body = 'from-fn'")
    assert owner["rows"] == [{"owner_id": a["user"]["id"]}]

    # A secret set with the secrets API is process.env inside the function; a change restarts it.
    assert _invoke(api.api_base, project, "helper", "?mode=secret").json() == {"value": None}
    auth = {"Authorization": f"Bearer {project['service_key']}"}
    base = f"{api.api_base}/projects/v1/admin/{project['project_id']}/secrets"
    assert httpx.post(base, headers=auth, json={"key": "MY_SECRET", "value": "s3cr3t"}).status_code < 300
    assert _invoke(api.api_base, project, "helper", "?mode=secret").json() == {"value": "s3cr3t"}
    assert httpx.delete(f"{base}/MY_SECRET", headers=auth).status_code < 300
    assert _invoke(api.api_base, project, "helper", "?mode=secret").json() == {"value": None}


LIMITS = """
export default async (req) => {
  const mode = new URL(req.url).searchParams.get("mode");
  if (mode === "spin") { for (;;) {} }
  if (mode === "hog") { const keep = []; for (;;) keep.push(new Array(1e6).fill(Math.random())); }
  if (mode === "buffers") { const keep = []; for (;;) { keep.push(Buffer.alloc(16 * 1024 * 1024, 1)); await new Promise(r => setTimeout(r, 1)); } }
  if (mode === "big") return new Response(new Uint8Array(7 * 1024 * 1024));
  return Response.json({ ok: true, pid: process.pid });
};
"""


def test_caps_kill_and_the_pool_recovers(api):
    project = provision("limits")
    assert _deploy_fn(api.api_base, project, "lim", LIMITS, config={"timeout": 2}).status_code == 201
    first = _invoke(api.api_base, project, "lim")
    assert first.status_code == 200 and first.json()["ok"] is True
    warm = _invoke(api.api_base, project, "lim").json()["pid"]
    assert warm == first.json()["pid"]  # the same warm worker

    started = time.monotonic()
    spin = _invoke(api.api_base, project, "lim", "?mode=spin")
    assert spin.status_code == 504 and spin.json()["code"] == "FUNCTION_TIMEOUT"
    assert 1.5 < time.monotonic() - started < 6
    after = _invoke(api.api_base, project, "lim")
    assert after.status_code == 200 and after.json()["pid"] != warm  # a fresh worker

    for mode in ("hog", "buffers"):
        hog = _invoke(api.api_base, project, "lim", f"?mode={mode}")
        assert hog.status_code == 502, hog.text
        assert hog.json()["code"] in ("FUNCTION_MEMORY_EXCEEDED", "FUNCTION_CRASHED")
        assert _invoke(api.api_base, project, "lim").status_code == 200

    big = _invoke(api.api_base, project, "lim", "?mode=big")
    assert big.status_code == 502 and big.json()["code"] == "ROUTED_RESPONSE_TOO_LARGE"
    assert _invoke(api.api_base, project, "lim").status_code == 200


def test_tier_caps_are_enforced_by_the_gateway(api):
    project = provision("caps")
    over = _deploy_fn(api.api_base, project, "slow", LIMITS, config={"timeout": 11})
    assert over.status_code == 403 and over.json()["code"] == "FUNCTION_TIMEOUT_EXCEEDS_TIER"
    fat = _deploy_fn(api.api_base, project, "fat", LIMITS, config={"memory": 256})
    assert fat.status_code == 403 and fat.json()["code"] == "FUNCTION_MEMORY_EXCEEDS_TIER"
    often = _deploy_fn(api.api_base, project, "often", LIMITS, schedule="*/5 * * * *")
    assert often.status_code == 403 and often.json()["code"] == "FUNCTION_SCHEDULE_INTERVAL_TOO_SHORT"
    listed = httpx.get(f"{api.api_base}/projects/v1/admin/{project['project_id']}/functions",
                       headers={"Authorization": f"Bearer {project['service_key']}"}).json()
    assert listed == {"functions": []}  # nothing was deployed by a refused call


def test_build_errors_and_refused_imports(api):
    project = provision("builds")
    broken = _deploy_fn(api.api_base, project, "broken", "export default async (req => {")
    assert broken.status_code == 400 and broken.json()["code"] == "FUNCTION_BUILD_FAILED"
    assert broken.json()["details"]["logs"]
    sneaky = _deploy_fn(api.api_base, project, "sneaky",
                        'import s from "/etc/hostname"; export default async () => new Response(s);')
    assert sneaky.status_code == 400 and "outside the function" in sneaky.json()["message"]
    path_dep = _deploy_fn(api.api_base, project, "dep", "export default async () => new Response('x')",
                          deps=["evil@file:/etc"])
    assert path_dep.status_code == 400
    typed = _deploy_fn(api.api_base, project, "typed", "export default async (req: Request): Promise<Response> => "
                       "Response.json({ n: (1 as number) + 1 });")
    assert typed.status_code == 201, typed.text
    assert _invoke(api.api_base, project, "typed").json() == {"n": 2}


def test_logs_by_request_id(api, cli):
    project = provision("logs")
    code = "export default async (req) => { const t = await req.text(); console.log('got', t); " \
           "console.error('warn', t.length); return new Response(t); }"
    assert _deploy_fn(api.api_base, project, "echo", code).status_code == 201
    one = _invoke(api.api_base, project, "echo", content=b"first")
    two = _invoke(api.api_base, project, "echo", content=b"second")
    rid = one.headers["x-run402-request-id"]
    assert rid != two.headers["x-run402-request-id"]
    auth = {"Authorization": f"Bearer {project['service_key']}"}
    url = f"{api.api_base}/projects/v1/admin/{project['project_id']}/functions/echo/logs"
    lines = httpx.get(url, headers=auth, params={"request_id": rid}).json()["logs"]
    messages = [entry["message"] for entry in lines]
    assert messages[:2] == ["got first", "warn 5"] and messages[2].startswith(f"END RequestId: {rid} 200")
    assert {entry["request_id"] for entry in lines} == {rid}
    everything = httpx.get(url, headers=auth, params={"tail": 1000}).json()["logs"]
    assert [e["message"] for e in everything].count("got second") == 1
    assert all(isinstance(e["timestamp"], int) for e in everything)


def test_lifecycle_through_the_cli(cli, api, tmp_path: Path):
    ready(cli)
    project_id = ok(cli("projects", "provision"))["project_id"]
    src = tmp_path / "hello.ts"
    src.write_text("import { z } from 'zod';\n"
                   "export default async (req: Request): Promise<Response> => {\n"
                   "  const name = z.string().parse(new URL(req.url).searchParams.get('name') ?? 'world');\n"
                   "  console.log('hello', name);\n"
                   "  return Response.json({ hello: name });\n};\n")
    deployed = ok(cli("functions", "deploy", project_id, "hello", "--file", str(src), "--deps", "zod@^3",
                      "--timeout", "5"))
    assert deployed["status"] == "deployed" and deployed["timeout"] == 5
    assert deployed["deps_resolved"]["zod"].startswith("3.")
    assert deployed["url"] == f"{api.api_base}/functions/v1/hello"
    assert ok(cli("functions", "invoke", project_id, "hello", "--method", "GET")) == {"hello": "world"}
    ok(cli("functions", "invoke", project_id, "hello"))
    logs = ok(cli("functions", "logs", project_id, "hello"))["logs"]
    rids = sorted({e["request_id"] for e in logs})
    assert len(rids) == 2
    one = ok(cli("functions", "logs", project_id, "hello", "--request-id", rids[0]))["logs"]
    assert {e["request_id"] for e in one} == {rids[0]}
    assert [e["message"] for e in one][0] == "hello world"

    # update (PATCH) changes limits without a rebuild; delete removes it from the release.
    updated = ok(cli("functions", "update", project_id, "hello", "--memory", "64"))
    assert updated["memory"] == 64 and updated["timeout"] == 5
    assert ok(cli("functions", "invoke", project_id, "hello", "--method", "GET")) == {"hello": "world"}
    assert ok(cli("functions", "delete", project_id, "hello"))["status"] == "ok"
    assert ok(cli("functions", "list", project_id)) == {"functions": []}
    gone = cli("functions", "invoke", project_id, "hello")
    assert gone.code == 1 and gone.error["code"] == "FUNCTION_NOT_FOUND"


def test_update_and_delete_over_http(api):
    project = provision("patch")
    assert _deploy_fn(api.api_base, project, "f", "export default async () => new Response('x')").status_code == 201
    auth = {"Authorization": f"Bearer {project['service_key']}"}
    base = f"{api.api_base}/projects/v1/admin/{project['project_id']}/functions"
    patched = httpx.patch(f"{base}/f", headers=auth, json={"config": {"timeout": 3}, "schedule": "0 * * * *"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["timeout"] == 3 and patched.json()["schedule"] == "0 * * * *"
    assert httpx.patch(f"{base}/f", headers=auth, json={}).status_code == 400
    assert httpx.patch(f"{base}/f", headers=auth, json={"schedule": "every day"}).status_code == 400
    assert httpx.patch(f"{base}/missing", headers=auth, json={"schedule": None}).status_code == 404
    other = provision("patch-other")
    foreign = {"Authorization": f"Bearer {other['service_key']}"}
    assert httpx.patch(f"{base}/f", headers=foreign, json={"schedule": None}).status_code == 403
    assert httpx.delete(f"{base}/f", headers=foreign).status_code == 403
    # A function a route points at cannot be deleted out from under the route.
    from tests.local._deploy_support import deploy

    deploy(api.api_base, project, {"project": project["project_id"], "routes": {"replace": [
        {"pattern": "/f", "target": {"type": "function", "name": "f"}}]}}, {})
    in_use = httpx.delete(f"{base}/f", headers=auth)
    assert in_use.status_code == 409 and in_use.json()["code"] == "FUNCTION_IN_USE"
    deploy(api.api_base, project, {"project": project["project_id"], "routes": {"replace": []}}, {})
    assert httpx.delete(f"{base}/f", headers=auth).json() == {"status": "deleted", "name": "f"}
    assert httpx.delete(f"{base}/f", headers=auth).status_code == 404


def test_functions_patch_through_apply(api):
    from tests.local._deploy_support import deploy, plan, ref

    project = provision("fpatch")
    one = b"export default async () => new Response('one')"
    two = b"export default async () => new Response('two')"
    spec = {"project": project["project_id"], "functions": {"replace": {
        "a": {"source": ref(one)}, "b": {"source": ref(one), "config": {"timeoutSeconds": 3}}}}}
    _, done = deploy(api.api_base, project, spec, {"one": one})
    assert done["status"] == "ready", done
    patch = {"project": project["project_id"], "functions": {"patch": {
        "set": {"b": {"source": ref(two), "config": {"memoryMb": 64}, "schedule": "0 3 * * *"}}, "delete": ["a"]}}}
    p = plan(project, patch, dry_run=True)
    assert p["functions"] == {"added": [], "removed": ["a"], "changed": [
        {"name": "b", "fields_changed": ["code_hash", "memory_mb", "schedule"]}]}
    _, done = deploy(api.api_base, project, patch, {"two": two})
    assert done["status"] == "ready", done
    listed = httpx.get(f"{api.api_base}/projects/v1/admin/{project['project_id']}/functions",
                       headers={"Authorization": f"Bearer {project['service_key']}"}).json()["functions"]
    assert [(f["name"], f["timeout"], f["memory"], f["schedule"]) for f in listed] == [("b", 3, 64, "0 3 * * *")]
    assert _invoke(api.api_base, project, "b").text == "two"
    assert _invoke(api.api_base, project, "a").status_code == 404
    # An identical re-apply is a no-op: nothing to rebuild, no new release.
    again = plan(project, patch, dry_run=True)
    assert again["is_noop"] is True


NOT_YET = """
import { email, ai } from "@run402/functions";
export default async (req) => {
  const out = {};
  for (const [name, call] of [["email", () => email.send({ to: "a@b.example", subject: "s", html: "<p>x</p>" })],
                              ["ai", () => ai.translate("hola", "en")]]) {
    try { await call(); out[name] = "no error"; } catch (e) { out[name] = String(e.message); }
  }
  return Response.json(out);
};
"""


def test_helpers_for_capabilities_not_served_fail_clearly(api):
    project = provision("notyet")
    assert _deploy_fn(api.api_base, project, "notyet", NOT_YET).status_code == 201
    started = time.monotonic()
    out = _invoke(api.api_base, project, "notyet").json()
    assert time.monotonic() - started < 5  # an answer, not a hang
    assert "NOT_AVAILABLE" in out["email"] and "mailboxes" in out["email"]
    assert "hosted models" in out["ai"]
    auth = {"Authorization": f"Bearer {project['service_key']}"}
    for method, path, code in [("GET", "/mailboxes/v1", "NOT_AVAILABLE"),
                               ("POST", "/mailboxes/v1/mbx_1/messages", "NOT_AVAILABLE"),
                               ("POST", "/ai/v1/translate", "NOT_AVAILABLE_LOCALLY"),
                               ("POST", "/generate-image/v1", "NOT_AVAILABLE_LOCALLY")]:
        r = httpx.request(method, api.api_base + path, headers=auth, content=b"x")
        assert r.status_code == 501 and r.json()["code"] == code, (path, r.text)


def test_multi_file_function_through_apply(api):
    from tests.local._deploy_support import deploy, ref

    project = provision("multi")
    files = {"src/index.ts": b"import { greet } from './lib/greet';\nexport default async () => Response.json(greet('x'));",
             "src/lib/greet.ts": b"export const greet = (n: string) => ({ hello: n, n: n.length });"}
    spec = {"project": project["project_id"], "functions": {"replace": {"multi": {
        "files": {p: ref(b) for p, b in files.items()}, "entrypoint": "src/index.ts"}}}}
    _, done = deploy(api.api_base, project, spec, files)
    assert done["status"] == "ready", done
    assert _invoke(api.api_base, project, "multi").json() == {"hello": "x", "n": 1}
    broken = {"project": project["project_id"], "functions": {"replace": {"multi": {
        "files": {"src/index.ts": ref(b"import './missing';\nexport default async () => new Response('x')")},
        "entrypoint": "src/index.ts"}}}}
    _, failed = deploy(api.api_base, project, broken, {"b": b"import './missing';\nexport default async () => new Response('x')"})
    assert failed["status"] == "failed" and failed["error"]["code"] == "FUNCTION_BUILD_FAILED"
    assert failed["error"]["phase"] == "stage" and failed["error"]["details"]["logs"]
    assert _invoke(api.api_base, project, "multi").json() == {"hello": "x", "n": 1}  # the old release serves on
