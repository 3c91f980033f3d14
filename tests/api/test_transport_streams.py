"""Streamed bodies on the socket transport (api/transport.py, api/http1.py), against real sockets.

Why: `assets get` writes a blob to disk as it arrives and a deploy sends a large part from disk
as it is read, so neither may gather a body in memory; a streamed upload must look on the wire
exactly as httpx sent it (its Content-Length, or chunked without one), an upload that cannot
be replayed must never meet a kept-alive connection the server dropped, and a download cut
short is a NetworkError, not a short file.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import tracemalloc
from typing import Any, Callable, Iterator

import httpx
import pytest

from run402_cli.api.client import Client
from run402_cli.config import Settings
from run402_cli.errors import ApiError, LocalError, NetworkError

MIB = 1 << 20
BLOCK = hashlib.sha256(b"block").digest() * (MIB // 32)  # 1 MiB, the same object each time


class Request:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.headers = {ln.split(":", 1)[0].lower(): ln.split(":", 1)[1].strip() for ln in lines[1:]}
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.body = b""
        self.chunk_sizes: list[int] = []


class Server:
    """A raw HTTP/1.1 server on loopback that reads Content-Length and chunked request bodies
    (hashing them; kept only when `keep` is set) and answers with `respond(n, request)`: the
    bytes to send (or an iterable of them), and whether to close the connection after."""

    def __init__(self, respond: Callable[[int, Request], tuple[Any, bool]], keep: bool = True) -> None:
        self.respond, self.keep = respond, keep
        self.requests: list[Request] = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._conn, args=(conn,), daemon=True).start()

    def _conn(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        with conn, reader:
            while True:
                lines = []
                while True:
                    line = reader.readline()
                    if not line:
                        return
                    if line == b"\r\n":
                        break
                    lines.append(line.decode("latin-1").rstrip("\r\n"))
                req = Request(lines)
                if "chunked" in req.headers.get("transfer-encoding", ""):
                    while (size := int(reader.readline().strip(), 16)) != 0:
                        req.chunk_sizes.append(size)
                        self._take(req, reader.read(size))
                        reader.read(2)
                    reader.readline()
                else:
                    left = int(req.headers.get("content-length", "0"))
                    while left:
                        piece = reader.read(min(left, MIB))
                        if not piece:
                            return
                        left -= len(piece)
                        self._take(req, piece)
                self.requests.append(req)
                data, close = self.respond(len(self.requests), req)
                try:
                    for piece in [data] if isinstance(data, bytes) else data:
                        conn.sendall(piece)
                except OSError:
                    return
                if close:
                    return

    def _take(self, req: Request, piece: bytes) -> None:
        req.sha256.update(piece)
        req.size += len(piece)
        if self.keep:
            req.body += piece

    def close(self) -> None:
        self.sock.close()


def _ok(body: bytes = b'{"ok":true}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


@pytest.fixture
def server():
    made: list[Server] = []

    def make(respond: Callable[[int, Request], tuple[Any, bool]] = lambda n, r: (_ok(), False),
             keep: bool = True) -> Server:
        made.append(Server(respond, keep))
        return made[-1]

    yield make
    for s in made:
        s.close()


def client(srv: Server, transport: Any = None) -> Client:
    return Client(Settings(env={"RUN402_API_BASE": srv.url, "RUN402_CONFIG_DIR": str(Settings().config_dir)}),
                  transport=transport)


def pieces(total: int, size: int = MIB) -> Iterator[bytes]:
    while total:
        piece = BLOCK[: min(size, total)]
        total -= len(piece)
        yield piece


# --- streamed uploads -----------------------------------------------------------------------

@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_streamed_upload_is_what_httpx_sends(server, declared):
    srv = server()
    size = 3 * MIB + 5
    headers = {"Content-Length": str(size)} if declared else {}
    for transport in (httpx.HTTPTransport(), None):
        with client(srv, transport) as c:
            resp = c.send("PUT", srv.url + "/up?part=1", content=pieces(size), headers=headers)
            assert resp.status_code == 200
    theirs, ours = srv.requests
    assert ours.lines[0] == theirs.lines[0] == "PUT /up?part=1 HTTP/1.1"
    assert ours.headers == theirs.headers
    assert ("content-length" in ours.headers, "transfer-encoding" in ours.headers) == (declared, not declared)
    assert ours.body == theirs.body == b"".join(pieces(size))
    if not declared:  # one chunk per piece produced, as they came
        assert ours.chunk_sizes == [MIB, MIB, MIB, 5]


def test_a_streamed_upload_goes_on_a_fresh_connection(server):
    """An iterable body cannot be replayed: it never goes on a kept-alive connection that the
    server may have dropped since; it is kept alive afterwards like any other."""
    srv = server()
    with client(srv) as c:
        c.request("GET", "/a", wallet_auth=False)  # one idle connection
        c.send("PUT", srv.url + "/up", content=pieces(2 * MIB), headers={"Content-Length": str(2 * MIB)})
        assert srv.connections == 2
        c.request("GET", "/b", wallet_auth=False)
        c.request("GET", "/c", wallet_auth=False)
    assert srv.connections == 2 and len(srv.requests) == 4


@pytest.mark.parametrize("size", [MIB - 1, MIB + 1], ids=["shorter", "longer"])
def test_a_body_that_does_not_match_its_length_is_a_network_error(server, size):
    srv = server()
    with client(srv) as c:
        with pytest.raises(NetworkError) as info:
            c.send("PUT", srv.url + "/up", content=pieces(size), headers={"Content-Length": str(MIB)},
                   context="uploading part 1")
        assert info.value.to_envelope()["message"].startswith("Network error while uploading part 1: request body is ")
        assert c.request("GET", "/after", wallet_auth=False) == {"ok": True}  # the cut connection was not reused
    assert srv.connections == 2


def test_the_callers_own_error_while_streaming_comes_out_unchanged(server):
    srv = server()
    changed = LocalError("file changed", code="FILE_CHANGED_DURING_DEPLOY")

    def body() -> Iterator[bytes]:
        yield BLOCK
        raise changed

    with client(srv) as c:
        with pytest.raises(LocalError) as info:
            c.send("PUT", srv.url + "/up", content=body(), headers={"Content-Length": str(2 * MIB)})
        assert info.value is changed
        assert c.request("GET", "/after", wallet_auth=False) == {"ok": True}
    assert srv.connections == 2


def test_an_early_answer_to_an_upload_is_read(server):
    """A server that refuses a body before it is all sent (a 413, then closed): the answer is
    what the caller sees, as httpcore read it."""
    def refuse(n: int, req: Request) -> tuple[bytes, bool]:
        body = b'{"error":"too large","code":"PAYLOAD_TOO_LARGE"}'
        return (f"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nConnection: close\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body, True

    srv = server(refuse)
    with client(srv) as c, pytest.raises(ApiError) as info:
        c.send("PUT", srv.url + "/up", content=pieces(MIB), headers={"Content-Length": str(MIB)})
    assert info.value.to_envelope()["http"] == 413


def test_a_large_streamed_upload_holds_one_piece_at_a_time(server):
    srv = server(keep=False)
    size = 64 * MIB
    with client(srv) as c:
        tracemalloc.start()
        try:
            c.send("PUT", srv.url + "/up", content=pieces(size), headers={"Content-Length": str(size)})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert srv.requests[0].size == size
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB for a {size // MIB} MiB upload"


# --- streamed downloads ---------------------------------------------------------------------

def _framed(body: bytes, framing: str) -> bytes:
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
    if framing == "length":
        return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
    if framing == "eof":
        return f"{head}\r\n".encode() + body
    if framing == "gzip":
        body = gzip.compress(body)
        head += "Content-Encoding: gzip\r\n"
    step = 100_000
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + step]), body[i:i + step]) for i in range(0, len(body), step))
    return f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + chunks + b"0\r\n\r\n"


@pytest.mark.parametrize("framing", ["length", "chunked", "eof", "gzip"])
def test_a_download_comes_in_pieces_and_frees_its_connection(server, framing):
    body = bytes(range(256)) * 8192 + b"tail"  # 2 MiB and a bit
    srv = server(lambda n, r: (_framed(body, framing), framing == "eof") if n == 1 else (_ok(), False))
    with client(srv) as c:
        with c.stream("GET", "/storage/v1/blob/x", context="downloading blob") as resp:
            got = list(resp.iter_bytes())
        assert b"".join(got) == body and max(map(len, got)) <= 65536 and len(got) > 1
        assert c.request("GET", "/next", wallet_auth=False) == {"ok": True}
    assert srv.connections == (2 if framing == "eof" else 1)  # read to its end: reused


def test_leaving_a_download_early_drops_its_connection(server):
    srv = server(lambda n, r: (_framed(BLOCK * 4, "length"), False) if n == 1 else (_ok(), False))
    with client(srv) as c:
        with c.stream("GET", "/storage/v1/blob/x") as resp:
            next(iter(resp.iter_bytes()))
        assert c.request("GET", "/next", wallet_auth=False) == {"ok": True}
    assert srv.connections == 2


def test_a_download_cut_short_is_a_network_error(server):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 3145728\r\n\r\n"
    srv = server(lambda n, r: ([head, BLOCK], True))
    got = 0
    with client(srv) as c, pytest.raises(NetworkError) as info:
        with c.stream("GET", "/storage/v1/blob/x", context="downloading blob") as resp:
            for piece in resp.iter_bytes():
                got += len(piece)
    assert got == MIB
    env = info.value.to_envelope()
    assert env["message"] == "Network error while downloading blob: Server disconnected in the middle of a response."
    assert env["hint"] == f"Is the API reachable at {srv.url}?"


def test_an_error_answer_to_a_download_is_raised_before_any_byte(server):
    body = b'{"error":"Blob not found","code":"BLOB_NOT_FOUND"}'
    srv = server(lambda n, r: (f"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                               f"Content-Length: {len(body)}\r\n\r\n".encode() + body, False))
    with client(srv) as c, pytest.raises(ApiError) as info:
        with c.stream("GET", "/storage/v1/blob/x"):
            raise AssertionError("not reached")
    assert info.value.to_envelope()["http"] == 404 and info.value.to_envelope()["code"] == "BLOB_NOT_FOUND"


def test_a_download_through_the_httpx_seam_streams_too():
    body = BLOCK * 3

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([BLOCK, BLOCK, BLOCK]))

    settings = Settings(env={"RUN402_API_BASE": "https://api.example.test", "RUN402_CONFIG_DIR": str(Settings().config_dir)})
    with Client(settings, transport=httpx.MockTransport(handler)) as c:
        with c.stream("GET", "/storage/v1/blob/x") as resp:
            assert b"".join(resp.iter_bytes()) == body


def test_a_large_download_holds_one_piece_at_a_time(server):
    size = 64 * MIB
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n".encode()
    srv = server(lambda n, r: ([head, *([BLOCK] * (size // MIB))], False))
    digest, got = hashlib.sha256(), 0
    with client(srv) as c:
        tracemalloc.start()
        try:
            with c.stream("GET", "/storage/v1/blob/big") as resp:
                for piece in resp.iter_bytes():
                    digest.update(piece)
                    got += len(piece)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got == size and digest.hexdigest() == hashlib.sha256(BLOCK * (size // MIB)).hexdigest()
    assert peak < 4 * MIB, f"peak {peak / MIB:.1f} MiB for a {size // MIB} MiB download"
