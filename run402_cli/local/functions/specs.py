"""A release's functions: the FunctionSpec rules the gateway enforces, how a spec's `functions`
slice turns the base release's table into the next one, and the tier's caps on it.

In a release state, `functions` is {name: entry}:
    runtime             "node22"
    source | files+entrypoint   ContentRefs (the sources, in the CAS like site files)
    config              {timeoutSeconds, memoryMb}
    schedule            5-field cron or None
    deps, deps_resolved the npm packages a `functions deploy --deps` installed
    code_digest         what the bundle was built from (sources, entrypoint, deps)
    bundle              {sha256, size} of the built ES module (set at commit, by build.py)
    runtime_version     the bundled @run402/functions version
    created_at, updated_at
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, NoReturn

from run402_cli.local.errors import GatewayError
from run402_cli.wire import cron
from run402_cli.wire.functions import TIER_FUNCTION_LIMITS, function_name_problem
from run402_cli.wire.release import release_path_problem

__all__ = ["DEFAULT_MEMORY_MB", "DEFAULT_TIMEOUT_SECONDS", "apply_slice", "check_tier",
           "code_digest", "functions_diff", "route_warnings", "validate_slice"]

DEFAULT_TIMEOUT_SECONDS = 10
DEFAULT_MEMORY_MB = 128
_SPEC_FIELDS = {"runtime", "source", "files", "entrypoint", "config", "schedule"}
MAX_FUNCTION_FILES = 1000


def _bad(path: str, message: str, code: str = "INVALID_SPEC", status: int = 400, **details: Any) -> NoReturn:
    raise GatewayError(status, code, f"{path}: {message}", category="deploy", details={"path": path, **details},
                       next_actions=[{"action": "edit_spec", "path": path}])


def _int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31:
        _bad(path, "must be a positive integer")
    return value


def _function_spec(fs: Any, path: str, content_ref: Any) -> None:
    if not isinstance(fs, dict):
        _bad(path, "must be an object (a FunctionSpec)")
    unknown = sorted(set(fs) - _SPEC_FIELDS)
    if unknown:
        _bad(f"{path}.{unknown[0]}", "unknown field", allowed=sorted(_SPEC_FIELDS))
    if fs.get("runtime", "node22") != "node22":
        _bad(f"{path}.runtime", 'must be "node22"')
    if ("source" in fs) == ("files" in fs):
        _bad(path, "needs exactly one of source (one module) or files + entrypoint")
    if "source" in fs:
        content_ref(fs["source"], f"{path}.source")
        if "entrypoint" in fs:
            _bad(f"{path}.entrypoint", "only goes with files")
    else:
        files = fs["files"]
        if not isinstance(files, dict) or not files or len(files) > MAX_FUNCTION_FILES:
            _bad(f"{path}.files", f"must be an object of 1-{MAX_FUNCTION_FILES} {{relative path: ContentRef}}")
        for rel, ref in files.items():
            problem = release_path_problem(rel)
            if problem:
                _bad(f"{path}.files[{rel!r}]", problem)
            content_ref(ref, f"{path}.files[{rel!r}]")
        if not isinstance(fs.get("entrypoint"), str) or fs["entrypoint"] not in files:
            _bad(f"{path}.entrypoint", "is required with files and must name one of them")
    config = fs.get("config")
    if config is not None:
        if not isinstance(config, dict) or set(config) - {"timeoutSeconds", "memoryMb"}:
            _bad(f"{path}.config", "takes only timeoutSeconds and memoryMb")
        for key in ("timeoutSeconds", "memoryMb"):
            if key in config:
                _int(config[key], f"{path}.config.{key}")
    schedule = fs.get("schedule")
    if schedule is not None:
        if not isinstance(schedule, str):
            _bad(f"{path}.schedule", "must be a 5-field cron expression or null")
        try:
            cron.parse(schedule)
        except cron.CronError as exc:
            _bad(f"{path}.schedule", str(exc))


def validate_slice(value: Any, content_ref: Any) -> None:
    """The `functions` slice of a wire spec (content_ref: the spec validator's ContentRef check)."""
    if not isinstance(value, dict) or not value or set(value) - {"replace", "patch"}:
        _bad("functions", "must be {replace: {...}} or {patch: {set?, delete?}}")
    if "replace" in value and "patch" in value:
        _bad("functions", "replace and patch are mutually exclusive")
    groups: list[tuple[str, Any]] = []
    if "replace" in value:
        groups.append(("functions.replace", value["replace"]))
    if "patch" in value:
        patch = value["patch"]
        if not isinstance(patch, dict) or set(patch) - {"set", "delete"}:
            _bad("functions.patch", "takes only set and delete")
        if "set" in patch:
            groups.append(("functions.patch.set", patch["set"]))
        deletes = patch.get("delete", [])
        if not isinstance(deletes, list) or not all(isinstance(d, str) for d in deletes) \
                or len(set(deletes)) != len(deletes):
            _bad("functions.patch.delete", "must be an array of distinct function names")
        both = set(deletes) & set(patch.get("set") or {})
        if both:
            _bad("functions.patch", f"{sorted(both)[0]!r} is both set and deleted")
    for where, table in groups:
        if not isinstance(table, dict):
            _bad(where, "must be an object of {name: FunctionSpec}")
        for name, fs in table.items():
            problem = function_name_problem(name)
            if problem:
                _bad(f"{where}.{name}", f"function name {problem}")
            _function_spec(fs, f"{where}.{name}", content_ref)


def code_digest(entry: dict[str, Any]) -> str:
    material = {"source": entry.get("source", {}).get("sha256") if entry.get("source") else None,
                "files": {p: r["sha256"] for p, r in (entry.get("files") or {}).items()},
                "entrypoint": entry.get("entrypoint"), "deps": entry.get("deps") or []}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _entry(fs: dict[str, Any], base: dict[str, Any] | None, *, patch: bool) -> dict[str, Any]:
    config = {"timeoutSeconds": DEFAULT_TIMEOUT_SECONDS, "memoryMb": DEFAULT_MEMORY_MB}
    if patch and base:
        config.update(base.get("config", {}))
    config.update(fs.get("config") or {})
    entry: dict[str, Any] = {"runtime": "node22", "config": config}
    if "source" in fs:
        entry["source"] = {"sha256": fs["source"]["sha256"], "size": fs["source"]["size"]}
    else:
        entry["files"] = {p: {"sha256": r["sha256"], "size": r["size"]} for p, r in sorted(fs["files"].items())}
        entry["entrypoint"] = fs["entrypoint"]
    if "schedule" in fs:
        entry["schedule"] = fs["schedule"]
    else:
        entry["schedule"] = base.get("schedule") if (patch and base) else None
    entry["deps"], entry["deps_resolved"] = [], {}
    entry["code_digest"] = code_digest(entry)
    if base and base.get("code_digest") == entry["code_digest"] and base.get("bundle"):
        entry["bundle"] = base["bundle"]
        entry["runtime_version"] = base.get("runtime_version")
    entry["created_at"] = (base or {}).get("created_at") or _now()
    entry["updated_at"] = (base or {}).get("updated_at") if base and _same(base, entry) else _now()
    return entry


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("code_digest", "config", "schedule")
    return all(a.get(k) == b.get(k) for k in keys)


def apply_slice(base: dict[str, dict[str, Any]], value: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The next release's function table (`value` None: carried forward unchanged)."""
    if value is None:
        return {n: dict(e) for n, e in base.items()}
    if "replace" in value:
        return {n: _entry(fs, base.get(n), patch=False) for n, fs in sorted(value["replace"].items())}
    out = {n: dict(e) for n, e in base.items()}
    patch = value.get("patch") or {}
    for name in patch.get("delete", []):
        out.pop(name, None)
    for name, fs in (patch.get("set") or {}).items():
        out[name] = _entry(fs, base.get(name), patch=True)
    return dict(sorted(out.items()))


def check_tier(tier: str, functions: dict[str, dict[str, Any]], path: str = "functions") -> None:
    """The tier's caps over a whole function table: count, per-function timeout and memory, the
    number of scheduled functions and their minimum interval. 403 with the spec's codes."""
    caps = TIER_FUNCTION_LIMITS.get(tier) or TIER_FUNCTION_LIMITS["prototype"]

    def over(code: str, message: str, **details: Any) -> NoReturn:
        raise GatewayError(403, code, message, category="deploy", details={"tier": tier, **details},
                           hint="Lower the setting, or move the project to a larger tier (run402 tier set <tier>)",
                           next_actions=[{"action": "edit_spec", "path": path}, {"action": "upgrade_tier"}])

    if len(functions) > caps["max_functions"]:
        over("TIER_LIMIT_EXCEEDED", f"{len(functions)} functions; the {tier} tier allows {caps['max_functions']}",
             limit=caps["max_functions"], resource="functions")
    scheduled = []
    for name, e in functions.items():
        cfg = e["config"]
        if cfg["timeoutSeconds"] > caps["max_function_timeout_seconds"]:
            over("FUNCTION_TIMEOUT_EXCEEDS_TIER", f"functions.{name}: timeout {cfg['timeoutSeconds']} s is over the "
                 f"{tier} tier's {caps['max_function_timeout_seconds']} s", function=name, value=cfg["timeoutSeconds"],
                 max_function_timeout_seconds=caps["max_function_timeout_seconds"])
        if cfg["memoryMb"] > caps["max_function_memory_mb"]:
            over("FUNCTION_MEMORY_EXCEEDS_TIER", f"functions.{name}: memory {cfg['memoryMb']} MB is over the "
                 f"{tier} tier's {caps['max_function_memory_mb']} MB", function=name, value=cfg["memoryMb"],
                 max_function_memory_mb=caps["max_function_memory_mb"])
        if e.get("schedule"):
            scheduled.append(name)
            interval = cron.min_interval_minutes(e["schedule"])
            if interval is not None and interval < caps["min_cron_interval_minutes"]:
                over("FUNCTION_SCHEDULE_INTERVAL_TOO_SHORT", f"functions.{name}: schedule {e['schedule']!r} runs every "
                     f"{interval} min; the {tier} tier's minimum is {caps['min_cron_interval_minutes']} min", function=name,
                     interval_minutes=interval, min_cron_interval_minutes=caps["min_cron_interval_minutes"])
    if len(scheduled) > caps["max_scheduled_functions"]:
        over("FUNCTION_SCHEDULE_LIMIT_EXCEEDED", f"{len(scheduled)} scheduled functions; the {tier} tier allows "
             f"{caps['max_scheduled_functions']}", scheduled=sorted(scheduled), max_scheduled_functions=caps["max_scheduled_functions"])


_DIFF_FIELDS = (("code_hash", lambda e: e.get("code_digest")), ("runtime", lambda e: e.get("runtime")),
                ("timeout_seconds", lambda e: e["config"]["timeoutSeconds"]),
                ("memory_mb", lambda e: e["config"]["memoryMb"]), ("schedule", lambda e: e.get("schedule")))


def functions_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The plan's `functions` bucket: names added and removed, and for each changed function
    which of its fields changed."""
    changed = []
    for name in sorted(set(old) & set(new)):
        fields = [f for f, get in _DIFF_FIELDS if get(old[name]) != get(new[name])]
        if fields:
            changed.append({"name": name, "fields_changed": fields})
    return {"added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new)), "changed": changed}


def route_warnings(base: dict[str, Any], desired: dict[str, Any], public_paths: list[str]) -> list[dict[str, Any]]:
    """The gateway's warnings about function routes (none of them blocks a deploy):
    PUBLIC_ROUTED_FUNCTION for a function newly reachable by anyone on the site's hosts;
    ROUTE_SHADOWS_STATIC_PATH / WILDCARD_ROUTE_SHADOWS_STATIC_PATHS where a route now answers
    a path a static file was public at; METHOD_SPECIFIC_ROUTE_ALLOWS_GET_STATIC_FALLBACK where a
    route without GET leaves GET to the static file at its path."""
    before = {(r["pattern"], r["target"].get("name")) for r in base.get("routes") or []
              if r["target"].get("type") == "function"}
    out: list[dict[str, Any]] = []
    fn_routes = [r for r in desired.get("routes") or [] if r["target"].get("type") == "function"]
    fresh = sorted({r["pattern"] for r in fn_routes if (r["pattern"], r["target"]["name"]) not in before})
    if fresh:
        out.append({"code": "PUBLIC_ROUTED_FUNCTION", "severity": "warn", "requires_confirmation": False,
                    "message": "These routes make functions publicly reachable on the site's hosts, with no API "
                               f"key: {', '.join(fresh)}. Check each function authenticates what it must.",
                    "affected": fresh, "confidence": "high"})
    public = set(public_paths)
    for r in fn_routes:
        if r["kind"] == "exact":
            hits = sorted(p for p in public if p.rstrip("/") == r["pattern"].rstrip("/") and p != "/" or p == r["pattern"])
            if hits and (r["methods"] is None or "GET" in r["methods"]):
                out.append({"code": "ROUTE_SHADOWS_STATIC_PATH", "severity": "warn", "requires_confirmation": False,
                            "message": f"Route {r['pattern']} answers where a static file is public: {hits[0]}",
                            "affected": [r["pattern"]], "details": {"static_paths": hits}, "confidence": "high"})
            elif hits:
                out.append({"code": "METHOD_SPECIFIC_ROUTE_ALLOWS_GET_STATIC_FALLBACK", "severity": "info",
                            "requires_confirmation": False,
                            "message": f"Route {r['pattern']} takes {', '.join(r['methods'])}; GET there still serves "
                                       f"the static file", "affected": [r["pattern"]], "confidence": "high"})
        else:
            under = sorted(p for p in public if p.startswith(r["prefix"]) and len(p) > len(r["prefix"]))
            if under and (r["methods"] is None or "GET" in r["methods"]):
                out.append({"code": "WILDCARD_ROUTE_SHADOWS_STATIC_PATHS", "severity": "warn",
                            "requires_confirmation": False,
                            "message": f"Route {r['pattern']} answers {len(under)} path(s) where static files are "
                                       "public; those files are no longer served there",
                            "affected": [r["pattern"]], "details": {"static_paths": under[:20],
                                                                    "count": len(under)}, "confidence": "high"})
    return out
