"""How a request maps onto a release — one pure function,
used both to serve sites (sites.py) and to explain a URL (`GET /apply/v1/resolve`), so the
diagnosis can never disagree with what is served.

Order: routes first (exact beats prefix, longest prefix wins; a method-compatible route wins
over static files; a function route's request goes to its function, which fails closed), then static lookup (explicit table, or implicit file paths with directory
index and /dir -> /dir/ redirect), then the SPA fallback, then 404. Unsafe methods never get
static content (405, Allow: GET, HEAD).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Resolution", "cache_class_for", "cache_policy", "resolve", "spa_fallback",
           "static_manifest_metadata", "static_public_paths"]

_HASHED = re.compile(r"[.-][0-9a-fA-F]{8,}[.-]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SAFE = ("GET", "HEAD")


def cache_class_for(asset_path: str) -> str:
    name = asset_path.rsplit("/", 1)[-1].lower()
    if name.endswith((".html", ".htm")):
        return "html"
    if _HASHED.search(name):
        return "immutable_versioned"
    return "revalidating_asset"


def cache_policy(cache_class: str | None) -> str:
    if cache_class == "immutable_versioned":
        return "public, max-age=31536000, immutable"
    return "public, max-age=0, must-revalidate"


def spa_fallback(files: dict[str, Any]) -> str | None:
    return "index.html" if "index.html" in files and "404.html" not in files else None


@dataclass
class Resolution:
    match: str
    result: int                      # the diagnostic status (301, 200, 400, 404, 405)
    normalized_path: str | None = None
    asset_path: str | None = None
    file: dict[str, Any] | None = None
    cache_class: str | None = None
    reachability_authority: str | None = None
    direct: bool | None = None
    route: dict[str, Any] | None = None
    allow: list[str] | None = None
    fallback_state: str = "not_used"
    authorization_result: str = "not_applicable"
    location: str | None = None
    error_code: str | None = None
    not_found_asset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def authorized(self) -> bool:
        return self.authorization_result in ("authorized", "not_applicable") and 200 <= self.result < 400


def _route_for(routes: list[dict[str, Any]], path: str) -> dict[str, Any] | None:
    for r in routes:
        if r["kind"] == "exact" and (path == r["pattern"] or path == r["pattern"].rstrip("/") + "/"):
            return r
    best = None
    for r in routes:
        if r["kind"] == "prefix" and path.startswith(r["prefix"]) and len(path) > len(r["prefix"]):
            if best is None or len(r["prefix"]) > len(best["prefix"]):
                best = r
    return best


def _hit(files: dict[str, Any], asset: str, match: str, authority: str, *, direct: bool,
         cache_class: str | None = None, **kw: Any) -> Resolution:
    return Resolution(match=match, result=200, asset_path=asset, file=files[asset],
                      cache_class=cache_class or cache_class_for(asset), reachability_authority=authority,
                      direct=direct, authorization_result="authorized", **kw)


def _static(state: dict[str, Any], path: str) -> Resolution | None:
    files = state["site"]["files"]
    pp = state["site"]["public_paths"]
    if pp.get("mode") == "explicit":
        entry = (pp.get("replace") or {}).get(path)
        if entry and entry["asset"] in files:
            return _hit(files, entry["asset"], "static_exact", "explicit_public_path", direct=True,
                        cache_class=entry.get("cache_class"))
        return None
    if path.endswith("/"):
        asset = path[1:] + "index.html"
        return _hit(files, asset, "static_index", "implicit_file_path", direct=True) if asset in files else None
    asset = path[1:]
    if asset in files:
        return _hit(files, asset, "static_exact", "implicit_file_path", direct=True)
    if asset + "/index.html" in files:
        return Resolution(match="static_index", result=301, asset_path=asset + "/index.html",
                          file=files[asset + "/index.html"], cache_class="html",
                          reachability_authority="implicit_file_path", direct=True,
                          authorization_result="authorized", location=path + "/")
    return None


def _path_error(path: str) -> Resolution:
    return Resolution(match="path_error", result=400, normalized_path=path, fallback_state="path_error",
                      authorization_result="path_error", error_code="INVALID_PATH")


def resolve(state: dict[str, Any], method: str, path: str) -> Resolution:
    """`path` is the decoded URL path, without the query string."""
    if not path.startswith("/") or _CONTROL.search(path) or "\\" in path \
            or any(seg in (".", "..") for seg in path.split("/")):
        return _path_error(path)
    method = method.upper()
    files = state["site"]["files"]
    route = _route_for(state.get("routes") or [], path)
    res: Resolution | None = None
    if route is not None:
        methods = route["methods"]
        if methods is None or method in methods:
            target = route["target"]
            if target.get("type") == "function":
                res = Resolution(match="route_function", result=200, route=route, direct=False,
                                 reachability_authority="route_function", authorization_result="not_applicable")
            elif target.get("type") == "static" and target["file"] in files:
                res = _hit(files, target["file"], "route_static_alias", "route_static_alias", direct=False,
                           route=route)
            else:
                res = Resolution(match="route_static_alias", result=404, route=route, fallback_state="target_missing",
                                 authorization_result="target_missing", error_code="ROUTE_TARGET_MISSING")
        elif method not in _SAFE:
            res = Resolution(match="route_method_miss", result=405, route=route, allow=list(methods),
                             fallback_state="method_not_static", error_code="ROUTE_METHOD_NOT_ALLOWED")
        else:
            # GET/HEAD on a method-specific route: an exact static file may serve, never the SPA.
            res = _static(state, path) or Resolution(
                match="route_method_miss", result=405, route=route, allow=list(methods),
                fallback_state="method_not_static", error_code="ROUTE_METHOD_NOT_ALLOWED")
    if res is None:
        res = _static(state, path)
        if res is None:
            spa = spa_fallback(files)
            last = path.rsplit("/", 1)[-1]
            if spa and "." not in last:
                res = _hit(files, spa, "spa_fallback", "spa_fallback", direct=False, fallback_state="used")
            else:
                state_ = "not_eligible" if spa else "not_configured"
                res = Resolution(match="none", result=404, fallback_state=state_, authorization_result="not_public",
                                 error_code="NOT_FOUND",
                                 not_found_asset="404.html" if "404.html" in files else None)
        if method not in _SAFE:
            # Unsafe methods never get static content, hit or miss.
            res = Resolution(match=res.match, result=405, allow=list(_SAFE), asset_path=res.asset_path,
                             fallback_state="method_not_static", authorization_result="not_applicable",
                             error_code="METHOD_NOT_ALLOWED")
    res.normalized_path = path
    return res


def static_public_paths(state: dict[str, Any]) -> list[dict[str, Any]]:
    files = state["site"]["files"]
    pp = state["site"]["public_paths"]
    out = []

    def row(public: str, asset: str, authority: str, direct: bool, cache_class: str | None = None,
            **kw: Any) -> dict[str, Any]:
        return {"public_path": public, "asset_path": asset, "reachability_authority": authority, "direct": direct,
                "cache_class": cache_class or cache_class_for(asset), "content_type": files[asset]["content_type"], **kw}

    if pp.get("mode") == "explicit":
        for public, entry in sorted((pp.get("replace") or {}).items()):
            if entry["asset"] in files:
                out.append(row(public, entry["asset"], "explicit_public_path", True, entry.get("cache_class")))
    else:
        for asset in files:
            out.append(row("/" + asset, asset, "implicit_file_path", True))
            if asset == "index.html" or asset.endswith("/index.html"):
                out.append(row("/" + asset[: -len("index.html")], asset, "implicit_file_path", True))
    for r in state.get("routes") or []:
        if r["target"].get("type") == "static" and r["target"]["file"] in files:
            out.append(row(r["pattern"], r["target"]["file"], "route_static_alias", False, methods=r["methods"]))
    return sorted(out, key=lambda x: (x["public_path"], x["reachability_authority"]))


def static_manifest_metadata(state: dict[str, Any]) -> dict[str, Any] | None:
    files = state["site"]["files"]
    if not files:
        return None
    classes: dict[str, int] = {}
    for asset in files:
        c = cache_class_for(asset)
        classes[c] = classes.get(c, 0) + 1
    sources = {"inferred": len(files)}
    explicit = (state["site"]["public_paths"].get("replace") or {}) if state["site"]["public_paths"].get("mode") == "explicit" else {}
    declared = sum(1 for e in explicit.values() if e.get("cache_class"))
    if declared:
        sources["explicit_public_path"] = declared
    return {"file_count": len(files), "total_bytes": sum(f["size"] for f in files.values()),
            "cache_classes": classes, "cache_class_sources": sources, "spa_fallback": spa_fallback(files)}
