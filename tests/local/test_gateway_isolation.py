"""Project isolation on the real gateway: one project's SQL and keys never reach another's."""

from __future__ import annotations

import httpx
import jwt
import pytest

from run402_cli.errors import ApiError, Unauthorized
from tests.local._support import provision, sql as _sql


@pytest.fixture
def two_projects(api, tmp_path, monkeypatch):
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "a"))
    a = provision()
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "b"))
    b = provision()
    _sql(b, "create table secrets (id int primary key, v text); insert into secrets values (1, 'b-only')")
    return a, b


def test_provision_without_a_tier_pays_for_it(api):
    project = provision()
    assert project["project_id"].startswith("prj_")
    assert project["schema_slot"].startswith("p")
    claims = jwt.decode(project["anon_key"], options={"verify_signature": False})
    assert claims["role"] == "anon" and claims["project_id"] == project["project_id"]


@pytest.mark.parametrize("query", [
    "select * from {b}.secrets",
    "insert into {b}.secrets values (2, 'x')",
    "drop table {b}.secrets",
    "alter table {b}.secrets add column z int",
    "select * from run402_meta.projects",
    "update run402_meta.accounts set available_usd_micros = 1e9",
    "reset role; select * from {b}.secrets",
    "set role {b}_owner; select * from {b}.secrets",
    "create table public.stolen (i int)",
    "select pg_read_file('pg_hba.conf')",
    "copy (select 1) to '/tmp/x'",
])
def test_sql_of_project_a_cannot_touch_project_b_or_the_gateway(two_projects, query):
    a, b = two_projects
    with pytest.raises(ApiError) as info:
        _sql(a, query.format(b=b["schema_slot"]))
    assert info.value.http == 400
    # B's data is intact.
    assert _sql(b, "select v from secrets")["rows"] == [{"v": "b-only"}]


def test_sql_runs_as_the_project_owner_in_its_schema(two_projects):
    a, _ = two_projects
    res = _sql(a, "create table mine (i int); insert into mine values (1), (2); "
                  "select current_user as u, current_schema() as s, count(*) as n from mine")
    assert res["rows"] == [{"u": f"{a['schema_slot']}_owner", "s": a["schema_slot"], "n": 2}]
    assert res["schema"] == a["schema_slot"]


def test_a_service_key_of_a_is_refused_for_b(two_projects):
    a, b = two_projects
    with pytest.raises(Unauthorized) as info:
        _sql(a, "select 1", key=a["service_key"], project_id=b["project_id"])
    assert info.value.http == 403


def test_an_anon_key_is_refused_on_admin_endpoints(two_projects):
    a, _ = two_projects
    with pytest.raises(Unauthorized) as info:
        _sql(a, "select 1", key=a["anon_key"])
    assert info.value.http == 403


@pytest.mark.parametrize("forge", ["none_alg", "wrong_secret", "garbage"])
def test_forged_service_keys_are_refused(two_projects, api, forge):
    a, _ = two_projects
    claims = {"role": "service_role", "project_id": a["project_id"]}
    if forge == "none_alg":
        token = jwt.encode(claims, None, algorithm="none")
    elif forge == "wrong_secret":
        token = jwt.encode(claims, "x" * 48, algorithm="HS256")
    else:
        token = "not-a-jwt"
    resp = httpx.post(f"{api.api_base}/projects/v1/admin/{a['project_id']}/sql", content="select 1",
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"})
    assert resp.status_code == 401
    assert resp.json()["code"] == "UNAUTHORIZED"


def test_deleting_a_project_removes_its_schema_and_roles(two_projects):
    a, b = two_projects
    slot = b["schema_slot"]
    assert b["client"].request("DELETE", f"/projects/v1/{b['project_id']}", bearer=b["service_key"]) == {
        "status": "purged", "project_id": b["project_id"]}
    with pytest.raises(ApiError) as info:
        _sql(b, "select 1")
    assert info.value.http == 404
    # From A's side, the schema is gone (not merely forbidden).
    res = _sql(a, f"select count(*) as n from pg_namespace where nspname = '{slot}'")
    assert res["rows"] == [{"n": 0}]
    res = _sql(a, f"select count(*) as n from pg_roles where rolname like '{slot}\\_%'")
    assert res["rows"] == [{"n": 0}]
