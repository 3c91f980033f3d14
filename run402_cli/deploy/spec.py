"""Manifest JSON -> the wire `NormalizedReleaseSpec`, validated strictly.

Two of the official client's three layers (the SDK's own spec sits between them): the
manifest (CLI `--manifest/--spec/stdin`; `project_id`, `{path}` and `{data, encoding}` file
entries, `sql_path`/`sql_file`, `idempotency_key`), and the wire spec in the plan body
(`project`, every byte source replaced by a ContentRef `{sha256, size, contentType?}`).
Inline bytes never travel in the plan body; they stay here, in `Release.contents`
(sha256 -> where to read the bytes), for the upload step.

Validation happens before any network call and rejects, with a stable code and the JSON
path of the offending field (`details.field`):
- every unknown field at every level (`INVALID_SPEC`; close names and common typos get a
  hint: `subdomain`, `site.replcae`, `functions.x.deps`, `config.schedule`,
  `i18n.default_locale`, ...), as the JSON schema `release-spec.v1.json` and the official
  client do;
- wrong types, bad enums, `base` with both `release` and `release_id`, non-positive
  `timeoutSeconds`/`memoryMb`, secret keys, i18n tags, asset puts;
- hostile release paths (site files, function files, public-path assets, static route
  files, asset keys): empty, absolute, `\\`, NUL or control characters, `.`/`..`/empty
  segments, a trailing `/`, the reserved `_cas/`/`_staging/` prefixes, more than 1024 bytes,
  not UTF-8 -> `INVALID_SPEC`;
- `subdomains.set` with more than one name -> `SUBDOMAIN_MULTI_NOT_SUPPORTED`;
- the client-side static-route rules (no `*` in the pattern, methods exactly GET or GET+HEAD,
  a relative file), and the client-side warning `WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS`;
- the CLI's own checks: `UNSAFE_SECRET_MANIFEST` (secret values in a manifest) and
  `MANIFEST_EMPTY` (the CLI's deep-empty rule, which does not count `assets`).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from run402_cli.wire.content_types import DEFAULT_CONTENT_TYPE, guess
from run402_cli.wire.release import (
    DETECT_RULE, LOCALE_TAG, ROUTE_METHODS, SECRET_KEY, release_path_problem, route_pattern_problem,
)
from run402_cli.errors import LocalError, UsageError

__all__ = [
    "CLI_DEPLOYABLE_KEYS",
    "MANIFEST_CONTENT_TYPE",
    "Content",
    "Release",
    "check_manifest_not_empty",
    "check_release_path",
    "legacy_site_files",
    "manifest_upload_size",
    "normalize_manifest",
    "reject_unsafe_secrets",
    "site_release_from_bytes",
    "site_release_from_walk",
]

CLI_DEPLOYABLE_KEYS = ("database", "site", "functions", "secrets", "subdomains", "routes", "checks", "i18n")
SQL_CONTENT_TYPE = "application/sql"
MANIFEST_CONTENT_TYPE = "application/vnd.run402.deploy-manifest+json"
MUTATION_METHODS = ["POST", "PUT", "PATCH", "DELETE"]

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")

# Hints for the mistakes people (and agents) actually make, by field path suffix.
_FIELD_HINTS = {
    "subdomain": "The section is 'subdomains': {\"set\": [\"my-app\"]}.",
    "deps": "deps is not accepted in a deploy manifest; bundle dependencies into source, "
            "or use `run402 functions deploy --deps`.",
    "config.schedule": "schedule is a sibling of config: functions.<name>.schedule.",
    "requireAuth": "requireAuth is not accepted by this client version's deploy manifest.",
    "requireRole": "requireRole is not accepted by this client version's deploy manifest.",
    "default_locale": "Use i18n.defaultLocale (camelCase).",
    "defaultlocale": "Use i18n.defaultLocale (camelCase).",
    "site.file": "Use site.replace: a map of release path -> file entry.",
    "site.files": "Use site.replace: a map of release path -> file entry.",
    "content_type": "File entries use contentType (camelCase).",
}


# --- errors -------------------------------------------------------------------------------


def _invalid(message: str, fld: str | None, *, hint: str | None = None,
             code: str = "INVALID_SPEC", **details: Any) -> UsageError:
    d: dict[str, Any] = {}
    if fld is not None:
        d["field"] = fld
    d.update(details)
    return UsageError(message, code=code, hint=hint, details=d or None)


def _join(parent: str, key: str) -> str:
    if len(key) > 120:
        key = key[:117] + "..."
    if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key, ensure_ascii=False)}]"


def _obj(value: Any, fld: str, what: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{fld} must be {what}", fld)
    return value


def _only(obj: Mapping[str, Any], allowed: tuple[str, ...], fld: str) -> None:
    for key in obj:
        if key not in allowed:
            path = _join(fld, key)
            hint = _FIELD_HINTS.get(key) or next(
                (h for suffix, h in _FIELD_HINTS.items() if path.endswith("." + suffix)), None
            )
            if hint is None:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"Did you mean '{_join(fld, close[0])}'?" if close else (
                    f"Allowed fields: {', '.join(allowed)}." if allowed else None)
            raise _invalid(f"Unknown field {path}", path, hint=hint)


def _str(value: Any, fld: str, *, nonempty: bool = False) -> str:
    if not isinstance(value, str) or (nonempty and value == ""):
        raise _invalid(f"{fld} must be a{' non-empty' if nonempty else ''} string", fld)
    return value


def _str_list(value: Any, fld: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{fld} must be an array of strings", fld)
    return list(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _utf8(text: str, fld: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(f"{fld} is not valid Unicode (lone surrogate)", fld) from None


# --- release paths ------------------------------------------------------------------------


def check_release_path(path: Any, fld: str, *, what: str = "release path") -> str:
    """A relative POSIX release path the gateway will accept; INVALID_SPEC otherwise."""
    if not isinstance(path, str) or path == "":
        raise _invalid(f"{fld}: {what} must be a non-empty string", fld)
    shown = path.encode("utf-8", "backslashreplace").decode("utf-8")[:200]
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(f"{fld}: {what} is not valid UTF-8: {shown!r}", fld, path=shown,
                       hint="Rename the file so its name is valid UTF-8.") from None
    problem = release_path_problem(path)
    if problem:
        raise _invalid(f"{fld}: {what} {problem}: {shown!r}", fld, path=shown)
    return path


# --- contents -----------------------------------------------------------------------------


@dataclass
class Content:
    """One distinct blob the release references, and where its bytes are."""

    sha256: str
    size: int
    content_type: str | None
    label: str
    slice_kind: str  # "release" | "asset" | "mixed"
    data: bytes | None = None  # inline bytes
    path: str | None = None  # a file on disk, read when (if) it must be uploaded
    # data and path both None: a pre-resolved ContentRef, which must already be in the CAS

    @property
    def has_bytes(self) -> bool:
        return self.data is not None or self.path is not None

    def read(self, start: int = 0, end_inclusive: int | None = None) -> bytes:
        end = self.size - 1 if end_inclusive is None else end_inclusive
        if self.data is not None:
            return self.data[start : end + 1]
        if self.path is None:
            raise LocalError(f"No local bytes for content {self.sha256}", code="CONTENT_UPLOAD_FAILED")
        with open(self.path, "rb", buffering=0) as fh:
            if start:
                fh.seek(start)
            return fh.read(end + 1 - start)

    def chunks(self, start: int, end_inclusive: int, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The bytes start..end_inclusive in pieces of at most `chunk`, read as they are
        consumed (a part of a large file is never held whole). Stops early at EOF."""
        if self.data is not None:
            for at in range(start, end_inclusive + 1, chunk):
                yield self.data[at : min(at + chunk, end_inclusive + 1)]
            return
        if self.path is None:
            raise LocalError(f"No local bytes for content {self.sha256}", code="CONTENT_UPLOAD_FAILED")
        left = end_inclusive + 1 - start
        with open(self.path, "rb", buffering=0) as fh:
            if start:
                fh.seek(start)
            while left > 0:
                piece = fh.read(min(chunk, left))
                if not piece:
                    return
                left -= len(piece)
                yield piece


