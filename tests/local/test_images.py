"""Image uploads on the real gateway, through our CLI, checked the way a user would: the
dimensions and format `assets put` reports, WebP variants that decode to the promised sizes,
`--exif-policy strip` serving bytes without EXIF (and the SRI/ETag of those bytes), a re-put
of the same photo uploading nothing, `keep` reporting the EXIF summary, a decompression bomb
and a corrupt PNG stored as plain files without the gateway's memory jumping, and the ls
image filters on what was read."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.commands._helpers import ready
from tests.local.test_storage import fetch, new_project, put_ok, run

pytestmark = pytest.mark.usefixtures("api")


def _exif(orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Canon", "EOS R5", "2024:05:01 10:00:00"
    if orientation is not None:
        exif[0x0112] = orientation
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", (48.0, 51.0, 29.0), "E", (2.0, 17.0, 40.0)
    return exif


def photo(path: Path, size: tuple[int, int], *, orientation: int | None = None, fmt: str = "JPEG",
          exif: bool = True, mode: str = "RGB") -> bytes:
    """A picture with a gradient (so encoders have work to do), EXIF with GPS if asked."""
    w, h = size
    gradient = Image.linear_gradient("L").resize((w, h))
    im = gradient.convert(mode)
    if mode == "RGBA":
        im.putalpha(gradient.transpose(Image.Transpose.ROTATE_90).resize((w, h)))
    buf = io.BytesIO()
    im.save(buf, fmt, **({"exif": _exif(orientation)} if exif else {}))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def sri_of(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


def _usage(cli: Any, project_id: str) -> int:
    code, body, err = run(cli, "projects", "usage", project_id)
    assert code == 0, err
    return body["asset_bytes"]


def test_png_and_jpeg_report_their_size_and_serve_webp_variants(cli, api, tmp_path):
    ready(cli)
    project_id = new_project(cli)
    photo(tmp_path / "logo.png", (1000, 600), fmt="PNG", exif=False, mode="RGBA")
    [logo] = put_ok(cli, str(tmp_path / "logo.png"))
    assert (logo["width_px"], logo["height_px"], logo["image_format"]) == (1000, 600, "png")
    assert logo["image_info"]["has_alpha"] is True and logo["image_info"]["animated"] is False
    assert logo["image_exif"] is None and logo["image_exif_policy"] == "keep"
    assert logo["displayUrl"] == logo["cdnMutableUrl"] and logo["variant_spec_version"] == "v1"
    assert logo["thumbUrl"] == logo["variants"]["thumb"]["cdn_url"]
    assert logo["tags"]["img"] == (f'<img src="{logo["displayUrl"]}" alt="" width="1000" height="600" '
                                   'loading="lazy" decoding="async">')
    assert logo["tags"]["picture"].startswith('<picture><source type="image/webp" srcset="')
    assert isinstance(logo["blurhash"], str) and len(logo["blurhash"]) == 28  # 4x3 components
    sizes = {"thumb": (320, 192), "medium": (800, 480), "large": (1000, 600)}  # never upscaled
    variant_bytes = 0
    for name, want in sizes.items():
        v = logo["variants"][name]
        got = fetch(api, v["cdn_url"])
        variant_bytes += len(got.content)
        assert got.status_code == 200 and got.headers["content-type"] == "image/webp"
        assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert hashlib.sha256(got.content).hexdigest() == v["sha256"] and f"-v1-{name}-{v['sha256'][:6]}.webp" in v["url"]
        im = Image.open(io.BytesIO(got.content))
        assert im.format == "WEBP" and im.size == want == (v["width_px"], v["height_px"])
        assert im.mode == "RGBA"
    # A portrait photo stored sideways (EXIF orientation 6) with GPS, kept as it is.
    original = photo(tmp_path / "cam.jpg", (4000, 3000), orientation=6)
    [cam] = put_ok(cli, str(tmp_path / "cam.jpg"), "--immutable")
    assert (cam["width_px"], cam["height_px"], cam["image_format"]) == (4000, 3000, "jpeg")  # stored pixels
    assert cam["image_info"]["orientation"] == 6 and cam["image_info"]["color_space"] == "rgb"
    assert cam["image_exif"]["Make"] == "Canon" and cam["image_exif"]["has_gps"] is True
    assert fetch(api, cam["cdnUrl"]).content == original  # keep: served as uploaded
    large = Image.open(io.BytesIO(fetch(api, cam["variants"]["large"]["cdn_url"]).content))
    assert large.size == (1920, 2560) and not large.getexif()  # upright, no EXIF in variants
    assert (cam["variants"]["thumb"]["width_px"], cam["variants"]["thumb"]["height_px"]) == (320, 427)
    # The variants count towards the project's storage.
    variant_bytes += sum(len(fetch(api, v["cdn_url"]).content) for v in cam["variants"].values())
    assert _usage(cli, project_id) == (tmp_path / "logo.png").stat().st_size + len(original) + variant_bytes
    # ls filters on what was read.
    (tmp_path / "notes.txt").write_text("not an image")
    put_ok(cli, str(tmp_path / "notes.txt"))
    for filters, keys in [(["is_image=true"], ["cam.jpg", "logo.png"]), (["is_image=false"], ["notes.txt"]),
                          (["format=jpeg"], ["cam.jpg"]), (["min_width=2000"], ["cam.jpg"]),
                          (["max_width=1000"], ["logo.png"]), (["min_height=601"], ["cam.jpg"]),
                          (["max_height=600", "format=png"], ["logo.png"]), (["min_width=5000"], [])]:
        code, page, err = run(cli, "assets", "ls", *(a for f in filters for a in ("--filter", f)))
        assert code == 0, err
        assert [b["key"] for b in page["blobs"]] == keys, filters
    code, page, _ = run(cli, "assets", "ls", "--filter", "format=jpeg")
    blob = page["blobs"][0]
    assert (blob["width_px"], blob["height_px"], blob["image_format"]) == (4000, 3000, "jpeg")
    assert blob["image_info"]["orientation"] == 6 and blob["image_exif"]["has_gps"] is True
    # Overwrites: an immutable put's variants keep serving; a mutable put's go; rm takes all.
    old_cam, old_logo = cam["variants"]["thumb"]["cdn_url"], logo["variants"]["thumb"]["cdn_url"]
    photo(tmp_path / "cam.jpg", (300, 200), exif=False)
    photo(tmp_path / "logo.png", (300, 200), fmt="PNG", exif=False)
    [cam2] = put_ok(cli, str(tmp_path / "cam.jpg"), "--immutable")
    put_ok(cli, str(tmp_path / "logo.png"))
    assert cam2["variants"]["thumb"]["cdn_url"] != old_cam and cam2["variants"]["thumb"]["width_px"] == 300
    assert fetch(api, old_cam).status_code == 200
    assert fetch(api, old_logo).status_code == 404
    assert run(cli, "assets", "rm", "cam.jpg")[0] == 0
    assert fetch(api, old_cam).status_code == 404 and fetch(api, cam2["variants"]["thumb"]["cdn_url"]).status_code == 404


def test_strip_serves_no_exif_and_a_reput_uploads_nothing(cli, api, tmp_path):
    ready(cli)
    project_id = new_project(cli)
    original = photo(tmp_path / "trip.jpg", (1200, 800))
    assert b"Exif\x00\x00" in original
    [ref] = put_ok(cli, str(tmp_path / "trip.jpg"), "--exif-policy", "strip", "--immutable")
    assert ref["image_exif_policy"] == "strip" and ref["image_info"]["exif_strip"] == "stripped"
    assert ref["image_exif"] is None and ref["source_sha256"] == hashlib.sha256(original).hexdigest()
    for url in (ref["cdnUrl"], ref["cdnMutableUrl"], ref["displayUrl"]):
        served = fetch(api, url)
        assert served.status_code == 200 and b"Exif\x00\x00" not in served.content and b"GPS" not in served.content
        im = Image.open(io.BytesIO(served.content))
        assert not im.getexif() and im.size == (1200, 800)
        im.load()  # still a whole, decodable picture
        # What a browser checks: the integrity and the ETag are those of the bytes it got.
        assert ref["sri"] == sri_of(served.content) and served.headers["etag"] == ref["etag"]
        assert ref["sha256"] == hashlib.sha256(served.content).hexdigest() and ref["size_bytes"] == len(served.content)
    assert f'-{ref["sha256"][:8]}.jpg' in ref["cdnUrl"]
    code, _, _ = run(cli, "assets", "get", "trip.jpg", "-o", str(tmp_path / "back.jpg"))
    assert code == 0 and b"Exif\x00\x00" not in (tmp_path / "back.jpg").read_bytes()
    usage = _usage(cli, project_id)
    # The same photo again: nothing to upload, no new version, the same served bytes.
    code, again, err = run(cli, "assets", "put", str(tmp_path / "trip.jpg"), "--exif-policy", "strip", "--immutable")
    assert code == 0 and "content.upload.progress" not in err and "content.upload.skipped" in err
    assert again[0]["sha256"] == ref["sha256"] and again[0]["sri"] == ref["sri"]
    assert _usage(cli, project_id) == usage
    # A sideways photo keeps only its Orientation, so it still displays upright.
    photo(tmp_path / "side.jpg", (600, 400), orientation=6)
    [side] = put_ok(cli, str(tmp_path / "side.jpg"), "--exif-policy", "strip")
    exif = Image.open(io.BytesIO(fetch(api, side["cdnMutableUrl"]).content)).getexif()
    assert dict(exif) == {0x0112: 6} and not exif.get_ifd(0x8825)
    assert "Orientation" in side["image_info"]["exif_strip_note"]
    # PNG (eXIf chunk) too; a GIF cannot be stripped losslessly, and says so.
    photo(tmp_path / "shot.png", (200, 100), fmt="PNG")
    [shot] = put_ok(cli, str(tmp_path / "shot.png"), "--exif-policy", "strip")
    served = fetch(api, shot["cdnMutableUrl"]).content
    assert b"eXIf" not in served and not Image.open(io.BytesIO(served)).getexif()
    photo(tmp_path / "anim.gif", (64, 64), fmt="GIF", exif=False)
    [gif] = put_ok(cli, str(tmp_path / "anim.gif"), "--exif-policy", "strip")
    assert gif["image_info"]["exif_strip"] == "unsupported" and "GIF" in gif["image_info"]["exif_strip_note"]
    assert "source_sha256" not in gif and gif["width_px"] == 64


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _peak_rss_kb(api: Any) -> int:
    pid = json.loads((api.local_dir / "state.json").read_text())["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_bombs_and_corrupt_images_are_stored_as_plain_files(cli, api, tmp_path):
    ready(cli)
    new_project(cli)
    # 100000 x 100000 RGB: 30 GB once decoded, 100 bytes on disk.
    bomb = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + _png_chunk(b"IEND", b""))
    (tmp_path / "bomb.png").write_bytes(bomb)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + b"\xff" * 40)
    (tmp_path / "cut.jpg").write_bytes(photo(tmp_path / "cut.jpg", (800, 600))[:3000])
    before = _peak_rss_kb(api)
    refs = put_ok(cli, str(tmp_path / "bomb.png"), str(tmp_path / "broken.png"), str(tmp_path / "cut.jpg"),
                  "--immutable")
    assert _peak_rss_kb(api) - before < 64 * 1024
    for ref in refs:
        assert "width_px" not in ref and ref["image_format"] is None and "variants" not in ref, ref["key"]
        assert fetch(api, ref["cdnUrl"]).content == (tmp_path / ref["key"]).read_bytes()
    code, page, _ = run(cli, "assets", "ls", "--filter", "min_width=1")
    assert code == 0 and page["blobs"] == []
    # Strip on a file that cannot be read: served as uploaded, and the ref says so.
    [ref] = put_ok(cli, str(tmp_path / "broken.png"), "--key", "b2.png", "--exif-policy", "strip")
    assert ref["image_info"]["exif_strip"] == "unsupported" and ref["sha256"] == hashlib.sha256(
        (tmp_path / "broken.png").read_bytes()).hexdigest()


def test_private_images_get_no_variants_and_svg_its_root_size(cli, api, tmp_path):
    ready(cli)
    new_project(cli)
    photo(tmp_path / "id.jpg", (900, 600))
    [private] = put_ok(cli, str(tmp_path / "id.jpg"), "--private")
    assert (private["width_px"], private["height_px"]) == (900, 600) and "variants" not in private
    assert private["displayUrl"] is None and private["thumbUrl"] is None and private["tags"]["img"] is None
    (tmp_path / "icon.svg").write_text('<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                                       'viewBox="0 0 48 32"><rect width="48" height="32"/></svg>')
    [svg] = put_ok(cli, str(tmp_path / "icon.svg"))
    assert (svg["width_px"], svg["height_px"], svg["image_format"]) == (48, 32, "svg") and "variants" not in svg
    assert svg["tags"]["img"] == (f'<img src="{svg["displayUrl"]}" alt="" width="48" height="32" loading="lazy" '
                                  'decoding="async">')
    (tmp_path / "evil.svg").write_text('<!DOCTYPE svg [<!ENTITY a "1">]><svg width="&a;" height="2"/>')
    [evil] = put_ok(cli, str(tmp_path / "evil.svg"))
    assert evil["image_format"] is None and "width_px" not in evil


def test_a_functions_image_put_is_read_and_stripped_too(api, tmp_path):
    import httpx

    from tests.local._support import provision

    project = provision("fnimages")
    data = photo(tmp_path / "cam.jpg", (640, 480))
    headers = {"Authorization": f"Bearer {project['service_key']}", "x-run402-asset-key": "up/cam.jpg",
               "x-run402-asset-exif-policy": "strip", "Content-Type": "image/jpeg"}
    ref = httpx.post(api.api_base + "/apply/v1/service-asset-put", content=data, headers=headers).json()
    assert (ref["width_px"], ref["height_px"], ref["image_format"]) == (640, 480, "jpeg")
    assert ref["source_sha256"] == hashlib.sha256(data).hexdigest() != ref["sha256"]
    served = fetch(api, ref["cdn_immutable_url"]).content
    assert hashlib.sha256(served).hexdigest() == ref["sha256"] and b"Exif\x00\x00" not in served
    assert Image.open(io.BytesIO(fetch(api, ref["variants"]["thumb"]["cdn_url"]).content)).size == (320, 240)
    again = httpx.post(api.api_base + "/apply/v1/service-asset-put", content=data, headers=headers).json()
    assert again["sha256"] == ref["sha256"] and again["variants"] == ref["variants"]
