"""The REST proxy's streamed path on the real gateway: a multi-megabyte answer byte for byte what
PostgREST itself sends, HEAD, Range and counts, PostgREST's error statuses, clients that go
away mid-answer, and two projects' concurrent requests."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from tests.local._support import expose, provision, sql

ROWS = 2000
PAD = 78  # md5 hex (32 characters) repeated: ~2.5 KB a row, ~5 MB for the table


def _big_table(project: dict[str, Any], marker: str) -> None:
    sql(project, f"create table big (id int primary key, owner text not null, pad text not null); "
                 f"insert into big select i, '{marker}', repeat(md5(i::text), {PAD}) "
                 f"from generate_series(1, {ROWS}) i; "
                 "create function teapot() returns int language plpgsql as "
                 "$$ begin raise sqlstate 'PT418' using message = 'short and stout'; end $$")
    expose(project, {"version": "1", "tables": [{"name": "big", "expose": True,
                                                 "policy": "public_read_authenticated_write"}],
                     "rpcs": [{"name": "teapot", "signature": "()", "grant_to": ["anon"]}]})


@pytest.fixture
def big(api):
    project = provision("big")
    _big_table(project, "mine")
    return project


def _anon(project: dict[str, Any]) -> dict[str, str]:
    return {"apikey": project["anon_key"]}


def _postgrest_direct(local_dir: Any, project: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """PostgREST's own address and the headers the gateway would send it for the anon role:
    the oracle the proxied bytes are compared with."""
    conf = (local_dir / "postgrest" / "postgrest.conf").read_text()
    port = re.search(r'^server-port = "?(\d+)"?', conf, re.M).group(1)
    secret = json.loads((local_dir / "gateway.secret.json").read_text())["postgrest_jwt_secret"]
    slot = project["schema_slot"]
    token = jwt.encode({"role": f"{slot}_anon", "project_id": project["project_id"], "app_role": "anon",
                        "exp": int(time.time()) + 60}, secret, algorithm="HS256")
    return f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}", "Accept-Profile": slot}


def test_a_multi_megabyte_answer_is_streamed_byte_for_byte(api, big):
    url = f"{api.api_base}/rest/v1/big?order=id"
    with httpx.Client(timeout=60) as client:
        with client.stream("GET", url, headers=_anon(big)) as resp:
            assert resp.status_code == 200
            assert "content-length" not in resp.headers  # passed on as it comes, never held whole
            assert resp.headers["transfer-encoding"] == "chunked"
            pieces = list(resp.iter_raw())
        body = b"".join(pieces)
        assert len(body) > 5_000_000 and len(pieces) > 1
        direct_base, direct_headers = _postgrest_direct(api.local_dir, big)
        direct = client.get(f"{direct_base}/big?order=id", headers=direct_headers)
        assert direct.status_code == 200 and body == direct.content
        rows = json.loads(body)
        assert [r["id"] for r in rows] == list(range(1, ROWS + 1)) and {r["owner"] for r in rows} == {"mine"}
        # The same connection (client's and upstream's) serves the next call as well.
        assert client.get(f"{api.api_base}/rest/v1/big?id=eq.7&select=id", headers=_anon(big)).json() == [{"id": 7}]


def test_head_has_postgrests_headers_and_no_body(api, big):
    for query in ("select=id", "order=id", "select=id&id=eq.1"):
        resp = httpx.head(f"{api.api_base}/rest/v1/big?{query}",
                          headers={**_anon(big), "Prefer": "count=exact"})
        assert resp.status_code == 200 and resp.content == b""
        assert resp.headers["content-type"].startswith("application/json")
        assert resp.headers["content-range"].endswith("/1" if "eq.1" in query else f"/{ROWS}")
        assert resp.headers["preference-applied"] == "count=exact"
        assert "transfer-encoding" not in resp.headers


def test_heads_and_gets_in_turn_on_one_connection_all_answer(api, big):
    """PostgREST closes its connection after a HEAD (without saying so); the gateway used to
    send the next request on it now and then, and that request came back 503."""
    with httpx.Client(headers=_anon(big)) as client:
        for i in range(80):  # within the project's burst of requests
            head = client.head(f"{api.api_base}/rest/v1/big", params={"select": "id"})
            get = client.get(f"{api.api_base}/rest/v1/big", params={"id": f"eq.{i + 1}", "select": "id"})
            assert (head.status_code, get.status_code, get.json()) == (200, 200, [{"id": i + 1}])


def test_range_and_exact_counts_come_back_with_their_content_range(api, big):
    base = f"{api.api_base}/rest/v1/big"
    page = httpx.get(f"{base}?select=id&order=id",
                     headers={**_anon(big), "Prefer": "count=exact", "Range-Unit": "items", "Range": "10-19"})
    assert page.status_code == 206 and [r["id"] for r in page.json()] == list(range(11, 21))
    assert page.headers["content-range"] == f"10-19/{ROWS}"
    assert page.headers["preference-applied"] == "count=exact"
    # A large page is streamed with its headers all the same.
    wide = httpx.get(f"{base}?order=id", headers={**_anon(big), "Prefer": "count=exact", "Range": "0-999"},
                     timeout=60)
    assert wide.status_code == 206 and len(wide.json()) == 1000
    assert wide.headers["content-range"] == f"0-999/{ROWS}" and "content-length" not in wide.headers
    past = httpx.get(f"{base}?select=id", headers={**_anon(big), "Prefer": "count=exact", "Range": "5000-5009"})
    assert past.status_code == 416 and past.headers["content-range"] == f"*/{ROWS}"
    assert past.json()["code"] == "PGRST103"
    whole = httpx.get(f"{base}?select=id&id=lte.3", headers={**_anon(big), "Prefer": "count=exact"})
    assert whole.status_code == 200 and whole.headers["content-range"] == "0-2/3"
    assert whole.headers["content-length"] == str(len(whole.content))


def test_postgrests_error_statuses_and_bodies_pass_through(api, big):
    base = f"{api.api_base}/rest/v1"
    cases = [
        (httpx.get(f"{base}/big?select=nope", headers=_anon(big)), 400, "42703"),
        (httpx.get(f"{base}/missing", headers=_anon(big)), 404, "42P01"),
        (httpx.post(f"{base}/big", headers=_anon(big), json={"id": 1, "owner": "x", "pad": "y"}), 403, "42501"),
        (httpx.post(f"{base}/rpc/teapot", headers=_anon(big), json={}), 418, "PT418"),
    ]
    for resp, status, code in cases:
        assert resp.status_code == status, resp.text
        body = resp.json()
        assert body["code"] == code, body
        assert resp.headers["content-length"] == str(len(resp.content))
    assert cases[-1][0].json()["message"] == "short and stout"


def _abandon(base: str, path: str, apikey: str, keep: int) -> None:
    """A client with a tiny receive window that reads `keep` bytes of the answer and goes away."""
    parts = urlsplit(base)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect((parts.hostname, parts.port))
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\napikey: {apikey}\r\n\r\n".encode())
        got = b""
        while len(got) < keep:
            data = sock.recv(4096)
            if not data:
                break
            got += data
        assert got.startswith(b"HTTP/1.1 200")
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a RST
        sock.close()


def test_clients_gone_mid_answer_give_every_upstream_connection_back(api, big):
    """More abandoned answers than the proxy has upstream connections (100): had any kept its
    slot, the requests after them would wait for one and fail."""
    path = "/rest/v1/big?order=id&limit=600"  # ~1.5 MB: streamed, and far past the socket buffers
    for i in range(105):
        _abandon(api.api_base, path, big["anon_key"], keep=200 if i % 3 == 0 else 40_000)
    started = time.monotonic()
    with httpx.Client(headers=_anon(big), timeout=30) as client:
        for _ in range(3):
            resp = client.get(f"{api.api_base}{path}")
            assert resp.status_code == 200 and [r["id"] for r in resp.json()] == list(range(1, 601))
            small = client.get(f"{api.api_base}/rest/v1/big?select=id&id=eq.9")
            assert small.status_code == 200 and small.json() == [{"id": 9}]
    assert time.monotonic() - started < 20


def test_two_projects_at_once_never_see_each_others_rows(api, tmp_path, monkeypatch):
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "a"))
    a = provision("a")
    _big_table(a, "project-a")
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "b"))
    b = provision("b")
    _big_table(b, "project-b")
    queries = ["select=id,owner&id=eq.5", "order=id&limit=200", "select=owner&limit=3", "order=id&limit=5"]

    async def one(client: httpx.AsyncClient, project: dict[str, Any], marker: str, query: str) -> None:
        resp = await client.get(f"{api.api_base}/rest/v1/big?{query}", headers=_anon(project))
        assert resp.status_code == 200, resp.text
        assert {row["owner"] for row in resp.json()} == {marker}

    async def run() -> None:
        gate = asyncio.Semaphore(12)  # within each project's share (4 at a time, 16 queued)

        async def bounded(*args: Any) -> None:
            async with gate:
                await one(*args)

        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=12)) as client:
            await asyncio.gather(*(bounded(client, project, marker, queries[i % len(queries)])
                                   for i in range(40) for project, marker in ((a, "project-a"), (b, "project-b"))))

    asyncio.run(run())