@dataclass
class Release:
    """A validated, normalized release: the wire spec plus what the upload step needs."""

    project: str
    spec: dict[str, Any]
    contents: dict[str, Content] = field(default_factory=dict)
    idempotency_key: str | None = None
    client_warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def slice_kinds(self) -> list[str]:
        kinds = set()
        if any(k in self.spec for k in ("database", "functions", "site")):
            kinds.add("release")
        if "assets" in self.spec:
            kinds.add("asset")
        return sorted(kinds)

    @property
    def base_is_current(self) -> bool:
        base = self.spec.get("base")
        return base is None or base == {"release": "current"}


class _Collector:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.contents: dict[str, Content] = {}

    def _add(self, sha: str, size: int, ctype: str | None, label: str, kind: str,
             data: bytes | None = None, path: str | None = None) -> None:
        known = self.contents.get(sha)
        if known is None:
            self.contents[sha] = Content(sha, size, ctype, label, kind, data, path)
            return
        if known.slice_kind != kind:
            known.slice_kind = "mixed"
        if not known.has_bytes and (data is not None or path is not None):
            known.data, known.path = data, path
        if known.content_type is None and ctype is not None:
            known.content_type = ctype

    def ref(self, sha: str, size: int, ctype: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"sha256": sha, "size": size}
        if ctype is not None:
            out["contentType"] = ctype
        return out

    def from_bytes(self, data: bytes, ctype: str | None, label: str, kind: str) -> dict[str, Any]:
        sha = hashlib.sha256(data).hexdigest()
        self._add(sha, len(data), ctype, label, kind, data=data)
        return self.ref(sha, len(data), ctype)

    def from_path(self, raw: str, fld: str, ctype: str | None, label: str, kind: str) -> dict[str, Any]:
        from run402_cli.deploy.hashcache import sha256_file

        p = Path(raw).expanduser()
        if not p.is_absolute():
            p = self.base_dir / p
        if not p.exists():
            raise UsageError(f"File not found: {raw}", code="FILE_NOT_FOUND", field=fld,
                             hint="Relative paths resolve against the manifest's directory "
                                  "(--manifest) or the current directory (--spec, stdin).",
                             details={"field": fld, "path": str(p)})
        if not p.is_file():
            raise UsageError(f"{fld} is not a regular file: {raw}", code="NOT_A_FILE", field=fld,
                             details={"field": fld, "path": str(p)})
        try:
            sha, size = sha256_file(str(p), p.stat().st_size)
        except OSError as exc:
            raise UsageError(f"Cannot read {raw}: {exc.strerror or exc}", code="FILE_NOT_FOUND",
                             field=fld, details={"field": fld, "path": str(p)}) from None
        self._add(sha, size, ctype, label, kind, path=str(p))
        return self.ref(sha, size, ctype)

    def from_ref(self, ref: Mapping[str, Any], fld: str, ctype: str | None, label: str,
                 kind: str) -> dict[str, Any]:
        _only(ref, ("sha256", "size", "contentType", "integrity"), fld)
        sha = ref.get("sha256")
        if not isinstance(sha, str) or not _HEX64.match(sha):
            raise _invalid(f"{fld}.sha256 must be 64 hex characters", f"{fld}.sha256")
        size = ref.get("size")
        if not _is_int(size) or size < 0:
            raise _invalid(f"{fld}.size must be an integer >= 0", f"{fld}.size")
        if "contentType" in ref:
            ctype = _str(ref["contentType"], f"{fld}.contentType")
        sha = sha.lower()
        self._add(sha, size, ctype, label, kind)
        out = self.ref(sha, size, ctype)
        if "integrity" in ref:
            out["integrity"] = _str(ref["integrity"], f"{fld}.integrity")
        return out


