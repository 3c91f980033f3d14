"""Rate limits where the contract has them, on the real gateway:
- per project, 100 requests/s (burst 200) shared by /rest/v1, /auth/v1 and the service-key
  admin routes, answered with 429 + `retry_after` (spec api-core §4);
- password guessing, per account and per client;
- the faucet, per address.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from run402_cli.local.control.limits import (
    FAUCET_PER_ADDRESS,
    LOGIN_ACCOUNT_FAILURES,
    LOGIN_CLIENT_FAILURES,
    LOGIN_WINDOW,
    PROJECT_BURST,
    PROJECT_RATE,
)
from run402_cli.wallet import address_of, generate_private_key
from tests.local._support import anon_headers, expose, provision, signup_and_login, sql


def _assert_429(resp: httpx.Response) -> dict:
    assert resp.status_code == 429, (resp.status_code, resp.text)
    body = resp.json()
    assert body["code"] == "RATE_LIMITED" and body["retryable"] is True
    assert isinstance(body["retry_after"], int) and body["retry_after"] >= 1
    assert resp.headers["Retry-After"] == str(body["retry_after"])
    return body


def _shop(name: str) -> dict:
    project = provision(name)
    sql(project, "create table items (id int primary key); insert into items values (1)")
    expose(project, {"version": "1", "tables": [{"name": "items", "expose": True,
                                                 "policy": "public_read_authenticated_write"}]})
    return project


@pytest.fixture
def shop(api):
    return _shop("limited")


# --- per project ---------------------------------------------------------------------------


def _routes(project: dict) -> list[tuple[str, str, dict]]:
    """One cheap request per route family, with the project's own keys."""
    return [("GET", "/rest/v1/items?select=id", anon_headers(project)),
            ("GET", "/auth/v1/providers", {"apikey": project["anon_key"]}),
            ("GET", f"/projects/v1/admin/{project['project_id']}/mailbox",
             {"Authorization": f"Bearer {project['service_key']}"})]


async def _flood(api_base: str, routes: list, *, after_first_429: int, cap: int) -> tuple[list, float]:
    """Round-robin over `routes`, 8 at a time, until `after_first_429` more requests have gone
    out after the first 429 (or `cap` in all)."""
    results: list[tuple[str, int, httpx.Response]] = []
    sent = 0
    first_429: int | None = None

    async with httpx.AsyncClient(base_url=api_base, timeout=30) as client:
        async def worker() -> None:
            nonlocal sent, first_429
            while sent < cap and (first_429 is None or sent < first_429 + after_first_429):
                method, path, headers = routes[sent % len(routes)]
                sent += 1
                resp = await client.request(method, path, headers=headers)
                results.append((path, resp.status_code, resp))
                if resp.status_code == 429 and first_429 is None:
                    first_429 = sent

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(8)))
        return results, time.monotonic() - started


def test_one_budget_per_project_across_rest_auth_and_admin_routes(api, shop, tmp_path, monkeypatch):
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "other"))
    bystander = _shop("bystander")
    results, elapsed = asyncio.run(_flood(api.api_base, _routes(shop), after_first_429=90, cap=3000))
    # Right after the flood, another project is not affected: the budget is per project.
    for method, path, headers in _routes(bystander):
        assert httpx.request(method, f"{api.api_base}{path}", headers=headers).status_code == 200, path
    codes = [code for _, code, _ in results]
    assert 429 in codes, f"{len(codes)} requests in {elapsed:.1f}s and never limited"
    assert set(codes) <= {200, 429}, set(codes)
    ok = codes.count(200)
    # The budget is shared: three separate budgets would let through up to three times this.
    assert ok <= PROJECT_BURST + PROJECT_RATE * elapsed + 10, (ok, elapsed)
    for family in ("/rest/v1/", "/auth/v1/", "/mailbox"):
        limited = [r for path, code, r in results if family in path and code == 429]
        assert limited, f"{family} was never limited"
        _assert_429(limited[0])
    # The limited project is served again after retry_after.
    time.sleep(1.0)
    assert httpx.get(f"{api.api_base}/rest/v1/items", headers=anon_headers(shop)).status_code == 200


def test_forged_keys_do_not_spend_a_projects_budget(api, shop):
    """A token naming a project but not signed by it is refused before the budget is charged:
    otherwise anyone could lock any project out with garbage."""
    import jwt

    forged = jwt.encode({"role": "anon", "project_id": shop["project_id"]}, "x" * 32, algorithm="HS256")

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=api.api_base, timeout=30) as client:
            async def one() -> int:
                return (await client.get("/rest/v1/items", headers={"apikey": forged})).status_code
            return await asyncio.gather(*(one() for _ in range(int(PROJECT_BURST) + 50)))

    assert set(asyncio.run(burst())) == {401}
    # The project's own budget is whole: about a burst's worth of real requests before a 429.
    results, _ = asyncio.run(_flood(api.api_base, _routes(shop)[:1], after_first_429=1, cap=3000))
    codes = [code for _, code, _ in results]
    assert 429 in codes, "never limited"
    assert codes.index(429) >= PROJECT_BURST - 10, codes.index(429)


