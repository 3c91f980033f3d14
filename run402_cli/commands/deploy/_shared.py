"""What the deploy verbs (and `sites`) share: strict integer flags, the stdin manifest source,
operation ids."""

from __future__ import annotations

from typing import Optional

from run402_cli.commands._options import read_stdin_source  # noqa: F401  (re-exported for the verbs)
from run402_cli.errors import UsageError

__all__ = ["check_operation_id", "positive_int", "read_stdin_source"]


def positive_int(value: Optional[str], flag: str) -> Optional[int]:
    """A strict decimal integer >= 1, or None when the flag is absent (BAD_FLAG otherwise)."""
    if value is None:
        return None
    if not value.isdigit() or not value.isascii() or int(value) < 1:
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