def _decode_base64(text: str, fld: str) -> bytes:
    """Node's Buffer.from(s, "base64"): standard or URL-safe alphabet, padding optional,
    characters outside the alphabet ignored."""
    cleaned = re.sub(r"[^A-Za-z0-9+/\-_]", "", text).replace("-", "+").replace("_", "/")
    if len(cleaned) % 4 == 1:
        cleaned = cleaned[:-1]
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise _invalid(f"{fld}.data is not valid base64", f"{fld}.data") from None


def _file_entry(entry: Any, fld: str, *, ctype: str | None, label: str, kind: str,
                c: _Collector) -> dict[str, Any]:
    """One manifest file entry -> a wire ContentRef. `ctype` is the guessed content type
    (None where none is guessed: a function's `source`)."""
    if isinstance(entry, str):
        return c.from_bytes(_utf8(entry, fld), ctype, label, kind)
    if not isinstance(entry, dict):
        raise _invalid(f"{fld} must be a string, {{data}}, {{path}} or a ContentRef", fld)
    if "contentType" in entry:
        ctype = _str(entry["contentType"], f"{fld}.contentType")
    if "data" in entry:
        _only(entry, ("data", "encoding", "contentType"), fld)
        data = entry["data"]
        if isinstance(data, dict):
            return c.from_ref(data, f"{fld}.data", ctype, label, kind)
        data = _str(data, f"{fld}.data")
        encoding = entry.get("encoding", "utf-8")
        if encoding == "utf-8":
            raw = _utf8(data, f"{fld}.data")
        elif encoding == "base64":
            raw = _decode_base64(data, fld)
        else:
            raise _invalid(f"{fld}.encoding must be 'utf-8' or 'base64', got {encoding!r}",
                           f"{fld}.encoding")
        return c.from_bytes(raw, ctype, label, kind)
    if "path" in entry:
        _only(entry, ("path", "contentType"), fld)
        return c.from_path(_str(entry["path"], f"{fld}.path", nonempty=True), f"{fld}.path",
                           ctype, label, kind)
    if "sha256" in entry or "size" in entry:
        return c.from_ref(entry, fld, ctype, label, kind)
    raise _invalid(f"{fld} needs one of data, path, or sha256+size", fld,
                   hint='e.g. {"data": "<html>...</html>"} or {"path": "dist/index.html"}')


def _file_set(value: Any, fld: str, c: _Collector, *, kind: str = "release",
              label_prefix: str = "") -> dict[str, Any]:
    files = _obj(value, fld, "an object mapping release paths to file entries")
    out: dict[str, Any] = {}
    for path, entry in files.items():
        efld = _join(fld, path)
        check_release_path(path, efld)
        out[path] = _file_entry(entry, efld, ctype=guess(path), label=label_prefix + path,
                                kind=kind, c=c)
    return out


# --- sections -----------------------------------------------------------------------------


def _base(value: Any) -> dict[str, Any]:
    base = _obj(value, "base")
    if "release" in base and "release_id" in base:
        raise _invalid("base cannot combine release and release_id", "base")
    if "release" in base:
        _only(base, ("release",), "base")
        if base["release"] not in ("current", "empty"):
            raise _invalid("base.release must be 'current' or 'empty'", "base.release")
        return {"release": base["release"]}
    if "release_id" in base:
        _only(base, ("release_id",), "base")
        return {"release_id": _str(base["release_id"], "base.release_id", nonempty=True)}
    _only(base, (), "base")
    raise _invalid("base needs release ('current' | 'empty') or release_id", "base")


def _migration(m: Any, fld: str, c: _Collector) -> dict[str, Any]:
    m = _obj(m, fld)
    _only(m, ("id", "checksum", "sql", "sql_ref", "sql_path", "sql_file", "transaction"), fld)
    mid = _str(m.get("id"), f"{fld}.id", nonempty=True)
    label = f"migration:{mid}"
    path = None
    for key in ("sql_path", "sql_file"):
        if key in m:
            value = _str(m[key], f"{fld}.{key}", nonempty=True)
            if path is not None and value != path:
                raise _invalid(f"{fld}: sql_path and sql_file disagree", f"{fld}.sql_file")
            path = value
    if "sql" in m:
        ref = c.from_bytes(_utf8(_str(m["sql"], f"{fld}.sql"), f"{fld}.sql"), SQL_CONTENT_TYPE,
                           label, "release")
    elif path is not None:
        pfld = f"{fld}.{'sql_path' if 'sql_path' in m else 'sql_file'}"
        ref = c.from_path(path, pfld, SQL_CONTENT_TYPE, label, "release")
        content = c.contents[ref["sha256"]]
        try:
            Content.read(content).decode("utf-8")
        except UnicodeDecodeError:
            raise _invalid(f"{pfld}: {path} is not UTF-8 text", pfld) from None
    elif "sql_ref" in m:
        ref = c.from_ref(_obj(m["sql_ref"], f"{fld}.sql_ref"), f"{fld}.sql_ref", SQL_CONTENT_TYPE,
                         label, "release")
        ref["contentType"] = SQL_CONTENT_TYPE
    else:
        raise _invalid(f"{fld} ({mid}) needs sql, sql_path, sql_file or sql_ref", fld)
    out: dict[str, Any] = {"id": mid}
    out["checksum"] = _str(m["checksum"], f"{fld}.checksum", nonempty=True) if "checksum" in m else ref["sha256"]
    out["sql_ref"] = {"sha256": ref["sha256"], "size": ref["size"], "contentType": SQL_CONTENT_TYPE}
    if "transaction" in m:
        if m["transaction"] not in ("required", "none"):
            raise _invalid(f"{fld}.transaction must be 'required' or 'none'", f"{fld}.transaction")
        out["transaction"] = m["transaction"]
    return out


