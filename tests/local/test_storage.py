"""Blob storage on the real gateway, through our CLI: `assets put` -> an AssetRef whose URLs
serve exactly the file's bytes (checked the way a browser checks SRI), immutable URLs that
outlive overwrites, private keys and signed URLs, another project's key refused, ls paging
through 2,500 keys with every sort, the quota (before any upload; rm frees it), a prune with
its confirmation and drift, diagnose with its SSRF guard, `cdn wait-fresh`, and a function's
`assets.put`.

Asset hosts (`pr-<id>.localhost`) are fetched from 127.0.0.1 with a Host header, as in the
site tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.commands._helpers import ready
from tests.local._deploy_support import commit, plan, upload

pytestmark = pytest.mark.usefixtures("api")

# A real 1x1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def run(cli: Any, *args: str) -> tuple[int, Any, str]:
    """(exit code, parsed stdout or None, stderr) — `assets put` writes JSON events on stderr."""
    res = cli(*args)
    try:
        body = json.loads(res.stdout) if res.stdout.strip() else None
    except ValueError:
        body = res.stdout
    return res.code, body, res.stderr


def put_ok(cli: Any, *args: str) -> list[dict[str, Any]]:
    code, body, err = run(cli, "assets", "put", *args)
    assert code == 0, err
    return body


def error_of(stderr: str) -> dict[str, Any]:
    lines = [ln for ln in stderr.splitlines() if ln.startswith("{") and '"status":"error"' in ln.replace(" ", "")]
    assert len(lines) == 1, stderr
    return json.loads(lines[0])


def fetch(api: Any, url: str, **headers: str) -> httpx.Response:
    parts = urlsplit(url)
    return httpx.get(api.api_base + parts.path + (f"?{parts.query}" if parts.query else ""),
                     headers={"Host": parts.netloc, **headers}, follow_redirects=False)


def new_project(cli: Any) -> str:
    code, body, err = run(cli, "projects", "provision")
    assert code == 0, err
    return body["project_id"]


def keystore_entry(config: Path, project_id: str) -> dict[str, Any]:
    return json.loads((config / "projects.json").read_text())["projects"][project_id]


def test_put_serves_exact_bytes_with_sri_and_tags(cli, api, tmp_path):
    ready(cli)
    new_project(cli)
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    [ref] = put_ok(cli, str(logo), "--immutable")
    assert ref["key"] == "logo.png" and ref["contentType"] == "image/png" and ref["cacheKind"] == "immutable"
    served = fetch(api, ref["cdnUrl"])
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["access-control-allow-origin"] == "*"
    # What a browser does with integrity=: hash what it received, base64, compare.
    assert ref["sri"] == "sha256-" + base64.b64encode(hashlib.sha256(served.content).digest()).decode()
    assert served.headers["etag"] == ref["etag"] == f'"sha256-{hashlib.sha256(PNG).hexdigest()}"'
    for tag in ("script", "link"):
        assert ref["cdnUrl"] in ref["tags"][tag]
    # An image: <img> shows its display URL (the mutable form, spec §3.2), with its size.
    assert ref["displayUrl"] == ref["cdnMutableUrl"] and ref["width_px"] == ref["height_px"] == 1
    assert f'src="{ref["displayUrl"]}"' in ref["tags"]["img"] and 'width="1" height="1"' in ref["tags"]["img"]
    assert f'integrity="{ref["sri"]}"' in ref["tags"]["script"] and f'integrity="{ref["sri"]}"' in ref["tags"]["link"]
    # Range, conditional GET
    part = fetch(api, ref["cdnUrl"], Range="bytes=0-3")
    assert part.status_code == 206 and part.content == PNG[:4]
    assert fetch(api, ref["cdnUrl"], **{"If-None-Match": ref["etag"]}).status_code == 304
    # An unchanged re-put uploads nothing.
    code, _, err = run(cli, "assets", "put", str(logo), "--immutable")
    assert code == 0 and "content.upload.progress" not in err
    # New bytes: a new immutable URL; the old one keeps the old bytes; the mutable URL moves on.
    logo.write_bytes(PNG + b"v2")
    [ref2] = put_ok(cli, str(logo), "--immutable")
    assert ref2["cdnUrl"] != ref["cdnUrl"] and ref2["cdnMutableUrl"] == ref["cdnMutableUrl"]
    assert fetch(api, ref["cdnUrl"]).content == PNG
    assert fetch(api, ref2["cdnUrl"]).content == PNG + b"v2"
    mutable = fetch(api, ref2["cdnMutableUrl"])
    assert mutable.content == PNG + b"v2" and mutable.headers["cache-control"] == "public, no-cache"
    # get streams to a file
    code, body, err = run(cli, "assets", "get", "logo.png", "-o", str(tmp_path / "out" / "x.png"))
    assert code == 0 and body == {"status": "ok", "key": "logo.png", "output": str(tmp_path / "out" / "x.png")}
    assert (tmp_path / "out" / "x.png").read_bytes() == PNG + b"v2"
    # rm takes the key and its immutable URLs down
    assert run(cli, "assets", "rm", "logo.png")[0] == 0
    assert fetch(api, ref2["cdnMutableUrl"]).status_code == 404
    assert fetch(api, ref["cdnUrl"]).status_code == 404
    code, _, err = run(cli, "assets", "rm", "logo.png")
    assert code == 1 and error_of(err)["code"] == "ASSET_NOT_FOUND"


def test_private_assets_and_signed_urls(cli, api, tmp_path):
    ready(cli)
    project_id = new_project(cli)
    doc = tmp_path / "q4.pdf"
    doc.write_bytes(b"%PDF-1.4 private report")
    [ref] = put_ok(cli, str(doc), "--key", "reports/", "--private")
    assert ref["key"] == "reports/q4.pdf" and ref["cacheKind"] == "private"
    assert ref["url"] is ref["cdnUrl"] is ref["cdnMutableUrl"] is ref["immutable_url"] is None
    host = f"pr-{project_id[4:].replace('_', '-')}.localhost:{urlsplit(api.api_base).port}"
    assert fetch(api, f"http://{host}/_blob/reports/q4.pdf").status_code == 404  # as if absent
    code, signed, err = run(cli, "assets", "sign", "reports/q4.pdf", "--ttl", "60")
    assert code == 0, err
    assert signed["expires_in"] == 60
    got = fetch(api, signed["signed_url"])
    assert got.status_code == 200 and got.content == doc.read_bytes()
    assert got.headers["cache-control"] == "private, no-store" and "access-control-allow-origin" not in got.headers
    tampered = signed["signed_url"][:-1] + ("0" if signed["signed_url"][-1] != "0" else "1")
    assert fetch(api, tampered).status_code == 404
    # Past its TTL: a URL signed with the gateway's own key, but expired a second ago.
    secret = json.loads((api.local_dir / "gateway.secret.json").read_text())["blob_url_secret"]
    expired = int(time.time()) - 1
    sig = hmac.new(bytes.fromhex(secret), f"blob\0{project_id}\0reports/q4.pdf\0{expired}".encode(),
                   hashlib.sha256).hexdigest()
    assert fetch(api, f"http://{host}/_blob/reports/q4.pdf?expires={expired}&sig={sig}").status_code == 404
    fresh = int(time.time()) + 30
    sig = hmac.new(bytes.fromhex(secret), f"blob\0{project_id}\0reports/q4.pdf\0{fresh}".encode(),
                   hashlib.sha256).hexdigest()
    assert fetch(api, f"http://{host}/_blob/reports/q4.pdf?expires={fresh}&sig={sig}").status_code == 200
    # The service key reads it directly.
    code, _, _ = run(cli, "assets", "get", "reports/q4.pdf", "-o", str(tmp_path / "back.pdf"))
    assert code == 0 and (tmp_path / "back.pdf").read_bytes() == doc.read_bytes()


def test_another_projects_key_is_refused(cli, api, tmp_path, isolated_config):
    ready(cli)
    a = new_project(cli)
    b = new_project(cli)
    (tmp_path / "k.txt").write_text("A's bytes")
    put_ok(cli, str(tmp_path / "k.txt"), "--project", a)
    b_key = keystore_entry(isolated_config, b)["service_key"]
    port = urlsplit(api.api_base).port
    url = f"http://pr-{a[4:].replace('_', '-')}.localhost:{port}/_blob/k.txt"
    as_b_for_a = {"apikey": b_key, "Authorization": f"Bearer {b_key}", "X-Run402-Project": a}
    for method, path in [("GET", "/storage/v1/blob/k.txt"), ("DELETE", "/storage/v1/blob/k.txt"),
                         ("POST", "/storage/v1/blob/k.txt/sign"), ("GET", f"/storage/v1/blobs/diagnose?url={url}")]:
        r = httpx.request(method, api.api_base + path, headers=as_b_for_a)
        assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", (method, path, r.text)
    b_only = {"apikey": b_key, "Authorization": f"Bearer {b_key}"}
    assert httpx.get(api.api_base + "/storage/v1/blob/k.txt", headers=b_only).status_code == 404  # B's namespace
    diag = httpx.get(api.api_base + "/storage/v1/blobs/diagnose", params={"url": url}, headers=b_only)
    assert diag.status_code == 403
    # Through the CLI: a keystore that holds B's key under A's name is refused, not obeyed.
    store = json.loads((isolated_config / "projects.json").read_text())
    store["projects"][a]["service_key"] = b_key
    (isolated_config / "projects.json").write_text(json.dumps(store))
    for args in (("rm", "k.txt"), ("sign", "k.txt"), ("get", "k.txt", "-o", str(tmp_path / "x")), ("diagnose", url)):
        code, _, err = run(cli, "assets", *args, "--project", a)
        assert code == 1 and error_of(err)["code"] == "FORBIDDEN", (args, err)
    assert fetch(api, url).text == "A's bytes"  # nothing was deleted


def _all(cli: Any, sort: str) -> list[dict[str, Any]]:
    seen, cursor = [], None
    while True:
        args = ["assets", "ls", "--prefix", "many/", "--limit", "1000", "--sort", sort]
        code, page, err = run(cli, *args, *(["--cursor", cursor] if cursor else []))
        assert code == 0, err
        seen.extend(page["blobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_ls_pages_through_2500_keys_with_every_sort(cli, api, tmp_path, isolated_config):
    ready(cli)
    project_id = new_project(cli)
    # Put order differs from key order, so createdAt and key sorts disagree.
    names = [f"f{(i * 7919) % 2500:04d}.txt" for i in range(2500)]
    for n in names:
        (tmp_path / n).write_text(n)
    put_ok(cli, *(str(tmp_path / n) for n in names), "--key", "many/")
    by_key = _all(cli, "key:asc")
    assert [b["key"] for b in by_key] == sorted(f"many/{n}" for n in names)
    asc = _all(cli, "createdAt:asc")
    assert len(asc) == 2500 and [b["key"] for b in asc] == [f"many/{n}" for n in names]
    desc = _all(cli, "createdAt:desc")
    assert [b["key"] for b in desc] == [b["key"] for b in reversed(asc)]
    # Cursors are pinned to their sort; bad sorts and filter keys are the gateway's refusals too.
    _, page, _ = run(cli, "assets", "ls", "--sort", "createdAt:asc", "--limit", "1")
    key = keystore_entry(isolated_config, project_id)["service_key"]
    auth = {"apikey": key, "Authorization": f"Bearer {key}"}
    for params, code in [({"cursor": page["next_cursor"]}, "INVALID_CURSOR_FOR_SORT"),
                         ({"sort": "createdAt:desc", "cursor": page["next_cursor"]}, "INVALID_CURSOR_FOR_SORT"),
                         ({"sort": "size:desc"}, "INVALID_SORT"), ({"filter[colour]": "red"}, "INVALID_FILTER_KEY")]:
        r = httpx.get(api.api_base + "/storage/v1/blobs", params=params, headers=auth)
        assert r.status_code == 400 and r.json()["code"] == code, (params, r.text)
    (tmp_path / "pic.png").write_bytes(PNG)
    put_ok(cli, str(tmp_path / "pic.png"), "--key", "many/", "--meta", "tags=hero,banner")
    _, images, _ = run(cli, "assets", "ls", "--prefix", "many/", "--filter", "is_image=true")
    assert [b["key"] for b in images["blobs"]] == ["many/pic.png"]
    _, tagged, _ = run(cli, "assets", "ls", "--filter", "tag=hero")
    assert [b["key"] for b in tagged["blobs"]] == ["many/pic.png"]
    assert tagged["blobs"][0]["metadata"] == {"tags": ["hero", "banner"]}


def _usage(cli: Any, project_id: str) -> dict[str, Any]:
    code, body, err = run(cli, "projects", "usage", project_id)
    assert code == 0, err
    return body


def test_quota_is_checked_before_upload_and_rm_frees_it(cli, api, tmp_path):
    ready(cli)  # prototype: 250 MB
    project_id = new_project(cli)
    big, more = tmp_path / "big.bin", tmp_path / "more.bin"
    with open(big, "wb") as fh:
        fh.truncate(200 * 1024 * 1024)
        fh.write(b"big")
    with open(more, "wb") as fh:
        fh.truncate(100 * 1024 * 1024)
        fh.write(b"more")
    put_ok(cli, str(big))
    usage = _usage(cli, project_id)
    assert usage["asset_bytes"] == 200 * 1024 * 1024 and usage["asset_keys"] == 1
    staging = api.local_dir / "cas" / "staging"
    before = sorted(p.name for p in staging.iterdir()) if staging.exists() else []
    code, _, err = run(cli, "assets", "put", str(more))
    err_body = error_of(err)
    assert code == 1 and err_body["code"] == "STORAGE_QUOTA_EXCEEDED" and err_body["details"]["scope"] == "project"
    assert "content.upload" not in err  # refused at plan time, before a byte moved
    assert (sorted(p.name for p in staging.iterdir()) if staging.exists() else []) == before
    assert run(cli, "assets", "rm", "big.bin")[0] == 0
    assert _usage(cli, project_id)["asset_bytes"] == 0
    put_ok(cli, str(more))
    assert _usage(cli, project_id)["asset_bytes"] == 100 * 1024 * 1024


def _apply(api: Any, project: dict[str, Any], spec: dict[str, Any], blobs: dict[str, bytes]) -> dict[str, Any]:
    p = plan(project, spec)
    upload(api.api_base, project, p, blobs)
    return commit(project, p["plan_id"])


def _entry(key: str, data: bytes) -> dict[str, Any]:
    return {"key": key, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}


def test_sync_prune_needs_confirmation_and_detects_drift(api):
    from tests.local._support import provision

    project = provision("sync")
    files = {k: k.encode() for k in ("a/1", "a/2", "a/3", "b/x")}
    spec = {"project": project["project_id"], "assets": {"put": [_entry(k, v) for k, v in files.items()]}}
    assert _apply(api, project, spec, files)["status"] == "ready"
    sync = {"project": project["project_id"],
            "assets": {"put": [_entry("a/1", b"a/1")], "sync": {"prefix": "a/", "prune": True}}}
    first = plan(project, sync, dry_run=True)
    block = first["asset_sync"]
    assert block["expected_delete_count"] == 2 and block["sample_keys"] == ["a/2", "a/3"]
    assert any(w["code"] == "ASSET_PRUNE_REQUIRES_CONFIRMATION" and w["requires_confirmation"]
               for w in first["warnings"])
    # Without the echo, the commit deletes nothing.
    unconfirmed = _apply(api, project, sync, files)
    assert unconfirmed["status"] == "failed" and unconfirmed["error"]["code"] == "PRUNE_CONFIRMATION_REQUIRED"
    key = project["service_key"]
    auth = {"apikey": key, "Authorization": f"Bearer {key}"}
    listed = lambda: [b["key"] for b in httpx.get(api.api_base + "/storage/v1/blobs", headers=auth).json()["blobs"]]  # noqa: E731
    assert listed() == ["a/1", "a/2", "a/3", "b/x"]
    confirm = {k: block[k] for k in ("base_revision", "delete_set_digest", "expected_delete_count")}
    confirmed = {**sync, "assets": {**sync["assets"], "sync": {"prefix": "a/", "prune": True, "confirm": confirm}}}
    # Drift at plan time: another key lands under the prefix first.
    httpx.post(api.api_base + "/apply/v1/service-asset-put", content=b"late",
               headers={**auth, "x-run402-asset-key": "a/4", "Content-Type": "text/plain"}).raise_for_status()
    from run402_cli.errors import ApiError

    with pytest.raises(ApiError) as info:
        plan(project, confirmed)
    assert info.value.http == 409 and info.value.body["code"] == "ASSET_SYNC_DRIFT"
    # Drift at commit time: confirmed against the current set, then it changes before the commit.
    block = plan(project, sync, dry_run=True)["asset_sync"]
    assert block["expected_delete_count"] == 3
    confirm = {k: block[k] for k in ("base_revision", "delete_set_digest", "expected_delete_count")}
    confirmed["assets"]["sync"]["confirm"] = confirm
    pending = plan(project, confirmed)
    assert httpx.delete(api.api_base + "/storage/v1/blob/a/4", headers=auth).status_code == 200
    drifted = commit(project, pending["plan_id"])
    assert drifted["status"] == "failed" and drifted["error"]["code"] == "ASSET_SYNC_DRIFT"
    assert listed() == ["a/1", "a/2", "a/3", "b/x"]
    # Confirmed against what is there: exactly the reported keys go.
    block = plan(project, sync, dry_run=True)["asset_sync"]
    confirmed["assets"]["sync"]["confirm"] = {k: block[k] for k in ("base_revision", "delete_set_digest",
                                                                     "expected_delete_count")}
    assert _apply(api, project, confirmed, files)["status"] == "ready"
    assert listed() == ["a/1", "b/x"]


def test_diagnose_and_wait_fresh(cli, api, tmp_path):
    ready(cli)
    project_id = new_project(cli)
    (tmp_path / "app.js").write_text("console.log(1)")
    [ref] = put_ok(cli, str(tmp_path / "app.js"))
    code, env, err = run(cli, "assets", "diagnose", ref["cdnMutableUrl"])
    assert code == 0 and env["observedSha256"] == env["expectedSha256"] == ref["sha256"]
    assert env["pathKind"] == "blob-mutable" and "not a global view" in err
    code, fresh, _ = run(cli, "cdn", "wait-fresh", ref["cdnMutableUrl"], "--sha", ref["sha256"])
    assert code == 0 and fresh["fresh"] is True and fresh["observedSha256"] == ref["sha256"]
    started = time.monotonic()
    code, stale, _ = run(cli, "cdn", "wait-fresh", ref["cdnMutableUrl"], "--sha", "ab" * 32, "--timeout", "2")
    assert code == 1 and stale["fresh"] is False and stale["attempts"] >= 2
    assert time.monotonic() - started < 10
    # The SSRF guard: only this project's asset host on this gateway is ever probed.
    port = urlsplit(api.api_base).port
    own = f"pr-{project_id[4:].replace('_', '-')}.localhost"
    for url in [f"http://127.0.0.1:{port}/_blob/app.js", "http://169.254.169.254/latest/meta-data",
                f"http://{own}:{port + 1}/_blob/app.js", f"http://{project_id.replace('_', '-')}.localhost:{port}/",
                f"http://{own}:{port}/etc/passwd", f"file:///{own}/_blob/app.js"]:
        code, _, err = run(cli, "assets", "diagnose", url)
        assert code == 1 and error_of(err)["code"] in ("URL_NOT_ALLOWED", "BAD_USAGE"), (url, err)


FUNCTION = """
import { assets } from "@run402/functions";
export default async (req) => {
  const ref = await assets.put("notes/hello.txt", "hello from a function", { metadata: { tag: "fn" } });
  return Response.json(ref);
};
"""


def test_function_assets_put(cli, api):
    from tests.local._support import provision

    project = provision("fnassets")
    headers = {"Authorization": f"Bearer {project['service_key']}"}
    r = httpx.post(f"{api.api_base}/projects/v1/admin/{project['project_id']}/functions", headers=headers,
                   json={"name": "store", "code": FUNCTION}, timeout=120)
    assert r.status_code == 201, r.text
    ref = httpx.post(f"{api.api_base}/functions/v1/store", headers={"apikey": project["service_key"]},
                     timeout=60).json()
    assert ref["key"] == "notes/hello.txt" and ref["metadata"] == {"tag": "fn"}
    assert fetch(api, ref["cdn_immutable_url"]).content == b"hello from a function"
    listing = httpx.get(api.api_base + "/storage/v1/blobs", headers={"apikey": project["service_key"]}).json()
    assert [(b["key"], b["uploaded_by"]) for b in listing["blobs"]] == [("notes/hello.txt", "service_key")]
