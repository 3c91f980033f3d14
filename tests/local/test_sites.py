"""Deployed sites served by Host on the real gateway (contract §6, spec §1.17), resolve
diagnostics, and subdomains (contract §8)."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest

from tests.local._deploy_support import (
    anon, deploy, host_of, project_host, ref, site, site_spec,
)
from tests.local._support import provision

TWENTY = {
    "index.html": (b"<!doctype html><h1>home</h1>", "text/html; charset=utf-8"),
    "about/index.html": (b"<h1>about</h1>", "text/html; charset=utf-8"),
    "blog/post.htm": (b"<p>post</p>", "text/html; charset=utf-8"),
    "css/site.css": (b"body{color:red}", "text/css; charset=utf-8"),
    "js/app.3f2a9c1d.js": (b"console.log('hashed')", "text/javascript; charset=utf-8"),
    "js/mod.mjs": (b"export default 1", "text/javascript; charset=utf-8"),
    "data/items.json": (b'{"items":[1,2]}', "application/json"),
    "img/logo.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
    "img/photo.png": (b"\x89PNG\r\n\x1a\n" + os.urandom(200), "image/png"),
    "img/pic.JPG": (os.urandom(300), "image/jpeg"),
    "img/anim.gif": (b"GIF89a" + os.urandom(50), "image/gif"),
    "img/hero.webp": (os.urandom(120), "image/webp"),
    "favicon.ico": (os.urandom(64), "image/x-icon"),
    "fonts/a.woff2": (os.urandom(90), "font/woff2"),
    "docs/readme.txt": (b"plain text\n", "text/plain; charset=utf-8"),
    "docs/notes.md": (b"# notes", "text/markdown; charset=utf-8"),
    "feed.xml": (b"<rss/>", "application/xml"),
    "files/manual.pdf": (b"%PDF-1.4" + os.urandom(100), "application/pdf"),
    "bin/blob.dat": (os.urandom(1000), "application/octet-stream"),
    ".well-known/security.txt": (b"Contact: mailto:x@example.com", "text/plain; charset=utf-8"),
}


@pytest.fixture
def project(api):
    return provision("sites")


def _blobs(files: dict) -> dict[str, bytes]:
    return {p: (v[0] if isinstance(v, tuple) else v) for p, v in files.items()}


def _port(api) -> str:
    return api.api_base.rsplit(":", 1)[1]


def test_a_twenty_file_site_is_served_byte_for_byte(api, project):
    blobs = _blobs(TWENTY)
    assert len(blobs) == 20
    _, done = deploy(api.api_base, project, site_spec(project, blobs), blobs)
    assert done["status"] == "ready"
    hosts = [host_of(done["urls"]["project"]), host_of(done["urls"]["release"])]
    assert hosts[0] == project_host(api.api_base, project)
    for host in hosts:
        for path, (data, ctype) in TWENTY.items():
            resp = site(api.api_base, host, "/" + path)
            assert resp.status_code == 200, (host, path)
            assert resp.content == data, path
            assert resp.headers["content-type"] == ctype, path
            assert resp.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
            assert resp.headers["content-length"] == str(len(data))
    assert site(api.api_base, hosts[0], "/").content == TWENTY["index.html"][0]
    assert site(api.api_base, hosts[0], "/about/").content == TWENTY["about/index.html"][0]


def test_declared_content_types_win_and_cache_headers_follow_the_file(api, project):
    files = {"index.html": b"<p>x</p>", "app.3f2a9c1d.js": b"1", "app.js": b"2", "raw": b"3"}
    spec = site_spec(project, files)
    spec["site"]["replace"]["raw"] = ref(b"3", "text/csv")
    deploy(api.api_base, project, spec, files)
    host = project_host(api.api_base, project)
    assert site(api.api_base, host, "/raw").headers["content-type"] == "text/csv"
    assert site(api.api_base, host, "/index.html").headers["cache-control"] == "public, max-age=0, must-revalidate"
    assert site(api.api_base, host, "/app.js").headers["cache-control"] == "public, max-age=0, must-revalidate"
    assert site(api.api_base, host, "/app.3f2a9c1d.js").headers["cache-control"] == \
        "public, max-age=31536000, immutable"


def test_head_etag_and_304(api, project):
    files = {"index.html": b"<h1>etag</h1>", "a.css": b"a{}"}
    deploy(api.api_base, project, site_spec(project, files), files)
    host = project_host(api.api_base, project)
    etag = f'"{hashlib.sha256(files["a.css"]).hexdigest()}"'
    head = site(api.api_base, host, "/a.css", "HEAD")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    assert head.headers["content-length"] == "3" and head.headers["content-type"] == "text/css; charset=utf-8"
    for inm in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        resp = site(api.api_base, host, "/a.css", headers={"If-None-Match": inm})
        assert resp.status_code == 304 and resp.content == b"" and resp.headers["etag"] == etag
    assert site(api.api_base, host, "/a.css", headers={"If-None-Match": '"other"'}).status_code == 200


def test_directory_index_redirect_spa_fallback_and_404(api, project):
    files = {"index.html": b"<h1>spa</h1>", "docs/index.html": b"docs", "app.js": b"1"}
    deploy(api.api_base, project, site_spec(project, files), files)
    host = project_host(api.api_base, project)
    redirect = site(api.api_base, host, "/docs?x=1")
    assert redirect.status_code == 301 and redirect.headers["location"] == "/docs/?x=1"
    assert site(api.api_base, host, "/docs/").content == b"docs"
    for deep in ("/dashboard", "/users/42/settings", "/docs/deep/route"):
        resp = site(api.api_base, host, deep)
        assert resp.status_code == 200 and resp.content == b"<h1>spa</h1>", deep
    missing_asset = site(api.api_base, host, "/missing.js")
    assert missing_asset.status_code == 404 and b"spa" not in missing_asset.content
    assert site(api.api_base, host, "/?q=1").content == b"<h1>spa</h1>"  # query ignored


def test_a_404_page_turns_the_spa_fallback_off(api, project):
    files = {"index.html": b"home", "404.html": b"<h1>custom 404</h1>"}
    deploy(api.api_base, project, site_spec(project, files), files)
    resp = site(api.api_base, project_host(api.api_base, project), "/dashboard")
    assert resp.status_code == 404 and resp.content == b"<h1>custom 404</h1>"
    assert resp.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_unsafe_methods_get_405_never_static_content(api, project, method):
    files = {"index.html": b"home", "form.html": b"form"}
    deploy(api.api_base, project, site_spec(project, files), files)
    host = project_host(api.api_base, project)
    for path in ("/form.html", "/", "/spa/route", "/missing.png"):
        resp = site(api.api_base, host, path, method, content=b"x=1")
        assert resp.status_code == 405, path
        assert resp.headers["allow"] == "GET, HEAD" and b"form" not in resp.content and b"home" not in resp.content


def test_explicit_public_paths_and_static_routes(api, project):
    files = {"index.html": b"home", "events.html": b"events", "docs/v2.html": b"docs v2", "secret.html": b"hidden"}
    spec = site_spec(project, files)
    spec["site"]["public_paths"] = {"mode": "explicit", "replace": {
        "/": {"asset": "index.html"}, "/events": {"asset": "events.html", "cache_class": "immutable_versioned"}}}
    spec["routes"] = {"replace": [{"pattern": "/docs", "methods": ["GET", "HEAD"],
                                   "target": {"type": "static", "file": "docs/v2.html"}}]}
    deploy(api.api_base, project, spec, files)
    host = project_host(api.api_base, project)
    assert site(api.api_base, host, "/").content == b"home"
    events = site(api.api_base, host, "/events")
    assert events.content == b"events" and events.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert site(api.api_base, host, "/events.html").status_code == 404  # not declared, so not public
    assert site(api.api_base, host, "/secret.html").status_code == 404
    for path in ("/docs", "/docs/"):  # trailing-slash equivalence on exact routes
        assert site(api.api_base, host, path).content == b"docs v2"
    miss = site(api.api_base, host, "/docs", "POST")
    assert miss.status_code == 405 and miss.headers["allow"] == "GET, HEAD"
    # Explicit mode is sticky: a later site change without public_paths keeps the table.
    more = {"extra.html": b"extra"}
    later = {"project": project["project_id"], "site": {"patch": {"put": {"extra.html": ref(b"extra")}}}}
    deploy(api.api_base, project, later, more)
    assert site(api.api_base, host, "/extra.html").status_code == 404
    assert site(api.api_base, host, "/events").content == b"events"


def _resolve(api, project, **params) -> dict:
    resp = httpx.get(f"{api.api_base}/apply/v1/resolve", headers=anon(project), params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def _would_serve(r: dict) -> bool:
    """The client's deterministic summary (spec §1.16)."""
    cas = r.get("cas_object") or {}
    cas_failure = r.get("authorization_result") in ("missing_cas_object", "unfinalized_or_deleting_cas_object",
                                                    "size_mismatch", "unauthorized_cas_object") \
        or cas.get("exists") is False
    return (r["authorized"] is True and r.get("authorization_result") in (None, "authorized", "not_applicable")
            and 200 <= r["result"] < 400 and r["match"] not in ("host_missing", "route_method_miss")
            and not cas_failure)


