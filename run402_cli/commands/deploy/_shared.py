"""What the deploy verbs (and `sites`) share: strict integer flags, the stdin manifest source,
operation ids."""

from __future__ import annotations

from typing import Optional

from run402_cli.commands._options import read_stdin_source  # noqa: F401  (re-exported for the verbs)
from run402_cli.errors import UsageError

__all__ = ["MAX_SAFE_INTEGER", "check_operation_id", "positive_int", "read_stdin_source"]


# The largest integer every client (and a JSON number in JavaScript) holds exactly: 2^53 - 1.
MAX_SAFE_INTEGER = 2**53 - 1


def positive_int(value: Optional[str], flag: str) -> Optional[int]:
    """A strict decimal integer in 1..2^53-1, or None when the flag is absent (BAD_FLAG
    otherwise). Beyond 2^53-1 the official client refuses too: the API would get a value it
    cannot represent exactly."""
    if value is None:
        return None
    # the length check first: int() of thousands of digits is slow, and refused past 4300
    if (not value.isdigit() or not value.isascii() or len(value.lstrip("0")) > 16
            or not 1 <= int(value) <= MAX_SAFE_INTEGER):
        raise UsageError(f"{flag} must be a positive integer.", code="BAD_FLAG",
                         details={"flag": flag, "value": value})
    return int(value)


def check_operation_id(value: Optional[str], usage: str) -> str:
    if not value:
        raise UsageError("Missing <operation_id>.", hint=usage)
    if not value.startswith("op_"):
        raise UsageError(f"Operation {value} not found: operation ids start with 'op_'.",
                         code="OPERATION_NOT_FOUND", hint="Run: run402 deploy list",
                         details={"operation_id": value})
    return value


# --- apply ----------------------------------------------------------------------------------
