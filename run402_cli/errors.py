"""Error types, and the one canonical error envelope the CLI prints.

    Run402Error                      anything the CLI reports as a failure (exit 1)
     ├── UsageError                  bad argv: BAD_USAGE, BAD_FLAG, UNKNOWN_FLAG, BAD_JSON_FLAG, ...
     ├── LocalError                  local state / validation: NO_ALLOWANCE, NO_ACTIVE_PROJECT, ...
     │    └── ProjectNotFound        PROJECT_NOT_FOUND (not in the local keystore)
     ├── ApiError                    a non-2xx answer from the API (carries `http` and the body)
     │    ├── PaymentRequired        402
     │    └── Unauthorized           401 / 403
     ├── NetworkError                the request never got an answer (retryable)
     └── PaymentError                a 402 we could not pay (bad requirements, signing failed)

Each class sets `code`, `retryable` and `safe_to_retry`, so callers can catch a whole branch.
Only `app.main()` turns one into output (see `output.fail`).

`Informational` is not an error: it is the official CLI's "non-ok result on stdout, exit 1"
(`status` / `allowance status` without an allowance).
"""

from __future__ import annotations

from typing import Any

from run402_cli.wire.errors import ENVELOPE_FIELDS, PAYMENT_REQUIRED, read_error

__all__ = [
    "ApiError",
    "Informational",
    "LocalError",
    "NetworkError",
    "PaymentError",
    "PaymentRequired",
    "ProjectNotFound",
    "Run402Error",
    "Unauthorized",
    "UsageError",
    "from_click_error",
]

class Run402Error(Exception):
    code = "BAD_USAGE"
    category: str | None = None
    retryable = False
    safe_to_retry = True

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
        field: str | None = None,
        next_actions: list[dict[str, Any]] | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retryable is not None:
            self.retryable = retryable
        self.hint = hint
        self.details = details
        self.field = field
        self.next_actions = next_actions or []

    def to_envelope(self) -> dict[str, Any]:
        """The client-side `fail()` envelope, field order as the official CLI prints it."""
        env: dict[str, Any] = {
            "status": "error",
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "safe_to_retry": self.safe_to_retry,
        }
        if self.hint is not None:
            env["hint"] = self.hint
        if self.details is not None:
            env["details"] = self.details
        if self.field is not None:
            env["field"] = self.field
        env["next_actions"] = self.next_actions
        env["trace_id"] = None
        return env


class UsageError(Run402Error):
    code = "BAD_USAGE"


class LocalError(Run402Error):
    code = "LOCAL_ERROR"


class ProjectNotFound(LocalError):
    code = "PROJECT_NOT_FOUND"

    def __init__(self, project_id: str) -> None:
        hint = None
        if not project_id.startswith("prj_"):
            hint = "Project ids start with 'prj_'. Run: run402 projects list"
        super().__init__(
            f"Project {project_id} not found in local registry.",
            hint=hint,
            details={"project_id": project_id, "source": "local_registry"},
        )


class ApiError(Run402Error):
    """A non-2xx response. `body` is the parsed JSON object, or text for non-JSON bodies."""

    code = "API_ERROR"
    category = "api"
    _fallback = "API error"

    def __init__(self, status: int, body: Any, *, context: str = "") -> None:
        self.http = status
        self.body = body
        said = read_error(body)
        text = said.message or self._fallback
        suffix = "" if status == 402 else f" (HTTP {status})"
        message = f"{text} while {context}{suffix}" if context else f"{text}{suffix}"
        super().__init__(message)
        # Envelope fields from the body override the defaults, as in the official SDK.
        if said.retryable is not None:
            self.retryable = said.retryable
        if said.code is not None:
            self.code = said.code

    def to_envelope(self) -> dict[str, Any]:
        env: dict[str, Any] = {"status": "error", "http": self.http}
        if isinstance(self.body, dict):
            env.update(self.body)
            if "message" not in env and "error" in env:
                env["message"] = env["error"]
        elif isinstance(self.body, str) and self.body:
            env["body_preview"] = self.body[:500]
        defaults = {
            "message": self.message,
            "code": self.code,
            "category": self.category,
            "retryable": self.retryable,
            "safe_to_retry": self.safe_to_retry,
            "details": self.details,
            "next_actions": self.next_actions,
            "trace_id": None,
        }
        # the official CLI fills missing fields the same way, in this order, after the body
        for key in ENVELOPE_FIELDS:
            if key not in env and defaults.get(key) is not None:
                env[key] = defaults[key]
        if self.hint and "hint" not in env:
            env["hint"] = self.hint
        env["status"] = "error"
        return env


