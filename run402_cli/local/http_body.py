"""Request bodies, bounded: how much the gateway reads, what it accepts, how it parses JSON.

- Size: every request's body is capped while it is read, before anything parses it (413
  PAYLOAD_TOO_LARGE). A declared Content-Length over the cap is refused before a byte of the
  body is read. A request carrying no credential at all gets a small cap; the per-route caps
  (uploads, deploy plans, REST) apply to requests that present one, and the routes check that
  credential before they read the body.
- Type: control-plane routes that take JSON refuse any other Content-Type (415), so a web page
  the user happens to open cannot make them work with a "simple" cross-origin POST (text/plain
  and form bodies need no CORS preflight; application/json does). The data plane (/rest/v1,
  /auth/v1) stays open to browsers, as the hosted API is.
- JSON: one parser for every route. Malformed, non-UTF-8 or too deeply nested JSON is 400
  BAD_JSON; nesting is limited to MAX_JSON_DEPTH levels.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from run402_cli.local.errors import GatewayError, error_response
from run402_cli.local.web.hosts import site_hostname_of

__all__ = ["MAX_JSON_DEPTH", "BodyLimits", "body_cap", "is_site_host", "read_body", "read_json", "read_json_bytes"]

KiB, MiB = 1024, 1024 * 1024
MAX_JSON_DEPTH = 64
UNAUTHENTICATED_CAP = 64 * KiB
DEFAULT_CAP = 1 * MiB
# (path prefix, cap) — first match wins. Upload parts are at most 16 MiB (deploy/content.py).
_ROUTE_CAPS: tuple[tuple[str, int], ...] = (
    ("/_upload/", 16 * MiB + 64 * KiB),
    ("/apply/v1/plans", 32 * MiB),
    ("/apply/v1/service-asset-put", 25 * MiB + 64 * KiB),
    ("/content/v1/plans", 16 * MiB),
    ("/rest/v1/", 10 * MiB),
    ("/admin/v1/rest/", 10 * MiB),
    ("/projects/v1/admin/", 4 * MiB),
    ("/functions/v1/", 6 * MiB),
)
_CREDENTIAL_HEADERS = (b"authorization", b"apikey", b"sign-in-with-x", b"payment-signature")
# Control-plane routes whose bodies are JSON (the SQL endpoint also takes text/plain; it needs the
# project's service key in a header, which no simple cross-origin request can send).
_JSON_ONLY_PREFIXES = ("/projects/v1", "/tiers/v1", "/faucet/v1", "/billing/v1", "/wallets/v1", "/rpc/v1",
                       "/apply/v1", "/content/v1", "/subdomains/v1", "/jobs/v1")


def _is_sql_route(path: str) -> bool:
    return path.startswith("/projects/v1/admin/") and path.endswith("/sql")


_RAW_BODY_ROUTES = ("/apply/v1/service-asset-put",)  # bytes in, from functions' assets.put


ROUTED_CAP = 6 * MiB  # a request routed to a function on a site's host (public: no key needed)


def is_site_host(headers: list[tuple[bytes, bytes]]) -> bool:
    return site_hostname_of(headers) is not None


def body_cap(path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """The most bytes of body this request may send."""
    if is_site_host(headers):
        return ROUTED_CAP
    names = {k.lower() for k, _ in headers}
    if not any(h in names for h in _CREDENTIAL_HEADERS) and not path.startswith("/_upload/"):
        return UNAUTHENTICATED_CAP
    for prefix, cap in _ROUTE_CAPS:
        if path.startswith(prefix):
            return cap
    return DEFAULT_CAP


def _too_large(cap: int) -> GatewayError:
    return GatewayError(413, "PAYLOAD_TOO_LARGE", f"Request body is larger than {cap} bytes",
                        details={"max_bytes": cap}, hint="Send less per request (deploys batch for you)")


class BodyLimits:
    """ASGI middleware: the size cap and the JSON-only rule, before routing and authentication."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        cap = body_cap(path, headers)
        declared = None
        content_type = b""
        chunked = False
        for k, v in headers:
            k = k.lower()
            if k == b"content-length":
                try:
                    declared = int(v)
                except ValueError:
                    declared = cap + 1
            elif k == b"content-type":
                content_type = v.lower()
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
        if declared is not None and declared > cap:
            await self._refuse(scope, receive, send, _too_large(cap))
            return
        has_body = chunked or (declared or 0) > 0
        if has_body and path.startswith(_JSON_ONLY_PREFIXES) and not _is_sql_route(path) \
                and path not in _RAW_BODY_ROUTES and not is_site_host(headers):
            media = content_type.split(b";")[0].strip()
            if media != b"application/json" and not media.endswith(b"+json"):
                await self._refuse(scope, receive, send, GatewayError(
                    415, "UNSUPPORTED_MEDIA_TYPE", "This endpoint takes Content-Type: application/json",
                    details={"content_type": content_type.decode("latin-1")}))
                return

        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise _too_large(cap)
            return message

        await self.app(scope, bounded_receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, err: GatewayError) -> None:
        # The body is left unread: the server closes the connection after this response.
        response = error_response(err)
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


async def read_body(request: Request) -> bytes:
    """The whole body (already capped by BodyLimits while it is read)."""
    return await request.body()


def _depth_ok(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return True


def read_json_bytes(raw: bytes, *, empty: Any = None) -> Any:
    """Parse a JSON body; 400 BAD_JSON when it is not valid, not UTF-8, or nested too deeply.
    An empty body is `empty`."""
    if not raw.strip():
        return empty
    try:
        value = json.loads(raw)
    except RecursionError:  # deeper than the interpreter allows: certainly deeper than our limit
        value = _TOO_DEEP
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise GatewayError(400, "BAD_JSON", "Request body is not valid JSON") from None
    if value is _TOO_DEEP or not _depth_ok(value):
        raise GatewayError(400, "BAD_JSON", f"Request body is nested deeper than {MAX_JSON_DEPTH} levels",
                           details={"max_depth": MAX_JSON_DEPTH})
    return value


_TOO_DEEP = object()


async def read_json(request: Request, *, empty: Any = None, want_object: bool = False) -> Any:
    """The request's JSON body (see read_json_bytes); `want_object` also requires a JSON object."""
    value = read_json_bytes(await read_body(request), empty=empty)
    if want_object and not isinstance(value, dict):
        raise GatewayError(400, "BAD_JSON", "Request body must be a JSON object")
    return value
