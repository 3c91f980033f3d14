"""Gateway errors: capability code raises GatewayError; one handler renders the envelope
(spec api-core §6.1). A 500 gets a trace id and never a traceback."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["GatewayError", "error_response", "handle_gateway_error", "handle_unexpected"]

log = logging.getLogger("run402.gateway")


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        category: str | None = None,
        retryable: bool = False,
        safe_to_retry: bool = True,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
        next_actions: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.category = category
        self.retryable = retryable
        self.safe_to_retry = safe_to_retry
        self.hint = hint
        self.details = details
        self.next_actions = next_actions or []
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "message": self.message, "code": self.code}
        if self.category:
            body["category"] = self.category
        body["retryable"] = self.retryable
        body["safe_to_retry"] = self.safe_to_retry
        if self.hint:
            body["hint"] = self.hint
        if self.details is not None:
            body["details"] = self.details
        body["next_actions"] = self.next_actions
        body.update(self.extra)
        body["trace_id"] = "trc_" + secrets.token_hex(8)
        return body


def error_response(err: GatewayError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)


async def handle_gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    trace = "trc_" + secrets.token_hex(8)
    log.exception("unhandled error %s on %s %s", trace, request.method, request.url.path)
    return JSONResponse(
        {
            "error": "Internal error",
            "message": "Internal error",
            "code": "INTERNAL_ERROR",
            "retryable": True,
            "safe_to_retry": False,
            "next_actions": [],
            "trace_id": trace,
        },
        status_code=500,
    )
