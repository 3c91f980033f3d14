"""The kernel every namespace calls: builds the URL, adds auth, parses, maps statuses to errors.

Behaviour copied from the official SDK kernel:
- a body is parsed as JSON only when the content-type says so; otherwise it is text; 204 is "";
- 402 -> PaymentRequired, 401/403 -> Unauthorized, other non-2xx -> ApiError;
- a request that never got an answer -> NetworkError;
- SIGN-IN-WITH-X is added to every request unless the call opts out (`wallet_auth=False`),
  and only when an allowance exists; headers a namespace sets explicitly always win.
Payment (x402) sits in the kernel: a 402 it can pay is paid and the request resent once, so
namespaces never see a 402 they could pay. The wire itself is `api/transport.py`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

from run402_cli import __version__
from run402_cli.api.transport import Response, TransportError, origin_of
from run402_cli.config import Allowance, Settings
from run402_cli.errors import ApiError, NetworkError, PaymentRequired, Unauthorized

__all__ = ["Client", "Response"]

_SIWX = "SIGN-IN-WITH-X"


class _Headers(dict):
    """Request headers being built: the last spelling of a name wins, case-insensitively
    (a header a namespace sets explicitly replaces the default of the same name)."""

    def set(self, name: str, value: str) -> None:
        for key in [k for k in self if k.lower() == name.lower()]:
            del self[key]
        self[name] = value

    def has(self, name: str) -> bool:
        return any(k.lower() == name.lower() for k in self)

    def drop(self, name: str) -> None:
        for key in [k for k in self if k.lower() == name.lower()]:
            del self[key]


def _with_params(url: str, params: dict[str, Any] | None) -> str:
    """`url` with `params` merged into its query, encoded as httpx encodes them (booleans as
    true/false, None as empty, lists as repeated keys, form encoding)."""
    if params is None:
        return url
    from urllib.parse import parse_qsl, urlencode

    def text(value: Any) -> str:
        return "true" if value is True else "false" if value is False else "" if value is None else str(value)

    base, _, query = url.partition("?")
    base, hashmark, fragment = base.partition("#")
    merged: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        merged.setdefault(key, []).append(value)
    for key, value in params.items():  # a key given in params replaces the URL's
        merged[str(key)] = [text(v) for v in value] if isinstance(value, (list, tuple)) else [text(value)]
    encoded = urlencode([(k, v) for k, vs in merged.items() for v in vs])
    return base + (f"?{encoded}" if encoded else "")


class Client:
    """One per command invocation. `transport` is the test seam: an `httpx.BaseTransport`
    (httpx.MockTransport for hosted-only mocks, or an ASGI/WSGI transport) that receives
    exactly the requests the default socket transport would send."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Any = None,
        base: str | None = None,
    ) -> None:
        self.settings = settings
        self.base = base or settings.api_base
        # Deploy traffic (/apply/v1, /content/v1) may go elsewhere: RUN402_DEPLOY_API_BASE.
        redirected = base is None and bool(settings.env.get("RUN402_DEPLOY_API_BASE"))
        self.deploy_base = settings.deploy_api_base if redirected else self.base
        self._transport = transport
        self._wire: Any = None
        self._allowance: Allowance | None | bool = False  # False = not read yet

    @property
    def allowance(self) -> Allowance | None:
        if self._allowance is False:
            self._allowance = self.settings.allowance()
        return self._allowance  # type: ignore[return-value]

    def _wire_for(self) -> Any:
        if self._wire is None:
            from run402_cli.api import transport

            if self._transport is not None:
                self._wire = transport.HttpxTransport(self._transport)
            else:
                self._wire = transport.default_transport()
        return self._wire

    def close(self) -> None:
        if self._wire is not None:
            self._wire.close()
            self._wire = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exchange(self, method: str, url: str, headers: dict[str, str], content: bytes | Iterable[bytes] | None,
                  context: str, hint: str | None, timeout: float | None = None, stream: bool = False) -> Response:
        """One request on the wire, with httpx's default headers; NetworkError when it gets
        no answer. A body given as an iterable without a Content-Length goes chunked."""
        wire = [("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"),
                ("User-Agent", f"run402-python/{__version__}")]
        mine = {k.lower() for k in headers}
        wire = [(k, v) for k, v in wire if k.lower() not in mine] + list(headers.items())
        if "content-length" not in mine:
            if isinstance(content, (bytes, bytearray, memoryview)):
                wire.append(("Content-Length", str(len(content))))
            elif content is not None:
                if "transfer-encoding" not in mine:
                    wire.append(("Transfer-Encoding", "chunked"))
            elif method.upper() in ("POST", "PUT", "PATCH"):
                wire.append(("Content-Length", "0"))
        try:
            return self._wire_for().handle(method, url, wire, content, timeout=timeout, stream=stream)
        except TransportError as exc:
            raise NetworkError(f"Network error while {context}: {exc}", hint=hint) from exc

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: str | bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        wallet_auth: bool = True,
        bearer: str | None = None,
        context: str = "",
        base: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """`timeout`: seconds to wait for each read of the answer, when a call may take the
        server longer than the transport's default (transport.READ_TIMEOUT)."""
        url = _with_params((base or self.base) + path, params)
        hdrs = _Headers()
        body: bytes | None = None
        if json is not None:  # what httpx's json= sends
            import json as jsonlib

            body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
        elif content is not None:
            body = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        if bearer is not None:
            hdrs.set("Authorization", f"Bearer {bearer}")
        if content_type is not None:
            hdrs.set("Content-Type", content_type)
        for name, value in (headers or {}).items():
            hdrs.set(name, value)
        if json is not None and not hdrs.has("Content-Type"):
            hdrs.set("Content-Type", "application/json")
        where = context or method + " " + path
        hint = f"Is the API reachable at {base or self.base}?"
        # A call that carries a project key authenticates with it: no SIGN-IN-WITH-X (the
        # official client attaches one anyway; servers accept either), which saves signing
        # per call. A 402 on such a call is still paid.
        allowance = self.allowance if wallet_auth else None
        sign_in = allowance is not None and bearer is None
        caller_siwx = hdrs.has(_SIWX)
        if sign_in and not caller_siwx:
            hdrs.set(_SIWX, self._siwx(allowance, url))  # type: ignore[arg-type]
        resp = self._exchange(method, url, hdrs, body, where, hint, timeout)
        if resp.status_code == 402 and allowance is not None:
            from run402_cli.payments import payment_retry_headers

            extra = payment_retry_headers(allowance.private_key, hdrs, resp.headers)
            if extra is not None:  # paid: resend once, with a fresh SIWX nonce
                retry = _Headers(hdrs)
                for name, value in extra.items():
                    retry.set(name, value)
                if sign_in and not caller_siwx:
                    retry.set(_SIWX, self._siwx(allowance, url))  # type: ignore[arg-type]
                resp = self._exchange(method, url, retry, body, where, hint, timeout)
        return _parse(resp, context or f"{method} {path}")

    @staticmethod
    def _siwx(allowance: Allowance, url: str) -> str:
        """A fresh SIGN-IN-WITH-X header for `url` (SIWX nonces are single use)."""
        from run402_cli.wallet import siwx_header

        origin, target = origin_of(url)
        return siwx_header(private_key=allowance.private_key, api_base=origin, path=target)

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        context: str = "",
    ) -> Iterator[Response]:
        """A request to the API whose 2xx body is read by the caller, in chunks
        (`resp.iter_bytes()`), never whole: a blob download. No SIWX, no payment (the headers
        carry the credential). A non-2xx answer is read (it is small) and raised like
        `request` does; a network error is NetworkError, also mid-body. Leaving the block
        before the body's end drops the connection."""
        url = self.base + path
        what = context or f"{method} {path}"
        hint = f"Is the API reachable at {self.base}?"
        hdrs = _Headers()
        for name, value in (headers or {}).items():
            hdrs.set(name, value)
        resp = self._exchange(method, url, hdrs, None, what, hint, stream=True)
        try:
            try:
                if not 200 <= resp.status_code < 300:
                    resp.read()
                    _parse(resp, what)  # raises
                yield resp
            except TransportError as exc:
                raise NetworkError(f"Network error while {what}: {exc}", hint=hint) from exc
        finally:
            resp.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        context: str = "",
        timeout: float | None = None,
    ) -> Response:
        """A request to an absolute URL that is not the API (a presigned upload URL): no
        SIWX, no payment, no default headers beyond User-Agent. `content` may be an iterable
        of chunks (sent as they come; give Content-Length in `headers`). Same error mapping as
        `request` (NetworkError; ApiError & co. on non-2xx); returns the response, so the
        caller can read headers (an upload's ETag). Safe to call from several threads."""
        hdrs = _Headers()
        for name, value in (headers or {}).items():
            hdrs.set(name, value)
        resp = self._exchange(method, url, hdrs, content, context or method + " " + url, None, timeout)
        if not 200 <= resp.status_code < 300:
            _parse(resp, context or f"{method} {url}")  # raises
        return resp


def _body(resp: Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        return ""
    if "application/json" in resp.headers.get("content-type", ""):
        try:
            return resp.json()
        except ValueError:
            return resp.text
    return resp.text


def _parse(resp: Response, context: str) -> Any:
    body = _body(resp)
    if 200 <= resp.status_code < 300:
        return body
    if resp.status_code == 402:
        raise PaymentRequired(402, body, context=context)
    if resp.status_code in (401, 403):
        raise Unauthorized(resp.status_code, body, context=context)
    raise ApiError(resp.status_code, body, context=context)