# --- password guessing -------------------------------------------------------------------


def _login(api_base: str, project: dict, email: str, password: str,
           extra: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{api_base}/auth/v1/token?grant_type=password",
                      headers={"apikey": project["anon_key"], **(extra or {})},
                      json={"email": email, "password": password})


def test_password_guessing_locks_the_account_even_for_the_right_password(api, shop):
    signup_and_login(api.api_base, shop, "target@example.com", "the right password")
    for _ in range(LOGIN_ACCOUNT_FAILURES):
        assert _login(api.api_base, shop, "target@example.com", "a wrong guess").status_code == 400
    body = _assert_429(_login(api.api_base, shop, "target@example.com", "the right password"))
    assert body["retry_after"] <= 60 and body["details"] == {"scope": "account"}
    # Other accounts of the project still sign in.
    signup_and_login(api.api_base, shop, "bystander@example.com", "another password")


def test_a_success_resets_the_accounts_failures(api, shop):
    signup_and_login(api.api_base, shop, "forgetful@example.com", "the right password")
    for _ in range(3):  # 12 failures in all, never 5 in a row: never locked
        for _ in range(LOGIN_ACCOUNT_FAILURES - 1):
            assert _login(api.api_base, shop, "forgetful@example.com", "nope nope").status_code == 400
        assert _login(api.api_base, shop, "forgetful@example.com", "the right password").status_code == 200
    for _ in range(LOGIN_ACCOUNT_FAILURES):  # 5 in a row do lock it
        assert _login(api.api_base, shop, "forgetful@example.com", "nope nope").status_code == 400
    _assert_429(_login(api.api_base, shop, "forgetful@example.com", "the right password"))


def test_one_client_guessing_across_accounts_is_capped(api, shop):
    """Spread over accounts, so no account is locked: the client's own budget stops it."""
    started, attempts, refused = time.monotonic(), 0, None
    while attempts < 3 * LOGIN_CLIENT_FAILURES:
        email = f"guess{attempts // LOGIN_ACCOUNT_FAILURES}@example.com"
        resp = _login(api.api_base, shop, email, "password1")
        attempts += 1
        if resp.status_code != 400:
            refused = resp
            break
    assert refused is not None, f"{attempts} failed sign-ins from one client, never limited"
    body = _assert_429(refused)
    assert body["details"] == {"scope": "client"}
    refill = LOGIN_CLIENT_FAILURES / LOGIN_WINDOW * (time.monotonic() - started)
    assert attempts <= LOGIN_CLIENT_FAILURES + refill + 1, attempts


def test_a_forwarded_for_header_is_not_a_new_client(api, shop):
    """The gateway is nobody's reverse proxy: a client that names another address in
    X-Forwarded-For / Forwarded is still the one peer, with the one budget."""
    attempts, refused = 0, None
    while attempts < 3 * LOGIN_CLIENT_FAILURES:
        email = f"spoof{attempts // LOGIN_ACCOUNT_FAILURES}@example.com"
        n = attempts % 250 + 1
        resp = _login(api.api_base, shop, email, "password1",
                      {"X-Forwarded-For": f"10.0.{attempts // 250}.{n}", "Forwarded": f"for=10.1.0.{n}"})
        attempts += 1
        if resp.status_code != 400:
            refused = resp
            break
    assert refused is not None, f"{attempts} failed sign-ins under forged addresses, never limited"
    assert _assert_429(refused)["details"] == {"scope": "client"}


# --- faucet ------------------------------------------------------------------------------


def test_the_faucet_is_rate_limited_per_address(api):
    address = address_of(generate_private_key())

    async def drips() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=api.api_base, timeout=30) as client:
            out = []
            for _ in range(FAUCET_PER_ADDRESS + 1):
                out.append(await client.post("/faucet/v1", json={"address": address}))
            return out

    responses = asyncio.run(drips())
    assert [r.status_code for r in responses] == [200] * FAUCET_PER_ADDRESS + [429]
    body = _assert_429(responses[-1])
    assert body["details"] == {"scope": "address"}
    # Case does not make a new address; another address still drips.
    assert httpx.post(f"{api.api_base}/faucet/v1", json={"address": address.lower()}).status_code == 429
    assert httpx.post(f"{api.api_base}/faucet/v1",
                      json={"address": address_of(generate_private_key())}).status_code == 200
