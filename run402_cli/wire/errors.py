"""The API's error envelope: the JSON object a non-2xx answer carries, written by the gateway
and read by the CLI, and the error codes both sides act on.

    {"error": "<message>", "message": "<message>", "code": "PROJECT_NOT_FOUND",
     "category": "deploy"?, "retryable": false, "safe_to_retry": true, "hint": "..."?,
     "details": {...}?, "next_actions": [{"action": ..., ...}], "trace_id": "trc_..."}

`error` repeats `message` for clients that predate `message`. A reader must tolerate any field
missing or mistyped (an old server, a proxy's HTML page): `read_error` says what a body says
and nothing more.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = [
    "BASE_RELEASE_CONFLICT", "ENVELOPE_FIELDS", "ErrorFields", "INTERNAL_ERROR",
    "MISSING_REQUIRED_SECRET", "PAYMENT_REQUIRED", "error_body", "new_trace_id", "read_error",
]

# Codes a client branches on, so the gateway must send exactly these.
BASE_RELEASE_CONFLICT = "BASE_RELEASE_CONFLICT"  # another deploy activated first: re-plan and retry
MISSING_REQUIRED_SECRET = "MISSING_REQUIRED_SECRET"  # a plan warning and a commit failure
PAYMENT_REQUIRED = "PAYMENT_REQUIRED"  # 402: pay (x402) and send again
INTERNAL_ERROR = "INTERNAL_ERROR"  # 500: a trace id, never a traceback

# The envelope fields a client fills in from its own defaults when a body lacks them, in the
# order it adds them (after the body's own fields).
ENVELOPE_FIELDS = ("message", "code", "category", "retryable", "safe_to_retry", "mutation_state",
                   "trace_id", "details", "next_actions")


def new_trace_id() -> str:
    import secrets  # not at import time: every CLI command imports this module

    return "trc_" + secrets.token_hex(8)


def error_body(message: str, code: str, *, category: str | None = None, retryable: bool = False,
               safe_to_retry: bool = True, hint: str | None = None,
               details: Mapping[str, Any] | None = None,
               next_actions: Sequence[Mapping[str, Any]] = (),
               extra: Mapping[str, Any] | None = None, trace_id: str | None = None) -> dict[str, Any]:
    """The envelope a gateway sends. Optional fields are left out when unset; `extra` adds
    fields of the code's own (`retry_after_seconds`, `mutation_state`, ...)."""
    body: dict[str, Any] = {"error": message, "message": message, "code": code}
    if category:
        body["category"] = category
    body["retryable"] = retryable
    body["safe_to_retry"] = safe_to_retry
    if hint:
        body["hint"] = hint
    if details is not None:
        body["details"] = dict(details)
    body["next_actions"] = [dict(a) for a in next_actions]
    body.update(extra or {})
    body["trace_id"] = trace_id or new_trace_id()
    return body


class ErrorFields:
    """What an error body says, each field None when it is absent or of the wrong type.
    (A plain class: every command imports this module, and a dataclass costs ~1 ms to build.)"""

    __slots__ = ("message", "code", "retryable", "safe_to_retry")

    def __init__(self, message: str | None, code: str | None, retryable: bool | None,
                 safe_to_retry: bool | None) -> None:
        self.message, self.code = message, code
        self.retryable, self.safe_to_retry = retryable, safe_to_retry


def read_error(body: Any) -> ErrorFields:
    """Read an answer's error body: `message` (else the older `error`), `code`, `retryable`,
    `safe_to_retry`. Anything but a JSON object says nothing."""
    if not isinstance(body, dict):
        return ErrorFields(None, None, None, None)
    text = body.get("message") or body.get("error")

    def flag(name: str) -> bool | None:
        return body[name] if isinstance(body.get(name), bool) else None

    return ErrorFields(str(text) if text else None,
                       body["code"] if isinstance(body.get("code"), str) else None,
                       flag("retryable"), flag("safe_to_retry"))
