"""Content upload sessions on the real gateway: only missing bytes travel, every byte is
verified before it reaches the CAS, and a wrong upload leaves nothing under its digest."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import time

import httpx
import pytest

from tests.local._deploy_support import anon
from tests.local._support import provision


def _cas_path(gateway, sha: str):
    return gateway.local_dir / "cas" / "sha256" / sha[:2] / sha[2:]


def _content_plan(api_base: str, project: dict, objects: list[bytes], key: str | None = None) -> httpx.Response:
    return httpx.post(f"{api_base}/content/v1/plans", headers={"apikey": key or project["anon_key"]},
                      json={"content": [{"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for b in objects]})


def _commit(api_base: str, project: dict, plan_id: str) -> httpx.Response:
    return httpx.post(f"{api_base}/content/v1/plans/{plan_id}/commit", headers=anon(project), json={})


@pytest.fixture
def project(api):
    return provision("content")


def test_single_upload_lands_in_the_cas_verified_and_read_only(api, project):
    data = os.urandom(1000)
    sha = hashlib.sha256(data).hexdigest()
    plan = _content_plan(api.api_base, project, [data])
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["plan_id"].startswith("cplan_") and body["entries"] == [{"sha256": sha, "missing": True}]
    (obj,) = body["missing"]
    assert obj["mode"] == "single" and obj["part_count"] == 1 and obj["upload_id"].startswith("u_")
    (part,) = obj["parts"]
    assert (part["part_number"], part["byte_start"], part["byte_end"]) == (1, 0, 999)
    assert part["url"].startswith("http://127.0.0.1:")  # the upload process's or the gateway's: test_upload_process.py
    put = httpx.put(part["url"], content=data)
    assert put.status_code == 200
    assert put.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    # The PUT verified the bytes and stored them, but they are not this project's content until
    # the commit: a new plan still asks for them.
    assert _cas_path(api, sha).read_bytes() == data
    assert _content_plan(api.api_base, project, [data]).json()["entries"] == [{"sha256": sha, "missing": True}]
    done = _commit(api.api_base, project, body["plan_id"])
    assert done.status_code == 200, done.text
    assert done.json()["committed"] == [sha]
    path = _cas_path(api, sha)
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    again = _content_plan(api.api_base, project, [data]).json()
    assert again["missing"] == [] and again["entries"] == [{"sha256": sha, "missing": False}]


def test_wrong_bytes_are_refused_and_never_stored(api, project):
    data = os.urandom(512)
    sha = hashlib.sha256(data).hexdigest()
    body = _content_plan(api.api_base, project, [data]).json()
    url = body["missing"][0]["parts"][0]["url"]
    wrong = os.urandom(512)  # same length, other bytes: only the digest can tell
    assert httpx.put(url, content=wrong).status_code == 200
    done = _commit(api.api_base, project, body["plan_id"])
    assert done.status_code == 400
    err = done.json()
    assert err["code"] == "CONTENT_DIGEST_MISMATCH"
    assert err["details"]["mismatched"][0]["sha256"] == sha
    assert err["details"]["mismatched"][0]["actual_sha256"] == hashlib.sha256(wrong).hexdigest()
    assert not _cas_path(api, sha).exists()
    assert not _cas_path(api, hashlib.sha256(wrong).hexdigest()).exists()
    assert not (api.local_dir / "cas" / "staging" / body["missing"][0]["upload_id"]).exists()
    # The same URL takes the right bytes afterwards.
    assert httpx.put(url, content=data).status_code == 200
    assert _commit(api.api_base, project, body["plan_id"]).status_code == 200
    assert _cas_path(api, sha).read_bytes() == data


def test_a_checksum_header_is_verified_at_put(api, project):
    data = b"checked bytes"
    body = _content_plan(api.api_base, project, [data]).json()
    url = body["missing"][0]["parts"][0]["url"]
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    put = httpx.put(url, content=data, headers={"x-amz-checksum-sha256": bad})
    assert put.status_code == 400 and put.json()["code"] == "CONTENT_DIGEST_MISMATCH"
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert httpx.put(url, content=data, headers={"x-amz-checksum-sha256": good}).status_code == 200


def test_a_part_of_the_wrong_length_is_refused(api, project):
    data = b"0123456789"
    url = _content_plan(api.api_base, project, [data]).json()["missing"][0]["parts"][0]["url"]
    for wrong in (b"012345678", b"0123456789A"):
        put = httpx.put(url, content=wrong)
        assert put.status_code == 400 and put.json()["code"] == "CONTENT_SIZE_MISMATCH"


def test_upload_urls_are_signed_and_expire(api, project):
    data = b"signed"
    obj = _content_plan(api.api_base, project, [data]).json()["missing"][0]
    url = obj["parts"][0]["url"]
    tampered = url.replace("sig=", "sig=0")
    assert httpx.put(tampered, content=data).json()["code"] == "UPLOAD_URL_INVALID"
    other_part = url.replace(f"/{obj['upload_id']}/1?", f"/{obj['upload_id']}/2?")
    assert httpx.put(other_part, content=data).status_code == 403
    longer = url.replace(f"len={len(data)}&", f"len={len(data) + 1}&")  # the length is signed too
    assert longer != url and httpx.put(longer, content=data + b"!").json()["code"] == "UPLOAD_URL_INVALID"
    sha = hashlib.sha256(data).hexdigest()
    other_sha = url.replace(f"sha={sha}", "sha=" + hashlib.sha256(b"other").hexdigest())  # and the digest
    assert other_sha != url and httpx.put(other_sha, content=b"other").json()["code"] == "UPLOAD_URL_INVALID"
    secret = json.loads((api.local_dir / "gateway.secret.json").read_text())["upload_url_secret"]
    past = int(time.time()) - 10
    n = len(data)
    sig = hmac.new(secret.encode(), f"{obj['upload_id']}/1/{past}/{n}/{sha}".encode(), hashlib.sha256).hexdigest()
    expired = f"{api.api_base}/_upload/{obj['upload_id']}/1?expires={past}&len={n}&sha={sha}&sig={sig}"
    assert httpx.put(expired, content=data).json()["code"] == "UPLOAD_URL_EXPIRED"


def test_multipart_objects_are_assembled_and_verified(api, project):
    data = os.urandom(17 * 1024 * 1024)
    sha = hashlib.sha256(data).hexdigest()
    body = _content_plan(api.api_base, project, [data]).json()
    obj = body["missing"][0]
    assert obj["mode"] == "multipart" and obj["part_count"] == 3 and obj["part_size_bytes"] == 8 * 1024 * 1024
    assert [(p["byte_start"], p["byte_end"]) for p in obj["parts"]] == [
        (0, 8 * 2**20 - 1), (8 * 2**20, 16 * 2**20 - 1), (16 * 2**20, 17 * 2**20 - 1)]
    first = obj["parts"][0]
    assert httpx.put(first["url"], content=data[: first["byte_end"] + 1]).status_code == 200
    incomplete = _commit(api.api_base, project, body["plan_id"])
    assert incomplete.status_code == 400 and incomplete.json()["code"] == "CONTENT_UPLOAD_INCOMPLETE"
    assert incomplete.json()["details"]["incomplete"][0]["missing_parts"] == [2, 3]
    for part in obj["parts"][1:]:
        chunk = data[part["byte_start"]: part["byte_end"] + 1]
        digest = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        put = httpx.put(part["url"], content=chunk, headers={"x-amz-checksum-sha256": digest})
        assert put.status_code == 200 and put.headers["etag"] == f'"{hashlib.md5(chunk).hexdigest()}"'
    assert _commit(api.api_base, project, body["plan_id"]).status_code == 200
    assert hashlib.sha256(_cas_path(api, sha).read_bytes()).hexdigest() == sha


def test_an_empty_object_uploads(api, project):
    body = _content_plan(api.api_base, project, [b""]).json()
    part = body["missing"][0]["parts"][0]
    assert (part["byte_start"], part["byte_end"]) == (0, 0)
    assert httpx.put(part["url"], content=b"").status_code == 200
    assert _commit(api.api_base, project, body["plan_id"]).status_code == 200


def test_knowing_a_digest_is_not_owning_the_content(api, project, tmp_path, monkeypatch):
    """Bytes another project uploaded are "missing" for this one until it proves it has them;
    its upload is verified and the stored object is not rewritten."""
    data = os.urandom(300)
    sha = hashlib.sha256(data).hexdigest()
    first = _content_plan(api.api_base, project, [data]).json()
    httpx.put(first["missing"][0]["parts"][0]["url"], content=data)
    assert _commit(api.api_base, project, first["plan_id"]).status_code == 200
    inode = _cas_path(api, sha).stat().st_ino
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "other"))
    other = provision("other")
    plan = _content_plan(api.api_base, other, [data]).json()
    assert plan["entries"] == [{"sha256": sha, "missing": True}]
    url = plan["missing"][0]["parts"][0]["url"]
    httpx.put(url, content=os.urandom(300))
    assert _commit(api.api_base, other, plan["plan_id"]).json()["code"] == "CONTENT_DIGEST_MISMATCH"
    assert _cas_path(api, sha).read_bytes() == data
    assert httpx.put(url, content=data).headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
    # Checked in memory against the stored bytes: the proof is the stored file, nothing new made.
    proof = api.local_dir / "cas" / "staging" / f"{plan['missing'][0]['upload_id']}.ok"
    assert proof.stat().st_ino == inode
    assert _commit(api.api_base, other, plan["plan_id"]).status_code == 200
    assert _cas_path(api, sha).stat().st_ino == inode and not proof.exists()


@pytest.mark.parametrize("body", [
    {}, {"content": "x"}, {"content": [{"sha256": "ABC", "size": 1}]},
    {"content": [{"sha256": "a" * 64, "size": -1}]}, {"content": [{"sha256": "a" * 64, "size": 1, "x": 1}]},
    {"content": [], "extra": True},
])
def test_bad_content_plan_bodies_are_400(api, project, body):
    resp = httpx.post(f"{api.api_base}/content/v1/plans", headers=anon(project), json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "BAD_REQUEST"


def test_content_endpoints_need_a_project_key(api, project):
    assert httpx.post(f"{api.api_base}/content/v1/plans", json={"content": []}).status_code == 401
    resp = httpx.post(f"{api.api_base}/content/v1/plans", headers={"apikey": "not-a-jwt"}, json={"content": []})
    assert resp.status_code == 401
    assert _content_plan(api.api_base, project, [b"x"], key=project["service_key"]).status_code == 200
    other_plan = _content_plan(api.api_base, project, [b"y"]).json()["plan_id"]
    resp = httpx.post(f"{api.api_base}/content/v1/plans/cplan_nope/commit", headers=anon(project), json={})
    assert resp.status_code == 404 and resp.json()["code"] == "CONTENT_PLAN_NOT_FOUND"
    assert _commit(api.api_base, project, other_plan).status_code == 400  # parts not uploaded


def test_installations_from_before_upload_urls_get_a_derived_key(tmp_path):
    """An existing gateway.secret.json is not rewritten; the signing key is derived from it."""
    from run402_cli.local.runtime.layout import LocalLayout

    layout = LocalLayout(tmp_path)
    old = {"postgrest_jwt_secret": "j" * 48, "authenticator_password": "p", "treasury_key": "0x" + "1" * 64}
    layout.secrets_file.write_text(json.dumps(old))
    first, second = layout.secrets()["upload_url_secret"], layout.secrets()["upload_url_secret"]
    assert first == second and len(first) == 64
    assert json.loads(layout.secrets_file.read_text()) == old
    fresh = LocalLayout(tmp_path / "new").secrets()
    assert len(fresh["upload_url_secret"]) == 64 and fresh["upload_url_secret"] != first


def test_a_plan_takes_a_whole_large_site_at_once(api, project):
    """The official client asks for all of a deploy's missing objects in one content plan:
    10,001 objects is one request, and gets a signed upload URL each."""
    objects = [i.to_bytes(4, "big") for i in range(10_001)]
    resp = _content_plan(api.api_base, project, objects)
    assert resp.status_code == 200, resp.text[:300]
    missing = resp.json()["missing"]
    assert len(missing) == 10_001 and len({m["parts"][0]["url"] for m in missing}) == 10_001
    too_many = httpx.post(f"{api.api_base}/content/v1/plans", headers=anon(project),
                          json={"content": [{"sha256": f"{i:064x}", "size": 1} for i in range(100_001)]})
    assert too_many.status_code in (400, 413), too_many.text[:200]


@pytest.mark.parametrize("size", [3_000, 200_000])  # written on the event loop / in a thread
def test_a_leftover_temporary_name_is_never_written_through(tmp_path, monkeypatch, size):
    """Temporary names are the pid and a count, so a gateway that died between storing an object
    and renaming its temporary name leaves that name as a second link to the stored object; a
    later gateway with the same pid reaches the same count. Its PUT must make a new file there,
    not write into the stored object."""
    import itertools

    from run402_cli.local.deploy import upload
    from run402_cli.local.deploy.cas import Cas

    cas = Cas(tmp_path / "cas")
    stored = b"an object another project stored" * 10
    stored_sha = hashlib.sha256(stored).hexdigest()
    stored_path = cas.path(stored_sha)
    stored_path.parent.mkdir(parents=True)
    stored_path.write_bytes(stored)
    cas.staging_root.mkdir(mode=0o700)
    monkeypatch.setattr(upload, "_TMP_SEQ", itertools.count(7))
    leftover = cas.staging_root / f"upl_next.{os.getpid()}-7.tmp"
    os.link(stored_path, leftover)

    data = os.urandom(size)
    sha = hashlib.sha256(data).hexdigest()
    if size <= upload._INLINE_MAX:
        assert upload._store_small(cas, "upl_next", sha, data, None) == hashlib.md5(data).hexdigest()
    else:
        received = upload._Received(leftover)  # the name _tmp_name gives it
        assert upload._tmp_name("upl_next") == leftover.name
        assert upload._finish_object(received, data, cas, "upl_next", sha, None)
    assert stored_path.read_bytes() == stored
    assert cas.path(sha).read_bytes() == data
    assert (cas.staging_root / "upl_next.ok").read_bytes() == data
    assert not leftover.exists()
