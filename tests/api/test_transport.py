"""The socket transport under the API client (api/transport.py), against real sockets.

Why: it replaced httpx on the wire, so it must send what httpx sent (the same request line,
the same headers and values, the same body: a server cannot tell them apart) and read every
framing a server may use (Content-Length, chunked, end of stream; gzip / deflate), reusing
kept-alive connections and retrying once when the server closed an idle one.
"""

from __future__ import annotations

import gzip
import socket
import threading
import zlib
from typing import Any, Callable

import httpx
import pytest

from run402_cli.api.client import Client
from run402_cli.api.transport import SocketTransport
from run402_cli.config import Settings, write_allowance
from run402_cli.errors import NetworkError
from run402_cli.wallet import address_of, generate_private_key


class Server:
    """A raw HTTP/1.1 server on loopback: records each request (head lines and body) and
    answers with `respond(request_number) -> (bytes to send, close after?)`."""

    def __init__(self, respond: Callable[[int], tuple[bytes, bool]]) -> None:
        self.respond = respond
        self.requests: list[tuple[list[str], bytes]] = []
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
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
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                length = next((int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("content-length:")), 0)
                while len(buf) < length:
                    buf += conn.recv(65536)
                body, buf = buf[:length], buf[length:]
                self.requests.append((lines, body))
                data, close = self.respond(len(self.requests))
                conn.sendall(data)
                if close:
                    return

    def close(self) -> None:
        self.sock.close()


def _ok(body: bytes = b'{"ok":true}', extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


@pytest.fixture
def server():
    made: list[Server] = []

    def make(respond: Callable[[int], tuple[bytes, bool]] = lambda n: (_ok(), False)) -> Server:
        made.append(Server(respond))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _settings(port: int) -> Settings:
    settings = Settings(env={"RUN402_API_BASE": f"http://127.0.0.1:{port}",
                             "RUN402_CONFIG_DIR": str(Settings().config_dir)})
    return settings


CALLS: list[dict[str, Any]] = [
    {"method": "GET", "path": "/status", "wallet_auth": False},
    {"method": "GET", "path": "/tiers/v1/status"},
    {"method": "POST", "path": "/tiers/v1/prototype", "json": {}},
    {"method": "POST", "path": "/projects/v1", "json": {"name": "é \u2603", "n": [1, 2.5, None, True]}},
    {"method": "POST", "path": "/projects/v1/admin/prj_1/sql", "content": "select 'é'", "content_type": "text/plain",
     "bearer": "svc"},
    {"method": "POST", "path": "/faucet/v1", "wallet_auth": False},
    {"method": "DELETE", "path": "/projects/v1/prj_1", "bearer": "svc"},
    {"method": "GET", "path": "/a%2Fb/c d", "params": {"limit": 5, "flag": True, "off": False, "to": None, "q": "a b&c"},
     "headers": {"apikey": "anon", "Accept": "application/json"}},
    {"method": "PATCH", "path": "/x?keep=1", "params": {"y": ["1", "2"]}, "content": b"\x00\x01"},
]


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c['method']} {c['path']}")
def test_the_request_is_what_httpx_sends(server, call):
    """The same call through httpx (the injected-transport seam, on httpx's real HTTP
    transport) and through the default socket transport: identical request line, header set
    and body. SIGN-IN-WITH-X carries a fresh nonce each time, so only its presence counts."""
    srv = server()
    settings = _settings(srv.port)
    key = generate_private_key()
    write_allowance(settings.allowance_path, {"address": address_of(key), "privateKey": key})
    kwargs = {k: v for k, v in call.items() if k not in ("method", "path")}
    with Client(settings, transport=httpx.HTTPTransport()) as c:
        c.request(call["method"], call["path"], **kwargs)
    with Client(settings) as c:
        c.request(call["method"], call["path"], **kwargs)
    (theirs, their_body), (ours, our_body) = srv.requests

    def shape(lines: list[str]) -> tuple[str, dict[str, str]]:
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.lower()] = "<signed>" if name.lower() == "sign-in-with-x" else value.strip()
        return lines[0], headers

    assert shape(ours) == shape(theirs)
    assert our_body == their_body
    assert ("sign-in-with-x" in shape(ours)[1]) == (call.get("wallet_auth", True) and "bearer" not in call)


def test_connections_are_kept_alive_and_reused(server):
    srv = server()
    with Client(_settings(srv.port)) as c:
        for _ in range(3):
            assert c.request("GET", "/status", wallet_auth=False) == {"ok": True}
    assert srv.connections == 1 and len(srv.requests) == 3


def test_an_idle_connection_the_server_closed_is_retried_once_on_a_fresh_one(server):
    srv = server(lambda n: (_ok(), True))  # answers, then closes without saying so
    with Client(_settings(srv.port)) as c:
        assert c.request("GET", "/status", wallet_auth=False) == {"ok": True}
        assert c.request("GET", "/status", wallet_auth=False) == {"ok": True}
    assert srv.connections == 2 and len(srv.requests) == 2


def test_connection_close_is_honoured(server):
    srv = server(lambda n: (_ok(extra="Connection: close\r\n"), True))
    with Client(_settings(srv.port)) as c:
        c.request("GET", "/a", wallet_auth=False)
        c.request("GET", "/b", wallet_auth=False)
    assert srv.connections == 2


