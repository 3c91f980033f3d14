"""A tenant's function cannot make the REST proxy read another tenant's answer, or its own
forgery, off a shared upstream connection.

PostgREST lets a function set its response headers (`response.headers`), Content-Length among
them, and its HTTP server then sends the body whatever its real length. Project A's RPC declares
2 bytes and sends a whole forged HTTP answer after them. Were the proxy to reuse that upstream
connection, the next request on it (project B's) would get the forgery, and B's real answer
would wait on the connection for the request after (perhaps A's own)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.local._support import anon_headers, expose, provision, sql

FORGED = "FORGED-BY-A"


@pytest.fixture
def tenants(api, tmp_path, monkeypatch):
    attacker = provision("framer")
    forged = f"HTTP/1.1 200 OK' || chr(13) || chr(10) || 'Content-Length: {len(FORGED)}' || chr(13) || chr(10) " \
             f"|| chr(13) || chr(10) || '{FORGED}"
    sql(attacker, f"""
        create domain "text/plain" as text;
        create function smuggle() returns "text/plain" language plpgsql as $$
        begin
          perform set_config('response.headers', '[{{"Content-Length": "2"}}]', true);
          return 'ok' || '{forged}';
        end $$;
        create function folded() returns text language plpgsql as $$
        begin
          perform set_config('response.headers',
            json_build_array(json_build_object('X-A', 'b' || chr(13) || chr(10) || 'X-Injected: yes'))::text, true);
          return 'x';
        end $$;
    """)
    expose(attacker, {"version": "1", "rpcs": [{"name": "smuggle", "signature": "()", "grant_to": ["anon"]},
                                               {"name": "folded", "signature": "()", "grant_to": ["anon"]}]})
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "victim"))
    victim = provision("framed")
    sql(victim, "create table board (id int primary key, msg text); insert into board values (1, 'b-only')")
    expose(victim, {"version": "1", "tables": [{"name": "board", "expose": True,
                                                "policy": "public_read_authenticated_write"}]})
    return attacker, victim


def _smuggle(client: httpx.Client, api_base: str, attacker: dict[str, Any]) -> httpx.Response:
    return client.post(f"{api_base}/rest/v1/rpc/smuggle", json={},
                       headers={**anon_headers(attacker), "Accept": "text/plain"})


def test_a_forged_length_never_hands_the_rest_of_a_body_to_the_next_request(api, tenants):
    attacker, victim = tenants
    with httpx.Client(timeout=30) as client:
        for _ in range(10):
            smuggled = _smuggle(client, api.api_base, attacker)
            assert smuggled.status_code == 200 and smuggled.content == b"ok"
            board = client.get(f"{api.api_base}/rest/v1/board", headers=anon_headers(victim))
            assert board.status_code == 200 and board.json() == [{"id": 1, "msg": "b-only"}]
            again = _smuggle(client, api.api_base, attacker)
            assert again.content == b"ok" and b"b-only" not in again.content


def test_forgeries_amid_concurrent_traffic_reach_no_one(api, tenants):
    attacker, victim = tenants

    async def run() -> list[tuple[str, httpx.Response]]:
        gate = asyncio.Semaphore(8)

        async def call(client: httpx.AsyncClient, who: str) -> tuple[str, httpx.Response]:
            async with gate:
                if who == "a":
                    return who, await client.post("/rest/v1/rpc/smuggle", json={},
                                                  headers={**anon_headers(attacker), "Accept": "text/plain"})
                return who, await client.get("/rest/v1/board", headers=anon_headers(victim))

        async with httpx.AsyncClient(base_url=api.api_base, timeout=60) as client:
            return await asyncio.gather(*(call(client, "ab"[i % 2]) for i in range(60)))

    for who, resp in asyncio.run(run()):
        assert resp.status_code == 200, resp.text
        assert FORGED.encode() not in resp.content
        if who == "a":
            assert resp.content == b"ok"
        else:
            assert resp.json() == [{"id": 1, "msg": "b-only"}]


def test_a_header_value_with_a_line_break_stays_one_header(api, tenants):
    """The server folds the break into a continuation line; the proxy reads it as h11 did."""
    attacker, victim = tenants
    resp = httpx.post(f"{api.api_base}/rest/v1/rpc/folded", json={}, headers=anon_headers(attacker))
    assert resp.status_code == 200 and resp.json() == "x"
    assert resp.headers["x-a"] == "b X-Injected: yes" and "x-injected" not in resp.headers
    board = httpx.get(f"{api.api_base}/rest/v1/board", headers=anon_headers(victim))
    assert board.json() == [{"id": 1, "msg": "b-only"}]
