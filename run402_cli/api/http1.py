"""HTTP/1.1 framing under `api/transport.py`, one piece at a time.

Writing: a request body goes out whole (bytes, in the same send as the head), or, when it is
an iterable of chunks (a part streamed from disk), piece by piece as it is produced: with the
Content-Length the caller declared (and exactly that many bytes, or the exchange fails), or
chunked when no length was given. A body is never gathered in memory here.

Reading: the status line and headers (interim 1xx answers skipped), then the body as framed
by the answer (Content-Length, chunked, or the end of the stream) in pieces of at most 64 KiB,
decoded from gzip / deflate as it comes (`Decoder`). Whoever wants the body whole joins the
pieces; a download writes them out as they arrive.

Errors on the wire are `TransportError`; an error raised by the caller's own body iterable
(a file that changed while it was read) comes out as `BodyFailed`, holding it unchanged.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

__all__ = ["BodyFailed", "Decoder", "Headers", "NothingRead", "Reader", "STALE", "TransportError",
           "body_pieces", "read_head", "send_body"]

PIECE = 65536
_MAX_LINE = 65536
_MAX_HEADERS = 200


class TransportError(Exception):
    """The request never got a (complete) answer: refused, reset, timed out, malformed."""


class NothingRead(TransportError):
    """The connection closed before the first byte of a response."""


# What a kept-alive connection the server has since closed looks like (as httpcore, we then
# resend once on a fresh connection: no byte of an answer came, so nothing was processed).
STALE = (NothingRead, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class BodyFailed(Exception):
    """The caller's body iterable raised `error` while the request was being sent."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


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


# --- writing --------------------------------------------------------------------------------

def send_body(sock: Any, head: bytes, content: bytes | Iterable[bytes] | None,
              length: int | None) -> bool:
    """Send the head and the body. `length` None with an iterable body: chunked framing.
    Returns False when the peer stopped taking bytes before the body was all sent (it may
    have answered already, e.g. a 413: the caller then reads that answer and closes);
    raises BodyFailed when the caller's iterable raised, TransportError when it produced
    more or fewer bytes than `length`."""
    if content is None or isinstance(content, (bytes, bytearray, memoryview)):
        sock.sendall(head + bytes(content or b""))
        return True
    sock.sendall(head)
    chunks = iter(content)
    sent = 0
    while True:
        try:
            piece = next(chunks)
        except StopIteration:
            break
        except BaseException as exc:  # the caller's own error (a file that changed): theirs to see
            raise BodyFailed(exc) from exc
        if not piece:
            continue
        sent += len(piece)
        if length is not None and sent > length:
            raise TransportError(f"request body is longer than its Content-Length ({length})")
        try:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if length is None else piece)
        except OSError:
            return False
    if length is not None and sent != length:
        raise TransportError(f"request body is shorter than its Content-Length ({sent} of {length} bytes)")
    if length is None:
        try:
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            return False
    return True


# --- reading --------------------------------------------------------------------------------

