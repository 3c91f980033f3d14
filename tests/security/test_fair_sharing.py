"""One tenant cannot stall another (DESIGN: "per-project concurrency and rate limits keep one
tenant from starving another").

Project A (the attacker) fires 45 concurrent slow queries — an exposed RPC doing pg_sleep(2)
and `select pg_sleep(2)` on its SQL endpoint — while project B reads its own table. Before the
per-project gates, A took every PostgREST pool connection and every shared worker thread, and
B's reads waited seconds. Now A gets at most a slice of each, the rest of A's burst waits in a
bounded queue or is refused with 429 + retry_after, and B does not notice.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest

from run402_cli.local.control.limits import REST_PER_PROJECT, REST_QUEUE, SQL_PER_PROJECT, SQL_QUEUE
from tests.local._support import anon_headers, expose, provision, sql

SLEEP = 2
ATTACK_RPC = 30
ATTACK_SQL = 15
B_P50_BUDGET = 0.100  # seconds


@pytest.fixture
def tenants(api, tmp_path, monkeypatch):
    attacker = provision("attacker")
    sql(attacker, f"create function slow() returns int language sql volatile "
                  f"as $$ select pg_sleep({SLEEP}); select 1 $$")
    expose(attacker, {"version": "1", "rpcs": [{"name": "slow", "signature": "()", "grant_to": ["anon"]}]})
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "victim"))  # another wallet
    victim = provision("victim")
    sql(victim, "create table board (id int primary key, msg text); insert into board values (1, 'hello')")
    expose(victim, {"version": "1", "tables": [{"name": "board", "expose": True,
                                                "policy": "public_read_authenticated_write"}]})
    return attacker, victim


async def _attack(api_base: str, attacker: dict) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=ATTACK_RPC + ATTACK_SQL, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=api_base, limits=limits, timeout=60) as client:
        rpc = [client.post("/rest/v1/rpc/slow", headers=anon_headers(attacker), json={})
               for _ in range(ATTACK_RPC)]
        sql_calls = [client.post(f"/projects/v1/admin/{attacker['project_id']}/sql",
                                 headers={"Authorization": f"Bearer {attacker['service_key']}",
                                          "Content-Type": "text/plain"},
                                 content=f"select pg_sleep({SLEEP})")
                     for _ in range(ATTACK_SQL)]
        return await asyncio.gather(*rpc, *sql_calls)


async def _victim_latencies(api_base: str, victim: dict, start_after: float, window: float) -> list[float]:
    await asyncio.sleep(start_after)  # let A's burst land first
    out: list[float] = []
    async with httpx.AsyncClient(base_url=api_base, timeout=30) as client:
        deadline = time.monotonic() + window
        while time.monotonic() < deadline and len(out) < 100:
            t0 = time.monotonic()
            resp = await client.get("/rest/v1/board?select=msg", headers=anon_headers(victim))
            out.append(time.monotonic() - t0)
            assert resp.status_code == 200 and resp.json() == [{"msg": "hello"}], resp.text
            await asyncio.sleep(0.04)  # ~20 requests/s: spread over the window, far below B's rate limit
    return out


async def _scenario(api_base: str, attacker: dict, victim: dict):
    attack = asyncio.create_task(_attack(api_base, attacker))
    # The window spans the first wave of A's queries finishing (their schema reloads, the queue
    # handing slots on) and the second wave starting.
    latencies = await _victim_latencies(api_base, victim, start_after=0.5, window=SLEEP + 1.0)
    in_flight_at_end = not attack.done()
    return latencies, in_flight_at_end, await attack


def test_a_slow_tenant_does_not_stall_another(api, tenants):
    attacker, victim = tenants
    # Warm-up: caches and keep-alive connections are not what this test is about.
    assert httpx.get(f"{api.api_base}/rest/v1/board", headers=anon_headers(victim)).status_code == 200

    started = time.monotonic()
    latencies, attack_in_flight, attack = asyncio.run(_scenario(api.api_base, attacker, victim))
    elapsed = time.monotonic() - started

    assert attack_in_flight, "the attack must still be running while B is measured"
    p50 = statistics.median(latencies)
    assert p50 < B_P50_BUDGET, f"B's p50 {p50 * 1000:.0f} ms under A's load (samples: {len(latencies)})"

    # A is served within its share, or told when to come back: the queue is bounded.
    rpc, sql_calls = attack[:ATTACK_RPC], attack[ATTACK_RPC:]
    for kind, responses, share in (("rpc", rpc, REST_PER_PROJECT + REST_QUEUE),
                                   ("sql", sql_calls, SQL_PER_PROJECT + SQL_QUEUE)):
        served = [r for r in responses if r.status_code == 200]
        refused = [r for r in responses if r.status_code != 200]
        assert served and len(served) <= share, (kind, len(served), share)
        assert len(refused) == len(responses) - len(served)
        for resp in refused:
            assert resp.status_code == 429, (kind, resp.status_code, resp.text)
            body = resp.json()
            assert body["code"] == "RATE_LIMITED" and body["retryable"] is True
            assert body["retry_after"] >= 1 and resp.headers["Retry-After"] == str(body["retry_after"])
    assert elapsed < 30

    # B's fast path reads its project row from a cache (that is how it needs no shared worker
    # thread): deleting the project must still end its keys at once, not when the entry expires.
    victim["client"].request("DELETE", f"/projects/v1/{victim['project_id']}", bearer=victim["service_key"])
    gone = httpx.get(f"{api.api_base}/rest/v1/board", headers=anon_headers(victim))
    assert gone.status_code == 401 and gone.json()["code"] == "UNAUTHORIZED"
