"""The kernel every namespace calls: builds the URL, adds auth, parses, maps statuses to errors.

Behaviour copied from the official SDK kernel:
- a body is parsed as JSON only when the content-type says so; otherwise it is text; 204 is "";
- 402 -> PaymentRequired, 401/403 -> Unauthorized, other non-2xx -> ApiError;
- a request that never got an answer -> NetworkError;
- SIGN-IN-WITH-X is added to every request unless the call opts out (`wallet_auth=False`),
  and only when an allowance exists; headers a namespace sets explicitly always win.
Payment (x402) sits under the kernel as an httpx.Auth, so namespaces never see a 402 they could pay.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Generator, Iterable, Iterator

import httpx

from run402_cli import __version__
from run402_cli.config import Allowance, Settings
from run402_cli.errors import ApiError, NetworkError, PaymentRequired, Unauthorized

__all__ = ["Client"]

_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class _TlsOnDemand(httpx.BaseTransport):
    """httpx's default transport, with the verified TLS context built on the first https://
    request instead of in the constructor: loading the CA bundle costs every command tens of
    milliseconds, and commands against the local gateway never speak TLS. http:// requests
    go through a pool whose TLS context is never used (no TLS happens on plain HTTP); https://
    requests get httpx's default, fully verified transport."""

    def __init__(self) -> None:
        self._plain: httpx.HTTPTransport | None = None
        self._tls: httpx.HTTPTransport | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            if self._tls is None:
                self._tls = httpx.HTTPTransport()  # verify=True: certifi, or SSL_CERT_FILE/DIR
            return self._tls.handle_request(request)
        if self._plain is None:
            self._plain = httpx.HTTPTransport(verify=False)  # plain HTTP: TLS never runs here
        return self._plain.handle_request(request)

    def close(self) -> None:
        for transport in (self._plain, self._tls):
            if transport is not None:
                transport.close()


class _SiwxAuth(httpx.Auth):
    """A fresh SIGN-IN-WITH-X header per request (SIWX nonces are single use)."""

    def __init__(self, allowance: Allowance) -> None:
        self._allowance = allowance

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if "sign-in-with-x" not in request.headers:
            from run402_cli.wallet import siwx_header

            origin = f"{request.url.scheme}://{request.url.netloc.decode('ascii')}"
            request.headers["SIGN-IN-WITH-X"] = siwx_header(
                private_key=self._allowance.private_key,
                api_base=origin,
                path=request.url.raw_path.decode("ascii"),
            )
        yield request


class Client:
    """One per command invocation. `transport` is the test seam (httpx.MockTransport for
    hosted-only mocks, or an ASGI/WSGI transport)."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        base: str | None = None,
    ) -> None:
        self.settings = settings
        self.base = base or settings.api_base
        # Deploy traffic (/apply/v1, /content/v1) may go elsewhere: RUN402_DEPLOY_API_BASE.
        redirected = base is None and bool(settings.env.get("RUN402_DEPLOY_API_BASE"))
        self.deploy_base = settings.deploy_api_base if redirected else self.base
        self._transport = transport
        self._http: httpx.Client | None = None
        self._allowance: Allowance | None | bool = False  # False = not read yet

    @property
    def allowance(self) -> Allowance | None:
        if self._allowance is False:
            self._allowance = self.settings.allowance()
        return self._allowance  # type: ignore[return-value]

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                transport=self._transport or _TlsOnDemand(),
                timeout=_TIMEOUT,
                headers={"User-Agent": f"run402-python/{__version__}"},
                follow_redirects=False,
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _auth(self, wallet_auth: bool, sign_in: bool) -> httpx.Auth | None:
        allowance = self.allowance if wallet_auth else None
        if allowance is None:
            return None
        from run402_cli.payments import X402Auth

        return X402Auth(allowance.private_key, inner=_SiwxAuth(allowance) if sign_in else None)

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
    ) -> Any:
        url = (base or self.base) + path
        hdrs: dict[str, str] = {}
        if bearer is not None:
            hdrs["Authorization"] = f"Bearer {bearer}"
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        hdrs.update(headers or {})
        try:
            resp = self._client().request(
                method,
                url,
                json=json,
                content=content,
                headers=hdrs,
                params=params,
                # A call that carries a project key authenticates with it: no SIGN-IN-WITH-X
                # (the official client attaches one anyway; servers accept either), which saves
                # signing per call. A 402 on such a call is still paid.
                auth=self._auth(wallet_auth, sign_in=bearer is None),
            )
        except httpx.HTTPError as exc:
            raise NetworkError(
                f"Network error while {context or method + ' ' + path}: {exc or type(exc).__name__}",
                hint=f"Is the API reachable at {base or self.base}?",
            ) from exc
        return _parse(resp, context or f"{method} {path}")

    @contextmanager
    def stream(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        context: str = "",
    ) -> Iterator[httpx.Response]:
        """A request to the API whose 2xx body is read by the caller, in chunks
        (`resp.iter_bytes()`), never whole: a blob download. No SIWX, no payment (the headers
        carry the credential). A non-2xx answer is read (it is small) and raised like
        `request` does; a network error is NetworkError, also mid-body."""
        url = self.base + path
        what = context or f"{method} {path}"
        try:
            with self._client().stream(method, url, headers=headers or {}) as resp:
                if not 200 <= resp.status_code < 300:
                    resp.read()
                    _parse(resp, what)  # raises
                yield resp
        except httpx.HTTPError as exc:
            raise NetworkError(f"Network error while {what}: {exc or type(exc).__name__}",
                               hint=f"Is the API reachable at {self.base}?") from exc

    def send(
        self,
        method: str,
        url: str,
        *,
        content: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        context: str = "",
        timeout: float | None = None,
    ) -> httpx.Response:
        """A request to an absolute URL that is not the API (a presigned upload URL): no
        SIWX, no payment, no default headers beyond User-Agent. `content` may be an iterable
        of chunks (sent as they come; give Content-Length in `headers`). Same error mapping as
        `request` (NetworkError; ApiError & co. on non-2xx); returns the response, so the
        caller can read headers (an upload's ETag). Safe to call from several threads."""
        try:
            resp = self._client().request(
                method, url, content=content, headers=headers or {},
                timeout=timeout if timeout is not None else _TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise NetworkError(
                f"Network error while {context or method + ' ' + url}: {exc or type(exc).__name__}",
            ) from exc
        if not 200 <= resp.status_code < 300:
            _parse(resp, context or f"{method} {url}")  # raises
        return resp


def _body(resp: httpx.Response) -> Any:
    if resp.status_code == 204 or not resp.content:
        return ""
    if "application/json" in resp.headers.get("content-type", ""):
        try:
            return resp.json()
        except ValueError:
            return resp.text
    return resp.text


def _parse(resp: httpx.Response, context: str) -> Any:
    body = _body(resp)
    if 200 <= resp.status_code < 300:
        return body
    if resp.status_code == 402:
        raise PaymentRequired(402, body, context=context)
    if resp.status_code in (401, 403):
        raise Unauthorized(resp.status_code, body, context=context)
    raise ApiError(resp.status_code, body, context=context)
