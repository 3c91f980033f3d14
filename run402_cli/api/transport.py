"""The wire under `api/client.py`: one HTTP/1.1 exchange on a socket, what httpx would send.

Why not httpx here: importing httpx and httpcore costs every network command ~60 ms (httpx's
auth module alone pulls urllib.request, http.client and the email package), more than the
whole local call. The CLI's calls are plain request/response exchanges, so this module speaks
HTTP/1.1 itself on `socket` (and `ssl` for https://, built on the first https:// request):
the request carries the headers httpx's Client sends by default (Host, Accept,
Accept-Encoding: gzip, deflate, Connection: keep-alive, User-Agent, Content-Length or
Transfer-Encoding), and connections are kept alive and reused per origin (a deploy sends
many requests; several threads may share one transport). The framing is `api/http1.py`.

Bodies both ways may be streamed, so that a 1 GiB blob never sits in memory:
- a request body may be an iterable of chunks (an upload part read from disk as it is sent),
  with the Content-Length the caller gives, or chunked without one. Such a request always
  goes on a fresh connection: it cannot be replayed, so it must not meet a kept-alive
  connection the server has meanwhile dropped.
- `handle(..., stream=True)` returns once the head is read; `Response.iter_bytes()` then
  yields the decoded body in pieces of at most 64 KiB, and the connection goes back to the
  pool only when the body was read to its end (`close()` before that drops it). Without
  `stream`, the body is read whole before `handle` returns (`Response.content`).

What stays on httpx (`HttpxTransport`): a transport a test or a library user injects (any
`httpx.BaseTransport`, e.g. `httpx.MockTransport`), and every call when a proxy is set in
the environment (HTTP(S)_PROXY / ALL_PROXY: httpx honours them, and so we hand over to it).
It streams the same way.

Errors: anything that goes wrong on the wire raises `TransportError` (the client turns it
into NetworkError, as it did httpx.HTTPError), also while a streamed body is read; its
message is the underlying OSError's. An error the caller's body iterable raises (a file that
changed while it was sent) comes out unchanged.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Iterable, Iterator
from urllib.parse import quote, urlsplit

from run402_cli.api.http1 import (STALE, BodyFailed, Decoder, Headers, Reader, TransportError, body_pieces,
                                  read_head, send_body)

__all__ = ["Headers", "HttpxTransport", "Response", "SocketTransport", "TransportError",
           "default_transport", "proxy_configured"]

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0


class Response:
    """Status, headers and the decoded body: `content` (read whole on first use) or, for a
    streamed response, `iter_bytes()` (once); `close()` releases the connection."""

    def __init__(self, status_code: int, headers: Headers, content: bytes | None = None, *,
                 body: Any = None) -> None:
        self.status_code = status_code
        self.headers = headers
        self._content = content
        self._body = body  # an iterable of decoded pieces with a close()
        self._consumed = False

    @property
    def content(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self._pieces())
        return self._content

    def read(self) -> bytes:
        return self.content

    def iter_bytes(self) -> Iterator[bytes]:
        if self._content is not None:
            if self._content:
                yield self._content
            return
        yield from self._pieces()

    def _pieces(self) -> Iterator[bytes]:
        if self._consumed or self._body is None:
            raise TransportError("the response body was already read")
        self._consumed = True
        try:
            yield from self._body
        finally:
            self._body.close()

    def close(self) -> None:
        if self._body is not None:
            self._body.close()

    @property
    def text(self) -> str:
        charset = _charset(self.headers.get("content-type", ""))
        try:
            return self.content.decode(charset or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        import json

        return json.loads(self.content)

def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"\'')
    return None


def proxy_configured(env: Any = None) -> bool:
    """A proxy httpx would use (it reads these variables, any case)."""
    env = os.environ if env is None else env
    return any(k.lower() in ("http_proxy", "https_proxy", "all_proxy") and v for k, v in env.items())


def default_transport() -> Any:
    """The transport a Client uses when none is injected."""
    return HttpxTransport(None) if proxy_configured() else SocketTransport()


def _target(url: str) -> tuple[str, str, int, str, str]:
    """(scheme, host, port, Host header, request target) of an absolute http(s) URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise TransportError(f"Request URL has an unsupported protocol or no host: {url!r}")
    default = 443 if scheme == "https" else 80
    try:
        port = parts.port or default
    except ValueError as exc:
        raise TransportError(f"Invalid port in URL {url!r}") from exc
    host = parts.hostname  # lowercased, brackets removed
    if not host.isascii():  # an internationalised name goes out in punycode, as httpx sends it
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise TransportError(f"Invalid host name in URL {url!r}") from exc
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default else f"{shown}:{port}"
    # what httpx sends: the path and query percent-encoded where they are not already
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/?%:@!$&'()*+,;=-._~") if parts.query else ""
    return scheme, host, port, host_header, path + (f"?{query}" if query else "")


def origin_of(url: str) -> tuple[str, str]:
    """(scheme://host[:port] as httpx's URL shows it, path?query): what SIWX signs."""
    scheme, _, _, host_header, target = _target(url)
    return f"{scheme}://{host_header}", target


def _declared_length(headers: list[tuple[str, str]]) -> tuple[int | None, bool]:
    """(Content-Length, chunked?) as the request headers declare them."""
    length, chunked = None, False
    for name, value in headers:
        key = name.lower()
        if key == "content-length":
            try:
                length = int(value)
            except ValueError:
                raise TransportError(f"malformed request Content-Length: {value!r}") from None
        elif key == "transfer-encoding":
            chunked = "chunked" in value.lower()
    return length, chunked


