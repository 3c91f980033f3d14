"""Strict validation of the wire `NormalizedReleaseSpec` the CLI plans with (schema
`release-spec.v1.json`, every byte source a ContentRef).

The gateway trusts nothing the client normalized: every level rejects unknown fields, every
site path is checked before it can become a key of a release (paths never touch the
filesystem — objects are addressed by digest — but a hostile key must still never be stored
or served). Every refusal is a 400 `INVALID_SPEC` whose `details.path` names the offending
field, so an agent can fix exactly that. The functions slice's own rules live with the functions
room (functions/specs.py), the assets slice's with the storage room (storage/slice.py).
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from run402_cli.local.deploy.cas import SHA256_RE
from run402_cli.local.errors import GatewayError
from run402_cli.local.functions import specs as function_specs
from run402_cli.local.storage import slice as asset_slice
from run402_cli.wire.functions import function_name_problem
from run402_cli.wire.release import (
    CONTROL_CHARS, DETECT_RULE, LOCALE_TAG, ROUTE_METHODS, SECRET_KEY, release_path_problem,
    route_pattern_problem, subdomain_problem,
)

__all__ = ["validate_body", "validate_spec"]

_TOP = {"project", "base", "database", "secrets", "functions", "site", "subdomains", "routes", "assets",
        "checks", "i18n"}
MAX_FILES = 25_000
MAX_ROUTES = 500


def _bad(path: str, message: str, code: str = "INVALID_SPEC", status: int = 400, **extra: Any) -> NoReturn:
    raise GatewayError(status, code, f"{path}: {message}" if path else message, category="deploy",
                       details={"path": path, **extra}, next_actions=[{"action": "edit_spec", "path": path}])


def _obj(value: Any, path: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        _bad(path, "must be an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        _bad(f"{path}.{unknown[0]}" if path else unknown[0], "unknown field", allowed=sorted(allowed))
    for key in required:
        if key not in value:
            _bad(f"{path}.{key}" if path else key, "is required")
    return value


def _str_list(value: Any, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        _bad(path, "must be an array of strings")
    if len(set(value)) != len(value):
        _bad(path, "has duplicate entries")
    return value


def _content_ref(value: Any, path: str) -> dict[str, Any]:
    if isinstance(value, (str, bytes)) or (isinstance(value, dict) and ({"path", "data"} & set(value))):
        _bad(path, "must be a ContentRef {sha256, size, contentType?} on the wire (the client hashes files "
                   "and uploads their bytes; paths and inline data never travel in a plan)")
    ref = _obj(value, path, {"sha256", "size", "contentType", "integrity"}, ("sha256", "size"))
    if not isinstance(ref["sha256"], str) or not SHA256_RE.match(ref["sha256"]):
        _bad(path + ".sha256", "must be 64 lowercase hex characters")
    if isinstance(ref["size"], bool) or not isinstance(ref["size"], int) or ref["size"] < 0:
        _bad(path + ".size", "must be a non-negative integer")
    for key in ("contentType", "integrity"):
        if key in ref and (not isinstance(ref[key], str) or len(ref[key]) > 255 or CONTROL_CHARS.search(ref[key])
                           or not ref[key].isascii()):
            _bad(f"{path}.{key}", "must be a short ASCII string")
    return ref


def _file_set(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _bad(path, "must be an object of {asset path: ContentRef}")
    if len(value) > MAX_FILES:
        _bad(path, f"has more than {MAX_FILES} files")
    for key, ref in value.items():
        problem = release_path_problem(key)
        if problem:
            _bad(f"{path}[{key!r}]", f"site path {problem}", reason=problem)
        _content_ref(ref, f"{path}[{key!r}]")
    return value


def _public_paths(value: Any, path: str) -> None:
    if not isinstance(value, dict) or value.get("mode") not in ("implicit", "explicit"):
        _bad(path + ".mode", 'must be "implicit" or "explicit"')
    if value["mode"] == "implicit":
        _obj(value, path, {"mode"})
        return
    _obj(value, path, {"mode", "replace"}, ("replace",))
    if not isinstance(value["replace"], dict):
        _bad(path + ".replace", "must be an object of {public path: {asset, cache_class?}}")
    for public, entry in value["replace"].items():
        where = f"{path}.replace[{public!r}]"
        if (not isinstance(public, str) or not public.startswith("/") or len(public.encode()) > 1024
                or CONTROL_CHARS.search(public) or "\\" in public or "?" in public or "#" in public
                or any(seg in (".", "..") for seg in public.split("/"))):
            _bad(where, "public path must be absolute (/...), without ?, #, \\, '.'/'..' segments or control characters")
        _obj(entry, where, {"asset", "cache_class"}, ("asset",))
        problem = release_path_problem(entry["asset"])
        if problem:
            _bad(where + ".asset", problem)
        if "cache_class" in entry and (not isinstance(entry["cache_class"], str) or not entry["cache_class"]):
            _bad(where + ".cache_class", "must be a non-empty string")


def _site(value: Any) -> None:
    if isinstance(value, dict) and ({"file", "files"} & set(value)):
        _bad("site.files" if "files" in value else "site.file", "unknown field; use site.replace (whole site) "
             "or site.patch.put (some files)")
    site = _obj(value, "site", {"replace", "patch", "public_paths"})
    if "replace" in site and "patch" in site:
        _bad("site", "replace and patch are mutually exclusive")
    if not site:
        _bad("site", "needs replace, patch or public_paths")
    if "replace" in site:
        _file_set(site["replace"], "site.replace")
    if "patch" in site:
        patch = _obj(site["patch"], "site.patch", {"put", "delete"})
        if "put" in patch:
            _file_set(patch["put"], "site.patch.put")
        for i, p in enumerate(_str_list(patch.get("delete", []), "site.patch.delete")):
            problem = release_path_problem(p)
            if problem:
                _bad(f"site.patch.delete[{i}]", problem)
            if p in patch.get("put", {}):
                _bad(f"site.patch.delete[{i}]", "is also in site.patch.put")
    if "public_paths" in site:
        _public_paths(site["public_paths"], "site.public_paths")


def _database(value: Any) -> None:
    db = _obj(value, "database", {"migrations", "expose", "zero_downtime"})
    if "zero_downtime" in db and not isinstance(db["zero_downtime"], bool):
        _bad("database.zero_downtime", "must be a boolean")
    if "expose" in db and not isinstance(db["expose"], dict):
        _bad("database.expose", "must be an object (the expose manifest)")
    migrations = db.get("migrations", [])
    if not isinstance(migrations, list):
        _bad("database.migrations", "must be an array")
    seen: set[str] = set()
    for i, m in enumerate(migrations):
        where = f"database.migrations[{i}]"
        if isinstance(m, dict) and ({"sql", "sql_path", "sql_file"} & set(m)):
            _bad(where, "on the wire a migration carries sql_ref (a ContentRef of its SQL), not sql/sql_path")
        _obj(m, where, {"id", "checksum", "sql_ref", "transaction"}, ("id", "sql_ref"))
        mid = m["id"]
        if not isinstance(mid, str) or not 1 <= len(mid) <= 255 or CONTROL_CHARS.search(mid):
            _bad(where + ".id", "must be 1-255 characters without control characters")
        if mid in seen:
            _bad(where + ".id", f"duplicate migration id {mid!r}")
        seen.add(mid)
        if "checksum" in m and (not isinstance(m["checksum"], str) or not 1 <= len(m["checksum"]) <= 128
                                or CONTROL_CHARS.search(m["checksum"])):
            _bad(where + ".checksum", "must be a string (hex SHA-256 of the SQL)")
        _content_ref(m["sql_ref"], where + ".sql_ref")
        if m.get("transaction", "required") not in ("required", "none"):
            _bad(where + ".transaction", 'must be "required" or "none"')


def _secrets(value: Any) -> None:
    sec = _obj(value, "secrets", {"require", "delete"})
    for key in ("require", "delete"):
        for i, k in enumerate(_str_list(sec.get(key, []), f"secrets.{key}")):
            if not SECRET_KEY.match(k):
                _bad(f"secrets.{key}[{i}]", "must match ^[A-Z_][A-Z0-9_]{0,127}$")
    both = set(sec.get("require", [])) & set(sec.get("delete", []))
    if both:
        _bad("secrets", f"{sorted(both)[0]} is both required and deleted")


def _subdomains(value: Any) -> None:
    sub = _obj(value, "subdomains", {"set", "add", "remove"})
    if len(sub) > 1:
        _bad("subdomains", "use one of set, add or remove per deploy", code="SUBDOMAIN_MODE_CONFLICT")
    for key, names in sub.items():
        for i, name in enumerate(_str_list(names, f"subdomains.{key}")):
            problem = subdomain_problem(name)
            if problem and (key != "remove" or problem[0] == "INVALID_SUBDOMAIN"):
                _bad(f"subdomains.{key}[{i}]", f"{name!r} {problem[1]}", code=problem[0],
                     status=409 if problem[0] == "SUBDOMAIN_RESERVED" else 400, name=name)


def _pattern(p: Any, where: str) -> None:
    problem = route_pattern_problem(p)
    if problem:
        _bad(where, problem)


def _routes(value: Any) -> None:
    if value is None:
        return
    routes = _obj(value, "routes", {"replace"}, ("replace",))["replace"]
    if not isinstance(routes, list):
        _bad("routes.replace", "must be an array (path-keyed maps are not accepted)")
    if len(routes) > MAX_ROUTES:
        _bad("routes.replace", f"has more than {MAX_ROUTES} routes")
    seen: set[str] = set()
    for i, r in enumerate(routes):
        where = f"routes.replace[{i}]"
        _obj(r, where, {"pattern", "methods", "target", "acknowledge_readonly"}, ("pattern", "target"))
        _pattern(r["pattern"], where + ".pattern")
        key = r["pattern"] if r["pattern"].endswith("/*") or r["pattern"] == "/" else r["pattern"].rstrip("/")
        if key in seen:
            _bad(where + ".pattern", f"duplicate route pattern {r['pattern']!r}")
        seen.add(key)
        if "methods" in r:
            methods = _str_list(r["methods"], where + ".methods")
            if not methods or any(m not in ROUTE_METHODS for m in methods):
                _bad(where + ".methods", f"must be a non-empty subset of {list(ROUTE_METHODS)}")
        target = r["target"]
        if isinstance(target, dict) and target.get("type") == "function":
            _obj(target, where + ".target", {"type", "name"}, ("type", "name"))
            if function_name_problem(target["name"]):
                _bad(where + ".target.name", f"function name {function_name_problem(target['name'])}")
            if r.get("acknowledge_readonly", True) is not True:
                _bad(where + ".acknowledge_readonly", "can only be true")
            if "acknowledge_readonly" in r and (not r["pattern"].endswith("/*") or "methods" not in r
                                                or set(r["methods"]) - {"GET", "HEAD"}):
                _bad(where + ".acknowledge_readonly", "is only valid on a wildcard route whose methods are all GET/HEAD")
            continue
        _obj(target, where + ".target", {"type", "file"}, ("type", "file"))
        if target["type"] != "static":
            _bad(where + ".target.type", 'must be "static" or "function"')
        f = target["file"]
        if not isinstance(f, str) or "?" in f or "#" in f or release_path_problem(f):
            _bad(where + ".target.file", "must be a relative release asset path")
        if "*" in r["pattern"]:
            _bad(where + ".pattern", "a static route target needs an exact pattern (no *)")
        if sorted(r.get("methods", [])) not in (["GET"], ["GET", "HEAD"]):
            _bad(where + ".methods", 'a static route needs methods ["GET"] or ["GET", "HEAD"]')
        if "acknowledge_readonly" in r:
            _bad(where + ".acknowledge_readonly", "is only valid on function routes")


def _i18n(value: Any) -> None:
    if value is None:
        return
    obj = _obj(value, "i18n", {"defaultLocale", "locales", "detect"}, ("defaultLocale", "locales"))
    locales = _str_list(obj["locales"], "i18n.locales")
    if not 1 <= len(locales) <= 50 or not all(LOCALE_TAG.match(x) for x in locales):
        _bad("i18n.locales", "must hold 1-50 locale tags")
    if obj["defaultLocale"] not in locales:
        _bad("i18n.defaultLocale", "must be one of i18n.locales")
    if "detect" in obj:
        detect = _str_list(obj["detect"], "i18n.detect")
        if len(detect) > 10 or not all(DETECT_RULE.match(d) for d in detect):
            _bad("i18n.detect", 'entries are "accept-language" or "cookie:<name>", at most 10')


def _base(value: Any) -> None:
    if isinstance(value, dict) and "release_id" in value:
        _obj(value, "base", {"release_id"})
        if not isinstance(value["release_id"], str) or not re.match(r"^rel_[0-9a-f]{8,64}$", value["release_id"]):
            _bad("base.release_id", "must be a release id (rel_...)")
        return
    _obj(value, "base", {"release"}, ("release",))
    if value["release"] not in ("current", "empty"):
        _bad("base.release", 'must be "current" or "empty" (or use base.release_id)')


def validate_spec(spec: Any) -> dict[str, Any]:
    spec = _obj(spec, "", _TOP, ("project",))
    if not isinstance(spec["project"], str) or not spec["project"].startswith("prj_"):
        _bad("project", "must be a project id (prj_...)")
    if "functions" in spec:
        function_specs.validate_slice(spec["functions"], _content_ref)
    if "assets" in spec:
        asset_slice.validate_slice(spec["assets"])
    if "base" in spec:
        _base(spec["base"])
    if "site" in spec:
        _site(spec["site"])
    if "database" in spec:
        _database(spec["database"])
    if "secrets" in spec:
        _secrets(spec["secrets"])
    if "subdomains" in spec:
        _subdomains(spec["subdomains"])
    if "routes" in spec:
        _routes(spec["routes"])
    if "i18n" in spec:
        _i18n(spec["i18n"])
    if "checks" in spec:
        if not isinstance(spec["checks"], list) or not all(isinstance(c, dict) for c in spec["checks"]) \
                or len(spec["checks"]) > 50:
            _bad("checks", "must be an array of at most 50 objects")
    return spec


def validate_body(body: Any, *, dry_run: bool) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """(spec, manifest_ref, idempotency_key) of a plan request body."""
    body = _obj(body, "", {"spec", "manifest_ref", "idempotency_key"}, ("spec",))
    key = body.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 255 or CONTROL_CHARS.search(key)):
        _bad("idempotency_key", "must be 1-255 characters")
    if dry_run and key is not None:
        _bad("idempotency_key", "a dry-run plan takes no idempotency key")
    ref = None
    if body.get("manifest_ref") is not None:
        if dry_run:
            raise GatewayError(400, "DRY_RUN_REQUIRES_INLINE_SPEC", "A dry-run plan needs the spec inline",
                               category="deploy")
        ref = _content_ref(body["manifest_ref"], "manifest_ref")
        _obj(body["spec"], "spec", {"project"}, ("project",))
        return body["spec"], ref, key
    return validate_spec(body["spec"]), None, key