def test_resolve_explains_what_is_served(api, project):
    files = {"index.html": b"home", "app.3f2a9c1d.js": b"js", "docs/v2.html": b"docs"}
    spec = site_spec(project, files, routes={"replace": [
        {"pattern": "/docs", "methods": ["GET"], "target": {"type": "static", "file": "docs/v2.html"}}]})
    _, done = deploy(api.api_base, project, spec, files)
    host = project_host(api.api_base, project)
    hit = _resolve(api, project, host=host, path="/app.3f2a9c1d.js")
    assert (hit["match"], hit["result"], hit["authorized"], hit["fallback_state"]) == ("static_exact", 200, True,
                                                                                       "not_used")
    assert hit["release_id"] == done["release_id"] and hit["project_id"] == project["project_id"]
    assert hit["asset_path"] == "app.3f2a9c1d.js" and hit["reachability_authority"] == "implicit_file_path"
    assert hit["cache_class"] == "immutable_versioned"
    assert hit["cache_policy"] == "public, max-age=31536000, immutable"
    assert hit["static_sha256"] == hashlib.sha256(b"js").hexdigest()
    assert hit["cas_object"] == {"sha256": hit["static_sha256"], "exists": True, "expected_size": 2, "actual_size": 2}
    assert hit["content_type"] == "text/javascript; charset=utf-8" and _would_serve(hit)
    index = _resolve(api, project, host=host)
    assert index["match"] == "static_index" and index["asset_path"] == "index.html"
    spa = _resolve(api, project, host=host, path="/some/page")
    assert (spa["match"], spa["fallback_state"], spa["asset_path"]) == ("spa_fallback", "used", "index.html")
    alias = _resolve(api, project, host=host, path="/docs", method="get")
    assert alias["match"] == "route_static_alias" and alias["target_file"] == "docs/v2.html"
    assert alias["route"] == {"pattern": "/docs", "methods": ["GET", "HEAD"],
                              "target": {"type": "static", "file": "docs/v2.html"}}
    method_miss = _resolve(api, project, host=host, path="/docs", method="POST")
    assert (method_miss["match"], method_miss["result"], method_miss["allow"]) == ("route_method_miss", 405,
                                                                                   ["GET", "HEAD"])
    assert not _would_serve(method_miss)
    none = _resolve(api, project, host=host, path="/nope.png")
    assert (none["match"], none["result"]) == ("none", 404) and not _would_serve(none)
    missing = _resolve(api, project, host=f"nobody-here.localhost:{_port(api)}")
    assert missing == {"hostname": "nobody-here.localhost", "result": 404, "match": "host_missing",
                       "authorized": False, "fallback_state": "not_used"}
    assert not _would_serve(missing)
    by_dpl = _resolve(api, project, host=host_of(done["urls"]["release"]), path="/")
    assert by_dpl["release_id"] == done["release_id"] and by_dpl["match"] == "static_index"
    for bad in ({"host": "http://x.localhost"}, {"host": "a b"}, {"host": host, "path": "nope"},
                {"host": host, "method": "GE T"}, {}):
        assert httpx.get(f"{api.api_base}/apply/v1/resolve", headers=anon(project), params=bad).status_code == 400


