"""`run402 assets put|get|ls|rm|sign|diagnose`, `run402 blob ...` and `run402 cdn wait-fresh`:
bad input (exit 1, one JSON line, nothing changed, no request: the API base is a closed port),
parsing, and the wire shape of every call against the recording STAND-IN of the hosted API
(tests/interop/recording_server.py; its answers: differential_world.asset_routes)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from run402_cli.commands import assets as assets_cmd
from run402_cli.commands import cdn as cdn_cmd
from tests.commands._helpers import closed_port, files, record, seed_allowance, seed_projects, usage_error
from tests.interop.differential_world import ASSET_HOST, DIAGNOSE, asset_routes
from tests.interop.recording_server import RecordingServer, Reply

P = "prj_1_1"
SVC = {"apikey": f"svc-{P}", "authorization": f"Bearer svc-{P}"}
URL = f"{ASSET_HOST}/_blob/logo.png"
SHA = "a" * 64


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, isolated_config: Path, tmp_path: Path) -> Path:
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    monkeypatch.chdir(work)
    (work / "a.txt").write_text("hello\n")
    (work / "b.txt").write_text("world\n")
    (work / "sub" / "a.txt").write_text("other\n")
    (work / "logo.png").write_bytes(b"\x89PNG not really")
    seed_allowance()
    seed_projects([P, "prj_1_2"], active=P)
    return isolated_config


def sent_state(offline: Path) -> dict[str, bytes]:
    work = Path.cwd()
    return {**files(offline), **{f"work/{k}": v for k, v in files(work).items()}}


# --- bad input ------------------------------------------------------------------------------

BAD = [
    (["assets", "put"], "BAD_USAGE"),
    (["assets", "put", "a.txt", "b.txt", "--key", "x.txt"], "BAD_USAGE"),
    (["assets", "put", "a.txt", "--content-type", "png"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--content-type", "a/b/c"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--content-type", "text/plain\r\nX-Evil: 1"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--content-type"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--meta", "novalue"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--meta", "=v"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--meta", " =v"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--meta", "k=" + "x" * 5000], "INVALID_ASSET_METADATA"),
    (["assets", "put", "a.txt", "--exif-policy", "drop"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--concurrency", "0"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--concurrency", "abc"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--key", "/abs.txt"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--key", "_cas/x"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--key", "_staging/"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--key", "a/../b"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--key", "a\x01b"], "BAD_FLAG"),
    (["assets", "put", "a.txt", "--key", "k" * 1025], "BAD_FLAG"),
    (["assets", "put", "a.txt", "a.txt"], "ASSET_DUPLICATE_KEY_IN_PUT"),
    (["assets", "put", "a.txt", "sub/a.txt", "--key", "p/"], "ASSET_DUPLICATE_KEY_IN_PUT"),
    (["assets", "put", "missing.txt"], "FILE_NOT_FOUND"),
    (["assets", "put", "a.txt", "missing.txt"], "FILE_NOT_FOUND"),
    (["assets", "put", "sub"], "NOT_A_FILE"),
    (["assets", "put", "a.txt", "--project", "abc"], "BAD_PROJECT_ID"),
    (["assets", "put", "a.txt", "--project", "prj_9_9"], "PROJECT_NOT_FOUND"),
    (["assets", "put", "a.txt", "--bogus"], "UNKNOWN_FLAG"),
    (["assets", "put", "a.txt", "--key"], "BAD_FLAG"),
    (["assets", "get"], "BAD_USAGE"),
    (["assets", "get", "a.txt"], "BAD_USAGE"),
    (["assets", "get", "/abs", "-o", "out.bin"], "BAD_USAGE"),
    (["assets", "get", "a/../../etc/passwd", "-o", "out.bin"], "BAD_USAGE"),
    (["assets", "get", "a.txt", "-o", "sub"], "NOT_A_FILE"),
    (["assets", "get", "a.txt", "-o", "out.bin", "--project", "prj_9_9"], "PROJECT_NOT_FOUND"),
    (["assets", "get", "a.txt", "extra", "-o", "out.bin"], "BAD_USAGE"),
    (["assets", "ls", "--limit", "0"], "BAD_FLAG"),
    (["assets", "ls", "--limit", "1001"], "BAD_FLAG"),
    (["assets", "ls", "--limit", "abc"], "BAD_FLAG"),
    (["assets", "ls", "--limit", "-1"], "BAD_FLAG"),
    (["assets", "ls", "--limit", "1.5"], "BAD_FLAG"),
    (["assets", "ls", "--sort", "size:asc"], "BAD_FLAG"),
    (["assets", "ls", "--filter", "color=red"], "BAD_FLAG"),
    (["assets", "ls", "--filter", "is_image=yes"], "BAD_FLAG"),
    (["assets", "ls", "--filter", "min_width=-1"], "BAD_FLAG"),
    (["assets", "ls", "--filter", "max_height=1.5"], "BAD_FLAG"),
    (["assets", "ls", "--filter", "tag="], "BAD_FLAG"),
    (["assets", "ls", "--filter", "novalue"], "BAD_FLAG"),
    (["assets", "ls", "extra"], "BAD_USAGE"),
    (["assets", "rm"], "BAD_USAGE"),
    (["assets", "rm", "_staging/x"], "BAD_USAGE"),
    (["assets", "rm", "dir/"], "BAD_USAGE"),
    (["assets", "rm", "a", "b"], "BAD_USAGE"),
    (["assets", "sign"], "BAD_USAGE"),
    (["assets", "sign", "a.txt", "--ttl", "59"], "BAD_FLAG"),
    (["assets", "sign", "a.txt", "--ttl", "604801"], "BAD_FLAG"),
    (["assets", "sign", "a.txt", "--ttl", "1h"], "BAD_FLAG"),
    (["assets", "diagnose"], "BAD_USAGE"),
    (["assets", "diagnose", "not a url"], "BAD_USAGE"),
    (["assets", "diagnose", "ftp://x/_blob/a"], "BAD_USAGE"),
    (["cdn", "wait-fresh"], "BAD_USAGE"),
    (["cdn", "wait-fresh", URL], "BAD_USAGE"),
    (["cdn", "wait-fresh", URL, "--sha", "abc"], "BAD_FLAG"),
    (["cdn", "wait-fresh", URL, "--sha", "g" * 64], "BAD_FLAG"),
    (["cdn", "wait-fresh", URL, "--sha", SHA, "--timeout", "0"], "BAD_FLAG"),
    (["cdn", "wait-fresh", URL, "--sha", SHA, "--timeout", "soon"], "BAD_FLAG"),
    (["cdn", "wait-fresh", "nope", "--sha", SHA], "BAD_USAGE"),
    (["blob", "put"], "BAD_USAGE"),
    (["blob", "ls", "--limit", "0"], "BAD_FLAG"),
]


@pytest.mark.parametrize("args,code", BAD, ids=[" ".join(a)[:60] + f" [{c}]" for a, c in BAD])
def test_bad_input(cli, offline, args, code):
    before = sent_state(offline)
    usage_error(cli(*args), code)  # not NETWORK_ERROR: refused before any request
    assert sent_state(offline) == before


def test_project_comes_from_the_environment(cli, offline, monkeypatch):
    monkeypatch.setenv("RUN402_PROJECT", "prj_9_9")
    usage_error(cli("assets", "ls"), "PROJECT_NOT_FOUND")
    usage_error(cli("assets", "ls", "--project", "abc"), "BAD_PROJECT_ID")  # the flag wins


def test_put_needs_an_allowance(cli, isolated_config, tmp_path, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.txt").write_text("x")
    seed_projects([P], active=P)
    usage_error(cli("assets", "put", "a.txt"), "NO_ALLOWANCE")


def test_refusals_say_what_is_wrong(cli, offline):
    env = usage_error(cli("assets", "put", "a.txt", "--key", "_cas/x"), "BAD_FLAG")
    assert env["details"]["flag"] == "--key" and "_cas/" in env["message"]
    env = usage_error(cli("assets", "put", "a.txt", "sub/a.txt", "--key", "p/"), "ASSET_DUPLICATE_KEY_IN_PUT")
    assert env["details"] == {"key": "p/a.txt", "files": ["a.txt", "sub/a.txt"]}
    env = usage_error(cli("assets", "ls", "--limit", "0"), "BAD_FLAG")
    assert env["details"] == {"flag": "--limit", "value": 0, "min": 1, "max": 1000}
    env = usage_error(cli("assets", "put", "a.txt", "--meta", "k=" + "x" * 5000), "INVALID_ASSET_METADATA")
    assert "4096" in env["message"]


# --- parse only -----------------------------------------------------------------------------


def test_parse_put(cli, offline, monkeypatch):
    from run402_cli.deploy.assets import AssetFile

    puts = record(monkeypatch, assets_cmd, "run_put")
    assert cli("assets", "put", "a.txt").code == 0
    assert cli("assets", "put", "a.txt", "logo.png", "--key", "docs/", "--private", "--immutable",
               "--meta", "tags=a,b", "--meta", "n=3", "--meta", "ok=true", "--meta", "who=agent",
               "--exif-policy", "strip", "--json", "--concurrency", "2", "--no-resume").code == 0
    assert cli("assets", "put", "logo.png", "--key", "img/brand", "--content-type", "image/svg+xml",
               "--project", "prj_1_2").code == 0
    first, second, third = puts
    assert first == assets_cmd.PutOptions(P, f"anon-{P}", (AssetFile("a.txt", "a.txt", "text/plain"),))
    assert second.files == (AssetFile("a.txt", "docs/a.txt", "text/plain"),
                            AssetFile("logo.png", "docs/logo.png", "image/png"))
    assert second.visibility == "private" and second.immutable and second.json_events and second.concurrency == 2
    assert second.metadata == {"tags": ["a", "b"], "n": 3, "ok": True, "who": "agent"}
    assert second.exif_policy == "strip"
    assert third.project_id == "prj_1_2" and third.files == (AssetFile("logo.png", "img/brand", "image/svg+xml"),)


def test_parse_put_keys_and_types(cli, offline, monkeypatch):
    from run402_cli.deploy.assets import AssetFile

    puts = record(monkeypatch, assets_cmd, "run_put")
    assert cli("assets", "put", "a.txt", "logo.png", "--key", "x/").code == 0
    assert puts[0].files == (AssetFile("a.txt", "x/a.txt", "text/plain"), AssetFile("logo.png", "x/logo.png", "image/png"))
    assert puts[0].immutable is False and puts[0].visibility == "public"  # the CLI default: mutable, public


def test_parse_the_other_commands(cli, offline, monkeypatch):
    gets = record(monkeypatch, assets_cmd, "run_get")
    lss = record(monkeypatch, assets_cmd, "run_ls")
    rms = record(monkeypatch, assets_cmd, "run_rm")
    signs = record(monkeypatch, assets_cmd, "run_sign")
    diags = record(monkeypatch, assets_cmd, "run_diagnose")
    waits = record(monkeypatch, cdn_cmd, "run_wait_fresh")
    monkeypatch.setenv("RUN402_PROJECT", "prj_1_2")
    for argv in (("assets", "get", "dir/a b.txt", "-o", "out/x.bin"), ("assets", "ls"),
                 ("assets", "ls", "--prefix", "img/", "--limit", "1000", "--sort", "createdAt:desc",
                  "--filter", "is_image=true", "--filter", "min_width=320", "--filter", "tag=a=b", "--cursor", "c1"),
                 ("assets", "rm", "a.txt", "--project", P), ("assets", "sign", "a.txt"),
                 ("assets", "sign", "a.txt", "--ttl", "60"), ("assets", "diagnose", URL),
                 ("cdn", "wait-fresh", URL, "--sha", SHA.upper()), ("cdn", "wait-fresh", URL, "--sha", SHA, "--timeout", "5"),
                 ("blob", "rm", "b.txt")):
        assert cli(*argv).code == 0, argv
    Q = "prj_1_2"
    assert gets == [assets_cmd.GetOptions(Q, "dir/a b.txt", "out/x.bin")]
    assert lss == [assets_cmd.LsOptions(Q),
                   assets_cmd.LsOptions(Q, "img/", 1000, "createdAt:desc",
                                        {"is_image": True, "min_width": 320, "tag": "a=b"}, "c1")]
    assert rms == [assets_cmd.RmOptions(P, "a.txt"), assets_cmd.RmOptions(Q, "b.txt")]
    assert signs == [assets_cmd.SignOptions(Q, "a.txt"), assets_cmd.SignOptions(Q, "a.txt", 60)]
    assert diags == [assets_cmd.DiagnoseOptions(Q, URL)]
    assert waits == [cdn_cmd.WaitFreshOptions(Q, URL, SHA, 60), cdn_cmd.WaitFreshOptions(Q, URL, SHA, 5)]


# --- the wire: what leaves the machine, against the stand-in ------------------------------------


def stand_in(monkeypatch: pytest.MonkeyPatch, routes: dict[Any, Any]) -> RecordingServer:
    server = RecordingServer(routes)
    server.__enter__()
    monkeypatch.setenv("RUN402_API_BASE", server.url)
    return server


@pytest.fixture
def hosted(monkeypatch: pytest.MonkeyPatch, offline: Path):
    servers: list[RecordingServer] = []

    def start(routes: dict[Any, Any]) -> RecordingServer:
        servers.append(stand_in(monkeypatch, routes))
        return servers[-1]

    yield start
    for s in servers:
        s.__exit__(None, None, None)


def sha_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def progress_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.strip()]


def test_put_uploads_only_what_is_missing_and_prints_asset_refs(cli, hosted):
    server = hosted(asset_routes(present=False))
    res = cli("assets", "put", "a.txt", "--immutable", "--meta", "tags=x,y", "--meta", "v=2")
    assert res.code == 0, res.stderr
    data = b"hello\n"
    sha = sha_of(data)
    sent = server.take()
    assert [(r.method, r.path) for r in sent] == [
        ("POST", "/apply/v1/plans"), ("POST", "/content/v1/plans"), ("PUT", f"/s3/{sha}"),
        ("POST", "/content/v1/plans/cp_1/commit"), ("POST", "/apply/v1/plans/pln_1/commit")]
    plan, cplan, put, _, commit = sent
    assert plan.json == {"spec": {"project": P, "assets": {"put": [
        {"key": "a.txt", "sha256": sha, "size_bytes": 6, "content_type": "text/plain", "visibility": "public",
         "immutable": True, "metadata": {"tags": ["x", "y"], "v": 2}}]}}}
    assert "sign-in-with-x" in plan.headers and "apikey" not in plan.headers
    assert cplan.json == {"content": [{"sha256": sha, "size": 6, "content_type": "text/plain"}]}
    assert cplan.headers["apikey"] == f"anon-{P}"
    assert put.body == data and put.headers["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(sha)).decode()
    assert "authorization" not in put.headers and "apikey" not in put.headers
    assert commit.json == {}

    (ref,) = json.loads(res.stdout)
    assert res.stdout == json.dumps([ref], indent=2, ensure_ascii=False) + "\n"
    digest_b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()  # as a browser computes SRI
    assert ref["file"] == "a.txt" and ref["key"] == "a.txt" and ref["sha256"] == ref["contentSha256"] == sha
    assert ref["sri"] == f"sha256-{digest_b64}" and ref["etag"] == f'"sha256-{sha}"'
    assert ref["contentDigest"] == f"sha-256=:{digest_b64}:"
    assert ref["cdnUrl"] == f"{ASSET_HOST}/_blob/a-{sha[:8]}.txt" and ref["cdnMutableUrl"] == f"{ASSET_HOST}/_blob/a.txt"
    assert ref["cacheKind"] == "immutable" and ref["cdn"]["ready"] is True and ref["contentType"] == "text/plain"
    assert ref["metadata"] == {"tags": ["x", "y"], "v": 2} and ref["image_format"] is None
    assert ref["tags"]["script"] == (f'<script src="{ref["cdnUrl"]}" defer integrity="{ref["sri"]}" '
                                     'crossorigin></script>')
    assert ref["tags"]["link"] == f'<link rel="stylesheet" href="{ref["cdnUrl"]}" integrity="{ref["sri"]}" crossorigin>'
    kinds = [e["type"] for e in progress_lines(res.stderr)]
    assert kinds[:2] == ["plan.started", "plan.diff"] and kinds[-1] == "ready"
    assert "content.upload.progress" in kinds


def test_put_is_mutable_by_default_and_skips_present_bytes(cli, hosted):
    server = hosted(asset_routes(present=True))
    res = cli("assets", "put", "a.txt", "--private", "--quiet")
    assert res.code == 0 and res.stderr == ""
    sent = server.take()
    assert [(r.method, r.path) for r in sent] == [("POST", "/apply/v1/plans"), ("POST", "/apply/v1/plans/pln_1/commit")]
    entry = sent[0].json["spec"]["assets"]["put"][0]
    assert entry["immutable"] is False and entry["visibility"] == "private" and "metadata" not in entry
    (ref,) = json.loads(res.stdout)
    assert ref["cacheKind"] == "private" and ref["url"] is None and ref["cdnUrl"] is None
    assert ref["sri"].startswith("sha256-")  # computed from the digest, always (spec §11.4)
    assert ref["tags"] == {"script": None, "link": None, "img": None}


def test_put_several_files_is_one_deploy_with_ndjson_events(cli, hosted):
    server = hosted(asset_routes(present=False))
    res = cli("assets", "put", "a.txt", "logo.png", "--key", "docs/", "--json", "--quiet")
    assert res.code == 0 and res.stderr == ""
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(e["event"], e["key"]) for e in lines] == [
        ("start", "docs/a.txt"), ("start", "docs/logo.png"), ("done", "docs/a.txt"), ("done", "docs/logo.png")]
    assert lines[0] == {"event": "start", "key": "docs/a.txt", "size_bytes": 6}
    assert lines[3]["file"] == "logo.png" and lines[3]["contentType"] == "image/png"
    sent = server.take()
    plans = [r for r in sent if r.path == "/apply/v1/plans"]
    assert len(plans) == 2 and plans[1].query == "dry_run=true"  # an image: the variants refresh
    assert [e["key"] for e in plans[0].json["spec"]["assets"]["put"]] == ["docs/a.txt", "docs/logo.png"]
    assert sum(1 for r in sent if r.method == "PUT") == 2 and sum(1 for r in sent if r.path.endswith("/commit")) == 2


def test_put_an_image_reads_its_variants_back(cli, hosted):
    hosted(asset_routes(present=True, variants_on_dry_run=True))
    res = cli("assets", "put", "logo.png", "--immutable", "--quiet")
    assert res.code == 0, res.stderr
    (ref,) = json.loads(res.stdout)
    assert ref["width_px"] == 2000 and ref["height_px"] == 1000 and ref["variant_spec_version"] == "v1"
    assert ref["thumbUrl"].endswith("-v1-thumb-abc123.webp") and ref["displayUrl"] == f"{ASSET_HOST}/_blob/logo.png"
    assert ref["tags"]["img"] == (f'<img src="{ASSET_HOST}/_blob/logo.png" alt="" width="2000" height="1000" '
                                  'loading="lazy" decoding="async">')
    assert ref["tags"]["picture"].startswith('<picture><source type="image/webp" srcset="')
    assert " 320w, " in ref["tags"]["picture"] and 'sizes="100vw"' in ref["tags"]["picture"]


def test_put_fails_cleanly_when_the_plan_lacks_the_key(cli, hosted):
    routes = asset_routes()
    plan = routes[("POST", "/apply/v1/plans")]
    routes[("POST", "/apply/v1/plans")] = lambda req: Reply(200, {**json.loads(plan(req).encoded()[0]),
                                                                  "asset_entries": []})
    hosted(routes)
    usage_error(cli("assets", "put", "a.txt", "--quiet"), "ASSET_ENTRY_MISSING")


def test_get_streams_to_the_file(cli, hosted, tmp_path):
    body = bytes(range(256)) * 4096  # 1 MiB, not text
    server = hosted({("GET", "/storage/v1/blob/*"): Reply(200, body)})
    res = cli("assets", "get", "dir/a b#?.bin", "--output", "out/deep/x.bin")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == '{"status":"ok","key":"dir/a b#?.bin","output":"out/deep/x.bin"}\n'
    assert (Path.cwd() / "out/deep/x.bin").read_bytes() == body
    assert list((Path.cwd() / "out/deep").iterdir()) == [Path.cwd() / "out/deep/x.bin"]  # no temp file left
    (req,) = server.take()
    assert (req.method, req.path, req.query) == ("GET", "/storage/v1/blob/dir/a%20b%23%3F.bin", "")
    assert {k: req.headers[k] for k in SVC} == SVC and "sign-in-with-x" not in req.headers


def test_get_error_leaves_the_destination_untouched(cli, hosted):
    hosted({("GET", "/storage/v1/blob/*"): Reply(404, {"error": "Blob not found", "code": "BLOB_NOT_FOUND"})})
    (Path.cwd() / "keep.bin").write_bytes(b"old")
    res = cli("assets", "get", "nope.bin", "-o", "keep.bin")
    env = usage_error(res, "BLOB_NOT_FOUND")
    assert env["http"] == 404
    assert (Path.cwd() / "keep.bin").read_bytes() == b"old"
    assert sorted(p.name for p in Path.cwd().iterdir() if p.name.startswith(".keep")) == []


def test_get_into_an_unwritable_place_is_a_clear_error(cli, hosted):
    hosted({("GET", "/storage/v1/blob/*"): Reply(200, b"bytes")})
    env = usage_error(cli("assets", "get", "x.bin", "-o", "a.txt/x.bin"), "OUTPUT_NOT_WRITABLE")  # a.txt is a file
    assert env["details"] == {"output": "a.txt/x.bin"}
    assert (Path.cwd() / "a.txt").read_text() == "hello\n"


def test_ls_query(cli, hosted):
    server = hosted({})
    from tests.interop.differential_world import BLOBS

    server.routes[("GET", "/storage/v1/blobs")] = Reply(200, BLOBS)
    res = cli("assets", "ls", "--prefix", "img/a b", "--limit", "5", "--sort", "createdAt:desc",
              "--filter", "is_image=true", "--filter", "min_width=320", "--filter", "uploaded_by=a&b", "--cursor", "c/1")
    assert res.code == 0 and json.loads(res.stdout) == BLOBS
    assert res.stdout == json.dumps(BLOBS, indent=2) + "\n"
    ok_plain = cli("assets", "ls")
    assert ok_plain.code == 0
    first, second = server.take()
    assert first.path == "/storage/v1/blobs" and first.query == (
        "prefix=img%2Fa%20b&limit=5&cursor=c%2F1&sort=createdAt%3Adesc&filter%5Bis_image%5D=true"
        "&filter%5Bmin_width%5D=320&filter%5Buploaded_by%5D=a%26b")
    assert second.query == ""
    for req in (first, second):
        assert {k: req.headers[k] for k in SVC} == SVC


def test_rm_sign_and_the_blob_alias(cli, hosted):
    server = hosted({("DELETE", "/storage/v1/blob/*"): Reply(200, {"status": "deleted"}),
                     ("POST", "/storage/v1/blob/*/sign"): Reply(200, {"signed_url": "https://s/x", "expires_at": "t",
                                                                     "expires_in": 600})})
    res = cli("assets", "rm", "img/logo.png")
    assert res.code == 0 and res.stdout == '{"status":"ok","key":"img/logo.png"}\n'
    res = cli("assets", "sign", "r/q4.pdf", "--ttl", "600")
    assert res.code == 0 and json.loads(res.stdout) == {"signed_url": "https://s/x", "expires_at": "t", "expires_in": 600}
    assert cli("blob", "sign", "r/q4.pdf").code == 0
    rm, sign, sign_default = server.take()
    assert (rm.method, rm.path) == ("DELETE", "/storage/v1/blob/img/logo.png") and rm.body == b""
    assert (sign.method, sign.path, sign.json) == ("POST", "/storage/v1/blob/r/q4.pdf/sign", {"ttl_seconds": 600})
    assert sign_default.json == {}
    for req in (rm, sign, sign_default):
        assert {k: req.headers[k] for k in SVC} == SVC and "sign-in-with-x" not in req.headers


def test_diagnose_exit_code_follows_the_sha(cli, hosted):
    server = hosted({("GET", "/storage/v1/blobs/diagnose"): Reply(200, DIAGNOSE)})
    res = cli("assets", "diagnose", URL + "?v=1&x=a%20b")
    assert res.code == 0 and json.loads(res.stdout) == DIAGNOSE
    assert res.stderr == "\n# probed once from gateway-us-east-1; not a global view\n"
    (req,) = server.take()
    assert req.query == "url=https%3A%2F%2Fpr-1700000000-0001.run402.com%2F_blob%2Flogo.png%3Fv%3D1%26x%3Da%2520b"
    assert {k: req.headers[k] for k in SVC} == SVC
    server.routes[("GET", "/storage/v1/blobs/diagnose")] = Reply(200, {**DIAGNOSE, "observedSha256": "b" * 64})
    res = cli("assets", "diagnose", URL)
    assert res.code == 1 and json.loads(res.stdout)["observedSha256"] == "b" * 64
    server.routes[("GET", "/storage/v1/blobs/diagnose")] = Reply(200, {**DIAGNOSE, "observedSha256": None,
                                                                      "expectedSha256": None})
    assert cli("assets", "diagnose", URL).code == 1


def test_wait_fresh_polls_until_fresh(cli, hosted):
    answers = iter([Reply(503, {"error": "busy"}), Reply(200, {**DIAGNOSE, "observedSha256": "b" * 64}),
                    Reply(200, {**DIAGNOSE, "observedSha256": SHA.upper()})])
    server = hosted({("GET", "/storage/v1/blobs/diagnose"): lambda req: next(answers)})
    res = cli("cdn", "wait-fresh", URL, "--sha", SHA)
    assert res.code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["fresh"] is True and out["attempts"] == 3 and out["observedSha256"] == SHA.upper()
    assert out["vantage"] == "gateway-us-east-1" and 250 <= out["elapsedMs"] < 5000  # 100 ms + 200 ms of waiting
    assert list(out) == ["fresh", "observedSha256", "attempts", "elapsedMs", "vantage"]
    reqs = server.take()
    assert len(reqs) == 3 and all({k: r.headers[k] for k in SVC} == SVC for r in reqs)


def test_wait_fresh_times_out_with_exit_1(cli, hosted):
    hosted({("GET", "/storage/v1/blobs/diagnose"): Reply(200, {**DIAGNOSE, "observedSha256": "b" * 64})})
    res = cli("cdn", "wait-fresh", URL, "--sha", SHA, "--timeout", "1")
    assert res.code == 1 and res.stderr == ""
    out = json.loads(res.stdout)
    assert out["fresh"] is False and out["observedSha256"] == "b" * 64 and out["attempts"] >= 3
    assert 900 <= out["elapsedMs"] < 3000


def test_wait_fresh_stops_on_a_refused_key(cli, hosted):
    server = hosted({("GET", "/storage/v1/blobs/diagnose"): Reply(403, {"error": "wrong project", "code": "FORBIDDEN"})})
    env = usage_error(cli("cdn", "wait-fresh", URL, "--sha", SHA), "FORBIDDEN")
    assert env["http"] == 403 and len(server.take()) == 1


def test_the_environment_names_the_project(cli, hosted, monkeypatch):
    server = hosted({("DELETE", "/storage/v1/blob/*"): Reply(200, {})})
    monkeypatch.setenv("RUN402_PROJECT", "prj_1_2")
    assert cli("assets", "rm", "a.txt").code == 0
    (req,) = server.take()
    assert req.headers["apikey"] == "svc-prj_1_2"
