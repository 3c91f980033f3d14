"""Public-URL diagnostics (`deploy diagnose|resolve`): request normalization and the client-side
summary (`would_serve`, `category`, `summary`, `next_steps`), reproduced exactly from the
official SDK's `normalizeDeployResolveRequest` / `buildDeployResolveSummary`, sentences
included, so an agent's parsing of one CLI's output works on the other's.
"""

from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from run402_cli.errors import UsageError

__all__ = ["build_summary", "normalize_request", "redact_input"]

_METHOD = re.compile(r"^[A-Z][A-Z0-9!#$%&'*+.^_`|~-]*$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
_CAS_FAILURES = ("missing_cas_object", "unfinalized_or_deleting_cas_object", "size_mismatch",
                 "unauthorized_cas_object")
_STATIC_HITS = ("static_exact", "static_index", "spa_fallback")


def redact_input(data: Mapping[str, Any]) -> dict[str, Any]:
    """The input echoed in a BAD_USAGE envelope, with URL credentials removed."""
    out = dict(data)
    url = out.get("url")
    if isinstance(url, str):
        try:
            parts = urlsplit(url)
            if parts.username is not None or parts.password is not None:
                host = parts.hostname or ""
                if parts.port is not None:
                    host = f"{host}:{parts.port}"
                url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        except ValueError:
            url = re.sub(r"//[^/@]+@", "//<redacted>@", url)
        out["url"] = url
    return out


def _bad(message: str, data: Mapping[str, Any]) -> UsageError:
    return UsageError(message, details={"input": redact_input(data)},
                      hint="run402 deploy resolve --url https://example.com/path --method GET")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, as the WHATWG URL parser applies it to a pathname."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg in (".", "%2e", "%2E"):
            if last:
                out.append("")
            continue
        if seg.lower() in ("..", ".%2e", "%2e.", "%2e%2e"):
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
            continue
        out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def normalize_request(*, project: str, url: str | None = None, host: str | None = None,
                      path: str | None = None, method: str | None = None) -> dict[str, Any]:
    """The normalized request the summary and the CLI output report; BAD_USAGE on bad input."""
    data: dict[str, Any] = {"project": project}
    for key, value in (("url", url), ("host", host), ("path", path), ("method", method)):
        if value is not None:
            data[key] = value
    if (url is None) == (host is None):
        raise _bad("Deploy resolve requires exactly one input form: a full absolute url, or a "
                   "clean host/path pair.", data)
    norm_method = None
    if method is not None:
        norm_method = method.strip().upper()
        if not _METHOD.match(norm_method):
            raise _bad("Deploy resolve method must be a valid HTTP token such as GET, HEAD, POST, "
                       "or OPTIONS.", data)
    req: dict[str, Any] = {"project": project, "project_scope": "credential_lookup_only",
                           "project_sent_to_gateway": False}
    if url is not None:
        try:
            parts = urlsplit(url.strip())
            hostname = parts.hostname
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise _bad("Deploy resolve url must be an absolute HTTP(S) public URL.", data) from None
        if not parts.scheme or not parts.netloc:
            raise _bad("Deploy resolve url must be an absolute HTTP(S) public URL.", data)
        if parts.scheme.lower() not in ("http", "https"):
            raise _bad("Deploy resolve url must use http: or https:.", data)
        if parts.username is not None or parts.password is not None:
            raise _bad("Deploy resolve url must not include username or password credentials.", data)
        if not hostname:
            raise _bad("Deploy resolve url must be an absolute HTTP(S) public URL.", data)
        req["original_url"] = url
        req["host"] = hostname
        req["path"] = _remove_dot_segments(parts.path or "/")
        if norm_method:
            req["method"] = norm_method
        ignored = {}
        if parts.query:
            ignored["query"] = "?" + parts.query
        if parts.fragment:
            ignored["fragment"] = "#" + parts.fragment
        if ignored:
            req["ignored"] = ignored
        return req
    assert host is not None
    if (host == "" or re.search(r"\s", host) or any(ch in host for ch in "/?#@")
            or _SCHEME.match(host)):
        raise _bad("Deploy resolve host must be a clean hostname without scheme, credentials, "
                   "path, query, or fragment." if host else
                   "Deploy resolve host must be a non-empty hostname.", data)
    if path is not None:
        if not path.startswith("/"):
            raise _bad("Deploy resolve path must start with '/'.", data)
        if "?" in path or "#" in path:
            raise _bad("Deploy resolve host/path mode does not accept query strings or fragments "
                       "in path.", data)
    req["host"] = host
    req["path"] = path if path is not None else "/"
    if norm_method:
        req["method"] = norm_method
    return req


# --- summary ------------------------------------------------------------------------------


def _cas_failure(r: Mapping[str, Any]) -> bool:
    if r.get("authorization_result") in _CAS_FAILURES:
        return True
    cas = r.get("cas_object")
    if not isinstance(cas, dict) or not cas:
        return False
    if cas.get("exists") is False:
        return True
    actual = cas.get("actual_size")
    return isinstance(actual, (int, float)) and not isinstance(actual, bool) and actual != cas.get("expected_size")


def _route_hit(r: Mapping[str, Any]) -> bool:
    return isinstance(r.get("route"), dict)


def _num(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else float("nan")


def _ok_status(r: Mapping[str, Any]) -> bool:
    return 200 <= _num(r.get("result")) < 400


def _allowed(methods: Any) -> str:
    if not isinstance(methods, list) or not methods:
        return ""
    return ", ".join(str(m) for m in methods)


def _display_url(req: Mapping[str, Any]) -> str:
    original = req.get("original_url")
    if not original:
        return f"https://{req['host']}{req['path']}"
    try:
        parts = urlsplit(str(original).strip())
        scheme = parts.scheme.lower()
        port = parts.port
        if (scheme, port) in (("http", 80), ("https", 443)):
            port = None  # the URL parser drops a default port
        host = (parts.hostname or "") + (f":{port}" if port is not None else "")
        return f"{scheme}://{host}{req['path'] or '/'}"
    except ValueError:
        return f"{req['host']}{req['path']}"


def _category(r: Mapping[str, Any]) -> str:
    match = r.get("match")
    if _cas_failure(r):
        return "cas"
    if match == "route_method_miss":
        return "route_method"
    if match == "active_release_missing":
        return "release"
    if match == "unsupported_manifest_version":
        return "manifest"
    if _route_hit(r) or match in ("route_function", "route_static_alias"):
        return "route"
    if match in _STATIC_HITS:
        return "static"
    return {"host_missing": "host", "manifest_missing": "manifest", "path_error": "path",
            "spa_fallback_missing": "fallback", "none": "miss"}.get(str(match), "unknown")


def _summary_text(r: Mapping[str, Any], url: str) -> str:
    match = r.get("match")
    if _cas_failure(r):
        sha = (r.get("cas_object") or {}).get("sha256") if isinstance(r.get("cas_object"), dict) else None
        suffix = f" for CAS object {sha}" if sha else ""
        return {
            "missing_cas_object": f"{url} matched static content, but the backing CAS object is missing{suffix}.",
            "unfinalized_or_deleting_cas_object": f"{url} matched static content, but the backing CAS object is not finalized or is being deleted{suffix}.",
            "size_mismatch": f"{url} matched static content, but the backing CAS object size does not match the release manifest{suffix}.",
            "unauthorized_cas_object": f"{url} matched static content, but the selected credentials are not authorized to inspect the backing CAS object{suffix}.",
        }.get(str(r.get("authorization_result")),
              f"{url} matched static content, but CAS object health prevented a servable diagnostic{suffix}.")
    if match == "host_missing":
        return f"{url} did not resolve because the host is not bound to this account/project context."
    if match == "manifest_missing":
        return f"{url} reached the host, but no active static manifest is available for diagnostics."
    if match == "active_release_missing":
        return f"{url} reached the host, but no active release is available for diagnostics."
    if match == "unsupported_manifest_version" or r.get("authorization_result") == "unsupported_manifest_version":
        return f"{url} reached the host, but the active static manifest version is not supported by the gateway."
    if match == "path_error":
        return f"{url} could not be evaluated because the path is not a valid Run402 public path."
    if match == "route_method_miss":
        allowed = _allowed(r.get("allow"))
        return (f"{url} matched a deploy route pattern, but the method is not allowed. Allowed methods: {allowed}."
                if allowed else f"{url} matched a deploy route pattern, but the method is not allowed.")
    fixed = {
        "none": f"{url} did not match a materialized static file or SPA fallback.",
        "spa_fallback_missing": f"{url} was eligible for SPA fallback, but the configured fallback file is missing.",
        "spa_fallback": f"{url} would serve the configured SPA fallback.",
        "static_index": f"{url} would serve a static index file.",
        "static_exact": f"{url} would serve an exact static file.",
        "route_function": f"{url} matched a deploy function route.",
        "route_static_alias": f"{url} matched a deploy static route alias.",
    }
    if match in fixed:
        return fixed[str(match)]
    if _route_hit(r):
        return f"{url} matched a deploy route."
    if _ok_status(r):
        return f"{url} resolved with gateway match {_js_string(match)}."
    return f"{url} did not resolve to a servable public response; gateway match was {_js_string(match)}."


def _js_string(value: Any) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _step(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _next_steps(r: Mapping[str, Any]) -> list[dict[str, str]]:
    if _cas_failure(r):
        auth = r.get("authorization_result")
        if auth == "unauthorized_cas_object":
            return [_step("check_credentials", "Check that the selected project credentials can inspect the backing static asset CAS object."),
                    _step("inspect_release_asset", "Inspect the active release asset path and redeploy the affected static asset if the CAS authorization is unexpected.")]
        if auth == "missing_cas_object":
            return [_step("redeploy_static_asset", "Redeploy the affected static asset so the backing CAS object is uploaded and finalized."),
                    _step("inspect_release_asset", "Inspect the active release asset path and CAS SHA in the full resolution payload.")]
        if auth == "unfinalized_or_deleting_cas_object":
            return [_step("retry_after_cas_finalization", "Retry diagnostics after the backing CAS object has finalized, or redeploy the affected static asset."),
                    _step("inspect_release_asset", "Inspect the active release asset path and CAS SHA in the full resolution payload.")]
        if auth == "size_mismatch":
            return [_step("redeploy_static_asset", "Redeploy the affected static asset so release metadata and CAS object size agree."),
                    _step("inspect_cas_object", "Compare cas_object.expected_size and cas_object.actual_size in the full resolution payload.")]
        return [_step("inspect_cas_object", "Inspect authorization_result and cas_object in the full resolution payload."),
                _step("redeploy_static_asset", "Redeploy the affected static asset if the CAS health failure persists.")]
    match = r.get("match")
    if match == "host_missing":
        return [_step("check_domain_binding", "Check that the host is configured as a Run402 custom domain or subdomain."),
                _step("check_dns", "Check DNS and domain binding status."),
                _step("check_credentials", "Check that the selected local project credentials can inspect this host.")]
    if match == "manifest_missing":
        return [_step("check_active_release", "Check that the project has an active deploy-v2 release."),
                _step("redeploy_static_site", "Deploy static site content again if the active release predates static manifest metadata.")]
    if match == "active_release_missing":
        return [_step("check_active_release", "Check that the project has an active deploy-v2 release."),
                _step("deploy_release", "Deploy site content or routes before diagnosing this public URL.")]
    if match == "unsupported_manifest_version":
        return [_step("redeploy_static_site", "Redeploy static site content so the active release has a current static manifest."),
                _step("inspect_release", "Inspect the active release static_manifest_sha256 and retry diagnostics after redeploy.")]
    if match == "path_error":
        return [_step("check_public_path", "Use an absolute URL path that starts with '/' and does not contain invalid encoded segments.")]
    if match == "none":
        return [_step("check_static_path", "Check active release static_public_paths for browser reachability and site.paths for backing release assets."),
                _step("check_spa_fallback", "Check whether the release has a configured SPA fallback.")]
    if match == "spa_fallback_missing":
        return [_step("restore_spa_fallback", "Deploy the configured SPA fallback file or remove the fallback declaration.")]
    if match == "route_method_miss":
        allowed = _allowed(r.get("allow"))
        return [_step("check_route_methods",
                      f"Retry with one of the allowed methods ({allowed}) or update the route method list."
                      if allowed else "Inspect the route method list and retry with an allowed method or update the route."),
                _step("inspect_route", "Inspect route_pattern, target_type, target_name, and target_file in the full resolution payload.")]
    if _ok_status(r):
        return []
    return [_step("inspect_resolution", "Inspect the full resolution payload for gateway-specific fields.")]


def _warnings(req: Mapping[str, Any]) -> list[dict[str, str]]:
    ignored = req.get("ignored") or {}
    out = []
    if ignored.get("query"):
        out.append({"code": "query_ignored", "message": "Query strings do not affect Run402 route resolution."})
    if ignored.get("fragment"):
        out.append({"code": "fragment_ignored",
                    "message": "URL fragments are never sent to the server and do not affect resolution."})
    return out


def build_summary(resolution: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """`{would_serve, diagnostic_status, match, category, summary, warnings, next_steps}`."""
    r = resolution if isinstance(resolution, Mapping) else {}
    auth = r.get("authorization_result")
    would_serve = (
        r.get("authorized") is True
        and auth in (None, "authorized", "not_applicable")
        and _ok_status(r)
        and r.get("match") not in ("host_missing", "route_method_miss")
        and not _cas_failure(r)
    )
    url = f"{request.get('method') or 'GET'} {_display_url(request)}"
    return {
        "would_serve": would_serve,
        "diagnostic_status": r.get("result"),
        "match": r.get("match"),
        "category": _category(r),
        "summary": _summary_text(r, url),
        "warnings": _warnings(request),
        "next_steps": _next_steps(r),
    }