def _database(value: Any, c: _Collector) -> dict[str, Any]:
    db = _obj(value, "database")
    _only(db, ("migrations", "expose", "zero_downtime"), "database")
    out: dict[str, Any] = {}
    if "migrations" in db:
        if not isinstance(db["migrations"], list):
            raise _invalid("database.migrations must be an array", "database.migrations")
        out["migrations"] = [
            _migration(m, f"database.migrations[{i}]", c) for i, m in enumerate(db["migrations"])
        ]
    if "expose" in db:
        out["expose"] = _obj(db["expose"], "database.expose")  # validated by the gateway
    if "zero_downtime" in db:
        if not isinstance(db["zero_downtime"], bool):
            raise _invalid("database.zero_downtime must be a boolean", "database.zero_downtime")
        out["zero_downtime"] = db["zero_downtime"]
    return out


def reject_unsafe_secrets(manifest: Any, details: Mapping[str, Any]) -> None:
    """UNSAFE_SECRET_MANIFEST for secret *values* in a manifest (legacy array, `set`,
    `replace_all`): they must be set through the secrets API, never deployed."""
    if not isinstance(manifest, dict) or "secrets" not in manifest:
        return
    secrets = manifest["secrets"]
    hint_set = ("Run `run402 secrets set <project> <KEY> --file <path>` first, then use "
                '`"secrets": { "require": ["KEY"] }` in the deploy manifest.')
    if isinstance(secrets, list) and secrets:
        raise UsageError(
            "Deploy manifests must not contain secret values. Legacy secrets arrays are no "
            "longer supported by deploy apply.", code="UNSAFE_SECRET_MANIFEST", hint=hint_set,
            details={**details, "field": "secrets", "legacy_shape": "array"})
    if isinstance(secrets, dict) and "set" in secrets:
        raise UsageError(
            "Deploy manifests must not use secrets.set. Secret values are write-only and must "
            "be set outside deploy specs.", code="UNSAFE_SECRET_MANIFEST", hint=hint_set,
            details={**details, "field": "secrets.set"})
    if isinstance(secrets, dict) and "replace_all" in secrets:
        raise UsageError(
            "Deploy manifests must not use secrets.replace_all. Exact replacement is not "
            "representable in the value-free deploy contract.", code="UNSAFE_SECRET_MANIFEST",
            hint="Use `secrets.require` for keys that must exist and `secrets.delete` for "
                 "explicit removals.",
            details={**details, "field": "secrets.replace_all"})


