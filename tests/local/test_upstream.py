"""The data plane's HTTP/1.1 client to PostgREST (run402_cli/local/data/upstream.py) and the
request target the proxy builds (data/rest.upstream_target), against a scripted socket server."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

import httpx
import pytest
from hypothesis import given, settings, strategies as st

from run402_cli.local.data.rest import _Streamed, upstream_target
from run402_cli.local.data.upstream import CHUNK, MAX_HEAD, WHOLE_BODY, Upstream, UpstreamError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


class Server:
    """Answers each request on a connection with `answer(head, body)`; counts connections."""

    def __init__(self, answer: Callable[[bytes, bytes], bytes | None]) -> None:
        self.answer, self.connections, self.heads = answer, 0, []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head, body = await _read_request(reader)
                self.heads.append(head)
                out = self.answer(head, body)
                if out is None:  # hang: say nothing
                    await asyncio.sleep(30)
                writer.write(out)
                await writer.drain()
                if b"Connection: close" in out:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _with_server(answer: Callable[[bytes, bytes], bytes | None],
                       test: Callable[[Upstream, Server], Awaitable[None]], **kw: float) -> None:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    upstream = Upstream("127.0.0.1", port, **kw)
    try:
        await test(upstream, server)
    finally:
        await upstream.aclose()
        listener.close()


def _run(answer: Callable[[bytes, bytes], bytes | None], test: Callable[[Upstream, Server], Awaitable[None]],
         **kw: float) -> None:
    asyncio.run(_with_server(answer, test, **kw))


def _chunked(body: bytes, size: int = 7) -> bytes:
    out = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size))
    return out + b"0\r\n\r\n"


def test_chunked_bodies_are_read_whole_over_one_kept_alive_connection() -> None:
    def answer(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n" + _chunked(b"[1,2,3]" * 5)

    async def test(upstream: Upstream, server: Server) -> None:
        for _ in range(3):
            resp = await upstream.request("GET", b"/chunked?a=1", [(b"accept", b"*/*")], b"")
            await resp.read_capped(5)
            assert (resp.status, resp.body) == (200, b"[1,2,3]" * 5)
            assert [v for k, v in resp.headers if k == b"x-a"] == [b"1", b"2"]
        assert server.connections == 1
        assert server.heads[0].startswith(b"GET /chunked?a=1 HTTP/1.1\r\nhost: 127.0.0.1:")

    _run(answer, test)


def test_a_body_framed_by_its_length_is_read_but_its_connection_never_reused() -> None:
    """PostgREST frames its own bodies in chunks; a Content-Length is one a tenant's function
    can set, and the bytes past it (a forged answer) must never be read as the next answer."""
    forged = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged"

    def answer(head: bytes, body: bytes) -> bytes:
        if head.startswith(b"POST"):
            return b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        if head.startswith(b"GET /evil"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n\"x\"" + forged
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(b"[]")

    async def test(upstream: Upstream, server: Server) -> None:
        resp = await upstream.request("POST", b"/echo?", [], b'{"x":1}')
        await resp.read_capped(5)
        assert (resp.status, resp.body) == (201, b'{"x":1}')
        for _ in range(3):
            resp = await upstream.request("GET", b"/evil?", [], b"")
            await resp.read_capped(5)
            assert resp.body == b'"x"'
            resp = await upstream.request("GET", b"/t?", [], b"")
            await resp.read_capped(5)
            assert (resp.status, resp.body) == (200, b"[]")
        assert server.connections == 5  # the echo's and each /evil's connection closed after its answer
        assert upstream._slots._value == 100

    _run(answer, test)


def test_bytes_past_the_end_of_an_answer_keep_its_connection_out_of_the_pool() -> None:
    def answer(head: bytes, body: bytes) -> bytes:
        extra = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged" if head.startswith(b"GET /evil") else b""
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(b"[]") + extra

    async def test(upstream: Upstream, server: Server) -> None:
        for path in (b"/evil?", b"/t?", b"/t?"):
            resp = await upstream.request("GET", path, [], b"")
            await resp.read_capped(5)
            assert resp.body == b"[]"
        assert server.connections == 2

    _run(answer, test)


def test_a_head_is_read_as_h11_read_it() -> None:
    def answer(head: bytes, body: bytes) -> bytes:
        return (b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\n\tc\r\nX-Plain:  v  \r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(b"{}"))

    async def test(upstream: Upstream, server: Server) -> None:
        resp = await upstream.request("GET", b"/x?", [], b"")
        await resp.read_capped(5)
        assert (b"x-folded", b"a b c") in resp.headers and (b"x-plain", b"v") in resp.headers

    _run(answer, test)


def test_a_large_body_is_streamed_in_bounded_pieces_and_the_connection_reused() -> None:
    big = bytes(range(256)) * (3 * WHOLE_BODY // 256)

    def answer(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(big, 100_000)

    async def test(upstream: Upstream, server: Server) -> None:
        for _ in range(2):
            resp = await upstream.request("GET", b"/big?", [], b"")
            await resp.read_capped(5)
            assert resp.body is None
            pieces = [piece async for piece in resp.stream()]
            assert b"".join(pieces) == big
            assert max(len(p) for p in pieces[1:]) <= CHUNK
        assert server.connections == 1

    _run(answer, test)


def test_head_and_204_have_no_body_and_a_body_to_eof_closes_the_connection() -> None:
    def answer(head: bytes, body: bytes) -> bytes:
        if head.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
        if head.startswith(b"DELETE"):
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end"

    async def test(upstream: Upstream, server: Server) -> None:
        for method in ("HEAD", "DELETE"):
            resp = await upstream.request(method, b"/x?", [], b"")
            await resp.read_capped(5)
            assert resp.body == b""
        assert server.connections == 1
        resp = await upstream.request("GET", b"/x?", [], b"")
        await resp.read_capped(5)
        assert resp.body == b"until the end"
        resp = await upstream.request("GET", b"/x?", [], b"")
        await resp.read_capped(5)
        assert server.connections == 2

    _run(answer, test)


def test_a_head_without_framing_is_not_followed_by_another_request_on_its_connection() -> None:
    """PostgREST's server answers HEAD with neither a length nor chunked framing and then closes
    the connection without saying so: a request sent on it before the FIN arrived met a reset
    (a 503 for the client). Here the server keeps the connection open, so only the rule can
    send the next request elsewhere."""
    def answer(head: bytes, body: bytes) -> bytes:
        if head.startswith(b"HEAD"):
            return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" if head.startswith(b"PUT") else \
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(b"[]")

    async def test(upstream: Upstream, server: Server) -> None:
        resp = await upstream.request("GET", b"/x?", [], b"")
        await resp.read_capped(5)
        resp = await upstream.request("HEAD", b"/x?", [], b"")
        await resp.read_capped(5)
        assert resp.status == 200 and resp.body == b"" and server.connections == 1
        resp = await upstream.request("GET", b"/x?", [], b"")
        await resp.read_capped(5)
        assert resp.body == b"[]" and server.connections == 2

    _run(answer, test)


class ClosesKeptAlive(Server):
    """Answers the first request on each connection; then reads the next one and closes, as a
    server does that closed an idle connection just as the request arrived."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head, _ = await _read_request(reader)
            self.heads.append(head)
            writer.write(self.answer(head, b""))
            await writer.drain()
            head, _ = await _read_request(reader)
            self.heads.append(head)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.transport.abort()


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PATCH", "DELETE"])
def test_a_kept_alive_connection_closed_unanswered_replays_only_a_read(method: str) -> None:
    async def main() -> None:
        server = ClosesKeptAlive(lambda head, body: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                 + (b"" if head.startswith(b"HEAD") else _chunked(b"[1]")))
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        upstream = Upstream("127.0.0.1", listener.sockets[0].getsockname()[1])
        try:
            first = await upstream.request("GET", b"/x?", [], b"")
            await first.read_capped(5)
            assert server.connections == 1
            body = b"" if method in ("GET", "HEAD", "DELETE") else b'{"a":1}'
            if method in ("GET", "HEAD"):
                again = await upstream.request(method, b"/x?", [], body)
                await again.read_capped(5)
                assert again.status == 200 and server.connections == 2
                assert [h.split(b" ", 1)[0] for h in server.heads] == [b"GET", method.encode(), method.encode()]
            else:  # it may have run: the caller hears of it, nothing is sent twice
                with pytest.raises(UpstreamError):
                    await upstream.request(method, b"/x?", [], body)
                assert server.connections == 1 and len(server.heads) == 2
        finally:
            await upstream.aclose()
            listener.close()

    asyncio.run(main())


