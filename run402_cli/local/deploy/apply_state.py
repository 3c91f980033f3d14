"""A release's materialized state, how a spec turns a base state into the next one, and the
diff buckets between two states (shared by the plan response and the release diff).

State (stored whole in `run402_meta.releases.state`, so a release never changes):
    site.files          {asset path: {sha256, size, content_type, inferred?}}
    site.public_paths   {"mode": "implicit"} | {"mode": "explicit", "replace": {...}}
    routes              materialized entries {pattern, kind, prefix, methods, target}
    subdomains          names the release manages
    secrets_required    keys a commit checks for
    functions           {name: entry} (functions/specs.py; bundles are built at commit)
    expose, i18n, checks  as declared (None = never declared)
Omitted spec sections carry forward from the base state; `public_paths` in
explicit mode is sticky (a site change without public_paths keeps the base's table).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from run402_cli.local.deploy.deploy_common import canonical_json, content_type_for
from run402_cli.local.errors import GatewayError
from run402_cli.local.functions.specs import apply_slice

__all__ = [
    "EMPTY_STATE", "desired_state", "file_changes", "route_manifest_sha256", "routes_diff", "set_diff",
    "site_diff", "static_assets_diff", "static_manifest_sha256", "summary",
]

EMPTY_STATE: dict[str, Any] = {
    "site": {"files": {}, "public_paths": {"mode": "implicit"}},
    "routes": [], "subdomains": [], "secrets_required": [], "expose": None, "i18n": None, "checks": None,
    "functions": {},
}


def _file(path: str, ref: dict[str, Any]) -> dict[str, Any]:
    entry = {"sha256": ref["sha256"], "size": ref["size"], "content_type": content_type_for(path, ref.get("contentType"))}
    if not ref.get("contentType"):
        entry["inferred"] = True
    return entry


def _materialize_route(r: dict[str, Any]) -> dict[str, Any]:
    pattern = r["pattern"]
    if pattern.endswith("/*"):
        kind, prefix = "prefix", pattern[:-1]
    else:
        kind, prefix = "exact", None
        pattern = pattern.rstrip("/") or "/"
    methods = sorted(set(r["methods"]) | ({"HEAD"} if "GET" in r["methods"] else set())) if "methods" in r else None
    return {"pattern": pattern, "kind": kind, "prefix": prefix, "methods": methods, "target": dict(r["target"])}


def _invalid(path: str, message: str) -> GatewayError:
    return GatewayError(400, "INVALID_SPEC", f"{path}: {message}", category="deploy", details={"path": path},
                        next_actions=[{"action": "edit_spec", "path": path}])


def desired_state(base: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    merged = {**EMPTY_STATE, **base}
    # A deep copy but for the site's file table (thousands of entries): those are flat dicts
    # (_file), copied one level down, and not at all when the spec replaces the site.
    state = copy.deepcopy({k: v for k, v in merged.items() if k not in ("site", "functions")})
    public_paths = merged["site"]["public_paths"]
    site = spec.get("site")
    if site is not None and "replace" in site:
        files = {p: _file(p, ref) for p, ref in site["replace"].items()}
    else:
        files = {p: dict(f) for p, f in merged["site"]["files"].items()}
    if site is not None:
        if "patch" in site:
            for p in site["patch"].get("delete", []):
                files.pop(p, None)
            files.update({p: _file(p, ref) for p, ref in site["patch"].get("put", {}).items()})
        files = dict(sorted(files.items()))
        public_paths = site.get("public_paths") or public_paths
    state["site"] = {"files": files, "public_paths": copy.deepcopy(public_paths)}
    if spec.get("routes") is not None:
        state["routes"] = sorted((_materialize_route(r) for r in spec["routes"]["replace"]),
                                 key=lambda e: e["pattern"])
    sub = spec.get("subdomains") or {}
    if "set" in sub:
        state["subdomains"] = sorted(set(sub["set"]))
    elif "add" in sub:
        state["subdomains"] = sorted(set(state["subdomains"]) | set(sub["add"]))
    elif "remove" in sub:
        state["subdomains"] = sorted(set(state["subdomains"]) - set(sub["remove"]))
    if "secrets" in spec:
        required = spec["secrets"].get("require")
        if required is None:
            required = [k for k in state["secrets_required"] if k not in spec["secrets"].get("delete", [])]
        state["secrets_required"] = sorted(set(required))
    state["functions"] = apply_slice(merged["functions"], spec.get("functions"))
    if "expose" in spec.get("database", {}):
        state["expose"] = spec["database"]["expose"]
    for key in ("i18n", "checks"):
        if key in spec:
            state[key] = spec[key]
    _check_references(state)
    return state


def _check_references(state: dict[str, Any]) -> None:
    files = state["site"]["files"]
    pp = state["site"]["public_paths"]
    for public, entry in (pp.get("replace") or {}).items():
        if entry["asset"] not in files:
            raise _invalid(f"site.public_paths.replace[{public!r}].asset",
                           f"{entry['asset']!r} is not a file of the resulting release")
    for i, route in enumerate(state["routes"]):
        target = route["target"]
        if target.get("type") == "static" and target["file"] not in files:
            raise _invalid(f"routes.replace[{i}].target.file",
                           f"{target['file']!r} is not a file of the resulting release")
        if target.get("type") == "function" and target["name"] not in state["functions"]:
            raise _invalid(f"routes.replace[{i}].target.name",
                           f"{target['name']!r} is not a function of the resulting release")


# -- digests ------------------------------------------------------------------------------------
def _sha(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def static_manifest_sha256(state: dict[str, Any]) -> str | None:
    site = state["site"]
    if not site["files"]:
        return None
    return _sha({"files": {p: [f["sha256"], f["content_type"]] for p, f in site["files"].items()},
                 "public_paths": site["public_paths"]})


def route_manifest_sha256(routes: list[dict[str, Any]]) -> str | None:
    return _sha(routes) if routes else None


# -- diffs --------------------------------------------------------------------------------------
Changes = tuple[list[str], list[str], list[str], list[str]]  # added, removed, changed, unchanged paths


def file_changes(old: dict[str, Any], new: dict[str, Any]) -> Changes:
    """(added, removed, changed, unchanged) asset paths."""
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed, unchanged = [], []
    for p in sorted(set(old) & set(new)):
        same = (old[p]["sha256"], old[p]["content_type"]) == (new[p]["sha256"], new[p]["content_type"])
        (unchanged if same else changed).append(p)
    return added, removed, changed, unchanged


def site_diff(old: dict[str, Any], new: dict[str, Any], limit: int | None = None, *,
              changes: Changes | None = None) -> dict[str, Any]:
    """`changes`: file_changes(old, new), when the caller has it already."""
    added, removed, changed, _ = changes if changes is not None else file_changes(old, new)
    cap = (lambda xs: xs[:limit]) if limit is not None else (lambda xs: xs)
    changed_rows = []
    for p in cap(changed):
        row = {"path": p, "sha256_old": old[p]["sha256"], "sha256_new": new[p]["sha256"],
               "content_type_old": old[p]["content_type"], "content_type_new": new[p]["content_type"]}
        if new[p].get("inferred"):
            row["content_type_inferred"] = True
        changed_rows.append(row)
    return {"added": [{"path": p, "sha256": new[p]["sha256"], "content_type": new[p]["content_type"]} for p in cap(added)],
            "removed": cap(removed), "changed": changed_rows,
            "totals": {"added": len(added), "removed": len(removed), "changed": len(changed)}}


def static_assets_diff(old: dict[str, Any], new: dict[str, Any], present: set[str] | None, *,
                       changes: Changes | None = None) -> dict[str, Any]:
    """Counts and CAS byte accounting. `present` = digests already in the project's CAS before
    this deploy (None: everything is already stored, as between two existing releases)."""
    added, removed, changed, unchanged = changes if changes is not None else file_changes(old, new)
    new_bytes = reused = 0
    counted: set[str] = set()
    for f in new.values():
        if f["sha256"] in counted:
            continue
        counted.add(f["sha256"])
        if present is not None and f["sha256"] not in present:
            new_bytes += f["size"]
        else:
            reused += f["size"]
    return {"unchanged": len(unchanged), "changed": len(changed), "added": len(added), "removed": len(removed),
            "newly_uploaded_cas_bytes": new_bytes, "reused_cas_bytes": reused,
            "deployment_copy_bytes_eliminated": sum(new[p]["size"] for p in unchanged),
            "legacy_immutable_warnings": [], "previous_immutable_failures": [], "cas_authorization_failures": []}


def routes_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    before = {r["pattern"]: r for r in old}
    after = {r["pattern"]: r for r in new}
    changed = []
    for pattern in sorted(set(before) & set(after)):
        fields = [k for k in ("methods", "target", "kind", "prefix") if before[pattern][k] != after[pattern][k]]
        if fields:
            changed.append({"pattern": pattern, "before": before[pattern], "after": after[pattern],
                            "fields_changed": fields})
    added = [after[p] for p in sorted(set(after) - set(before))]
    removed = [before[p] for p in sorted(set(before) - set(after))]
    return {"manifest_sha256_old": route_manifest_sha256(old), "manifest_sha256_new": route_manifest_sha256(new),
            "added": added, "removed": removed, "changed": changed,
            "totals": {"added": len(added), "removed": len(removed), "changed": len(changed)}}


def set_diff(old: list[str], new: list[str]) -> dict[str, list[str]]:
    return {"added": sorted(set(new) - set(old)), "removed": sorted(set(old) - set(new))}


def summary(site: dict[str, Any], migrations_new: int, routes: dict[str, Any], subdomains: dict[str, Any],
            secrets: dict[str, Any], other_changed: bool, functions: dict[str, Any] | None = None) -> str:
    parts = []
    t = site["totals"]
    for n, word in ((t["added"], "added"), (t["changed"], "changed"), (t["removed"], "removed")):
        if n:
            parts.append(f"{n} site path{'s' if n != 1 else ''} {word}")
    if migrations_new:
        parts.append(f"{migrations_new} migration{'s' if migrations_new != 1 else ''} to apply")
    rt = routes["totals"]
    if rt["added"] or rt["removed"] or rt["changed"]:
        parts.append(f"{rt['added'] + rt['removed'] + rt['changed']} route change(s)")
    if subdomains["added"] or subdomains["removed"]:
        parts.append(f"{len(subdomains['added']) + len(subdomains['removed'])} subdomain change(s)")
    if secrets["added"] or secrets["removed"]:
        parts.append(f"{len(secrets['added']) + len(secrets['removed'])} secret change(s)")
    fn: dict[str, Any] = functions or {"added": [], "removed": [], "changed": []}
    n_fn = len(fn["added"]) + len(fn["removed"]) + len(fn["changed"])
    if n_fn:
        parts.append(f"{n_fn} function change{'s' if n_fn != 1 else ''}")
    if other_changed:
        parts.append("database expose/i18n/checks changed")
    if not parts:
        return "no changes"
    return "; ".join(parts) + ("" if n_fn else "; no functions changed")
