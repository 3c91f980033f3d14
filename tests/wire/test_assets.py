"""The asset rules both sides share (wire/assets.py)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from run402_cli.wire import assets as wa

SHA = hashlib.sha256(b"hello world").hexdigest()

REFUSED_KEYS = ["", "/abs", "dir/", "..", "a/../b", "../a", "a/..", ".", "a/./b", "./a", "a\x00b", "tab\there", "cr\rlf", "del\x7f",
                "_cas/ab", "_staging/x", "x" * 1025, "é" * 513, "\udcff", None, 7]
ACCEPTED_KEYS = ["logo.png", "a/b/c.txt", "_casual/x", "x/_cas/y", "_cas", "..a", "a..b/c", ".env", "é.png",
                 "x" * 1024, "with space.txt", "q?x#y%z.bin"]


@pytest.mark.parametrize("key", REFUSED_KEYS)
def test_hostile_keys_are_refused(key):
    assert wa.asset_key_problem(key) is not None


@pytest.mark.parametrize("key", ACCEPTED_KEYS)
def test_ordinary_keys_pass(key):
    assert wa.asset_key_problem(key) is None


def test_key_limit_counts_utf8_bytes():
    assert wa.asset_key_problem("é" * 512) is None
    assert "1024" in wa.asset_key_problem("é" * 512 + "x")


@pytest.mark.parametrize("key, ctype", [
    ("a.png", "image/png"), ("A.JPG", "image/jpeg"), ("x.jpeg", "image/jpeg"), ("x.gif", "image/gif"),
    ("x.svg", "image/svg+xml"), ("x.webp", "image/webp"), ("i.html", "text/html"), ("s.css", "text/css"),
    ("m.js", "text/javascript"), ("d.json", "application/json"), ("r.txt", "text/plain"),
    ("r.md", "text/markdown"), ("p.pdf", "application/pdf"), ("a.zip", "application/zip"),
    ("a.tgz", "application/gzip"), ("a.tar.gz", "application/gzip"), ("v.mp4", "video/mp4"),
    ("v.webm", "video/webm"), ("v.mov", "video/quicktime"), ("f.ico", "application/octet-stream"),
    ("noext", "application/octet-stream"), (".png", "application/octet-stream"),
    ("d.png/file", "application/octet-stream"), ("png", "application/octet-stream"),
])
def test_content_type_by_key_extension(key, ctype):
    assert wa.asset_content_type(key) == ctype


def test_explicit_content_type_wins():
    assert wa.asset_content_type("a.png", "text/plain; charset=utf-8") == "text/plain; charset=utf-8"


@pytest.mark.parametrize("value, ok", [("image/png", True), ("text/plain; charset=utf-8", True),
                                       ("application/vnd.x+json", True), ("png", False), ("", False),
                                       ("a/b/c", False), ("image/ png", False), ("/png", False),
                                       ("text/plain\r\nX-Evil: 1", False)])
def test_content_type_values(value, ok):
    assert (wa.content_type_problem(value) is None) is ok


@pytest.mark.parametrize("key, expected", [
    ("logo.png", "logo-b94d27b9.png"), ("a/b.tar.gz", "a/b.tar-b94d27b9.gz"), ("blob", "blob-b94d27b9"),
    ("a/.env", "a/.env-b94d27b9"), ("d.v2/file", "d.v2/file-b94d27b9"), ("x.PNG", "x-b94d27b9.PNG"),
])
def test_immutable_key(key, expected):
    assert wa.immutable_key(key, SHA) == expected


def test_encode_key_path_keeps_slashes_and_encodes_segments():
    assert wa.encode_key_path("a b/c?d#e/é.png") == "a%20b/c%3Fd%23e/%C3%A9.png"
    assert wa.encode_key_path("x/(1)!~*'.txt") == "x/(1)!~*'.txt"


@pytest.mark.parametrize("meta", [{}, {"a": "b"}, {"n": 1, "f": 1.5, "t": True, "l": ["x", "y"], "e": []},
                                  {"k": "x" * 4080}])
def test_metadata_accepted(meta):
    assert wa.metadata_problem(meta) is None


@pytest.mark.parametrize("meta", [[], "x", None, {"": 1}, {"a": {"b": 1}}, {"a": None}, {"a": [1]},
                                  {"a": float("nan")}, {"a": float("inf")}, {"k": "x" * 4090},
                                  {"k": "é" * 2045}, {1: "a"}])
def test_metadata_refused(meta):
    assert wa.metadata_problem(meta) is not None


def test_metadata_limit_is_compact_json_utf8():
    value = "x" * (wa.METADATA_MAX_BYTES - len('{"k":""}'))
    assert len(json.dumps({"k": value}, separators=(",", ":"))) == wa.METADATA_MAX_BYTES
    assert wa.metadata_problem({"k": value}) is None
    assert wa.metadata_problem({"k": value + "x"}) is not None


@pytest.mark.parametrize("text, value", [
    ("a,b", ["a", "b"]), (" a , b", [" a ", " b"]), ("a,", ["a", ""]), ("1,2", ["1", "2"]),
    ("true", True), ("false", False), ("True", "True"), ("3", 3), ("-3", -3), ("3.5", 3.5), (".5", 0.5),
    ("-.5", -0.5), ("1.0", 1), ("1e3", "1e3"), ("0x1", "0x1"), ("3.", "3."), ("", ""), ("hero", "hero"),
    ("12345678901234567890", 12345678901234567890),
])
def test_meta_coercion(text, value):
    got = wa.coerce_meta_value(text)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("key, text, value", [("is_image", "true", True), ("is_image", "false", False),
                                              ("min_width", "0", 0), ("max_height", "320", 320),
                                              ("tag", "hero", "hero"), ("uploaded_by", "a=b", "a=b")])
def test_filters_accepted(key, text, value):
    assert wa.filter_problem(key, text) is None
    assert wa.coerce_filter_value(key, text) == value


@pytest.mark.parametrize("key, text", [("nope", "x"), ("is_image", "yes"), ("min_width", "-1"),
                                       ("min_width", "1.5"), ("max_width", ""), ("tag", ""), ("format", "")])
def test_filters_refused(key, text):
    code, _ = wa.filter_problem(key, text)
    assert code == "INVALID_FILTER_KEY"


def test_integrity_values_match_a_browser_recompute():
    digest = hashlib.sha256(b"hello world").digest()
    b64 = base64.b64encode(digest).decode()
    assert wa.sri(SHA) == "sha256-" + b64 == "sha256-uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek="
    assert wa.etag(SHA) == f'"sha256-{SHA}"'
    assert wa.content_digest(SHA) == f"sha-256=:{b64}:"


def _wire(**extra):
    ref = {"key": "logo.png", "sha256": SHA, "size_bytes": 11, "content_type": "image/png", "visibility": "public",
           "immutable": True, "url": "https://pr-x.run402.com/_blob/logo.png",
           "immutable_url": "https://pr-x.run402.com/_blob/logo-b94d27b9.png",
           "cdn_url": "https://pr-x.run402.com/_blob/logo.png",
           "cdn_immutable_url": "https://pr-x.run402.com/_blob/logo-b94d27b9.png",
           "sri": "ignored", "etag": "ignored", "content_digest": "ignored"}
    ref.update(extra)
    return ref


def test_sdk_asset_ref_fields_and_order():
    ref = wa.sdk_asset_ref(_wire(), "image/png")
    assert list(ref) == ["key", "size_bytes", "sha256", "visibility", "url", "immutable_url", "size",
                         "contentSha256", "contentType", "immutableUrl", "cdnUrl", "cdnMutableUrl", "etag", "sri",
                         "contentDigest", "cacheKind", "cdn", "metadata", "image_format", "image_info",
                         "image_exif", "image_exif_policy"]
    assert ref["size"] == 11 and ref["contentSha256"] == SHA and ref["cdnUrl"].endswith("logo-b94d27b9.png")
    assert ref["cdnMutableUrl"].endswith("/logo.png") and ref["cacheKind"] == "immutable"
    assert ref["sri"] == wa.sri(SHA) and ref["etag"] == wa.etag(SHA)
    assert ref["cdn"]["version"] == "blob-gateway-v2" and ref["cdn"]["ready"] is True
    assert ref["cdn"]["invalidationId"] is None and ref["cdn"]["invalidationStatus"] is None
    assert ref["metadata"] is None and ref["image_exif_policy"] is None


def test_sdk_asset_ref_mutable_and_private():
    mutable = wa.sdk_asset_ref(_wire(immutable=False, immutable_url=None, cdn_immutable_url=None), "image/png")
    assert mutable["cacheKind"] == "mutable" and mutable["cdn"]["ready"] is False and mutable["cdnUrl"] is None
    assert mutable["sri"] == wa.sri(SHA)  # computed from the digest, always (spec §11.4)
    private = wa.sdk_asset_ref(_wire(visibility="private", url=None, immutable_url=None, cdn_url=None,
                                     cdn_immutable_url=None), "image/png")
    assert private["cacheKind"] == "private" and private["url"] is None


VARIANTS = {name: {"url": f"https://a/{name}.webp", "cdn_url": f"https://c/{name}.webp", "width_px": w,
                   "height_px": w // 2, "format": "webp", "sha256": SHA}
            for name, w in (("thumb", 320), ("medium", 800), ("large", 1920))}


def test_sdk_asset_ref_image_fields():
    wire = _wire(width_px=2000, height_px=1000, blurhash="LKO2", variant_spec_version="v1",
                 display_url="https://pr-x.run402.com/_blob/logo.png", variants=VARIANTS,
                 metadata={"tag": "hero"}, image_format="png")
    ref = wa.sdk_asset_ref(wire, "image/png")
    assert ref["width_px"] == 2000 and ref["variants"] == VARIANTS
    assert ref["thumbUrl"] == "https://c/thumb.webp" and ref["displayUrl"] == wire["display_url"]
    assert ref["metadata"] == {"tag": "hero"} and ref["image_format"] == "png" and ref["image_info"] is None
    small = wa.sdk_asset_ref(_wire(width_px=10, height_px=10), "image/png")
    assert small["displayUrl"] == small["thumbUrl"] == small["cdnMutableUrl"]
    assert "thumbUrl" not in wa.sdk_asset_ref(_wire(), "image/png")


def test_html_tags_exact_attribute_order():
    ref = wa.sdk_asset_ref(_wire(), "image/png")
    url, integrity = ref["cdnUrl"], ref["sri"]
    tags = wa.html_tags(ref)
    assert tags == {
        "script": f'<script src="{url}" defer integrity="{integrity}" crossorigin></script>',
        "link": f'<link rel="stylesheet" href="{url}" integrity="{integrity}" crossorigin>',
        "img": f'<img src="{url}" alt="" loading="lazy" decoding="async">',
    }


def test_html_tags_picture_and_sizes():
    ref = wa.sdk_asset_ref(_wire(width_px=2000, height_px=1000, variant_spec_version="v1",
                                 display_url="https://d/x.png", variants=VARIANTS), "image/png")
    tags = wa.html_tags(ref, alt="A cat")
    assert tags["img"] == '<img src="https://d/x.png" alt="A cat" width="2000" height="1000" loading="lazy" decoding="async">'
    assert tags["picture"] == (
        '<picture><source type="image/webp" srcset="https://c/thumb.webp 320w, https://c/medium.webp 800w, '
        'https://c/large.webp 1920w" sizes="100vw"><img src="https://d/x.png" alt="A cat" width="2000" '
        'height="1000" loading="lazy" decoding="async"></picture>')


def test_html_tags_escape_attribute_values():
    hostile = 'https://x/a"><script>alert(1)</script>&b'
    ref = wa.sdk_asset_ref(_wire(cdn_immutable_url=hostile), "text/javascript")
    tags = wa.html_tags(ref, alt='"<&>')
    escaped = "https://x/a&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;b"
    assert tags["script"].startswith(f'<script src="{escaped}" defer')
    assert 'alt="&quot;&lt;&amp;&gt;"' in tags["img"]
    for tag in tags.values():
        assert "<script>" not in tag and '"><' not in tag


def test_html_tags_need_an_immutable_upload():
    ref = wa.sdk_asset_ref(_wire(immutable_url=None, cdn_immutable_url=None), "text/css")
    assert wa.html_tags(ref) == {"script": None, "link": None, "img": None}


def test_variant_key_names_the_asset_and_the_variant():
    assert wa.variant_key("img/logo.png", "AB" * 32, "thumb", "cd" * 32) == "img/logo-abababab-v1-thumb-cdcdcd.webp"
    assert wa.variant_key("blob", SHA, "large", "0" * 64) == f"blob-{SHA[:8]}-v1-large-000000.webp"


def test_a_mutable_image_gets_an_img_tag_from_its_display_url():
    ref = wa.sdk_asset_ref(_wire(immutable_url=None, cdn_immutable_url=None, width_px=4, height_px=3,
                                 display_url="https://pr-x.run402.com/_blob/logo.png"), "image/png")
    assert wa.html_tags(ref) == {
        "script": None, "link": None,
        "img": '<img src="https://pr-x.run402.com/_blob/logo.png" alt="" width="4" height="3" loading="lazy" '
               'decoding="async">'}
