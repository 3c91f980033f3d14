"""Deploy helpers for gateway tests: the wire flow a client performs, step by step —
plan (SIWX) -> content plan (anon key) -> PUT parts (signed URL, no auth) -> content commit ->
commit (SIWX). Plan/commit go through `api.client.Client`, which signs SIWX per request; the
rest is raw httpx, as a browser-less third-party client would do it.

`*.localhost` does not resolve on every machine (it does not here), so sites are fetched from
127.0.0.1 with an explicit Host header: the gateway routes on Host, exactly as for a browser.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import urlsplit

import httpx


def ref(data: bytes, content_type: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    if content_type:
        out["contentType"] = content_type
    return out


def site_spec(project: dict[str, Any], files: dict[str, bytes], **extra: Any) -> dict[str, Any]:
    return {"project": project["project_id"], "site": {"replace": {p: ref(b) for p, b in files.items()}}, **extra}


def migration(mid: str, sql: str) -> tuple[dict[str, Any], bytes]:
    data = sql.encode()
    return {"id": mid, "checksum": hashlib.sha256(data).hexdigest(),
            "sql_ref": ref(data, "application/sql")}, data


def plan(project: dict[str, Any], spec: dict[str, Any], *, dry_run: bool = False, **body: Any) -> dict[str, Any]:
    path = "/apply/v1/plans" + ("?dry_run=true" if dry_run else "")
    return project["client"].request("POST", path, json={"spec": spec, **body})


def upload(api_base: str, project: dict[str, Any], plan_resp: dict[str, Any], blobs: dict[str, bytes],
           *, stop_after_parts: int | None = None) -> dict[str, Any] | None:
    """Upload every present:false ref (bytes looked up by sha256 in `blobs`). Returns the content
    plan (None when nothing was missing). `stop_after_parts` PUTs only that many parts and
    returns without committing (to simulate a crash mid-upload)."""
    wanted = [m for m in plan_resp["missing_content"] if not m["present"]]
    if not wanted:
        return None
    headers = {"apikey": project["anon_key"]}
    cplan = httpx.post(f"{api_base}/content/v1/plans", headers=headers,
                       json={"content": [{"sha256": m["sha256"], "size": m["size"]} for m in wanted]})
    assert cplan.status_code == 200, cplan.text
    cplan_body = cplan.json()
    by_sha = {hashlib.sha256(b).hexdigest(): b for b in blobs.values()}
    sent = 0
    for obj in cplan_body["missing"]:
        data = by_sha[obj["sha256"]]
        for part in obj["parts"]:
            if stop_after_parts is not None and sent >= stop_after_parts:
                return cplan_body
            chunk = data[part["byte_start"]: part["byte_end"] + 1]
            digest = hashlib.sha256(chunk).digest()
            resp = httpx.put(part["url"], content=chunk,
                             headers={"x-amz-checksum-sha256": base64.b64encode(digest).decode()})
            assert resp.status_code == 200, resp.text
            assert resp.headers["etag"] == '"' + hashlib.md5(chunk).hexdigest() + '"'
            sent += 1
    if stop_after_parts is not None:
        return cplan_body
    done = httpx.post(f"{api_base}/content/v1/plans/{cplan_body['plan_id']}/commit", headers=headers, json={})
    assert done.status_code == 200, done.text
    return cplan_body


def commit(project: dict[str, Any], plan_id: str) -> dict[str, Any]:
    return project["client"].request("POST", f"/apply/v1/plans/{plan_id}/commit", json={})


def deploy(api_base: str, project: dict[str, Any], spec: dict[str, Any], blobs: dict[str, bytes]
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The whole flow; returns (plan response, commit response)."""
    p = plan(project, spec)
    upload(api_base, project, p, blobs)
    return p, commit(project, p["plan_id"])


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def site(api_base: str, host: str, path: str = "/", method: str = "GET", **kw: Any) -> httpx.Response:
    """A request to a deployed site: 127.0.0.1 with Host `host` (e.g. prj-1-2.localhost:4020)."""
    headers = {"Host": host, **kw.pop("headers", {})}
    return httpx.request(method, api_base + path, headers=headers, follow_redirects=False, **kw)


def project_host(api_base: str, project: dict[str, Any]) -> str:
    return f"{project['project_id'].replace('_', '-')}.localhost:{urlsplit(api_base).port}"


def anon(project: dict[str, Any]) -> dict[str, str]:
    return {"apikey": project["anon_key"]}