def test_a_reset_after_part_of_an_answer_is_not_replayed() -> None:
    class HalfAnswers(Server):
        async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await _read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n" if self.connections == 1
                             else b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(b"[]"))
                await writer.drain()
                await _read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nX-Half: ")
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.transport.abort()

    async def main() -> None:
        server = HalfAnswers(lambda head, body: b"")
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        upstream = Upstream("127.0.0.1", listener.sockets[0].getsockname()[1])
        try:
            for _ in range(2):  # the first connection is not kept (length framing); the second is
                resp = await upstream.request("GET", b"/x?", [], b"")
                await resp.read_capped(5)
            with pytest.raises(UpstreamError):
                await upstream.request("GET", b"/x?", [], b"")
            assert server.connections == 2
        finally:
            await upstream.aclose()
            listener.close()

    asyncio.run(main())


@pytest.mark.parametrize("reply", [
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\n Folded: header\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n",
])
def test_a_malformed_or_oversized_head_is_an_upstream_error(reply: bytes) -> None:
    async def test(upstream: Upstream, server: Server) -> None:
        with pytest.raises(UpstreamError):
            await upstream.request("GET", b"/x?", [], b"")
        assert upstream._slots._value == 100  # the slot came back

    _run(lambda head, body: reply, test)


def test_a_truncated_body_is_an_upstream_error() -> None:
    async def test(upstream: Upstream, server: Server) -> None:
        resp = await upstream.request("GET", b"/x?", [], b"")
        with pytest.raises(UpstreamError):
            await resp.read_capped(5)

    _run(lambda head, body: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", test)


def test_silence_times_out_and_nothing_listening_is_an_upstream_error() -> None:
    async def test(upstream: Upstream, server: Server) -> None:
        with pytest.raises(UpstreamError):
            await upstream.request("GET", b"/x?", [], b"")
        assert upstream._slots._value == 100

    _run(lambda head, body: None, test, io_timeout=0.2)

    async def refused() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        with pytest.raises(UpstreamError):
            await Upstream("127.0.0.1", port).request("GET", b"/x?", [], b"")

    asyncio.run(refused())


def test_the_pool_is_bounded_and_a_waiting_request_gives_up_in_time() -> None:
    def answer(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def test(upstream: Upstream, server: Server) -> None:
        held = await upstream.request("GET", b"/x?", [], b"")  # not yet read: holds the only slot
        with pytest.raises(UpstreamError):
            await upstream.request("GET", b"/x?", [], b"")
        await held.read_capped(5)
        resp = await upstream.request("GET", b"/x?", [], b"")
        await resp.read_capped(5)
        assert resp.body == b"ok"

    _run(answer, test, max_connections=1, pool_timeout=0.2)


# Targets the proxy used to build with httpx.URL, which stays the reference.
_TARGET_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7e) | st.sampled_from(["é", "%", ".", "/", " "])


@settings(max_examples=400, deadline=None)
@given(path=st.text(_TARGET_CHARS, max_size=30), query=st.text(_TARGET_CHARS, max_size=30))
def test_the_target_is_what_httpx_built(path: str, query: str) -> None:
    try:
        expected: bytes | type[Exception] = httpx.URL(f"http://127.0.0.1:3000/{path}",
                                                      query=query.encode("latin-1")).raw_path
    except Exception as exc:
        expected = type(exc)
    if isinstance(expected, bytes):
        assert upstream_target(path, query) == expected
    else:
        with pytest.raises(expected):
            upstream_target(path, query)


@pytest.mark.parametrize("path,query", [("items", "select=id,title&id=eq.1"), ("a/../b", ""), ("./x", "a=1"),
                                        ("rpc/f", "x=%22a%20b%22"), ("it#ems", "a"), ("x", 'a="b"')])
def test_common_targets(path: str, query: str) -> None:
    assert upstream_target(path, query) == httpx.URL(f"http://127.0.0.1:3000/{path}",
                                                     query=query.encode("latin-1")).raw_path


def test_a_streamed_answer_gives_its_connection_back_even_if_the_client_is_gone_at_once() -> None:
    big = b"x" * (2 * WHOLE_BODY)

    def answer(head: bytes, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(big), big)

    async def test(upstream: Upstream, server: Server) -> None:
        resp = await upstream.request("GET", b"/big?", [], b"")
        await resp.read_capped(5)
        assert resp.body is None and upstream._slots._value == 99

        async def receive() -> dict:
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            raise OSError("client gone")

        with pytest.raises(Exception):
            await _Streamed(resp, [])({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
        assert upstream._slots._value == 100

    _run(answer, test)