class SocketTransport:
    """HTTP/1.1 on sockets with a keep-alive pool per origin (thread-safe)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], list[Any]] = {}
        self._lock = threading.Lock()
        self._tls: Any = None

    def _tls_context(self) -> Any:
        if self._tls is None:  # what httpx.create_ssl_context() builds: verified, certifi
            import ssl

            if os.environ.get("SSL_CERT_FILE"):
                ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
            elif os.environ.get("SSL_CERT_DIR"):
                ctx = ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
            else:
                import certifi

                ctx = ssl.create_default_context(cafile=certifi.where())
            ctx.set_alpn_protocols(["http/1.1"])
            self._tls = ctx
        return self._tls

    def _connect(self, scheme: str, host: str, port: int) -> Any:
        sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                sock = self._tls_context().wrap_socket(sock, server_hostname=host)
            sock.settimeout(READ_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        return sock

    def handle(self, method: str, url: str, headers: list[tuple[str, str]],
               content: bytes | Iterable[bytes] | None, *, timeout: float | None = None,
               stream: bool = False) -> Response:
        scheme, host, port, host_header, target = _target(url)
        headers = list(headers)
        replayable = content is None or isinstance(content, (bytes, bytearray, memoryview))
        length, chunked = _declared_length(headers)
        if not replayable and length is None and not chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="strict")
        key = (scheme, host, port)
        for attempt in (0, 1):
            sock = self._take(key) if attempt == 0 and replayable else None
            reused = sock is not None
            reader: Reader | None = None
            try:
                if sock is None:
                    sock = self._connect(scheme, host, port)
                if timeout is not None:
                    sock.settimeout(timeout)
                reader = Reader(sock)
                try:
                    whole = send_body(sock, head, content, None if replayable else length)
                except OSError:  # a stale connection or a refusal; if it answered, read that
                    if not replayable:
                        raise
                    whole = False
                status, resp_headers, keep, framing = read_head(reader, method)
            except BodyFailed as failed:
                if sock is not None:
                    sock.close()
                raise failed.error from None
            except (OSError, ValueError, TransportError) as exc:
                if sock is not None:
                    sock.close()
                if reused and not (reader and reader.started) and isinstance(exc, STALE):
                    continue  # the server closed an idle connection: once more, on a fresh one
                raise TransportError(str(exc) or type(exc).__name__) from exc
            body = _Body(self, key, sock, reader, framing, keep and whole, resp_headers.get("content-encoding"),
                         timeout is not None)
            resp = Response(status, resp_headers, body=body)
            if not stream:
                resp.read()
            return resp
        raise TransportError("connection closed")  # not reached

    def _take(self, key: tuple[str, str, int]) -> Any:
        with self._lock:
            idle = self._idle.get(key)
            return idle.pop() if idle else None

    def _give(self, key: tuple[str, str, int], sock: Any) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(sock)

    def close(self) -> None:
        with self._lock:
            socks = [s for idle in self._idle.values() for s in idle]
            self._idle.clear()
        for sock in socks:
            sock.close()


class _Body:
    """One response body on its connection: iterated once, decoded as it comes; at its end
    the connection returns to the pool (when it may be reused), otherwise it is closed."""

    def __init__(self, pool: SocketTransport, key: tuple[str, str, int], sock: Any, reader: Reader,
                 framing: tuple[str, int], keep: bool, encoding: str | None, timeout_changed: bool) -> None:
        self._pool, self._key, self._sock, self._reader = pool, key, sock, reader
        self._framing, self._keep, self._encoding = framing, keep, encoding
        self._timeout_changed = timeout_changed
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        decoder = Decoder(self._encoding)
        try:
            for raw in body_pieces(self._reader, self._framing):
                yield from decoder.feed(raw)
            yield from decoder.flush()
        except (OSError, ValueError) as exc:
            self.close()
            raise TransportError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self.close()
            raise
        self._finish(self._keep and self._reader.drained())

    def _finish(self, reuse: bool) -> None:
        if self._done:
            return
        self._done = True
        if reuse:
            if self._timeout_changed:
                self._sock.settimeout(READ_TIMEOUT)
            self._pool._give(self._key, self._sock)
        else:
            self._sock.close()

    def close(self) -> None:
        self._finish(False)


class HttpxTransport:
    """The same exchange through httpx: an injected `httpx.BaseTransport` (the test seam:
    `httpx.MockTransport`, an ASGI/WSGI transport), or, with `None`, an httpx.Client with its
    defaults (proxies from the environment, verified TLS)."""

    def __init__(self, transport: Any) -> None:
        import httpx

        self._httpx = httpx
        self._client = httpx.Client(transport=transport, timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                                    follow_redirects=False)
        self._client.headers.clear()  # the caller sends every header itself

    def handle(self, method: str, url: str, headers: list[tuple[str, str]],
               content: bytes | Iterable[bytes] | None, *, timeout: float | None = None,
               stream: bool = False) -> Response:
        httpx = self._httpx
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            request = self._client.build_request(method, url, headers=headers, content=content, **kwargs)
            resp = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        out = Response(resp.status_code, Headers([(k, v) for k, v in resp.headers.multi_items()]),
                       body=_HttpxBody(resp, httpx.HTTPError))
        if not stream:
            out.read()
        return out

    def close(self) -> None:
        self._client.close()


class _HttpxBody:
    def __init__(self, resp: Any, error: type[BaseException]) -> None:
        self._resp, self._error = resp, error

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._resp.iter_bytes()
        except self._error as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        finally:
            self._resp.close()

    def close(self) -> None:
        self._resp.close()
