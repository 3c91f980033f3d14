"""The rules of a ReleaseSpec that the CLI (before it sends one) and the gateway (before it
trusts one) both apply: one function per rule, returning what is wrong or None. The CLI turns a
problem into its INVALID_SPEC error with the field's path, the gateway into its 400 envelope;
the rule itself exists once.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "CONTROL_CHARS", "DETECT_RULE", "LOCALE_TAG", "MAX_PATH_BYTES", "RESERVED_PREFIXES", "RESERVED_SUBDOMAINS",
    "ROUTE_METHODS", "SECRET_KEY", "release_path_problem", "route_pattern_problem", "subdomain_problem",
]

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
SECRET_KEY = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
LOCALE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DETECT_RULE = re.compile(r"^(accept-language|cookie:[!#$%&'*+\-.^_`|~0-9A-Za-z]+)$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
ROUTE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
RESERVED_SUBDOMAINS = frozenset({"www", "api", "admin", "localhost"})
# The platform's own storage namespaces: no release file may live at or under them.
RESERVED_PREFIXES = ("_cas", "_staging")
MAX_PATH_BYTES = 1024


def release_path_problem(path: Any) -> str | None:
    """Why `path` cannot be a release file path (relative, POSIX, normalised), or None."""
    if not isinstance(path, str) or path == "":
        return "must be a non-empty string"
    try:
        raw = path.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if CONTROL_CHARS.search(path):
        return "contains NUL or control characters"
    if path.startswith("/"):
        return "must be relative (no leading '/')"
    if "\\" in path:
        return "must use '/' as the separator (no '\\')"
    if path.endswith("/"):
        return "must name a file (no trailing '/')"
    segments = path.split("/")
    if any(seg in ("", ".", "..") for seg in segments):
        return "must not contain empty, '.' or '..' segments"
    if segments[0] in RESERVED_PREFIXES:
        return "must not be or start with the reserved _cas or _staging prefix"
    if len(raw) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    return None


def route_pattern_problem(pattern: Any) -> str | None:
    """Why `pattern` cannot be a route pattern (`/exact` or `/prefix/*`), or None."""
    if (not isinstance(pattern, str) or not pattern.startswith("/") or len(pattern.encode()) > 256
            or CONTROL_CHARS.search(pattern) or any(c in pattern for c in "?# \\")
            or "*" in pattern[:-1] or (pattern.endswith("*") and not pattern.endswith("/*"))
            or any(seg in (".", "..") for seg in pattern.split("/"))):
        return "must be an absolute path (/a, or /a/* for a prefix) without ?, #, spaces or '..'"
    return None


def subdomain_problem(name: Any) -> tuple[str, str] | None:
    """(code, message) when `name` cannot be claimed as a subdomain, else None."""
    if not isinstance(name, str) or not 3 <= len(name) <= 63 or not _SUBDOMAIN.match(name):
        return "INVALID_SUBDOMAIN", "must be 3-63 characters of a-z, 0-9 and inner hyphens"
    # prj-/dpl- are project and deployment hosts, pr- a project's asset host (storage).
    if name in RESERVED_SUBDOMAINS or name.startswith(("prj-", "dpl-", "pr-")):
        return "SUBDOMAIN_RESERVED", "is reserved"
    return None
