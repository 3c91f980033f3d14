"""`run402 sites deploy-dir|deploy`: bad input (nothing sent, nothing changed), parsing, and
real deploys against the session gateway: every byte and content type served back, unchanged
re-deploys upload nothing, one changed file uploads one object."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from run402_cli import config
from run402_cli.commands import sites as sites_cmd
from tests.commands._helpers import (
    closed_port, files, ok, ready, record, seed_allowance, seed_projects, usage_error,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "hash-cache-root"
    monkeypatch.setenv("RUN402_CACHE_DIR", str(d))
    return d


def write(root: Path, rel: str, data: bytes | str) -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def twenty_file_site(root: Path) -> dict[str, tuple[bytes, str]]:
    """20 deployable files of many types (path -> (bytes, expected content type)), plus
    things that must never be deployed."""
    site: dict[str, tuple[bytes, str]] = {
        "index.html": (b"<!doctype html><h1>home</h1>", "text/html; charset=utf-8"),
        "about/index.html": (b"<h1>about</h1>", "text/html; charset=utf-8"),
        "blog/post-1.htm": (b"<p>post</p>", "text/html; charset=utf-8"),
        "css/site.css": (b"body{margin:0}", "text/css; charset=utf-8"),
        "js/app.js": (b"console.log('app')", "text/javascript; charset=utf-8"),
        "js/mod.mjs": (b"export const x = 1", "text/javascript; charset=utf-8"),
        "js/legacy.cjs": (b"module.exports = 1", "text/javascript; charset=utf-8"),
        "data/items.json": (b'{"items":[1,2,3]}', "application/json"),
        "img/logo.png": (PNG, "image/png"),
        "img/icon.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
        "img/photo.JPG": (os.urandom(3000), "image/jpeg"),
        "favicon.ico": (os.urandom(300), "image/x-icon"),
        "fonts/f.woff2": (os.urandom(1200), "font/woff2"),
        "robots.txt": (b"User-agent: *\n", "text/plain; charset=utf-8"),
        "docs/readme.md": (b"# readme\n", "text/markdown; charset=utf-8"),
        "feed.xml": (b"<rss/>", "application/xml"),
        "app.wasm": (b"\x00asm\x01\x00\x00\x00", "application/wasm"),
        "bin/blob": (os.urandom(70_000), "application/octet-stream"),
        ".well-known/security.txt": (b"Contact: mailto:sec@example.com\n", "text/plain; charset=utf-8"),
        "empty.txt": (b"", "text/plain; charset=utf-8"),
    }
    for rel, (data, _) in site.items():
        write(root, rel, data)
    write(root, ".env", "SECRET=do-not-ship")
    write(root, "nested/.env.production", "SECRET=2")
    write(root, ".git/config", "[core]")
    write(root, "node_modules/pkg/index.js", "module.exports = 1")
    write(root, "keys/id_rsa", "PRIVATE")
    write(root, "tls/server.pem", "PRIVATE")
    write(root, ".DS_Store", "junk")
    write(root, ".aws/credentials", "[default]\naws_secret_access_key=x\n")
    write(root, "conf/.git-credentials", "https://u:tok@github.com\n")
    return site


def fetch(url: str, path: str, **kw: Any) -> httpx.Response:
    parts = urlsplit(url)
    return httpx.get(f"http://127.0.0.1:{parts.port}{path}", headers={"Host": parts.netloc, **kw.pop("headers", {})}, **kw)


def events(res: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in res.stderr.splitlines() if line.strip()]


def provisioned(cli: Any) -> str:
    ready(cli)
    return ok(cli("projects", "provision"))["project_id"]


def deployed(res: Any) -> dict[str, Any]:
    assert res.code == 0, res.stderr
    return json.loads(res.stdout)


# --- end to end -----------------------------------------------------------------------------


def test_deploy_dir_serves_every_file_and_reuses_unchanged_bytes(cli, api, tmp_path):
    project_id = provisioned(cli)
    root = tmp_path / "site"
    site = twenty_file_site(root)
    total = sum(len(b) for b, _ in site.values())

    res = cli("sites", "deploy-dir", str(root))
    body = deployed(res)
    assert set(body) == {"status", "deployment_id", "url", "bytes_uploaded", "bytes_total"}
    assert body["status"] == "ok" and body["deployment_id"].startswith("dpl_")
    assert body["url"] == f"http://{project_id.replace('_', '-')}.localhost:{urlsplit(api.api_base).port}/"
    assert body["bytes_uploaded"] == total and body["bytes_total"] == total
    evs = events(res)
    # the skipped-secrets announcement (tests/security/test_deploy_secrets.py) may come first
    kinds = [e["type"] for e in evs if e["type"] != "site.secret_files.skipped"]
    assert kinds[:2] == ["plan.started", "plan.diff"] and kinds[-1] == "ready"
    distinct = {hashlib.sha256(b).hexdigest() for b, _ in site.values()}
    uploads = [e for e in evs if e["type"] == "content.upload.progress"]
    assert len(uploads) == len(distinct) and {e["done"] for e in uploads} == set(range(1, len(distinct) + 1))
    assert all(e["total"] == len(distinct) for e in uploads)
    assert config.Settings().keystore().get(project_id)["last_deployment_id"] == body["deployment_id"]

    for rel, (data, ctype) in site.items():
        resp = fetch(body["url"], "/" + rel)
        assert resp.status_code == 200, (rel, resp.status_code, resp.text[:200])
        assert resp.content == data, rel
        assert resp.headers["content-type"] == ctype, rel
        assert resp.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
    for rel in (".env", "nested/.env.production", ".git/config", "node_modules/pkg/index.js",
                "keys/id_rsa", "tls/server.pem", ".DS_Store", ".aws/credentials",
                "conf/.git-credentials"):
        resp = fetch(body["url"], "/" + rel)
        # never the file; extensionless paths get the SPA fallback (index.html, no 404.html)
        assert resp.status_code == 404 or resp.content == site["index.html"][0], (rel, resp.status_code)
    # the immutable per-deployment host serves the same release
    dpl_url = f"http://{body['deployment_id'].replace('_', '-')}.localhost:{urlsplit(api.api_base).port}/"
    assert fetch(dpl_url, "/css/site.css").content == site["css/site.css"][0]

    # unchanged re-deploy: nothing uploaded, every ref reported present
    res = cli("sites", "deploy-dir", str(root))
    again = deployed(res)
    assert again["bytes_uploaded"] == 0 and again["bytes_total"] == total
    evs = events(res)
    assert not [e for e in evs if e["type"] == "content.upload.progress"]
    skipped = [e for e in evs if e["type"] == "content.upload.skipped"]
    assert len(skipped) == len(distinct) and {e["reason"] for e in skipped} == {"present"}

    # one changed file: exactly one object uploaded, and it is served
    write(root, "css/site.css", b"body{margin:1px}")
    res = cli("sites", "deploy-dir", str(root))
    third = deployed(res)
    uploads = [e for e in events(res) if e["type"] == "content.upload.progress"]
    assert [(e["label"], e["done"], e["total"]) for e in uploads] == [("css/site.css", 1, 1)]
    assert third["bytes_uploaded"] == len(b"body{margin:1px}")
    assert third["deployment_id"] != body["deployment_id"]
    assert fetch(third["url"], "/css/site.css").content == b"body{margin:1px}"

    # a removed file leaves the release (full replace; >= 5 files so no guardrail)
    (root / "feed.xml").unlink()
    deployed(cli("sites", "deploy-dir", str(root), "--quiet"))
    assert fetch(third["url"], "/feed.xml").status_code == 404


def test_deploy_dir_quiet_prints_no_events(cli, api, tmp_path):
    provisioned(cli)
    root = tmp_path / "s"
    for i in range(5):
        write(root, f"p{i}.html", f"<p>{i}</p>")
    res = cli("sites", "deploy-dir", str(root), "--quiet")
    body = ok(res)
    assert body["bytes_uploaded"] > 0


def test_small_dir_needs_confirm_prune_and_then_deploys(cli, api, tmp_path, isolated_config):
    project_id = provisioned(cli)
    root = tmp_path / "tiny"
    write(root, "index.html", "<h1>tiny</h1>")
    before = files(isolated_config)
    env = usage_error(cli("sites", "deploy-dir", str(root)), "PRUNE_CONFIRMATION_REQUIRED")
    assert env["details"] == {"local_file_count": 1, "threshold": 5, "dir": str(root)}
    assert "--confirm-prune" in env["message"]
    assert files(isolated_config) == before
    body = ok(cli("sites", "deploy-dir", str(root), "--confirm-prune", "--quiet"))
    assert fetch(body["url"], "/").content == b"<h1>tiny</h1>"
    assert config.Settings().keystore().get(project_id)["last_deployment_id"] == body["deployment_id"]


def test_dry_run_plans_only(cli, api, tmp_path, isolated_config):
    provisioned(cli)
    root = tmp_path / "s"
    write(root, "index.html", "<h1>dry</h1>")
    write(root, "a.css", "a{}")
    before = files(isolated_config)
    body = ok(cli("sites", "deploy-dir", str(root), "--dry-run"))
    assert body["status"] == "ok" and body["dry_run"] is True
    assert body["local_file_count"] == 2 and body["plan_id"] is None and body["operation_id"] is None
    assert body["missing_content_count"] == 2 and isinstance(body["manifest_digest"], str)
    assert isinstance(body["expected_events"], list) and isinstance(body["warnings"], list)
    assert body["diff"]["static_assets"]["added"] == 2
    assert files(isolated_config) == before, "a dry run saves no deployment id"
    # nothing was committed: the project still has no active release
    rel = ok(cli("deploy", "release", "active"))["release"]
    assert rel["release_id"] is None


def test_sites_deploy_legacy_manifest(cli, api, tmp_path):
    project_id = provisioned(cli)
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "style.css").write_bytes(b"h1{color:red}")
    (tmp_path / "dist" / "logo.png").write_bytes(PNG)
    manifest = tmp_path / "site.json"
    manifest.write_text(json.dumps({"files": [
        {"file": "index.html", "data": "<h1>legacy</h1>"},
        {"file": "style.css", "path": "./dist/style.css"},
        {"file": "img/logo.png", "path": "dist/logo.png"},
        {"file": "bin.dat", "data": base64.b64encode(b"\x00\x01\x02").decode(), "encoding": "base64"},
        {"file": ".env", "data": "SECRET=1"},
    ]}))
    res = cli("sites", "deploy", "--manifest", str(manifest), "--quiet")
    body = ok(res)
    assert "status" not in body and set(body) == {"deployment_id", "url", "bytes_uploaded", "bytes_total"}
    assert fetch(body["url"], "/style.css").content == b"h1{color:red}"
    assert fetch(body["url"], "/img/logo.png").content == PNG
    assert fetch(body["url"], "/bin.dat").content == b"\x00\x01\x02"
    assert fetch(body["url"], "/.env").content != b"SECRET=1"
    assert config.Settings().keystore().get(project_id)["last_deployment_id"] == body["deployment_id"]

    stdin_manifest = json.dumps({"files": [{"file": "index.html", "data": "<h1>from stdin</h1>"}]})
    body = ok(cli("sites", "deploy", "--quiet", input=stdin_manifest))
    assert fetch(body["url"], "/index.html").content == b"<h1>from stdin</h1>"
    assert fetch(body["url"], "/style.css").status_code == 404, "a full replace"


# --- bad input: nothing sent, nothing changed -----------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, isolated_config: Path) -> Path:
    """A seeded allowance + keystore, and an API base where nothing listens: any request
    would fail with NETWORK_ERROR instead of the expected code."""
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_allowance()
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_1")
    return isolated_config


def site_dir(tmp_path: Path, n: int = 6) -> Path:
    root = tmp_path / "site"
    for i in range(n):
        write(root, f"p{i}.html", f"<p>{i}</p>")
    return root


def _dir_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    good = site_dir(tmp_path)
    sym = site_dir(tmp_path / "sym")
    (sym / "link.html").symlink_to(sym / "p0.html")
    skipped_only = tmp_path / "skipped"
    write(skipped_only, ".env", "X=1")
    write(skipped_only, "node_modules/a.js", "1")
    backslash = site_dir(tmp_path / "bs")
    write(backslash, "a\\b.html", "x")
    ctrl = site_dir(tmp_path / "ctrl")
    write(ctrl, "new\nline.html", "x")
    return {
        "missing_path": ([], "BAD_USAGE"),
        "extra_positional": ([str(good), "other"], "BAD_USAGE"),
        "unknown_flag": ([str(good), "--nope"], "UNKNOWN_FLAG"),
        "inherit": ([str(good), "--inherit"], "BAD_USAGE"),
        "target": ([str(good), "--target", "prod"], "UNSUPPORTED_OPTION"),
        "bad_project": ([str(good), "--project", "abc"], "BAD_PROJECT_ID"),
        "unknown_project": ([str(good), "--project", "prj_9_9"], "PROJECT_NOT_FOUND"),
        "project_needs_value": ([str(good), "--project"], "BAD_FLAG"),
        "project_then_flag": ([str(good), "--project", "--quiet"], "BAD_FLAG"),
        "missing_dir": ([str(tmp_path / "nope")], "LOCAL_ERROR"),
        "file_not_dir": ([str(good / "p0.html")], "LOCAL_ERROR"),
        "symlink_inside": ([str(sym)], "LOCAL_ERROR"),
        "root_symlink": ([str(tmp_path / "rootlink")], "LOCAL_ERROR"),
        "only_skipped": ([str(skipped_only)], "LOCAL_ERROR"),
        "backslash_name": ([str(backslash)], "INVALID_SPEC"),
        "control_char_name": ([str(ctrl)], "INVALID_SPEC"),
        "small_dir": ([str(site_dir(tmp_path / "small", 3))], "PRUNE_CONFIRMATION_REQUIRED"),
    }


DIR_CASES = ["missing_path", "extra_positional", "unknown_flag", "inherit", "target", "bad_project",
             "unknown_project", "project_needs_value", "project_then_flag", "missing_dir", "file_not_dir",
             "symlink_inside", "root_symlink", "only_skipped", "backslash_name", "control_char_name",
             "small_dir"]


@pytest.mark.parametrize("case", DIR_CASES)
def test_deploy_dir_bad_input(cli, offline, tmp_path, case):
    cases = _dir_cases(tmp_path)
    (tmp_path / "rootlink").symlink_to(tmp_path / "site")
    args, code = cases[case]
    before = files(offline)
    env = usage_error(cli("sites", "deploy-dir", *args), code)
    assert files(offline) == before
    if case == "symlink_inside":
        assert env["details"]["reason"] == "symlink" and "following symlinks is not supported" in env["message"]
    if case == "only_skipped":
        assert env["details"]["reason"] == "no_deployable_files"
    if case == "target":
        assert env["field"] == "target"
    assert env["next_actions"] == [] or isinstance(env["next_actions"], list)
    assert env["trace_id"] is None


def test_deploy_dir_needs_an_allowance(cli, isolated_config, tmp_path, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    env = usage_error(cli("sites", "deploy-dir", str(site_dir(tmp_path))), "NO_ALLOWANCE")
    assert env["hint"] == "Run: run402 allowance create"
    assert files(isolated_config) == before


def test_deploy_dir_needs_an_active_project(cli, isolated_config, tmp_path):
    seed_allowance()
    usage_error(cli("sites", "deploy-dir", str(site_dir(tmp_path))), "NO_ACTIVE_PROJECT")


@pytest.mark.parametrize("args,stdin,code", [
    (["--nope"], None, "UNKNOWN_FLAG"),
    (["extra"], None, "BAD_USAGE"),
    (["--inherit"], None, "BAD_FLAG"),
    (["--target", "x"], None, "UNSUPPORTED_OPTION"),
    (["--project", "abc"], None, "BAD_PROJECT_ID"),
    (["--manifest", "/nonexistent/site.json"], None, "FILE_NOT_FOUND"),
    ([], None, "BAD_USAGE"),
    ([], "{not json", "BAD_USAGE"),
    ([], json.dumps({"files": [{"file": "a.html", "path": "a.html"}]}), "INVALID_SPEC"),
    ([], json.dumps({"files": [{"file": "../escape.html", "data": "x"}]}), "INVALID_SPEC"),
    ([], json.dumps({"files": [{"file": "/abs.html", "data": "x"}]}), "INVALID_SPEC"),
    ([], json.dumps({"files": [{"file": "a.html", "data": "x", "encoding": "hex"}]}), "INVALID_SPEC"),
    ([], json.dumps({"files": []}), "LOCAL_ERROR"),
    ([], json.dumps({"files": [{"file": ".env", "data": "x"}]}), "LOCAL_ERROR"),
    ([], json.dumps([1, 2]), "INVALID_SPEC"),
])
def test_sites_deploy_bad_input(cli, offline, args, stdin, code):
    before = files(offline)
    usage_error(cli("sites", "deploy", *args, input=stdin), code)
    assert files(offline) == before


def test_sites_deploy_needs_an_allowance(cli, isolated_config):
    seed_projects(["prj_1_1"], active="prj_1_1")
    usage_error(cli("sites", "deploy", input=json.dumps({"files": [{"file": "a.html", "data": "x"}]})),
                "NO_ALLOWANCE")


def test_sites_deploy_path_entries_need_a_manifest_file(cli, offline, tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"files": [{"file": "a.html", "path": "missing.html"}]}))
    env = usage_error(cli("sites", "deploy", "--manifest", str(manifest)), "FILE_NOT_FOUND")
    assert env["details"]["path"] == str(tmp_path / "missing.html")


# --- parse only -----------------------------------------------------------------------------


def test_parse_deploy_dir(cli, offline, monkeypatch, tmp_path):
    calls = record(monkeypatch, sites_cmd, "run_deploy_dir")
    root = site_dir(tmp_path)
    assert cli("sites", "deploy-dir", str(root)).code == 0
    assert cli("sites", "deploy-dir", str(root), "--project=prj_1_2", "--quiet", "--dry-run").code == 0
    small = site_dir(tmp_path / "small", 2)
    assert cli("sites", "deploy-dir", str(small), "--confirm-prune").code == 0
    first, second, third = calls
    assert (first.path, first.project_id, first.anon_key, first.quiet, first.dry_run) == (
        str(root), "prj_1_1", "anon-prj_1_1", False, False)
    assert [f.key for f in first.walk.files] == [f"p{i}.html" for i in range(6)]
    assert (second.project_id, second.quiet, second.dry_run) == ("prj_1_2", True, True)
    assert len(third.walk.files) == 2  # --confirm-prune let the small tree through to the deploy


def test_parse_dry_run_skips_the_small_dir_guardrail(cli, offline, monkeypatch, tmp_path):
    calls = record(monkeypatch, sites_cmd, "run_deploy_dir")
    assert cli("sites", "deploy-dir", str(site_dir(tmp_path, 1)), "--dry-run").code == 0
    assert calls[0].dry_run is True


def test_parse_sites_deploy(cli, offline, monkeypatch, tmp_path):
    calls = record(monkeypatch, sites_cmd, "run_deploy")
    (tmp_path / "b.bin").write_bytes(b"\xff\x00")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"files": [{"file": "a.html", "data": "A"}, {"path": "b.bin"}]}))
    assert cli("sites", "deploy", "--manifest", str(manifest), "--project", "prj_1_2").code == 0
    assert cli("sites", "deploy", "--quiet", input='{"files":[{"file":"x.html","data":"X"}]}').code == 0
    assert calls[0].files == {"a.html": b"A", "b.bin": b"\xff\x00"} and calls[0].project_id == "prj_1_2"
    assert calls[1].files == {"x.html": b"X"} and calls[1].quiet is True and calls[1].project_id == "prj_1_1"


def test_deploy_traffic_follows_run402_deploy_api_base(cli, api, tmp_path, monkeypatch):
    """RUN402_DEPLOY_API_BASE takes /apply/v1 and /content/v1 elsewhere; the rest stays on
    RUN402_API_BASE (here a port nobody listens on)."""
    provisioned(cli)
    root = tmp_path / "s"
    for i in range(5):
        write(root, f"p{i}.html", f"<p>{i}</p>".encode())
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("RUN402_DEPLOY_API_BASE", api.api_base)
    body = deployed(cli("sites", "deploy-dir", str(root), "--quiet"))
    assert fetch(body["url"], "/p3.html").content == b"<p>3</p>"
    usage_error(cli("projects", "schema"), "NETWORK_ERROR")
