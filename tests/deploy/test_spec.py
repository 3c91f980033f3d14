"""Manifest -> wire spec: normalization, ContentRefs, strict validation with stable codes,
hostile paths, MANIFEST_EMPTY / UNSAFE_SECRET_MANIFEST, route rules, legacy sites manifests.
Pure: no network."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from run402_cli.deploy import spec as S
from run402_cli.errors import LocalError, UsageError


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def norm(manifest: dict[str, Any], tmp_path: Path | None = None, **kw: Any) -> S.Release:
    m = {"project_id": "prj_1_1", **manifest}
    return S.normalize_manifest(m, base_dir=tmp_path or Path("."), **kw)


def bad(manifest: Any, code: str = "INVALID_SPEC", tmp_path: Path | None = None, **kw: Any) -> UsageError:
    with pytest.raises(UsageError) as info:
        if isinstance(manifest, dict):
            norm(manifest, tmp_path, **kw)
        else:
            S.normalize_manifest(manifest, base_dir=tmp_path or Path("."), **kw)
    assert info.value.code == code, info.value.to_envelope()
    return info.value


# --- file entries and content refs ----------------------------------------------------------


def test_site_entries_become_content_refs_and_bytes_stay_local(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "app.js").write_bytes(b"console.log(1)")
    png = b"\x89PNG\r\n\x1a\nxyz"
    r = norm({"site": {"replace": {
        "index.html": "<h1>hi</h1>",
        "logo.png": {"data": base64.b64encode(png).decode(), "encoding": "base64"},
        "app.js": {"path": "dist/app.js"},
        "data.bin": {"data": "raw", "contentType": "text/x-custom"},
        "pre.css": {"sha256": "A" * 64, "size": 3},
    }}}, tmp_path)
    rep = r.spec["site"]["replace"]
    assert rep["index.html"] == {"sha256": sha("<h1>hi</h1>"), "size": 11, "contentType": "text/html; charset=utf-8"}
    assert rep["logo.png"] == {"sha256": sha(png), "size": len(png), "contentType": "image/png"}
    assert rep["app.js"] == {"sha256": sha("console.log(1)"), "size": 14, "contentType": "text/javascript; charset=utf-8"}
    assert rep["data.bin"]["contentType"] == "text/x-custom"
    assert rep["pre.css"] == {"sha256": "a" * 64, "size": 3, "contentType": "text/css; charset=utf-8"}
    assert r.spec["project"] == "prj_1_1" and "project_id" not in r.spec
    assert "<h1>hi</h1>" not in json.dumps(r.spec), "inline bytes never travel in the plan body"
    c = r.contents[sha("console.log(1)")]
    assert c.path == str(tmp_path / "dist" / "app.js") and c.data is None and c.read() == b"console.log(1)"
    assert r.contents[sha(png)].read(1, 3) == png[1:4]
    assert not r.contents["a" * 64].has_bytes
    assert r.contents[sha("<h1>hi</h1>")].label == "index.html"


def test_same_bytes_are_one_content(tmp_path: Path) -> None:
    r = norm({"site": {"replace": {"a.html": "same", "b/c.html": "same"}},
              "database": {"migrations": [{"id": "001", "sql": "same"}]}})
    assert list(r.contents) == [sha("same")]
    assert r.contents[sha("same")].label == "migration:001"  # first registered (database, then site)


def test_base64_is_lenient_like_node() -> None:
    data = bytes(range(256))
    b64 = base64.b64encode(data).decode()
    for variant in (b64, b64.rstrip("="), base64.urlsafe_b64encode(data).decode(), "\n".join(b64[i:i + 60] for i in range(0, len(b64), 60))):
        r = norm({"site": {"replace": {"x.bin": {"data": variant, "encoding": "base64"}}}})
        assert r.spec["site"]["replace"]["x.bin"]["sha256"] == sha(data)


@pytest.mark.parametrize("entry,where", [
    ({"data": "x", "encoding": "latin1"}, "encoding"),
    ({"data": 5}, "data"),
    ({"data": "x", "extra": 1}, "extra"),
    ({"path": "a", "encoding": "utf-8"}, "encoding"),
    ({"sha256": "abc", "size": 1}, "sha256"),
    ({"sha256": "a" * 64, "size": -1}, "size"),
    ({"sha256": "a" * 64, "size": True}, "size"),
    ({"sha256": "a" * 64}, "size"),
    ({}, None),
    (42, None),
    ({"data": "x", "contentType": 7}, "contentType"),
])
def test_bad_file_entries(entry: Any, where: str | None) -> None:
    err = bad({"site": {"replace": {"a.txt": entry}}})
    if where:
        assert where in err.details["field"]


def test_missing_path_file(tmp_path: Path) -> None:
    err = bad({"site": {"replace": {"a.txt": {"path": "nope.txt"}}}}, "FILE_NOT_FOUND", tmp_path)
    assert err.details["path"] == str(tmp_path / "nope.txt")
    (tmp_path / "d").mkdir()
    bad({"site": {"replace": {"a.txt": {"path": "d"}}}}, "NOT_A_FILE", tmp_path)


def test_paths_resolve_against_base_dir_and_absolute_paths_work(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    r = norm({"site": {"replace": {"a.txt": {"path": str(tmp_path / "x.txt")},
                                   "b.txt": {"path": "../" + tmp_path.name + "/x.txt"}}}}, tmp_path)
    assert r.spec["site"]["replace"]["a.txt"]["sha256"] == r.spec["site"]["replace"]["b.txt"]["sha256"] == sha("x")


# --- hostile release paths ------------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "../etc/passwd", "a/../../b", "/abs.html", "a\\b.html", "a\x00b", "tab\there", "a//b", "./a",
    "a/./b", "dir/", "", "_cas/x", "_staging/y", "x" * 1025, "a/..", "\x7f",
])
def test_hostile_site_paths_are_invalid_spec(path: str) -> None:
    err = bad({"site": {"replace": {path: "x"}}})
    assert err.details["field"].startswith("site.replace")


def test_non_utf8_name_is_invalid_spec() -> None:
    with pytest.raises(UsageError) as info:
        S.check_release_path("bad\udcffname.html", "site.replace")
    assert info.value.code == "INVALID_SPEC" and "UTF-8" in info.value.message


@pytest.mark.parametrize("path", ["a.html", ".well-known/x", "a/b/c.d.e", "..dots", "sp ace.html", "ü.html", "x" * 1024, "_casual.html"])
def test_fine_release_paths(path: str) -> None:
    assert S.check_release_path(path, "f") == path


def test_hostile_paths_elsewhere() -> None:
    bad({"site": {"patch": {"delete": ["../x"]}}})
    bad({"site": {"public_paths": {"mode": "explicit", "replace": {"/e": {"asset": "/events.html"}}}}})
    bad({"functions": {"replace": {"f": {"files": {"../x.js": "1"}, "entrypoint": "x.js"}}}})
    bad({"routes": {"replace": [{"pattern": "/l", "methods": ["GET"], "target": {"type": "static", "file": "a/../b.html"}}]}})
    bad({"assets": {"put": [{"key": "/abs", "source": "x"}]}})


# --- top level ------------------------------------------------------------------------------


def test_project_rules() -> None:
    assert norm({}, project="prj_1_1").project == "prj_1_1"
    r = S.normalize_manifest({"project": "prj_2_2", "site": {"replace": {"a": "b"}}}, base_dir=".")
    assert r.spec["project"] == "prj_2_2"
    err = bad({"project_id": "prj_1_1", "site": {}}, "BAD_USAGE", project="prj_9_9")
    assert err.message == "project_id conflict: manifest project=prj_1_1 but --project=prj_9_9"
    bad({"project": "prj_a", "project_id": "prj_b"})
    r = S.normalize_manifest({"site": {"replace": {"a": "b"}}}, base_dir=".", default_project=lambda: "prj_d_1")
    assert r.project == "prj_d_1"
    bad({"site": {"replace": {"a": "b"}}} | {"project_id": 5})


def test_idempotency_key_and_schema() -> None:
    r = norm({"$schema": "https://run402.com/schemas/release-spec.v1.json", "idempotencyKey": "k1",
              "site": {"replace": {"a": "b"}}})
    assert r.idempotency_key == "k1" and "$schema" not in r.spec and "idempotencyKey" not in r.spec
    bad({"idempotency_key": "a", "idempotencyKey": "b"})


@pytest.mark.parametrize("manifest,field,hint", [
    ({"subdomain": {"set": ["x"]}}, "subdomain", "subdomains"),
    ({"site": {"replcae": {}}}, "site.replcae", "site.replace"),
    ({"site": {"files": {}}}, "site.files", "site.replace"),
    ({"functions": {"replace": {"x": {"source": "1", "deps": ["a"]}}}}, "functions.replace.x.deps", "bundle"),
    ({"functions": {"replace": {"x": {"source": "1", "config": {"schedule": "* * * * *"}}}}}, "functions.replace.x.config.schedule", "sibling"),
    ({"i18n": {"default_locale": "en", "locales": ["en"]}}, "i18n.default_locale", "defaultLocale"),
    ({"functions": {"replace": {"x": {"source": "1", "requireAuth": True}}}}, "functions.replace.x.requireAuth", "requireAuth"),
    ({"database": {"migrations": [{"id": "1", "sql": "x", "checksumm": "y"}]}}, "database.migrations[0].checksumm", "checksum"),
    ({"wat": 1}, "wat", None),
])
def test_unknown_fields_are_rejected_with_hints(manifest: dict[str, Any], field: str, hint: str | None) -> None:
    err = bad(manifest)
    assert err.details["field"] == field
    assert err.message == f"Unknown field {field}"
    if hint:
        assert hint in (err.hint or ""), err.hint


def test_base() -> None:
    assert norm({"base": {"release": "empty"}, "site": {"replace": {"a": "b"}}}).spec["base"] == {"release": "empty"}
    assert norm({"base": {"release_id": "rel_1"}, "site": {"replace": {"a": "b"}}}).spec["base"] == {"release_id": "rel_1"}
    bad({"base": {"release": "current", "release_id": "rel_1"}})
    bad({"base": {"release": "latest"}})
    bad({"base": {}})
    assert norm({"site": {"replace": {"a": "b"}}}).base_is_current
    assert not norm({"base": {"release": "empty"}, "site": {"replace": {"a": "b"}}}).base_is_current


# --- database -------------------------------------------------------------------------------


def test_migrations(tmp_path: Path) -> None:
    (tmp_path / "002.sql").write_text("CREATE TABLE b (id int);")
    r = norm({"database": {
        "migrations": [
            {"id": "001", "sql": "CREATE TABLE a (id int);"},
            {"id": "002", "sql_path": "002.sql", "transaction": "none"},
            {"id": "003", "sql_ref": {"sha256": "b" * 64, "size": 10}, "checksum": "c" * 64},
            {"id": "004", "sql": "SELECT 1", "sql_file": "ignored.sql"},
        ],
        "expose": {"version": "1", "tables": []},
        "zero_downtime": True,
    }}, tmp_path)
    m = r.spec["database"]["migrations"]
    assert m[0] == {"id": "001", "checksum": sha("CREATE TABLE a (id int);"),
                    "sql_ref": {"sha256": sha("CREATE TABLE a (id int);"), "size": 24, "contentType": "application/sql"}}
    assert m[1]["transaction"] == "none" and m[1]["sql_ref"]["sha256"] == sha("CREATE TABLE b (id int);")
    assert m[2] == {"id": "003", "checksum": "c" * 64, "sql_ref": {"sha256": "b" * 64, "size": 10, "contentType": "application/sql"}}
    assert m[3]["sql_ref"]["sha256"] == sha("SELECT 1"), "sql wins over a path"
    assert r.spec["database"]["expose"] == {"version": "1", "tables": []}
    assert r.contents[sha("CREATE TABLE a (id int);")].label == "migration:001"
    assert r.slice_kinds == ["release"]


def test_bad_migrations(tmp_path: Path) -> None:
    bad({"database": {"migrations": [{"sql": "x"}]}})
    bad({"database": {"migrations": [{"id": "1"}]}})
    bad({"database": {"migrations": [{"id": "1", "sql": "x", "transaction": "maybe"}]}})
    bad({"database": {"migrations": [{"id": "1", "sql_path": "a.sql", "sql_file": "b.sql"}]}})
    bad({"database": {"migrations": [{"id": "1", "sql_path": "missing.sql"}]}}, "FILE_NOT_FOUND", tmp_path)
    (tmp_path / "bin.sql").write_bytes(b"\xff\xfe")
    bad({"database": {"migrations": [{"id": "1", "sql_path": "bin.sql"}]}}, tmp_path=tmp_path)
    bad({"database": {"migrations": {"id": "1"}}})
    bad({"database": {"zero_downtime": "yes"}})
    bad({"database": {"expose": []}})


# --- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize("secrets,field", [
    ([{"key": "A", "value": "v"}], "secrets"),
    ({"set": {"A": "v"}}, "secrets.set"),
    ({"replace_all": {"A": "v"}}, "secrets.replace_all"),
])
def test_secret_values_are_unsafe(secrets: Any, field: str) -> None:
    with pytest.raises(UsageError) as info:
        S.reject_unsafe_secrets({"secrets": secrets}, {"source": "spec"})
    assert info.value.code == "UNSAFE_SECRET_MANIFEST"
    assert info.value.details == {"source": "spec", "field": field, **({"legacy_shape": "array"} if field == "secrets" else {})}
    bad({"secrets": secrets}, "UNSAFE_SECRET_MANIFEST")


def test_secrets_value_free() -> None:
    assert norm({"secrets": {"require": ["OPENAI_API_KEY"], "delete": ["OLD"]}}).spec["secrets"] == {
        "require": ["OPENAI_API_KEY"], "delete": ["OLD"]}
    bad({"secrets": {"require": ["lower"]}})
    bad({"secrets": {"require": ["A", "A"]}})
    bad({"secrets": {"require": ["A"], "delete": ["A"]}})
    bad({"secrets": {"require": "A"}})


# --- functions ------------------------------------------------------------------------------


def test_functions_normalize() -> None:
    r = norm({"functions": {
        "replace": {"api": {"source": "export default () => new Response('x')",
                            "config": {"timeoutSeconds": 10, "memoryMb": 128}, "schedule": "*/15 * * * *"}},
        "patch": {"set": {"m": {"files": {"index.js": "1", "lib/u.mjs": "2"}, "entrypoint": "index.js", "schedule": None}},
                  "delete": ["old"]},
    }})
    api = r.spec["functions"]["replace"]["api"]
    assert api["runtime"] == "node22" and "contentType" not in api["source"]
    assert api["config"] == {"timeoutSeconds": 10, "memoryMb": 128} and api["schedule"] == "*/15 * * * *"
    m = r.spec["functions"]["patch"]["set"]["m"]
    assert m["files"]["lib/u.mjs"]["contentType"] == "text/javascript; charset=utf-8"
    assert m["schedule"] is None and r.spec["functions"]["patch"]["delete"] == ["old"]


@pytest.mark.parametrize("fn", [
    {"source": "1", "runtime": "node18"},
    {"source": "1", "files": {"a.js": "1"}, "entrypoint": "a.js"},
    {"files": {"a.js": "1"}},
    {"source": "1", "config": {"timeoutSeconds": 0}},
    {"source": "1", "config": {"memoryMb": 1.5}},
    {"source": "1", "config": {"memoryMb": True}},
    {"source": "1", "schedule": 5},
])
def test_bad_functions(fn: dict[str, Any]) -> None:
    bad({"functions": {"replace": {"f": fn}}})


# --- site -----------------------------------------------------------------------------------


def test_site_shapes() -> None:
    r = norm({"site": {"patch": {"put": {"a.html": "x"}, "delete": ["old.html"]},
                       "public_paths": {"mode": "explicit", "replace": {"/a": {"asset": "a.html", "cache_class": "html"}}}}})
    assert r.spec["site"]["patch"]["delete"] == ["old.html"]
    assert r.spec["site"]["public_paths"]["replace"] == {"/a": {"asset": "a.html", "cache_class": "html"}}
    assert norm({"site": {"public_paths": {"mode": "implicit"}}}).spec["site"] == {"public_paths": {"mode": "implicit"}}
    bad({"site": {"replace": {}, "patch": {}}})
    bad({"site": {}})
    bad({"site": {"public_paths": {"mode": "implicit", "replace": {}}}})
    bad({"site": {"public_paths": {"mode": "explicit"}}})
    bad({"site": {"public_paths": {"mode": "explicit", "replace": {"nolead": {"asset": "a"}}}}})
    bad({"site": {"public_paths": {"mode": "other"}}})
    bad({"site": {"replace": []}})


# --- subdomains / routes / i18n / checks / assets -------------------------------------------


def test_subdomains() -> None:
    assert norm({"subdomains": {"set": ["my-app"]}}).spec["subdomains"] == {"set": ["my-app"]}
    err = bad({"subdomains": {"set": ["a-1", "b-2"]}}, "SUBDOMAIN_MULTI_NOT_SUPPORTED")
    assert err.details["field"] == "subdomains.set"
    assert norm({"subdomains": {"add": ["a", "b"]}}).spec["subdomains"] == {"add": ["a", "b"]}
    bad({"subdomains": {"set": "x"}})


def test_routes() -> None:
    r = norm({"routes": {"replace": [
        {"pattern": "/api/*", "target": {"type": "function", "name": "api"}},
        {"pattern": "/login", "methods": ["GET", "HEAD"], "target": {"type": "static", "file": "login.html"}},
        {"pattern": "/feed/*", "methods": ["GET"], "target": {"type": "function", "name": "feed"}, "acknowledge_readonly": True},
    ]}})
    assert len(r.spec["routes"]["replace"]) == 3 and r.client_warnings == []
    assert norm({"routes": None}).spec["routes"] is None
    assert norm({"routes": {"replace": []}}).spec["routes"] == {"replace": []}


def test_readonly_wildcard_warning() -> None:
    r = norm({"routes": {"replace": [
        {"pattern": "/z/*", "methods": ["GET"], "target": {"type": "function", "name": "z"}},
        {"pattern": "/a/*", "methods": ["GET", "HEAD"], "target": {"type": "function", "name": "a"}},
        {"pattern": "/b", "methods": ["GET"], "target": {"type": "function", "name": "b"}},
    ]}})
    (w,) = r.client_warnings
    assert w["code"] == "WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS"
    assert w["requires_confirmation"] is True and w["severity"] == "warn" and w["confidence"] == "heuristic"
    assert w["affected"] == ["/a/*", "/z/*"]
    assert w["details"]["missing_common_methods"] == ["POST", "PUT", "PATCH", "DELETE"]


@pytest.mark.parametrize("route", [
    {"pattern": "/x", "target": {"function": "api"}},
    {"pattern": "/x", "target": {"type": "function", "name": "api", "extra": 1}},
    {"pattern": "/x", "methods": [], "target": {"type": "function", "name": "api"}},
    {"pattern": "/x", "methods": ["GET", "GET"], "target": {"type": "function", "name": "api"}},
    {"pattern": "/x", "methods": ["FETCH"], "target": {"type": "function", "name": "api"}},
    {"pattern": "/x/*", "methods": ["GET"], "target": {"type": "static", "file": "a.html"}},
    {"pattern": "/x", "target": {"type": "static", "file": "a.html"}},
    {"pattern": "/x", "methods": ["POST"], "target": {"type": "static", "file": "a.html"}},
    {"pattern": "/x", "methods": ["GET"], "target": {"type": "static", "file": "a.html?x"}},
    {"pattern": "/x", "methods": ["GET"], "target": {"type": "static", "file": "dir/"}},
    {"pattern": "/x", "methods": ["GET"], "target": {"type": "function", "name": "a"}, "acknowledge_readonly": True},
    {"pattern": "/x/*", "target": {"type": "function", "name": "a"}, "acknowledge_readonly": True},
    {"pattern": "/x/*", "methods": ["GET", "POST"], "target": {"type": "function", "name": "a"}, "acknowledge_readonly": True},
    {"pattern": "/x/*", "methods": ["GET"], "target": {"type": "function", "name": "a"}, "acknowledge_readonly": False},
    {"target": {"type": "function", "name": "a"}},
    {"pattern": "/x"},
])
def test_bad_routes(route: dict[str, Any]) -> None:
    bad({"routes": {"replace": [route]}})


def test_path_keyed_routes_are_rejected_with_a_hint() -> None:
    err = bad({"routes": {"/api/*": {"function": "api"}}})
    assert "array" in err.hint


def test_i18n() -> None:
    assert norm({"i18n": None}).spec["i18n"] is None
    r = norm({"i18n": {"defaultLocale": "en", "locales": ["en", "zh-Hant"], "detect": ["cookie:lang", "accept-language"]}})
    assert r.spec["i18n"]["locales"] == ["en", "zh-Hant"]
    bad({"i18n": {"defaultLocale": "fr", "locales": ["en"]}})
    bad({"i18n": {"defaultLocale": "en", "locales": []}})
    bad({"i18n": {"defaultLocale": "en", "locales": ["en", "en"]}})
    bad({"i18n": {"defaultLocale": "en", "locales": ["en"], "detect": ["header:x"]}})
    bad({"i18n": {"defaultLocale": "e n", "locales": ["e n"]}})


def test_checks_pass_through() -> None:
    checks = [{"name": "home", "http": {"path": "/", "expect": {"status": 200}}, "anything": 1}]
    assert norm({"checks": checks}).spec["checks"] == checks
    bad({"checks": {"name": "x"}})


def test_assets() -> None:
    r = norm({"assets": {"put": [
        {"key": "img/a.png", "source": {"data": "eA==", "encoding": "base64"}},
        {"key": "b.bin", "sha256": "D" * 64, "size_bytes": 4, "visibility": "private", "immutable": False},
    ], "delete": ["old.png"], "sync": {"prefix": "img/", "prune": True}}})
    put = r.spec["assets"]["put"]
    assert put[0] == {"key": "img/a.png", "sha256": sha(b"x"), "size_bytes": 1, "content_type": "image/png",
                      "visibility": "public", "immutable": True}
    assert put[1]["sha256"] == "d" * 64 and put[1]["visibility"] == "private" and put[1]["immutable"] is False
    assert r.contents[sha(b"x")].slice_kind == "asset" and r.slice_kinds == ["asset"]
    bad({"assets": {"put": [{"source": "x"}]}})
    bad({"assets": {"put": [{"key": "a", "source": "x"}, {"key": "a", "source": "y"}]}}, "ASSET_DUPLICATE_KEY_IN_PUT")
    bad({"assets": {"put": [{"key": "a", "source": "x"}], "delete": ["a"]}}, "ASSET_KEY_IN_PUT_AND_DELETE")
    bad({"assets": {"put": [{"key": "a", "source": "x", "sha256": "a" * 64, "size_bytes": 1}]}})
    bad({"assets": {"put": [{"key": "a", "sha256": "a" * 64}]}})
    bad({"assets": {"sync": {"prefix": "", "prune": True}}})
    bad({"assets": {"sync": {"prefix": "a/", "prune": False}}})
    bad({"assets": {"put": [{"key": "a", "source": "x", "metadata": {}}]}})


def test_mixed_slice_kind() -> None:
    r = norm({"site": {"replace": {"a.txt": "same"}}, "assets": {"put": [{"key": "k", "source": "same"}]}})
    assert r.contents[sha("same")].slice_kind == "mixed"
    assert r.slice_kinds == ["asset", "release"]


# --- MANIFEST_EMPTY -------------------------------------------------------------------------


@pytest.mark.parametrize("manifest", [
    {}, {"project_id": "prj_1"}, {"site": {}}, {"site": {"replace": {}}}, {"database": {"migrations": []}},
    {"secrets": {"require": []}}, {"subdomains": {"set": []}}, {"checks": []}, {"functions": {"replace": {}}},
    {"routes": None}, {"assets": {"put": [{"key": "a", "source": "x"}]}}, [], "x", None,
])
def test_manifest_empty(manifest: Any) -> None:
    with pytest.raises(UsageError) as info:
        S.check_manifest_not_empty(manifest, {"field": "spec"})
    assert info.value.code == "MANIFEST_EMPTY"
    assert info.value.details == {"field": "spec", "meaningful_keys": list(S.CLI_DEPLOYABLE_KEYS)}


@pytest.mark.parametrize("manifest", [
    {"site": {"replace": {"a": "b"}}}, {"routes": {"replace": []}}, {"i18n": None},
    {"database": {"zero_downtime": False}}, {"checks": [{}]}, {"subdomains": {"set": ["x"]}},
])
def test_manifest_not_empty(manifest: dict[str, Any]) -> None:
    S.check_manifest_not_empty(manifest, {})


# --- deploy-dir and the legacy sites manifest -----------------------------------------------


def test_site_release_from_bytes() -> None:
    r = S.site_release_from_bytes("prj_1_1", {"index.html": b"<p>", "a/b.css": b"x"})
    assert r.spec == {"project": "prj_1_1", "site": {"replace": {
        "index.html": {"sha256": sha(b"<p>"), "size": 3, "contentType": "text/html; charset=utf-8"},
        "a/b.css": {"sha256": sha(b"x"), "size": 1, "contentType": "text/css; charset=utf-8"}}}}
    with pytest.raises(UsageError):
        S.site_release_from_bytes("prj_1_1", {"../x": b""})


def test_legacy_manifest(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    raw = bytes(range(256))
    (tmp_path / "dist" / "logo.png").write_bytes(raw)
    (tmp_path / "dist" / "style.css").write_bytes(b"body{}\xff")  # not UTF-8: copied verbatim
    files = S.legacy_site_files({"files": [
        {"file": "index.html", "data": "<h1>x</h1>"},
        {"file": "style.css", "path": "./dist/style.css"},
        {"path": "dist/logo.png"},
        {"file": "b.bin", "data": base64.b64encode(b"\x00\x01").decode(), "encoding": "base64"},
        {"file": ".env", "data": "SECRET=1"},
        {"file": "node_modules/x.js", "data": "1"},
        {"file": "index.html", "data": "<h1>last wins</h1>"},
    ]}, str(tmp_path))
    assert files == {"index.html": b"<h1>last wins</h1>", "style.css": b"body{}\xff", "dist/logo.png": raw,
                     "b.bin": b"\x00\x01"}


def test_legacy_manifest_errors(tmp_path: Path) -> None:
    def legacy_bad(manifest: Any, code: str = "INVALID_SPEC", base: str | None = str(tmp_path)) -> None:
        with pytest.raises((UsageError, LocalError)) as info:
            S.legacy_site_files(manifest, base)
        assert info.value.code == code, info.value.to_envelope()

    legacy_bad({"files": [{"file": "../../etc/x", "data": "1"}]})
    legacy_bad({"files": [{"file": "a", "path": "x"}]}, base=None)
    legacy_bad({"files": [{"file": "a", "path": "missing"}]}, "FILE_NOT_FOUND")
    legacy_bad({"files": [{"file": "a"}]})
    legacy_bad({"files": [{"file": "a", "data": "1"}, {"file": "a/b", "data": "2"}]})
    legacy_bad({"files": []}, "LOCAL_ERROR")
    legacy_bad({}, "LOCAL_ERROR")
    legacy_bad({"files": [{"file": ".env", "data": "x"}]}, "LOCAL_ERROR")
    legacy_bad({"files": "x"})
    legacy_bad([])
    legacy_bad({"files": [], "extra": 1})


def test_manifest_upload_size() -> None:
    r = norm({"site": {"replace": {"a": "b"}}, "idempotency_key": "k"})
    body = {"spec": r.spec, "idempotency_key": "k"}
    assert S.manifest_upload_size(r) == len(json.dumps(body, separators=(",", ":")).encode())
