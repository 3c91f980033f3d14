"""What the deploy verbs (and `sites`) share: strict integer flags, the stdin manifest source,
operation ids."""

from __future__ import annotations

from typing import Optional

from run402_cli.commands._options import (  # noqa: F401  (re-exported for the verbs)
    MAX_SAFE_INTEGER, positive_int, read_stdin_source,
)
from run402_cli.errors import UsageError

__all__ = ["MAX_SAFE_INTEGER", "check_operation_id", "positive_int", "read_stdin_source"]


def check_operation_id(value: Optional[str], usage: str) -> str:
    if not value:
        raise UsageError("Missing <operation_id>.", hint=usage)
    if not value.startswith("op_"):
        raise UsageError(f"Operation {value} not found: operation ids start with 'op_'.",
                         code="OPERATION_NOT_FOUND", hint="Run: run402 deploy list",
                         details={"operation_id": value})
    return value


# --- apply ----------------------------------------------------------------------------------
