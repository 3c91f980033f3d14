"""The rules of the function lifecycle API (spec/api-deploy.md §5.1) that the CLI checks before
it sends a request and the gateway before it trusts one: one function per rule, returning what
is wrong or None (as `release`), plus the limits both sides quote.

Schedules are in `wire.cron`.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "DEPS_MAX", "DEP_SPEC_MAX", "FUNCTION_NAME", "LOG_TAIL_DEFAULT", "LOG_TAIL_MAX", "REQUEST_ID",
    "RESERVED_DEPS", "TIER_FUNCTION_LIMITS", "dep_package_name", "dep_problem", "deps_problem",
    "function_name_problem", "request_id_problem",
]

FUNCTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")  # fullmatch: `$` would let "a\n" in
REQUEST_ID = re.compile(r"req_[A-Za-z0-9_-]{4,128}")
DEPS_MAX = 30
DEP_SPEC_MAX = 200
LOG_TAIL_DEFAULT = 50
LOG_TAIL_MAX = 1000
# Bundled by the platform itself (@run402/functions, and its legacy name), or native modules
# the function runtime cannot load.
RESERVED_DEPS = frozenset({"@run402/functions", "run402-functions", "sharp", "canvas", "bcrypt"})

# Function caps per tier (§1.10, §5.1): what a client falls back on when GET /tiers/v1/status
# does not say, and what the local gateway enforces.
TIER_FUNCTION_LIMITS: dict[str, dict[str, int]] = {
    "prototype": {"max_function_timeout_seconds": 10, "max_function_memory_mb": 128,
                  "max_scheduled_functions": 1, "min_cron_interval_minutes": 15, "max_functions": 5},
    "hobby": {"max_function_timeout_seconds": 30, "max_function_memory_mb": 256,
              "max_scheduled_functions": 3, "min_cron_interval_minutes": 5, "max_functions": 25},
    "team": {"max_function_timeout_seconds": 60, "max_function_memory_mb": 512,
             "max_scheduled_functions": 10, "min_cron_interval_minutes": 1, "max_functions": 100},
}

_WHITESPACE = re.compile(r"\s")


def function_name_problem(name: Any) -> str | None:
    """Why `name` cannot name a function (it is the last segment of its URL), or None."""
    if not isinstance(name, str) or not FUNCTION_NAME.fullmatch(name):
        return ("must be 1-128 characters of lowercase letters, digits, '-' and '_', starting "
                "with a letter or digit")
    return None


def request_id_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not REQUEST_ID.fullmatch(value):
        return "must look like req_<4-128 letters, digits, '-' or '_'>"
    return None


def dep_package_name(spec: str) -> str:
    """The npm package an install spec names: `lodash@^4` -> `lodash`, `@scope/pkg@1` ->
    `@scope/pkg`, `@scope/pkg` -> itself (a scope's leading '@' is not a version separator)."""
    if spec.startswith("@"):
        slash = spec.find("/")
        if slash == -1:
            return spec
        at = spec.find("@", slash)
        return spec if at == -1 else spec[:at]
    at = spec.find("@")
    return spec if at == -1 else spec[:at]


def _aliased(spec: str) -> str | None:
    """The real package of an npm alias (`img@npm:sharp@0.33` installs `sharp`), else None."""
    name = dep_package_name(spec)
    rest = spec[len(name) + 1:]
    return dep_package_name(rest[4:]) if rest.startswith("npm:") and len(rest) > 4 else None


def dep_problem(spec: Any) -> str | None:
    """Why one `deps` entry cannot be installed into a function bundle, or None."""
    if not isinstance(spec, str) or spec.strip() == "":
        return "must be a non-empty npm package spec"
    if _WHITESPACE.search(spec):
        return "must not contain whitespace"
    if len(spec) > DEP_SPEC_MAX:
        return f"must be at most {DEP_SPEC_MAX} characters"
    for name in (dep_package_name(spec), _aliased(spec)):
        if name is not None and name.lower() in RESERVED_DEPS:
            if name.lower() in ("@run402/functions", "run402-functions"):
                return f"names {name}, which the platform bundles itself: import it without listing it"
            return f"names {name}, a native module the function runtime cannot load"
    return None


def deps_problem(deps: Any) -> tuple[int | None, str] | None:
    """(index of the bad entry or None for the list itself, what is wrong), or None."""
    if not isinstance(deps, list):
        return None, "must be a list of npm package specs"
    if len(deps) > DEPS_MAX:
        return None, f"has {len(deps)} entries; at most {DEPS_MAX} are allowed"
    for i, spec in enumerate(deps):
        problem = dep_problem(spec)
        if problem is not None:
            return i, problem
    return None
