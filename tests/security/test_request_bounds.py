"""Unauthenticated and hostile requests: bounded before they are trusted, answered fast, and
the gateway keeps serving everyone else meanwhile.

Before: a 200 KB body of nested `[` killed the process (the recursion limit raised by py_ecc let
the JSON decoder overflow the C stack); a 200 MB body was read whole before authentication
(30 s, 528 MB RSS, /health blocked); a 40 KB `copy copy …` SQL string took 4 s in a regex on the
event loop; `select 'NaN'::float8` was a 500; malformed JSON on /rpc/v1/84532 was a 500; after
a 500 the keep-alive connection was closed under the client's next request.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.local._support import provision, sql

FAST = 0.5  # seconds; the acceptance figure is 100 ms, measured in the closing note, with CI slack


def _addr(api_base: str) -> tuple[str, int]:
    u = urlsplit(api_base)
    return u.hostname or "127.0.0.1", u.port or 80


def _health_ms(api_base: str) -> float:
    started = time.monotonic()
    assert httpx.get(f"{api_base}/health", timeout=5).status_code == 200
    return (time.monotonic() - started) * 1000


def _raw(api_base: str, head: str, body: bytes = b"", *, timeout: float = 5) -> tuple[int, bytes, float]:
    """Send raw bytes; (status, response bytes, seconds until the status line arrived)."""
    started = time.monotonic()
    with socket.create_connection(_addr(api_base), timeout=timeout) as s:
        s.sendall(head.encode() + body)
        data = b""
        elapsed = None
        while True:
            if elapsed is None and b"\r\n\r\n" in data:
                elapsed = time.monotonic() - started
                head_part, _, rest = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
            if elapsed is not None and len(rest) >= length:
                break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if elapsed is not None:
                rest = data.partition(b"\r\n\r\n")[2]
        elapsed = elapsed if elapsed is not None else time.monotonic() - started
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data, elapsed


def test_nested_json_is_a_400_and_the_gateway_survives(gateway):
    body = b"[" * 200_000
    resp = httpx.post(f"{gateway.api_base}/faucet/v1", content=body,
                      headers={"Content-Type": "application/json"}, timeout=5)
    assert resp.status_code in (400, 413), resp.text
    # Under the unauthenticated cap: the depth limit answers, not the process dying.
    resp = httpx.post(f"{gateway.api_base}/faucet/v1", content=b"[" * 60_000,
                      headers={"Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 400 and resp.json()["code"] == "BAD_JSON", resp.text
    deep_but_valid = b'{"address":' + b"[" * 100 + b"]" * 100 + b"}"
    resp = httpx.post(f"{gateway.api_base}/faucet/v1", content=deep_but_valid,
                      headers={"Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 400 and resp.json()["details"]["max_depth"] == 64
    assert _health_ms(gateway.api_base) < FAST * 1000


def test_deep_json_on_an_authenticated_route_is_refused_too(api):
    project = provision("deep")
    resp = httpx.post(f"{api.api_base}/projects/v1/admin/{project['project_id']}/expose",
                      content=b"[" * 500_000, timeout=10,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {project['service_key']}"})
    assert resp.status_code == 400 and resp.json()["code"] == "BAD_JSON", resp.text
    assert _health_ms(api.api_base) < FAST * 1000


def test_a_200_mb_body_is_refused_before_it_is_read(gateway):
    size = 200 * 1024 * 1024
    head = (f"POST /faucet/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n")
    results: list[float] = []

    def probe() -> None:
        for _ in range(5):
            results.append(_health_ms(gateway.api_base))

    status, data, elapsed = _raw(gateway.api_base, head, b"[" * 65536)
    assert status == 413 and b"PAYLOAD_TOO_LARGE" in data
    assert elapsed < FAST, elapsed
    t = threading.Thread(target=probe)
    t.start()
    t.join(timeout=10)
    assert results and max(results) < FAST * 1000


def test_a_chunked_body_is_cut_at_the_cap(gateway):
    head = ("POST /faucet/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"a" * 32768
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(8))  # 256 KiB, over the 64 KiB cap
    status, data, _ = _raw(gateway.api_base, head, body)
    assert status == 413 and b"PAYLOAD_TOO_LARGE" in data


def test_authenticated_caps_are_larger_but_still_caps(api):
    project = provision("caps")
    resp = httpx.post(f"{api.api_base}/projects/v1/admin/{project['project_id']}/sql",
                      content=b"select 1;" * (600 * 1024), timeout=10,  # 5.4 MB, over the 4 MiB cap
                      headers={"Content-Type": "text/plain", "Authorization": f"Bearer {project['service_key']}"})
    assert resp.status_code == 413 and resp.json()["details"]["max_bytes"] == 4 * 1024 * 1024


def test_pathological_sql_is_answered_fast(api):
    project = provision("patho")
    url = f"{api.api_base}/projects/v1/admin/{project['project_id']}/sql"
    text = ("copy " * 8000).encode()
    started = time.monotonic()
    resp = httpx.post(url, content=text, headers={"Content-Type": "text/plain"}, timeout=10)
    assert resp.status_code == 401 and time.monotonic() - started < FAST
    started = time.monotonic()
    resp = httpx.post(url, content=text, timeout=10,
                      headers={"Content-Type": "text/plain", "Authorization": f"Bearer {project['service_key']}"})
    assert resp.status_code == 400 and resp.json()["code"] == "SQL_ERROR"  # PostgreSQL's syntax error
    assert time.monotonic() - started < FAST
    # A long word after CREATE TABLE used to backtrack quadratically in the manifest validator.
    started = time.monotonic()
    resp = httpx.post(f"{api.api_base}/projects/v1/admin/{project['project_id']}/expose/validate", timeout=10,
                      json={"manifest": {"version": "1"}, "migration_sql": "create table " + "a" * 60_000},
                      headers={"Authorization": f"Bearer {project['service_key']}"})
    assert resp.status_code == 200 and time.monotonic() - started < FAST


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_million_row_select_is_bounded(api):
    project = provision("million")
    pid = json.loads((api.local_dir / "state.json").read_text())["pid"]
    before = _rss_kb(pid)
    out = sql(project, "select g, repeat('x', 100) as pad from generate_series(1, 1000000) g")
    after = _rss_kb(pid)
    assert out["truncated"] is True and len(out["rows"]) == out["limits"]["max_rows"] == 10_000
    assert out["rows"][0] == {"g": 1, "pad": "x" * 100}
    assert after - before < 100 * 1024, f"gateway RSS grew {(after - before) // 1024} MB"
    # Earlier statements' rows are streamed and dropped; writes before a big SELECT still commit.
    out = sql(project, "create table t (n int); insert into t select generate_series(1, 1000);"
                       "select * from generate_series(1, 20000)")
    assert out["truncated"] is True
    assert sql(project, "select count(*) as n from t")["rows"] == [{"n": 1000}]


def test_a_select_is_read_whole_whatever_its_size_around_the_fetch_chunk(api):
    """The last SELECT is fetched 500 rows at a time, and a short fetch ends it."""
    project = provision("chunks")
    for n in (0, 1, 499, 500, 501, 1000, 1234):
        out = sql(project, f"select g from generate_series(1, {n}) g")
        assert [r["g"] for r in out["rows"]] == list(range(1, n + 1)) and out["rowCount"] == n
        assert "truncated" not in out


def test_every_sql_value_serialises(api):
    project = provision("nan")
    out = sql(project, "select 'NaN'::float8 as a, 'Infinity'::float8 as b, '-Infinity'::numeric as c, "
                       "'NaN'::numeric as d, interval '1 day' as e, 1.5::float4 as f")
    assert out["rows"] == [{"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": "NaN", "e": "1 day, 0:00:00",
                            "f": 1.5}]


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"text"', b"\xff\xfe"])
def test_malformed_json_anywhere_is_bad_json(gateway, body):
    for path in ("/rpc/v1/84532", "/faucet/v1", "/projects/v1/expose/validate"):
        resp = httpx.post(f"{gateway.api_base}{path}", content=body, headers={"Content-Type": "application/json"})
        assert resp.status_code in (400, 402), (path, resp.status_code, resp.text)
        if resp.status_code == 400:  # valid JSON of the wrong shape may say so instead
            wanted = {"BAD_JSON"} if body in (b"{not json", b"\xff\xfe") else {"BAD_JSON", "BAD_REQUEST"}
            assert resp.json()["code"] in wanted, (path, resp.text)
    rpc = httpx.post(f"{gateway.api_base}/rpc/v1/84532", content=body, headers={"Content-Type": "application/json"})
    assert rpc.json()["error"]["code"] == -32700  # still a JSON-RPC error for a JSON-RPC client


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_control_plane_refuses_simple_cross_origin_bodies(gateway, content_type):
    for path in ("/faucet/v1", "/projects/v1", "/tiers/v1/prototype", "/rpc/v1/84532"):
        resp = httpx.post(f"{gateway.api_base}{path}", content=b'{"address":"0x' + b"0" * 40 + b'"}',
                          headers={"Content-Type": content_type, "Origin": "http://evil.example"})
        assert resp.status_code == 415 and resp.json()["code"] == "UNSUPPORTED_MEDIA_TYPE", (path, resp.text)


def test_the_data_plane_stays_open_to_browsers(api):
    project = provision("browser")
    resp = httpx.post(f"{api.api_base}/auth/v1/signup", content=b'{"email":"a@b.co","password":"pw-123456"}',
                      headers={"apikey": project["anon_key"], "Content-Type": "text/plain",
                               "Origin": "http://app.example"})
    assert resp.status_code != 415, resp.text


def test_a_500_does_not_poison_the_keep_alive_connection():
    """The innermost middleware answers an unexpected exception itself, so the server keeps the
    connection open for the next request (a real uvicorn server, a real keep-alive client)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from run402_cli.local.app import ContainFailures

    async def boom(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("unexpected")

    async def ok(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("fine")

    app = Starlette(routes=[Route("/boom", boom), Route("/ok", ok)], middleware=[Middleware(ContainFailures)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\nGET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while data.count(b"HTTP/1.1 ") < 2 or not data.endswith(b"fine"):
                chunk = conn.recv(65536)
                assert chunk, f"connection closed after: {data!r}"
                data += chunk
        assert b"HTTP/1.1 500" in data and b"INTERNAL_ERROR" in data and data.endswith(b"fine")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