def test_resolve_does_not_reveal_other_projects(api, project, tmp_path, monkeypatch):
    files = {"index.html": b"mine"}
    deploy(api.api_base, project, site_spec(project, files), files)
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "other"))
    other = provision("other")
    seen = _resolve(api, other, host=project_host(api.api_base, project))
    assert seen["match"] == "host_missing"


def test_subdomain_claim_is_served_and_follows_the_next_release(api, project):
    name = "blog-" + project["project_id"].rsplit("_", 1)[1]
    v1 = {"index.html": b"release one"}
    _, r1 = deploy(api.api_base, project, site_spec(project, v1), v1)
    bearer = {"Authorization": f"Bearer {project['service_key']}"}
    claim = httpx.post(f"{api.api_base}/subdomains/v1", headers=bearer,
                       json={"name": name, "deployment_id": r1["urls"]["deployment_id"]})
    assert claim.status_code == 201, claim.text
    body = claim.json()
    assert body["name"] == name and body["deployment_id"] == r1["urls"]["deployment_id"]
    assert body["url"] == f"http://{name}.localhost:{_port(api)}/" and body["project_id"] == project["project_id"]
    assert body["deployment_url"] == r1["urls"]["release"]
    host = f"{name}.localhost:{_port(api)}"
    assert site(api.api_base, host, "/").content == b"release one"
    v2 = {"index.html": b"release two"}
    _, r2 = deploy(api.api_base, project, site_spec(project, v2), v2)
    assert r2["urls"][f"subdomain:{name}"] == f"http://{name}.localhost:{_port(api)}/"
    assert site(api.api_base, host, "/").content == b"release two"
    listing = httpx.get(f"{api.api_base}/subdomains/v1", headers=bearer).json()["subdomains"]
    assert [(s["name"], s["deployment_id"]) for s in listing] == [(name, r2["urls"]["deployment_id"])]
    resolved = _resolve(api, project, host=host)
    assert resolved["host_binding_id"] == name and resolved["release_id"] == r2["release_id"]
    gone = httpx.delete(f"{api.api_base}/subdomains/v1/{name}", headers=bearer)
    assert gone.status_code == 200 and gone.json()["status"] == "deleted" and gone.json()["name"] == name
    assert site(api.api_base, host, "/").status_code == 404
    assert httpx.delete(f"{api.api_base}/subdomains/v1/{name}", headers=bearer).status_code == 404


