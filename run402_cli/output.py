"""The output contract agents depend on.

Success: one JSON document on stdout, exit 0. Failure: exactly one JSON line on stderr,
nothing on stdout, exit 1. Progress: JSON lines on stderr (never stdout).
Only this module writes to the process streams.
"""

from __future__ import annotations

import json
import sys
from typing import Any

__all__ = ["emit", "emit_text", "fail", "human", "progress"]


def _dump(data: Any, compact: bool) -> str:
    if compact:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit(data: Any, *, compact: bool = False) -> None:
    """Print a command's result. Most results are pretty-printed; a few are compact (spec §6.3)."""
    sys.stdout.write(_dump(data, compact) + "\n")
    sys.stdout.flush()


def emit_text(text: str) -> None:
    """Bare text on stdout (only `allowance export`, which prints the address alone)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def fail(envelope: dict[str, Any]) -> None:
    """One JSON line on stderr. The caller exits 1."""
    sys.stderr.write(_dump(envelope, compact=True) + "\n")
    sys.stderr.flush()


def progress(event: dict[str, Any]) -> None:
    """A progress event: one compact JSON line on stderr."""
    sys.stderr.write(_dump(event, compact=True) + "\n")
    sys.stderr.flush()


def human(line: str) -> None:
    """A human-readable line on stderr (init --json keeps its human lines off stdout)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
