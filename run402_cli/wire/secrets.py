"""Project secrets: the key and value rules the CLI checks before it sends a secret and the
gateway before it stores one, and the codes either side answers a broken rule with.

A problem names the rule, never the value, and never the offending key either: a key and a
value swapped on the command line (`secrets set prj_… sk-live-… API_KEY`) would otherwise put
the secret in an error message, a log, a terminal's scrollback.
"""

from __future__ import annotations

from typing import Any

from run402_cli.wire.release import SECRET_KEY

__all__ = [
    "BAD_SECRET_KEY", "SECRET_KEY", "SECRET_NOT_FOUND", "SECRET_VALUE_MAX_BYTES", "SECRET_VALUE_TOO_LARGE",
    "TIER_LIMIT_EXCEEDED", "secret_key_problem", "secret_value_problem",
]

SECRET_VALUE_MAX_BYTES = 4096  # UTF-8 bytes
BAD_SECRET_KEY = "BAD_SECRET_KEY"
SECRET_VALUE_TOO_LARGE = "SECRET_VALUE_TOO_LARGE"
SECRET_NOT_FOUND = "SECRET_NOT_FOUND"
TIER_LIMIT_EXCEEDED = "TIER_LIMIT_EXCEEDED"  # 403: the tier's count of secrets (or other things) is reached


def secret_key_problem(key: Any) -> tuple[str, str, dict[str, Any]] | None:
    """(code, message, details) when `key` is not a secret key, else None."""
    if isinstance(key, str) and SECRET_KEY.match(key):
        return None
    length = len(key) if isinstance(key, str) else None
    return (BAD_SECRET_KEY,
            f"Secret key must match {SECRET_KEY.pattern} (upper-case letters, digits and underscores, "
            "not starting with a digit, at most 128 characters)",
            {"pattern": SECRET_KEY.pattern, "length": length})


def secret_value_problem(value: Any) -> tuple[str, str, dict[str, Any]] | None:
    """(code, message, details) when `value` cannot be a secret value, else None."""
    if not isinstance(value, str):
        return "BAD_SECRET_VALUE", "Secret value must be a string", {}
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "BAD_SECRET_VALUE", "Secret value is not valid UTF-8", {}
    if size > SECRET_VALUE_MAX_BYTES:
        return (SECRET_VALUE_TOO_LARGE,
                f"Secret value is {size} bytes; maximum is {SECRET_VALUE_MAX_BYTES} UTF-8 bytes",
                {"bytes": size, "max_bytes": SECRET_VALUE_MAX_BYTES})
    return None