class PaymentRequired(ApiError):
    code = PAYMENT_REQUIRED
    category = "payment_required"
    _fallback = "Payment required"


class Unauthorized(ApiError):
    code = "UNAUTHORIZED"
    category = "auth"
    _fallback = "Unauthorized"


class NetworkError(Run402Error):
    code = "NETWORK_ERROR"
    category = "network"
    retryable = True
    safe_to_retry = True


class PaymentError(Run402Error):
    """A 402 we could not answer: unreadable requirements, no usable option, signing failed.

    We report this as its own code rather than the official client's NETWORK_ERROR: an agent
    needs to know the payment, not the network, is what failed."""

    code = "PAYMENT_ERROR"
    category = "payment"
    safe_to_retry = True


class Informational(Exception):
    """A non-ok result printed on stdout with exit 1 (the official CLI's `no_allowance`)."""

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload.get("message", ""))
        self.payload = payload


def from_click_error(exc: Exception) -> UsageError:
    """Turn Typer/Click's own usage errors into our contract (UNKNOWN_FLAG, BAD_FLAG, BAD_USAGE)."""
    from typer._click import exceptions as cx  # private path: imported here only

    if isinstance(exc, cx.NoSuchOption):
        flag = exc.option_name
        closest = _closest(flag, list(exc.possibilities or []) + _known_options(exc))
        hint = f"Did you mean {closest[0]}?" if closest else "Run with --help to see the flags."
        return UsageError(
            f"Unknown flag: {flag}", code="UNKNOWN_FLAG", hint=hint,
            details={"flag": flag, "closest": closest},
        )
    if isinstance(exc, cx.BadParameter):
        hint_src = _error_hint(exc)
        flag = hint_src.strip("'").split(" / ")[0].strip("'") if hint_src else None
        is_flag = bool(flag and flag.startswith("-"))
        details = ({"flag": flag} if is_flag else {"argument": flag}) if flag else None
        code = "BAD_USAGE" if isinstance(exc, cx.MissingParameter) and not is_flag else "BAD_FLAG"
        return UsageError(exc.format_message(), code=code, details=details, hint=_help_hint(exc))
    if isinstance(exc, cx.BadOptionUsage):
        return UsageError(exc.format_message(), code="BAD_FLAG", details={"flag": exc.option_name},
                          hint=_help_hint(exc))
    if isinstance(exc, cx.UsageError):
        msg = exc.format_message()
        if msg.startswith("No such command"):
            msg = msg.replace("No such command", "Unknown command")
        return UsageError(msg, code="BAD_USAGE", hint=_help_hint(exc))
    return UsageError(str(exc))


def _error_hint(exc: Any) -> str | None:
    """The parameter's display name ('--port' / 'TIER'); Typer's Click changed the signature."""
    if exc.param is None:
        return None
    try:
        return exc.param.get_error_hint(exc.ctx)
    except TypeError:
        return exc.param.get_error_hint()


def _help_hint(exc: Any) -> str | None:
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return None
    return f"Run: {ctx.command_path} --help"


def _known_options(exc: Any) -> list[str]:
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return []
    names: list[str] = []
    for param in ctx.command.params:
        names.extend(o for o in getattr(param, "opts", []) if o.startswith("-"))
    return names


def _closest(word: str, candidates: list[str], limit: int = 3) -> list[str]:
    """Candidates within Levenshtein distance 3, nearest first (the official CLI's rule)."""
    scored = sorted({(_levenshtein(word, c), c) for c in candidates})
    return [c for d, c in scored if d <= 3][:limit]


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]