def _secrets(value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        if value:
            reject_unsafe_secrets({"secrets": value}, {})
        raise _invalid("secrets must be an object {require?, delete?}", "secrets")
    sec = _obj(value, "secrets")
    reject_unsafe_secrets({"secrets": sec}, {})
    _only(sec, ("require", "delete"), "secrets")
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key in ("require", "delete"):
        if key not in sec:
            continue
        names = _str_list(sec[key], f"secrets.{key}")
        for name in names:
            if not SECRET_KEY.match(name):
                raise _invalid(f"secrets.{key}: {name!r} is not a valid secret key "
                               "(^[A-Z_][A-Z0-9_]{0,127}$)", f"secrets.{key}")
            if name in seen:
                raise _invalid(
                    f"secrets: {name} appears twice" if seen[name] == key
                    else f"secrets: {name} is in both require and delete", f"secrets.{key}")
            seen[name] = key
        out[key] = names
    return out


def _function(fs: Any, fld: str, name: str, c: _Collector) -> dict[str, Any]:
    fs = _obj(fs, fld)
    _only(fs, ("runtime", "source", "files", "entrypoint", "config", "schedule"), fld)
    if "runtime" in fs and fs["runtime"] != "node22":
        raise _invalid(f"{fld}.runtime must be 'node22'", f"{fld}.runtime")
    out: dict[str, Any] = {"runtime": "node22"}
    if "source" in fs and "files" in fs:
        raise _invalid(f"{fld}: use either source or files, not both", fld)
    if "source" in fs:
        out["source"] = _file_entry(fs["source"], f"{fld}.source", ctype=None,
                                    label=f"function:{name}", kind="release", c=c)
    if "files" in fs:
        out["files"] = _file_set(fs["files"], f"{fld}.files", c, label_prefix=f"function:{name}/")
        if "entrypoint" not in fs:
            raise _invalid(f"{fld}.entrypoint is required with files", f"{fld}.entrypoint")
    if "entrypoint" in fs:
        out["entrypoint"] = _str(fs["entrypoint"], f"{fld}.entrypoint", nonempty=True)
    if "config" in fs:
        cfg = _obj(fs["config"], f"{fld}.config")
        _only(cfg, ("timeoutSeconds", "memoryMb"), f"{fld}.config")
        for key in ("timeoutSeconds", "memoryMb"):
            if key in cfg and (not _is_int(cfg[key]) or not 1 <= cfg[key] <= 2**53 - 1):
                raise _invalid(f"{fld}.config.{key} must be a positive integer", f"{fld}.config.{key}")
        out["config"] = dict(cfg)
    if "schedule" in fs:
        if fs["schedule"] is not None:
            _str(fs["schedule"], f"{fld}.schedule")
        out["schedule"] = fs["schedule"]
    return out


def _functions(value: Any, c: _Collector) -> dict[str, Any]:
    fns = _obj(value, "functions")
    _only(fns, ("replace", "patch"), "functions")
    out: dict[str, Any] = {}
    if "replace" in fns:
        rep = _obj(fns["replace"], "functions.replace")
        out["replace"] = {n: _function(f, _join("functions.replace", n), n, c) for n, f in rep.items()}
    if "patch" in fns:
        patch = _obj(fns["patch"], "functions.patch")
        _only(patch, ("set", "delete"), "functions.patch")
        p: dict[str, Any] = {}
        if "set" in patch:
            st = _obj(patch["set"], "functions.patch.set")
            p["set"] = {n: _function(f, _join("functions.patch.set", n), n, c) for n, f in st.items()}
        if "delete" in patch:
            p["delete"] = _str_list(patch["delete"], "functions.patch.delete")
        out["patch"] = p
    return out


def _public_paths(value: Any, fld: str) -> dict[str, Any]:
    pp = _obj(value, fld)
    mode = pp.get("mode")
    if mode == "implicit":
        _only(pp, ("mode",), fld)
        return {"mode": "implicit"}
    if mode == "explicit":
        _only(pp, ("mode", "replace"), fld)
        if "replace" not in pp:
            raise _invalid(f"{fld}.replace is required in explicit mode", f"{fld}.replace")
        table = _obj(pp["replace"], f"{fld}.replace")
        out: dict[str, Any] = {}
        for public, target in table.items():
            tfld = _join(f"{fld}.replace", public)
            if not isinstance(public, str) or not public.startswith("/"):
                raise _invalid(f"{tfld}: public paths start with '/'", tfld)
            target = _obj(target, tfld)
            _only(target, ("asset", "cache_class"), tfld)
            entry: dict[str, Any] = {"asset": check_release_path(target.get("asset"), f"{tfld}.asset",
                                                                  what="asset path")}
            if "cache_class" in target:
                entry["cache_class"] = _str(target["cache_class"], f"{tfld}.cache_class")
            out[public] = entry
        return {"mode": "explicit", "replace": out}
    raise _invalid(f"{fld}.mode must be 'implicit' or 'explicit'", f"{fld}.mode")


def _site(value: Any, c: _Collector) -> dict[str, Any]:
    site = _obj(value, "site")
    for legacy in ("file", "files"):
        if legacy in site:
            raise _invalid(f"Unknown field site.{legacy}", f"site.{legacy}",
                           hint=_FIELD_HINTS[f"site.{legacy}"])
    _only(site, ("replace", "patch", "public_paths"), "site")
    if "replace" in site and "patch" in site:
        raise _invalid("site.replace and site.patch are mutually exclusive", "site")
    out: dict[str, Any] = {}
    if "replace" in site:
        out["replace"] = _file_set(site["replace"], "site.replace", c)
    elif "patch" in site:
        patch = _obj(site["patch"], "site.patch")
        _only(patch, ("put", "delete"), "site.patch")
        p: dict[str, Any] = {}
        if "put" in patch:
            p["put"] = _file_set(patch["put"], "site.patch.put", c)
        if "delete" in patch:
            dels = _str_list(patch["delete"], "site.patch.delete")
            for i, d in enumerate(dels):
                check_release_path(d, f"site.patch.delete[{i}]")
            p["delete"] = dels
        out["patch"] = p
    if "public_paths" in site:
        out["public_paths"] = _public_paths(site["public_paths"], "site.public_paths")
    if not out:
        raise _invalid("site needs replace, patch or public_paths", "site")
    return out


def _subdomains(value: Any) -> dict[str, Any]:
    sub = _obj(value, "subdomains")
    _only(sub, ("set", "add", "remove"), "subdomains")
    out = {k: _str_list(sub[k], f"subdomains.{k}") for k in ("set", "add", "remove") if k in sub}
    if len(out.get("set", [])) > 1:
        raise _invalid(
            "subdomains.set accepts at most one subdomain per deploy", "subdomains.set",
            code="SUBDOMAIN_MULTI_NOT_SUPPORTED",
            hint="Deploy one subdomain in set, or use subdomains.add for more.",
            names=out["set"])
    return out


def _route(r: Any, fld: str) -> dict[str, Any]:
    r = _obj(r, fld)
    _only(r, ("pattern", "methods", "target", "acknowledge_readonly"), fld)
    pattern = _str(r.get("pattern"), f"{fld}.pattern", nonempty=True)
    problem = route_pattern_problem(pattern)  # the gateway's own rule, caught before any upload
    if problem:
        raise _invalid(f"{fld}.pattern {problem}: {pattern!r}", f"{fld}.pattern")
    methods = None
    if "methods" in r:
        methods = r["methods"]
        if not isinstance(methods, list) or not methods:
            raise _invalid(f"{fld}.methods must be a non-empty array (omit it for all methods)",
                           f"{fld}.methods")
        for m in methods:
            if m not in ROUTE_METHODS:
                raise _invalid(f"{fld}.methods: {m!r} is not one of {', '.join(ROUTE_METHODS)}",
                               f"{fld}.methods")
        if len(set(methods)) != len(methods):
            raise _invalid(f"{fld}.methods has duplicates", f"{fld}.methods")
    if "target" not in r:
        raise _invalid(f"{fld}.target is required", f"{fld}.target")
    target = _obj(r["target"], f"{fld}.target")
    tfld = f"{fld}.target"
    if "type" not in target:
        raise _invalid(f"{tfld} needs type 'function' or 'static'", tfld,
                       hint='Use {"type": "function", "name": "api"} or {"type": "static", "file": "login.html"}.')
    if target["type"] == "function":
        _only(target, ("type", "name"), tfld)
        _str(target.get("name"), f"{tfld}.name", nonempty=True)
    elif target["type"] == "static":
        _only(target, ("type", "file"), tfld)
        file = _str(target.get("file"), f"{tfld}.file", nonempty=True)
        if "?" in file or "#" in file:
            raise _invalid(f"{tfld}.file must not contain '?' or '#'", f"{tfld}.file")
        check_release_path(file, f"{tfld}.file", what="static route file")
        if "*" in pattern:
            raise _invalid(f"{fld}.pattern: a static route target needs an exact pattern (no '*')",
                           f"{fld}.pattern")
        if methods is None or set(methods) not in ({"GET"}, {"GET", "HEAD"}):
            raise _invalid(f"{fld}.methods must be [\"GET\"] or [\"GET\", \"HEAD\"] for a static target",
                           f"{fld}.methods")
    else:
        raise _invalid(f"{tfld}.type must be 'function' or 'static'", f"{tfld}.type")
    if "acknowledge_readonly" in r:
        if r["acknowledge_readonly"] is not True:
            raise _invalid(f"{fld}.acknowledge_readonly must be true", f"{fld}.acknowledge_readonly")
        if not (target["type"] == "function" and pattern.endswith("/*") and methods is not None
                and set(methods) <= {"GET", "HEAD"}):
            raise _invalid(
                f"{fld}.acknowledge_readonly is only valid on a function route whose pattern "
                "ends in /* and whose methods are all GET/HEAD", f"{fld}.acknowledge_readonly")
    return r


def _routes(value: Any) -> tuple[Any, list[dict[str, Any]]]:
    if value is None:
        return None, []
    routes = _obj(value, "routes")
    for key in routes:
        if key != "replace":
            raise _invalid(f"Unknown field {_join('routes', key)}", _join("routes", key),
                           hint='Routes are an array, not a path-keyed map: '
                                '{"replace": [{"pattern": "/api/*", "target": {"type": "function", "name": "api"}}]}')
    if "replace" not in routes or not isinstance(routes["replace"], list):
        raise _invalid("routes.replace must be an array", "routes.replace")
    entries = [_route(r, f"routes.replace[{i}]") for i, r in enumerate(routes["replace"])]
    readonly = sorted({
        r["pattern"] for r in entries
        if r["target"]["type"] == "function" and r["pattern"].endswith("/*")
        and r.get("methods") and set(r["methods"]) <= {"GET", "HEAD"}
        and r.get("acknowledge_readonly") is not True
    })
    warnings = []
    if readonly:
        warnings.append({
            "code": "WILDCARD_ROUTE_EXCLUDES_MUTATION_METHODS",
            "severity": "warn",
            "requires_confirmation": True,
            "message": "Wildcard function route(s) only allow GET/HEAD, so POST/PUT/PATCH/DELETE "
                       f"requests under them are rejected before the function runs: {', '.join(readonly)}",
            "affected": readonly,
            "confidence": "heuristic",
            "details": {
                "missing_common_methods": list(MUTATION_METHODS),
                "fix": {"action": "add_methods_or_acknowledge_readonly", "path": "routes.replace",
                        "acknowledge_field": "acknowledge_readonly"},
            },
        })
    return {"replace": entries}, warnings


def _i18n(value: Any) -> Any:
    if value is None:
        return None
    i18n = _obj(value, "i18n")
    _only(i18n, ("defaultLocale", "locales", "detect"), "i18n")
    locales = i18n.get("locales")
    if not isinstance(locales, list) or not 1 <= len(locales) <= 50:
        raise _invalid("i18n.locales must be an array of 1-50 locale tags", "i18n.locales")
    for tag in locales:
        if not isinstance(tag, str) or not LOCALE_TAG.match(tag):
            raise _invalid(f"i18n.locales: {tag!r} is not a valid locale tag", "i18n.locales")
    if len(set(locales)) != len(locales):
        raise _invalid("i18n.locales has duplicates", "i18n.locales")
    default = i18n.get("defaultLocale")
    if not isinstance(default, str) or default not in locales:
        raise _invalid("i18n.defaultLocale must be byte-identical to one entry of i18n.locales",
                       "i18n.defaultLocale")
    out: dict[str, Any] = {"defaultLocale": default, "locales": list(locales)}
    if "detect" in i18n:
        detect = i18n["detect"]
        if not isinstance(detect, list) or len(detect) > 10:
            raise _invalid("i18n.detect must be an array of at most 10 sources", "i18n.detect")
        for d in detect:
            if not isinstance(d, str) or not DETECT_RULE.match(d):
                raise _invalid(f"i18n.detect: {d!r} must be 'accept-language' or 'cookie:<name>'",
                               "i18n.detect")
        out["detect"] = list(detect)
    return out


def _assets(value: Any, c: _Collector) -> dict[str, Any]:
    assets = _obj(value, "assets")
    _only(assets, ("put", "delete", "sync"), "assets")
    out: dict[str, Any] = {}
    put_keys: set[str] = set()
    if "put" in assets:
        if not isinstance(assets["put"], list):
            raise _invalid("assets.put must be an array", "assets.put")
        puts = []
        for i, e in enumerate(assets["put"]):
            fld = f"assets.put[{i}]"
            e = _obj(e, fld)
            _only(e, ("key", "source", "sha256", "size_bytes", "content_type", "visibility", "immutable"), fld)
            if "key" not in e:
                raise _invalid(f"{fld}.key is required", f"{fld}.key")
            key = check_release_path(e["key"], f"{fld}.key", what="asset key")
            if key in put_keys:
                raise _invalid(f"assets.put: key {key!r} appears twice", f"{fld}.key",
                               code="ASSET_DUPLICATE_KEY_IN_PUT", key=key)
            put_keys.add(key)
            if ("source" in e) == ("sha256" in e):
                raise _invalid(f"{fld} needs exactly one of source or sha256", fld)
            explicit = _str(e["content_type"], f"{fld}.content_type") if "content_type" in e else None
            label = f"assets.put[{i}] ({key})"
            if "source" in e:
                ref = _file_entry(e["source"], f"{fld}.source", ctype=None, label=label, kind="asset", c=c)
                sha, size = ref["sha256"], ref["size"]
                ctype = explicit or ref.get("contentType") or guess(key)
            else:
                sha = e["sha256"]
                if not isinstance(sha, str) or not _HEX64.match(sha):
                    raise _invalid(f"{fld}.sha256 must be 64 hex characters", f"{fld}.sha256")
                size = e.get("size_bytes")
                if not _is_int(size) or size < 0:
                    raise _invalid(f"{fld}.size_bytes is required with sha256 (integer >= 0)",
                                   f"{fld}.size_bytes")
                sha = sha.lower()
                ctype = explicit or guess(key)
                c.from_ref({"sha256": sha, "size": size}, fld, ctype, label, "asset")
            if "visibility" in e and e["visibility"] not in ("public", "private"):
                raise _invalid(f"{fld}.visibility must be 'public' or 'private'", f"{fld}.visibility")
            if "immutable" in e and not isinstance(e["immutable"], bool):
                raise _invalid(f"{fld}.immutable must be a boolean", f"{fld}.immutable")
            puts.append({"key": key, "sha256": sha, "size_bytes": size,
                         "content_type": ctype or DEFAULT_CONTENT_TYPE,
                         "visibility": e.get("visibility", "public"),
                         "immutable": e.get("immutable", True)})
        out["put"] = puts
    if "delete" in assets:
        dels = _str_list(assets["delete"], "assets.delete")
        for key in dels:
            if key in put_keys:
                raise _invalid(f"assets: key {key!r} is both put and deleted", "assets.delete",
                               code="ASSET_KEY_IN_PUT_AND_DELETE", key=key)
        out["delete"] = dels
    if "sync" in assets:
        sync = _obj(assets["sync"], "assets.sync")
        _only(sync, ("prefix", "prune", "confirm"), "assets.sync")
        s: dict[str, Any] = {"prefix": _str(sync.get("prefix"), "assets.sync.prefix", nonempty=True)}
        if sync.get("prune") is not True:
            raise _invalid("assets.sync.prune must be true", "assets.sync.prune")
        s["prune"] = True
        if "confirm" in sync:
            conf = _obj(sync["confirm"], "assets.sync.confirm")
            _only(conf, ("base_revision", "delete_set_digest", "expected_delete_count"), "assets.sync.confirm")
            _str(conf.get("base_revision"), "assets.sync.confirm.base_revision")
            _str(conf.get("delete_set_digest"), "assets.sync.confirm.delete_set_digest")
            n = conf.get("expected_delete_count")
            if not _is_int(n) or n < 0:
                raise _invalid("assets.sync.confirm.expected_delete_count must be an integer >= 0",
                               "assets.sync.confirm.expected_delete_count")
            s["confirm"] = dict(conf)
        out["sync"] = s
    return out


def _checks(value: Any) -> list[Any]:
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise _invalid("checks must be an array of objects", "checks")
    return value


# --- entry points -------------------------------------------------------------------------


def _has_content(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, list):
        return len(v) > 0
    if isinstance(v, dict):
        return any(_has_content(x) for x in v.values())
    if isinstance(v, str):
        return len(v) > 0
    return True


def check_manifest_not_empty(manifest: Any, details: Mapping[str, Any]) -> None:
    """The CLI's MANIFEST_EMPTY rule: at least one of CLI_DEPLOYABLE_KEYS carries
    something (deep check; `routes: {replace: []}` and `i18n: null` count; `assets` does not)."""
    def deployable(key: str) -> bool:
        if key not in manifest:
            return False
        value = manifest[key]
        if key == "routes" and isinstance(value, dict) and isinstance(value.get("replace"), list):
            return True
        if key == "i18n" and value is None:
            return True
        return _has_content(value)

    if isinstance(manifest, dict) and any(deployable(k) for k in CLI_DEPLOYABLE_KEYS):
        return
    raise UsageError(
        "Manifest contains no deployable sections. Expected at least one of: "
        + ", ".join(CLI_DEPLOYABLE_KEYS),
        code="MANIFEST_EMPTY",
        hint="Did you mean to write a 'site.replace' or 'database.migrations' block? "
             "See https://run402.com/schemas/release-spec.v1.json",
        details={**details, "meaningful_keys": list(CLI_DEPLOYABLE_KEYS)},
    )


_TOP_LEVEL = ("$schema", "project", "project_id", "idempotency_key", "idempotencyKey", "base",
              "database", "secrets", "functions", "site", "assets", "subdomains", "routes",
              "checks", "i18n")


def normalize_manifest(
    manifest: Any,
    *,
    base_dir: str | os.PathLike[str],
    project: str | None = None,
    default_project: Callable[[], str] | None = None,
) -> Release:
    """Validate a manifest and build the wire spec. `project` is the `--project` flag (must
    match the manifest's); `default_project` is called only when neither gives one."""
    m = _obj(manifest, "manifest", "a JSON object")
    _only(m, _TOP_LEVEL, "")
    if "$schema" in m:
        _str(m["$schema"], "$schema")
    ids = {k: _str(m[k], k, nonempty=True) for k in ("project", "project_id") if k in m}
    if len(set(ids.values())) > 1:
        raise _invalid("project and project_id disagree", "project_id", **ids)
    manifest_project = ids.get("project") or ids.get("project_id")
    if project and manifest_project and project != manifest_project:
        raise UsageError(
            f"project_id conflict: manifest project={manifest_project} but --project={project}",
            details={"spec_project_id": manifest_project, "flag_project_id": project})
    keys = {k: _str(m[k], k, nonempty=True) for k in ("idempotency_key", "idempotencyKey") if k in m}
    if len(set(keys.values())) > 1:
        raise _invalid("idempotency_key and idempotencyKey disagree", "idempotencyKey")
    chosen = project or manifest_project
    if chosen is None:
        if default_project is None:
            raise _invalid("The manifest has no project_id", "project_id",
                           hint="Add \"project_id\" to the manifest or pass --project.")
        chosen = default_project()

    c = _Collector(Path(base_dir))
    spec: dict[str, Any] = {"project": chosen}
    warnings: list[dict[str, Any]] = []
    if "base" in m:
        spec["base"] = _base(m["base"])
    if "database" in m:
        spec["database"] = _database(m["database"], c)
    if "secrets" in m:
        spec["secrets"] = _secrets(m["secrets"])
    if "functions" in m:
        spec["functions"] = _functions(m["functions"], c)
    if "site" in m:
        spec["site"] = _site(m["site"], c)
    if "subdomains" in m:
        spec["subdomains"] = _subdomains(m["subdomains"])
    if "routes" in m:
        spec["routes"], warnings = _routes(m["routes"])
    if "assets" in m:
        spec["assets"] = _assets(m["assets"], c)
    if "i18n" in m:
        spec["i18n"] = _i18n(m["i18n"])
    if "checks" in m:
        spec["checks"] = _checks(m["checks"])
    idem = keys.get("idempotency_key") or keys.get("idempotencyKey")
    return Release(project=chosen, spec=spec, contents=c.contents, idempotency_key=idem,
                   client_warnings=warnings)


def site_release_from_walk(project: str, walk: Any, hashes: Mapping[str, tuple[str, int]], *,
                           validate: bool = True) -> Release:
    """`{project, site: {replace: {...every walked file...}}}` with the bytes left on disk.
    `validate=False` when the caller already checked every key with check_release_path."""
    c = _Collector(Path(walk.root))
    files: dict[str, Any] = {}
    for f in walk.files:
        if validate:
            check_release_path(f.key, _join("site.replace", f.key), what="file name")
        sha, size = hashes[f.key]
        ctype = guess(f.key)
        c._add(sha, size, ctype, f.key, "release", path=f.path)
        files[f.key] = c.ref(sha, size, ctype)
    return Release(project=project, spec={"project": project, "site": {"replace": files}},
                   contents=c.contents)


def site_release_from_bytes(project: str, files: Mapping[str, bytes]) -> Release:
    c = _Collector(Path("."))
    out: dict[str, Any] = {}
    for key, data in files.items():
        check_release_path(key, _join("site.replace", key), what="file name")
        out[key] = c.from_bytes(data, guess(key), key, "release")
    return Release(project=project, spec={"project": project, "site": {"replace": out}},
                   contents=c.contents)


def legacy_site_files(manifest: Any, manifest_dir: str | None) -> dict[str, bytes]:
    """The legacy `sites deploy` manifest `{files: [{file, data|path, encoding?}]}` -> bytes
    per release path, filtered with the walk's name rules (the official CLI writes the
    files to a temp dir and walks it; we apply the same rules in memory). `path` entries
    need `manifest_dir` (a --manifest file); they are copied byte for byte."""
    from run402_cli.deploy.walk import is_skipped

    if not isinstance(manifest, dict):
        raise _invalid("The manifest must be a JSON object {\"files\": [...]}", "manifest")
    _only(manifest, ("files",), "")
    entries = manifest.get("files") or []
    if not isinstance(entries, list):
        raise _invalid("files must be an array", "files")
    out: dict[str, bytes] = {}
    for i, e in enumerate(entries):
        fld = f"files[{i}]"
        e = _obj(e, fld)
        _only(e, ("file", "data", "path", "encoding"), fld)
        name = e.get("file", e.get("path"))
        name = _str(name, f"{fld}.file", nonempty=True)
        check_release_path(name, f"{fld}.file", what="file name")
        encoding = e.get("encoding", "utf-8")
        if encoding not in ("utf-8", "base64"):
            raise _invalid(f"{fld}.encoding must be 'utf-8' or 'base64'", f"{fld}.encoding")
        if "data" in e:
            data = _str(e["data"], f"{fld}.data")
            raw = _decode_base64(data, fld) if encoding == "base64" else _utf8(data, f"{fld}.data")
        elif "path" in e:
            if manifest_dir is None:
                raise _invalid(f"{fld}: a manifest read from stdin must inline its files with data",
                               f"{fld}.path", hint="Use --manifest <file> for path entries.")
            p = Path(_str(e["path"], f"{fld}.path", nonempty=True)).expanduser()
            if not p.is_absolute():
                p = Path(manifest_dir) / p
            try:
                raw = p.read_bytes()
            except FileNotFoundError:
                raise UsageError(f"File not found: {e['path']}", code="FILE_NOT_FOUND",
                                 field=f"{fld}.path", details={"field": f"{fld}.path", "path": str(p)}) from None
            except IsADirectoryError:
                raise UsageError(f"{fld}.path is a directory: {e['path']}", code="NOT_A_FILE",
                                 field=f"{fld}.path", details={"field": f"{fld}.path", "path": str(p)}) from None
            except OSError as exc:
                raise UsageError(f"Cannot read {e['path']}: {exc.strerror or exc}", code="FILE_NOT_FOUND",
                                 field=f"{fld}.path", details={"field": f"{fld}.path", "path": str(p)}) from None
        else:
            raise _invalid(f"{fld} needs data or path", fld)
        if any(is_skipped(seg) for seg in name.split("/")):
            continue  # what the walk of the staged temp dir would skip
        out[name] = raw
    keys = set(out)
    for key in keys:
        parts = key.split("/")
        for n in range(1, len(parts)):
            if "/".join(parts[:n]) in keys:
                raise _invalid(f"files: {'/'.join(parts[:n])!r} is both a file and a directory",
                               "files", path=key)
    if not out:
        raise LocalError("manifest contains no deployable files", code="LOCAL_ERROR",
                         hint="List files as {\"file\": \"index.html\", \"data\": \"...\"}; "
                              "skipped names (.git, node_modules, .env*, keys) are never deployed.",
                         details={"reason": "no_deployable_files"})
    return out


def manifest_upload_size(release: Release) -> int:
    """Bytes of the inline plan body `{spec, idempotency_key?}` (the 5 MiB escape hatch)."""
    body: dict[str, Any] = {"spec": release.spec}
    if release.idempotency_key:
        body["idempotency_key"] = release.idempotency_key
    return len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
