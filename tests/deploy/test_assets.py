"""`assets put` below the CLI (deploy/assets.py) and the streamed upload it relies on
(deploy/flow.py): files are hashed and uploaded in pieces, so a large file never sits in memory.

# mock: hosted-only. The transport below plays the hosted API and S3: the local gateway takes
single-part uploads of at most 16 MiB, so a large single PUT (hosted: up to 5 GiB) and parts
larger than 8 MiB only happen against the hosted API.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import pytest

from run402_cli import config
from run402_cli.api.client import Client
from run402_cli.deploy import assets as deploy_assets
from run402_cli.deploy import flow
from run402_cli.errors import Run402Error
from run402_cli.wire.assets import sri

MIB = 1 << 20
READY = {"operation_id": "op_1", "status": "ready", "release_id": "rel_1", "urls": {"project": "https://p"}}


class FakeHosted(httpx.BaseTransport):
    """Answers the apply flow for one assets release; PUT bodies are consumed piece by piece
    (hashed and counted, never kept). `part_size` None: one single-part PUT per object."""

    def __init__(self, part_size: int | None = None, on_put: Any = None) -> None:
        self.part_size = part_size
        self.on_put = on_put
        self.puts: list[dict[str, Any]] = []
        self.plan_body: Any = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "PUT":
            h, n, biggest = hashlib.sha256(), 0, 0
            for piece in request.stream:  # type: ignore[union-attr]
                h.update(piece)
                n += len(piece)
                biggest = max(biggest, len(piece))
                if self.on_put is not None:
                    self.on_put(n)
            self.puts.append({"url": str(request.url), "sha256": h.hexdigest(), "bytes": n, "biggest": biggest,
                              "length": request.headers.get("content-length"),
                              "chunked": request.headers.get("transfer-encoding"),
                              "checksum": request.headers.get("x-amz-checksum-sha256")})
            return httpx.Response(200, headers={"ETag": f'"e{len(self.puts)}"'})
        body = json.loads(request.read() or b"{}")
        if path == "/apply/v1/plans":
            self.plan_body = body
            puts = body["spec"]["assets"]["put"]
            return httpx.Response(200, json={
                "kind": "plan_response", "plan_id": "plan_1", "operation_id": "op_1", "warnings": [],
                "missing_content": [{"sha256": e["sha256"], "size": e["size_bytes"], "present": False} for e in puts],
                "asset_entries": [{"key": e["key"], "asset_ref": {**e, "url": f"https://p/_blob/{e['key']}",
                                                                  "immutable_url": None, "cdn_url": None,
                                                                  "cdn_immutable_url": None}} for e in puts]})
        if path == "/content/v1/plans":
            missing = []
            for c in body["content"]:
                size, step = c["size"], self.part_size or max(c["size"], 1)
                parts = [{"part_number": i + 1, "url": f"https://s3.test/up?sha={c['sha256']}&part={i + 1}",
                          "byte_start": a, "byte_end": min(a + step, size) - 1}
                         for i, a in enumerate(range(0, max(size, 1), step))]
                missing.append({"sha256": c["sha256"], "mode": "multipart" if self.part_size else "single",
                                "parts": parts})
            return httpx.Response(200, json={"plan_id": "cp_1", "missing": missing})
        if path.endswith("/commit"):
            return httpx.Response(200, json=READY if path.startswith("/apply/") else {})
        raise AssertionError(f"unexpected request {request.method} {path}")


def client_for(transport: httpx.BaseTransport, tmp_path: Path) -> Client:
    settings = config.Settings(env={"RUN402_API_BASE": "https://api.example.test",
                                    "RUN402_CONFIG_DIR": str(tmp_path / "cfg")})
    return Client(settings, transport=transport)


def big_file(path: Path, size: int) -> str:
    block = hashlib.sha256(b"seed").digest() * (MIB // 32)
    h = hashlib.sha256()
    with open(path, "wb") as fh:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            fh.write(piece)
            h.update(piece)
            left -= len(piece)
    return h.hexdigest()


def files_of(path: Path, key: str = "big.bin", ctype: str = "application/octet-stream") -> list[Any]:
    return [deploy_assets.AssetFile(path=str(path), key=key, content_type=ctype)]


def test_put_release_hashes_and_leaves_the_bytes_on_disk(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"hello\n")
    (tmp_path / "b.txt").write_bytes(b"hello\n")  # same bytes: one content, two keys
    files = [deploy_assets.AssetFile(str(tmp_path / "a.txt"), "x/a.txt", "text/plain"),
             deploy_assets.AssetFile(str(tmp_path / "b.txt"), "x/b.txt", "text/plain")]
    put = deploy_assets.AssetPut(visibility="private", immutable=True, metadata={"n": 1}, exif_policy="strip")
    release = deploy_assets.put_release("prj_1", files, put)
    sha = hashlib.sha256(b"hello\n").hexdigest()
    assert release.spec == {"project": "prj_1", "assets": {"put": [
        {"key": k, "sha256": sha, "size_bytes": 6, "content_type": "text/plain", "visibility": "private",
         "immutable": True, "metadata": {"n": 1}, "exif_policy": "strip"} for k in ("x/a.txt", "x/b.txt")]}}
    (content,) = release.contents.values()
    assert content.data is None and content.path == str(tmp_path / "a.txt") and content.slice_kind == "asset"
    assert release.slice_kinds == ["asset"]


def test_a_large_single_put_is_streamed_and_never_held_in_memory(tmp_path):
    size = 48 * MIB
    sha = big_file(tmp_path / "big.bin", size)
    hosted = FakeHosted()
    with client_for(hosted, tmp_path) as client:
        tracemalloc.start()
        try:
            release = deploy_assets.put_release("prj_1", files_of(tmp_path / "big.bin"), deploy_assets.AssetPut())
            outcome = flow.apply(client, release, anon_key="anon")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert release.spec["assets"]["put"][0]["sha256"] == sha
    (put,) = hosted.puts
    assert put["sha256"] == sha and put["bytes"] == size and put["length"] == str(size) and put["chunked"] is None
    assert put["biggest"] <= MIB and put["checksum"] == base64.b64encode(bytes.fromhex(sha)).decode()
    assert peak < 8 * MIB, f"peak {peak / MIB:.1f} MiB for a {size // MIB} MiB file"
    assert deploy_assets.asset_refs(outcome.plan, files_of(tmp_path / "big.bin"))[0]["sha256"] == sha


def test_large_multipart_parts_are_streamed_with_their_own_checksums(tmp_path):
    size = 30 * MIB
    sha = big_file(tmp_path / "big.bin", size)
    hosted = FakeHosted(part_size=12 * MIB)  # 12 + 12 + 6 MiB: two streamed parts, one read whole
    data = (tmp_path / "big.bin").read_bytes()
    with client_for(hosted, tmp_path) as client:
        release = deploy_assets.put_release("prj_1", files_of(tmp_path / "big.bin"), deploy_assets.AssetPut())
        flow.apply(client, release, anon_key="anon")
    got = sorted(hosted.puts, key=lambda p: p["url"])
    assert [p["bytes"] for p in got] == [12 * MIB, 12 * MIB, 6 * MIB]
    for i, p in enumerate(got):
        part = data[i * 12 * MIB:(i + 1) * 12 * MIB]
        assert p["sha256"] == hashlib.sha256(part).hexdigest()
        assert p["checksum"] == base64.b64encode(hashlib.sha256(part).digest()).decode()
    assert hashlib.sha256(data).hexdigest() == sha


@pytest.mark.parametrize("change", ["same size", "shrunk"])
def test_a_file_changed_while_it_streams_stops_before_the_commit(tmp_path, change):
    path = tmp_path / "big.bin"
    big_file(path, 20 * MIB)
    release = deploy_assets.put_release("prj_1", files_of(path), deploy_assets.AssetPut())
    if change == "same size":
        with open(path, "r+b") as fh:
            fh.seek(10 * MIB)
            fh.write(b"changed!")
    else:
        with open(path, "r+b") as fh:
            fh.truncate(15 * MIB)
    hosted = FakeHosted()
    with client_for(hosted, tmp_path) as client, pytest.raises(Run402Error) as info:
        flow.apply(client, release, anon_key="anon", sleep=lambda s: None)
    assert info.value.code == "FILE_CHANGED_DURING_DEPLOY"
    assert info.value.details["label"] == "assets.put[0] (big.bin)"


def test_asset_refs_need_every_key_and_refresh_only_image_fields():
    files = [deploy_assets.AssetFile("a.png", "a.png", "image/png")]
    plan = {"asset_entries": [{"key": "a.png", "asset_ref": {"key": "a.png", "sha256": "a" * 64, "url": "u"}}]}
    refs = deploy_assets.asset_refs(plan, files)
    deploy_assets.refresh_image_refs(refs, {"asset_entries": [{"key": "a.png", "asset_ref": {
        "key": "a.png", "url": "other", "width_px": 10, "height_px": 5, "variants": {}}}]})
    assert refs == [{"key": "a.png", "sha256": "a" * 64, "url": "u", "width_px": 10, "height_px": 5, "variants": {}}]
    with pytest.raises(Run402Error) as info:
        deploy_assets.asset_refs({"asset_entries": []}, files)
    assert info.value.code == "ASSET_ENTRY_MISSING"


def test_refresh_takes_the_served_digest_of_a_stripped_image():
    files = [deploy_assets.AssetFile("p.jpg", "p.jpg", "image/jpeg")]
    up, served = "a" * 64, "b" * 64
    plan = {"asset_entries": [{"key": "p.jpg", "asset_ref": {"key": "p.jpg", "sha256": up, "size_bytes": 10,
                                                             "cdn_immutable_url": f"h/p-{up[:8]}.jpg"}}]}
    refs = deploy_assets.asset_refs(plan, files)
    fresh = {"key": "p.jpg", "sha256": served, "size_bytes": 8, "cdn_immutable_url": f"h/p-{served[:8]}.jpg",
             "source_sha256": up, "image_exif_policy": "strip", "width_px": 4, "height_px": 3}
    deploy_assets.refresh_image_refs(refs, {"asset_entries": [{"key": "p.jpg", "asset_ref": fresh}]})
    assert refs == [fresh]
    (sdk,) = deploy_assets.sdk_refs(refs, files)
    assert sdk["sha256"] == served and sdk["sri"] == sri(served) and sdk["etag"] == f'"sha256-{served}"'
    assert sdk["cdnUrl"] == f"h/p-{served[:8]}.jpg" and sdk["source_sha256"] == up
    # Another digest without a word about stripping (a concurrent put?) is not taken.
    refs = deploy_assets.asset_refs(plan, files)
    deploy_assets.refresh_image_refs(refs, {"asset_entries": [{"key": "p.jpg", "asset_ref": {
        "key": "p.jpg", "sha256": served, "width_px": 4}}]})
    assert refs[0]["sha256"] == up and refs[0]["width_px"] == 4
