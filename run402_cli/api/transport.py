"""The wire under `api/client.py`: one HTTP/1.1 exchange on a socket, what httpx would send.

Why not httpx here: importing httpx and httpcore costs every network command ~60 ms (httpx's
auth module alone pulls urllib.request, http.client and the email package), more than the
whole local call. The CLI's calls are plain request/response exchanges, so this module speaks
HTTP/1.1 itself on `socket` (and `ssl` for https://, built on the first https:// request):
the request carries the headers httpx's Client sends by default (Host, Accept,
Accept-Encoding: gzip, deflate, Connection: keep-alive, User-Agent, Content-Length), the
response is read whole (Content-Length, chunked, or to the end of the stream) and decoded
(gzip, deflate), and connections are kept alive and reused per origin (a deploy sends many
requests; several threads may share one transport).

What stays on httpx (`HttpxTransport`): a transport a test or a library user injects (any
`httpx.BaseTransport`, e.g. `httpx.MockTransport`), and every call when a proxy is set in
the environment (HTTP(S)_PROXY / ALL_PROXY: httpx honours them, and so we hand over to it).

Errors: anything that goes wrong on the wire raises `TransportError` (the client turns it
into NetworkError, as it did httpx.HTTPError); its message is the underlying OSError's.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Iterator
from urllib.parse import quote, urlsplit

__all__ = ["Headers", "HttpxTransport", "Response", "SocketTransport", "TransportError",
           "default_transport", "proxy_configured"]

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
_MAX_LINE = 65536
_MAX_HEADERS = 200


class TransportError(Exception):
    """The request never got a (complete) answer: refused, reset, timed out, malformed."""


class Headers:
    """Response headers: case-insensitive `get`/`in`/`[]`; repeated fields joined by ", "
    (as httpx's `headers.get` does)."""

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self.raw: list[tuple[str, str]] = list(items or [])
        self._map: dict[str, str] = {}
        for name, value in self.raw:
            key = name.lower()
            self._map[key] = f"{self._map[key]}, {value}" if key in self._map else value

    def get(self, name: str, default: Any = None) -> Any:
        return self._map.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def items(self) -> list[tuple[str, str]]:
        return list(self._map.items())


class Response:
    """A complete response: status, headers, the decoded body."""

    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

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

    def handle(self, method: str, url: str, headers: list[tuple[str, str]], content: bytes | None,
               *, timeout: float | None = None) -> Response:
        scheme, host, port, host_header, target = _target(url)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}"]
        lines += [f"{name}: {value}" for name, value in headers]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="strict")
        data = head + (content or b"")
        key = (scheme, host, port)
        for attempt in (0, 1):
            sock = self._take(key) if attempt == 0 else None
            reused = sock is not None
            reader: _Reader | None = None
            try:
                if sock is None:
                    sock = self._connect(scheme, host, port)
                if timeout is not None:
                    sock.settimeout(timeout)
                reader = _Reader(sock)
                sock.sendall(data)
                status, resp_headers, body, keep = _read_response(reader, method)
            except (OSError, ValueError, TransportError) as exc:
                if sock is not None:
                    sock.close()
                if reused and not (reader and reader.started) and isinstance(exc, _STALE):
                    continue  # the server closed an idle connection: once more, on a fresh one
                raise TransportError(str(exc) or type(exc).__name__) from exc
            if keep and reader.drained():
                if timeout is not None:
                    sock.settimeout(READ_TIMEOUT)
                self._give(key, sock)
            else:
                sock.close()
            return Response(status, resp_headers, _decode(body, resp_headers.get("content-encoding")))
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


class _NothingRead(TransportError):
    """The connection closed before the first byte of a response."""


# What a kept-alive connection the server has since closed looks like (as httpcore, we then
# resend once on a fresh connection: no byte of an answer came, so nothing was processed).
_STALE = (_NothingRead, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class _Reader:
    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._eof = False
        self.started = False

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._sock.recv(65536)
        if not chunk:
            self._eof = True
            return False
        self.started = True
        self._buf += chunk
        return True

    def line(self) -> bytes:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                out, self._buf = self._buf[: i + 1], self._buf[i + 1:]
                return out
            if len(self._buf) > _MAX_LINE:
                raise TransportError("response header line too long")
            if not self._fill():
                if not self.started:
                    raise _NothingRead("Server disconnected without sending a response.")
                raise TransportError("Server disconnected in the middle of a response.")

    def exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise TransportError("Server disconnected in the middle of a response.")
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def rest(self) -> bytes:
        while self._fill():
            pass
        out, self._buf = self._buf, b""
        return out

    def drained(self) -> bool:
        return not self._buf and not self._eof


def _read_head(reader: _Reader) -> tuple[int, Headers]:
    status_line = reader.line().decode("latin-1").rstrip("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise TransportError(f"malformed status line: {status_line[:80]!r}")
    items: list[tuple[str, str]] = []
    while True:
        raw = reader.line().decode("latin-1").rstrip("\r\n")
        if not raw:
            break
        if len(items) >= _MAX_HEADERS:
            raise TransportError("too many response headers")
        name, sep, value = raw.partition(":")
        if not sep or not name or name != name.strip():
            raise TransportError(f"malformed response header: {raw[:80]!r}")
        items.append((name, value.strip()))
    return int(code), Headers(items)


def _read_response(reader: _Reader, method: str) -> tuple[int, Headers, bytes, bool]:
    """(status, headers, raw body, whether the connection may be reused)."""
    while True:
        status, headers = _read_head(reader)
        if not 100 <= status < 200 or status == 101:
            break  # skip interim answers (100 Continue, 103 Early Hints)
    connection = (headers.get("connection") or "").lower()
    keep = "close" not in connection
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, b"", keep
    encoding = (headers.get("transfer-encoding") or "").lower()
    if "chunked" in encoding:
        body = bytearray()
        while True:
            size_line = reader.line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise TransportError("malformed chunk size") from None
            if size == 0:
                while reader.line().strip():  # trailers
                    pass
                return status, headers, bytes(body), keep
            body += reader.exactly(size)
            reader.exactly(2)  # CRLF
    length = headers.get("content-length")
    if length is not None:
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise TransportError(f"malformed Content-Length: {length!r}")
        return status, headers, reader.exactly(int(next(iter(values)))), keep
    return status, headers, reader.rest(), False  # delimited by the end of the stream


def _decode(body: bytes, content_encoding: str | None) -> bytes:
    """Undo gzip / deflate (what we ask for, as httpx does), in the order they were applied."""
    if not content_encoding or not body:
        return body
    import zlib

    for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
        try:
            if coding in ("gzip", "x-gzip"):
                body = zlib.decompress(body, zlib.MAX_WBITS | 16)
            elif coding == "deflate":
                try:
                    body = zlib.decompress(body)
                except zlib.error:
                    body = zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate
            elif coding not in ("identity", ""):
                break  # an encoding we did not ask for: leave the bytes as they came
        except zlib.error as exc:
            raise TransportError(f"could not decode {coding} response body: {exc}") from None
    return body


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

    def handle(self, method: str, url: str, headers: list[tuple[str, str]], content: bytes | None,
               *, timeout: float | None = None) -> Response:
        httpx = self._httpx
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            resp = self._client.request(method, url, headers=headers, content=content, **kwargs)
        except httpx.HTTPError as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        return Response(resp.status_code, Headers([(k, v) for k, v in resp.headers.multi_items()]),
                        resp.content)

    def close(self) -> None:
        self._client.close()