def test_subdomains_in_the_spec_and_reserved_or_taken_names(api, project, tmp_path, monkeypatch):
    name = "shop-" + project["project_id"].rsplit("_", 1)[1]
    files = {"index.html": b"shop"}
    p, done = deploy(api.api_base, project, site_spec(project, files, subdomains={"set": [name]}), files)
    assert p["subdomains"] == {"added": [name], "removed": []}
    assert site(api.api_base, f"{name}.localhost:{_port(api)}", "/").content == b"shop"
    bearer = {"Authorization": f"Bearer {project['service_key']}"}
    for reserved in ("www", "api", "admin", "localhost", "prj-123", "dpl-abc"):
        resp = httpx.post(f"{api.api_base}/subdomains/v1", headers=bearer, json={"name": reserved})
        assert resp.status_code == 409 and resp.json()["error"] == "reserved", reserved
    for bad in ("ab", "-abc", "abc-", "UPPER", "a_b", "x" * 64):
        resp = httpx.post(f"{api.api_base}/subdomains/v1", headers=bearer, json={"name": bad})
        assert resp.status_code == 400 and resp.json()["code"] == "INVALID_SUBDOMAIN", bad
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "other"))
    other = provision("other")
    deploy(api.api_base, other, site_spec(other, files), files)
    taken = httpx.post(f"{api.api_base}/subdomains/v1", headers={"Authorization": f"Bearer {other['service_key']}"},
                       json={"name": name})
    assert taken.status_code == 409 and taken.json()["code"] == "SUBDOMAIN_TAKEN"
    from run402_cli.errors import ApiError

    with pytest.raises(ApiError) as info:
        deploy(api.api_base, other, site_spec(other, files, subdomains={"add": [name]}), files)
    assert info.value.http == 409
    with pytest.raises(ApiError) as info:
        deploy(api.api_base, other, site_spec(other, files, subdomains={"set": ["www"]}), files)
    assert info.value.http == 409 and info.value.body["code"] == "SUBDOMAIN_RESERVED"
    wrong = httpx.post(f"{api.api_base}/subdomains/v1", headers={"Authorization": f"Bearer {other['service_key']}"},
                       json={"name": "mine-" + other["project_id"].rsplit("_", 1)[1],
                             "deployment_id": done["urls"]["deployment_id"]})
    assert wrong.status_code == 404 and wrong.json()["code"] == "DEPLOYMENT_NOT_FOUND"
    assert httpx.get(f"{api.api_base}/subdomains/v1", headers=anon(other)).status_code == 403


def test_unknown_hosts_and_the_api_host(api, project):
    assert site(api.api_base, f"nothing-here.localhost:{_port(api)}", "/").status_code == 404
    assert site(api.api_base, f"a.b.localhost:{_port(api)}", "/").status_code == 404
    assert site(api.api_base, f"dpl-{'0' * 20}.localhost:{_port(api)}", "/").status_code == 404
    no_release = site(api.api_base, project_host(api.api_base, project), "/")
    assert no_release.status_code == 404
    assert site(api.api_base, f"localhost:{_port(api)}", "/health").json()["status"] == "healthy"
    assert httpx.get(f"{api.api_base}/health").json()["status"] == "healthy"
    # A site host never reaches the API.
    assert site(api.api_base, project_host(api.api_base, project), "/health").status_code == 404
    assert site(api.api_base, project_host(api.api_base, project), "/../etc/passwd").status_code in (400, 404)
