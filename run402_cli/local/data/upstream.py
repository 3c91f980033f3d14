"""A lean keep-alive HTTP/1.1 client for the data plane's one upstream: the local PostgREST.

Why not httpx here: profiled under load (bench/gateway.py), the httpx/httpcore hop was the
largest share of the gateway's CPU per REST call: its pool bookkeeping, anyio cancellation
shields, and a failed `import sniffio` on every request (httpcore looks for it each time, and
each miss walks sys.path). This client speaks only what PostgREST speaks to us: HTTP/1.1 on a
loopback socket, Content-Length or chunked bodies, keep-alive.

Bounds (httpx's, which the proxy had): 5 s to connect; 60 s to write the request; 60 s for the
response head and a small body, and 60 s for each read of a large one; at most 100 connections
(a request waits at most 60 s for one); at most 20 idle ones, each reused for 5 s. A response
head is at most MAX_HEAD bytes. A body of at most WHOLE_BODY bytes is read whole, so the proxy
answers it in one piece; a larger one is handed on in chunks of at most CHUNK bytes, never held.
Any failure before the response head is complete raises UpstreamError.

Never a request on a connection that could still hold bytes of an earlier answer (they would
be read as this request's answer, and this answer as the next one's: one tenant's rows in
another tenant's hands). A body framed by Content-Length is not followed by another request:
that is the one framing a tenant can set (a function may set its response headers through
PostgREST, and the server then sends the body whatever its real length), whereas chunked
framing is the server's own and a body cannot break out of it. Nor is a connection reused that
has bytes waiting past the end of its answer, nor one after a HEAD answered with neither a
length nor chunked framing: PostgREST's server (Warp) closes the connection after such an
answer without saying so, and a request sent before its FIN arrives is met with a reset.

A GET or HEAD that meets a kept-alive connection the server has closed (nothing of an answer
came back) is sent once more on a new connection, as browsers and Go's client do: it cannot
have run. Any other request fails with UpstreamError, since it may have.

The response head is read as h11 reads it (what the proxy used before): header names are
tokens, values hold no control characters, and a folded line continues the header above it.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from typing import AsyncIterator, Awaitable, TypeVar

__all__ = ["CHUNK", "MAX_HEAD", "WHOLE_BODY", "Upstream", "UpstreamError", "UpstreamResponse"]

T = TypeVar("T")
KiB = 1024
MAX_HEAD = 100 * KiB      # as httpcore's h11 limit on one incomplete event
WHOLE_BODY = 256 * KiB
CHUNK = 64 * KiB
_NO_BODY_STATUSES = (204, 304)
_REPLAYABLE = ("GET", "HEAD")


class UpstreamError(Exception):
    """The upstream could not be reached or did not answer in HTTP/1.1 in time."""


# What a dead, slow or garbled upstream raises from the streams (IncompleteReadError is an EOFError).
_IO_ERRORS = (OSError, EOFError, asyncio.TimeoutError, asyncio.LimitOverrunError, UpstreamError)


async def _within(seconds: float, aw: Awaitable[T]) -> T:
    if sys.version_info >= (3, 11):  # a timer, not the extra task wait_for makes on 3.11
        async with asyncio.timeout(seconds):
            return await aw
    return await asyncio.wait_for(aw, seconds)


def _closed_unanswered(exc: BaseException, conn: _Conn) -> bool:
    """The server closed or reset the connection and nothing of an answer had arrived."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return not exc.partial
    return isinstance(exc, ConnectionError) and conn.clean()


class _Conn:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer, self.idle_since = reader, writer, 0.0

    def usable(self, now: float, expiry: float) -> bool:
        return (now - self.idle_since < expiry and not self.reader.at_eof()
                and not self.writer.transport.is_closing() and self.clean())

    def clean(self) -> bool:
        """Nothing received past the end of the last answer (StreamReader keeps what it read
        ahead in `_buffer`; were that ever gone, no connection would count as clean)."""
        return not getattr(self.reader, "_buffer", b"?")

    def close(self) -> None:
        self.writer.transport.abort()  # nothing left to flush: a half-read response is discarded


_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # in a line: a bare CR or LF too