@pytest.mark.parametrize("framing", ["chunked", "eof", "gzip", "deflate", "raw-deflate", "gzip-chunked", "continue"])
def test_response_framings(server, framing):
    body = b'{"hello": "w\xc3\xb6rld", "n": [1, 2, 3]}'
    head = "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"

    def chunked(data: bytes) -> bytes:
        return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(data[i:i + 7]), data[i:i + 7]) for i in range(0, len(data), 7)) \
            + b"0\r\nX-Trailer: t\r\n\r\n"

    raw = {
        "chunked": (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunked(body),
        "eof": (head + "\r\n").encode() + body,
        "gzip": (head + f"Content-Encoding: gzip\r\nContent-Length: {len(gzip.compress(body))}\r\n\r\n").encode()
        + gzip.compress(body),
        "deflate": (head + f"Content-Encoding: deflate\r\nContent-Length: {len(zlib.compress(body))}\r\n\r\n").encode()
        + zlib.compress(body),
        "raw-deflate": (lambda d: (head + f"Content-Encoding: deflate\r\nContent-Length: {len(d)}\r\n\r\n").encode() + d)(
            zlib.compress(body)[2:-4]),
        "gzip-chunked": (head + "Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
        + chunked(gzip.compress(body)),
        "continue": b"HTTP/1.1 100 Continue\r\n\r\n" + _ok(body),
    }[framing]
    srv = server(lambda n: (raw, framing == "eof"))
    with Client(_settings(srv.port)) as c:
        assert c.request("GET", "/x", wallet_auth=False) == {"hello": "wörld", "n": [1, 2, 3]}
        # and the same through httpx: one rule for what a body means
    with Client(_settings(srv.port), transport=httpx.HTTPTransport()) as c:
        assert c.request("GET", "/x", wallet_auth=False) == {"hello": "wörld", "n": [1, 2, 3]}


@pytest.mark.parametrize("raw", [b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                                 b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b""],
                         ids=["status-line", "short-body", "bad-chunk", "nothing"])
def test_a_broken_answer_is_a_network_error(server, raw):
    srv = server(lambda n: (raw, True))
    with Client(_settings(srv.port)) as c, pytest.raises(NetworkError) as info:
        c.request("GET", "/status", wallet_auth=False, context="fetching service status")
    assert info.value.to_envelope()["message"].startswith("Network error while fetching service status: ")


def test_a_refused_connection_reads_as_httpx_said_it():
    from tests.commands._helpers import closed_port

    port = closed_port()
    with Client(_settings(port)) as c, pytest.raises(NetworkError) as info:
        c.request("GET", "/status", wallet_auth=False, context="fetching service status")
    env = info.value.to_envelope()
    assert env["message"] == "Network error while fetching service status: [Errno 111] Connection refused"
    assert env["hint"] == f"Is the API reachable at http://127.0.0.1:{port}?"


def test_the_transport_is_safe_across_threads(server):
    srv = server()
    transport = SocketTransport()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                resp = transport.handle("GET", f"http://127.0.0.1:{srv.port}/x", [], None)
                assert resp.status_code == 200 and resp.json() == {"ok": True}
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    transport.close()
    assert not errors and len(srv.requests) == 80 and srv.connections <= 4


def test_an_idle_connection_that_fails_on_send_is_retried_once(server):
    """A kept-alive connection that is gone by the next request (here: shut down under us, so
    the send fails with EPIPE, as after a server's reset): resent once on a fresh one."""
    srv = server()
    with Client(_settings(srv.port)) as c:
        assert c.request("GET", "/status", wallet_auth=False) == {"ok": True}
        (idle,) = c._wire._idle[("http", "127.0.0.1", srv.port)]
        idle.shutdown(socket.SHUT_RDWR)
        assert c.request("GET", "/status", wallet_auth=False) == {"ok": True}
    assert srv.connections == 2 and len(srv.requests) == 2


def test_an_internationalised_host_goes_out_in_punycode():
    from run402_cli.api.transport import origin_of

    assert origin_of("https://bücher.example:443/p?q=1") == ("https://xn--bcher-kva.example", "/p?q=1")
    assert origin_of("http://[::1]:4020/x") == ("http://[::1]:4020", "/x")
    assert origin_of("HTTP://Example.COM:80") == ("http://example.com", "/")


def test_commits_wait_for_a_slow_answer_where_other_calls_give_up(server, monkeypatch):
    """A deploy commit may work for minutes before it answers (photo variants, migrations): it
    waits as long as the official client does, while any other call still gives up after the
    transport's read timeout (shortened here to keep the test quick)."""
    import time

    from run402_cli.api import deploy as deploy_api
    from run402_cli.api import transport

    monkeypatch.setattr(transport, "READ_TIMEOUT", 0.2)
    body = b'{"status":"ready","operation_id":"op_1","release_id":"rel_1","urls":{}}'

    def slow(n: int) -> tuple[bytes, bool]:
        time.sleep(0.6)
        return _ok(body), False

    srv = server(slow)
    with Client(_settings(srv.port)) as c:
        assert deploy_api.commit(c, "plan_1")["release_id"] == "rel_1"
        assert deploy_api.content_commit(c, "anon", "cplan_1")["status"] == "ready"
        with pytest.raises(NetworkError):
            deploy_api.get_operation(c, "anon", "op_1")
    assert [r[0][0] for r in srv.requests[:2]] == ["POST /apply/v1/plans/plan_1/commit HTTP/1.1",
                                                   "POST /content/v1/plans/cplan_1/commit HTTP/1.1"]