class Reader:
    """Buffered reads from one socket; `started` once any byte of an answer came."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._eof = False
        self.started = False

    def _recv(self, n: int) -> bytes:
        if self._eof:
            return b""
        chunk = self._sock.recv(n)
        if not chunk:
            self._eof = True
        else:
            self.started = True
        return chunk

    def line(self) -> bytes:
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                out, self._buf = self._buf[: i + 1], self._buf[i + 1:]
                return out
            if len(self._buf) > _MAX_LINE:
                raise TransportError("response header line too long")
            chunk = self._recv(PIECE)
            if not chunk:
                if not self.started:
                    raise NothingRead("Server disconnected without sending a response.")
                raise TransportError("Server disconnected in the middle of a response.")
            self._buf += chunk

    def some(self, limit: int, *, eof_ok: bool = False) -> bytes:
        """Between 1 and `limit` bytes; b"" only at the end of the stream when `eof_ok`."""
        if self._buf:
            out, self._buf = self._buf[:limit], self._buf[limit:]
            return out
        chunk = self._recv(min(limit, PIECE))
        if not chunk and not eof_ok:
            raise TransportError("Server disconnected in the middle of a response.")
        return chunk

    def exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += self.some(n - len(out))
        return out

    def drained(self) -> bool:
        return not self._buf and not self._eof


def read_head(reader: Reader, method: str) -> tuple[int, Headers, bool, tuple[str, int]]:
    """(status, headers, whether the connection may be reused, framing): framing is
    ("none", 0), ("length", n), ("chunked", 0) or ("eof", 0)."""
    while True:
        status, headers = _status_and_headers(reader)
        if not 100 <= status < 200 or status == 101:
            break  # skip interim answers (100 Continue, 103 Early Hints)
    keep = "close" not in (headers.get("connection") or "").lower()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, keep, ("none", 0)
    if "chunked" in (headers.get("transfer-encoding") or "").lower():
        return status, headers, keep, ("chunked", 0)
    length = headers.get("content-length")
    if length is not None:
        values = {v.strip() for v in length.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise TransportError(f"malformed Content-Length: {length!r}")
        return status, headers, keep, ("length", int(next(iter(values))))
    return status, headers, False, ("eof", 0)  # delimited by the end of the stream


def _status_and_headers(reader: Reader) -> tuple[int, Headers]:
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


def body_pieces(reader: Reader, framing: tuple[str, int]) -> Iterator[bytes]:
    """The raw (still encoded) body, piece by piece, as `framing` delimits it."""
    kind, left = framing
    if kind == "length":
        while left:
            piece = reader.some(min(left, PIECE))
            left -= len(piece)
            yield piece
    elif kind == "eof":
        while True:
            piece = reader.some(PIECE, eof_ok=True)
            if not piece:
                return
            yield piece
    elif kind == "chunked":
        while True:
            size_line = reader.line().split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise TransportError("malformed chunk size") from None
            if size == 0:
                while reader.line().strip():  # trailers
                    pass
                return
            while size:
                piece = reader.some(min(size, PIECE))
                size -= len(piece)
                yield piece
            if reader.exactly(2) != b"\r\n":
                raise TransportError("malformed chunk")


class Decoder:
    """Undoes gzip / deflate (what we ask for, as httpx does) as the body comes, in the
    reverse of the order they were applied; an encoding we did not ask for stops decoding
    there (those bytes come out as they are)."""

    def __init__(self, content_encoding: str | None) -> None:
        self._steps: list[list[Any]] = []  # [coding, decompressor, first piece still to come]
        if not content_encoding:
            return
        import zlib

        for coding in reversed([c.strip().lower() for c in content_encoding.split(",")]):
            if coding in ("gzip", "x-gzip"):
                self._steps.append([coding, zlib.decompressobj(zlib.MAX_WBITS | 16), False])
            elif coding == "deflate":  # zlib-wrapped, as the RFC says, or raw as some servers send
                self._steps.append([coding, zlib.decompressobj(), True])
            elif coding not in ("identity", ""):
                break

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of the next raw piece, in pieces of at most 64 KiB (a highly
        compressed body expands a piece at a time, never whole)."""
        return self._through(0, data)

    def flush(self) -> Iterator[bytes]:
        """What the decompressors still hold, once the raw body has ended."""
        for i, step in enumerate(self._steps):
            rest = self._guard(step, step[1].flush)
            if rest:
                yield from self._through(i + 1, rest)

    def _through(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self._steps):
            if data:
                yield data
            return
        for out in self._step(self._steps[i], data):
            yield from self._through(i + 1, out)

    @staticmethod
    def _step(step: list[Any], data: bytes) -> Iterator[bytes]:
        import zlib

        while data:
            coding, decompressor, first = step
            step[2] = False
            try:
                out = decompressor.decompress(data, PIECE)
            except zlib.error as exc:
                if not first:
                    raise TransportError(f"could not decode {coding} response body: {exc}") from None
                step[1] = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                continue
            data = decompressor.unconsumed_tail
            if out:
                yield out
            elif not data:
                break

    @staticmethod
    def _guard(step: list[Any], fn: Any) -> bytes:
        import zlib

        try:
            return fn()
        except zlib.error as exc:
            raise TransportError(f"could not decode {step[0]} response body: {exc}") from None