def _parse_head(head: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """(status, HTTP version, headers with lowercased names) of a response head, or UpstreamError."""
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or parts[0] not in (b"HTTP/1.1", b"HTTP/1.0") or len(parts[1]) != 3 \
            or not parts[1].isdigit():
        raise UpstreamError("malformed status line")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if _CONTROL.search(line):
            raise UpstreamError("control character in a header line")
        if line[:1] in (b" ", b"\t"):  # obsolete line folding: more of the header above
            if not headers:
                raise UpstreamError("malformed header line")
            name, value = headers[-1]
            headers[-1] = (name, (value + b" " + line.strip(b" \t")).strip(b" \t"))
            continue
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise UpstreamError("malformed header line")
        headers.append((name.lower(), value.strip(b" \t")))
    return int(parts[1]), parts[0], headers


class UpstreamResponse:
    """One response. `body` is the whole body when it fitted in WHOLE_BODY (else None: iterate
    `stream()`). `aclose()` must be called once done: it returns or closes the connection."""

    def __init__(self, upstream: Upstream, conn: _Conn, status: int, headers: list[tuple[bytes, bytes]],
                 framing: str, length: int, keep_alive: bool) -> None:
        self.status, self.headers = status, headers
        self.body: bytes | None = None
        self._upstream, self._conn = upstream, conn
        self._framing, self._left, self._keep_alive = framing, length, keep_alive
        self._buffered = b""  # read while trying to read the body whole
        self._done = framing == "none"
        self._closed = False

    async def _read_some(self) -> bytes:
        """The next piece of the body, at most CHUNK bytes; b"" at its end."""
        if self._done:
            return b""
        reader = self._conn.reader
        if self._framing == "length":
            data = await reader.read(min(self._left, CHUNK))
            if not data:
                raise UpstreamError("connection closed inside a response body")
            self._left -= len(data)
            self._done = self._left == 0
            return data
        if self._framing == "eof":
            data = await reader.read(CHUNK)
            self._done = not data
            return data
        if self._left == 0:  # chunked: the next chunk's size line
            line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise UpstreamError("malformed chunk size") from None
            if size < 0:
                raise UpstreamError("malformed chunk size")
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers: read and dropped
                    pass
                self._done = True
                return b""
            self._left = size
        data = await reader.read(min(self._left, CHUNK))
        if not data:
            raise UpstreamError("connection closed inside a chunk")
        self._left -= len(data)
        if self._left == 0 and await reader.readexactly(2) != b"\r\n":
            raise UpstreamError("malformed chunk end")
        return data

    async def _read_whole(self) -> None:
        parts, size = [], 0
        while size <= WHOLE_BODY:
            data = await self._read_some()
            if not data:
                self.body = b"".join(parts)
                return
            parts.append(data)
            size += len(data)
        self._buffered = b"".join(parts)

    async def read_capped(self, io_timeout: float) -> None:
        """Read the body whole if it is small (sets `body`); else leave it for `stream()`."""
        try:
            await _within(io_timeout, self._read_whole())
        except BaseException as exc:
            self.close(reuse=False)
            if isinstance(exc, _IO_ERRORS):
                raise UpstreamError(f"reading the response body: {type(exc).__name__}") from None
            raise
        if self.body is not None:
            self.close()

    async def stream(self) -> AsyncIterator[bytes]:
        """The rest of a large body in pieces (what `read_capped` read first, then the rest).
        However it ends (done, failed, abandoned by a client that went away), the connection
        is given back or closed, so a failed stream never holds one of the pool's slots."""
        try:
            if self._buffered:
                data, self._buffered = self._buffered, b""
                yield data
            while True:
                data = await _within(self._upstream.io_timeout, self._read_some())
                if not data:
                    return
                yield data
        finally:
            self.close()

    def close(self, *, reuse: bool = True) -> None:
        """Give the connection back (kept alive if the body was read to its end) or close it."""
        if self._closed:
            return
        self._closed = True
        self._upstream._release(self._conn, reuse=reuse and self._done and self._keep_alive)

    async def aclose(self) -> None:
        self.close()


class Upstream:
    """Connections to one host:port, kept alive between requests. Event-loop only."""

    def __init__(self, host: str, port: int, *, max_connections: int = 100, max_idle: int = 20,
                 idle_expiry: float = 5.0, connect_timeout: float = 5.0, io_timeout: float = 60.0,
                 pool_timeout: float = 60.0) -> None:
        self.host, self.port = host, port
        self.authority = f"{host}:{port}".encode("ascii")
        self.max_idle, self.idle_expiry = max_idle, idle_expiry
        self.connect_timeout, self.io_timeout, self.pool_timeout = connect_timeout, io_timeout, pool_timeout
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[_Conn] = []

    async def _checkout(self, *, fresh: bool = False) -> _Conn:
        if self._slots.locked():
            try:
                await _within(self.pool_timeout, self._slots.acquire())
            except asyncio.TimeoutError:
                raise UpstreamError("no free connection to the upstream") from None
        else:
            await self._slots.acquire()  # free: returns without suspending
        now = time.monotonic()
        try:
            while self._idle and not fresh:
                conn = self._idle.pop()
                if conn.usable(now, self.idle_expiry):
                    return conn
                conn.close()
            reader, writer = await _within(self.connect_timeout, asyncio.open_connection(
                self.host, self.port, limit=MAX_HEAD))
            return _Conn(reader, writer)
        except BaseException as exc:
            self._slots.release()
            if isinstance(exc, (OSError, asyncio.TimeoutError)):
                raise UpstreamError(f"connecting to the upstream: {type(exc).__name__}") from None
            raise

    def _release(self, conn: _Conn, *, reuse: bool) -> None:
        if reuse and len(self._idle) < self.max_idle and not conn.writer.transport.is_closing() \
                and conn.clean():
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    async def request(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]],
                      body: bytes, *, fresh: bool = False) -> UpstreamResponse:
        """Send one request (`target`: path and query, already encoded) and read the response
        head. The caller then reads the body (`read_capped`, `stream`) and closes the response.
        `fresh`: on a new connection, not a kept-alive one."""
        conn = await self._checkout(fresh=fresh)
        try:
            out = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", self.authority, b"\r\n"]
            for name, value in headers:
                out += (name, b": ", value, b"\r\n")
            if body or method in ("POST", "PUT", "PATCH"):
                out += (b"content-length: ", str(len(body)).encode("ascii"), b"\r\n")
            out.append(b"\r\n")
            conn.writer.write(b"".join(out))
            if body:
                conn.writer.write(body)
            if conn.writer.transport.get_write_buffer_size() > CHUNK:
                await _within(self.io_timeout, conn.writer.drain())
            status, version, resp_headers = await _within(self.io_timeout, self._read_head(conn))
        except BaseException as exc:
            # Kept alive (it had been idle) and closed by the server before a byte of an answer.
            stale = bool(conn.idle_since) and _closed_unanswered(exc, conn)
            conn.close()
            self._slots.release()
            if stale and method in _REPLAYABLE:
                return await self.request(method, target, headers, body, fresh=True)
            if isinstance(exc, _IO_ERRORS):
                raise UpstreamError(f"talking to the upstream: {type(exc).__name__}") from None
            raise
        framing, length, keep_alive = "eof", 0, version == b"HTTP/1.1"
        lengths = []
        for name, value in resp_headers:
            if name == b"transfer-encoding":
                framing = "chunked" if value.lower().rsplit(b",", 1)[-1].strip() == b"chunked" else "eof"
            elif name == b"content-length":
                lengths.append(value)
            elif name == b"connection" and b"close" in value.lower():
                keep_alive = False
        if method == "HEAD" or status in _NO_BODY_STATUSES:
            if method == "HEAD" and framing == "eof" and not lengths:
                keep_alive = False  # the GET's body would run to the end: Warp closes (docstring)
            framing = "none"
        elif framing == "eof" and lengths:
            if len(set(lengths)) != 1 or not lengths[0].isdigit():
                conn.close()
                self._slots.release()
                raise UpstreamError("malformed content-length")
            length = int(lengths[0])
            framing = "length" if length else "none"
            keep_alive = False  # a length a tenant may have set: see the module's docstring
        if framing == "eof":
            keep_alive = False
        return UpstreamResponse(self, conn, status, resp_headers, framing, length, keep_alive)

    @staticmethod
    async def _read_head(conn: _Conn) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        while True:
            status, version, headers = _parse_head(await conn.reader.readuntil(b"\r\n\r\n"))
            if not 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
                return status, version, headers

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
