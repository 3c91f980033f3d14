"""A hostile tenant's SQL, through every entry point: `projects sql`, the expose manifest's
custom_sql (apply-expose and database.expose in a deploy), and deploy migrations.

Each attack here worked before the tenant-session / event-trigger rework: the RESET ROLE escape
to the superuser, GRANTs smuggled through DO blocks, default privileges, search_path and
statement_timeout bypasses, PUBLIC-executable RPC, and advisory locks on another project's deploy.
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from run402_cli.errors import ApiError
from tests.conftest import STATEMENT_TIMEOUT_S
from tests.local._deploy_support import commit, migration, plan, site_spec, upload
from tests.local._support import anon_headers, expose, provision, sql


def _error(info: pytest.ExceptionInfo) -> dict:
    return info.value.body if isinstance(info.value.body, dict) else {}


@pytest.fixture
def victim(api):
    b = provision("victim")
    sql(b, "create table vault (id int primary key, secret text); insert into vault values (1, 'b-only')")
    return b


@pytest.fixture
def attacker(api, victim):
    return provision("attacker")


def _sql_error(project, query) -> dict:
    with pytest.raises(ApiError) as info:
        sql(project, query)
    return _error(info)


# ---------------------------------------------------------------- projects sql


@pytest.mark.parametrize("query, blocked", [
    ("RESET ROLE", "RESET role"),
    ("SET SESSION AUTHORIZATION run402_admin", "SET session_authorization"),
    ("SET/**/search_path = public", "SET search_path"),
    ('SET "search_path" = public', "SET search_path"),
    ("set local search_path to public", "SET search_path"),
    ("select set_config('search_path', 'public', false)", "set_config()"),
    ("SET statement_timeout = 0", "SET statement_timeout"),
    ("set work_mem = '4GB'", "SET work_mem"),
    ("select 1; GRANT SELECT ON vault TO PUBLIC", "GRANT"),
    ("alter default privileges grant select on tables to public", "ALTER DEFAULT PRIVILEGES"),
    ("alter role current_user set statement_timeout = 0", "ALTER ROLE ... SET"),
    ("copy (select 1) to program 'id'", "COPY ... PROGRAM"),
])
def test_sql_screen_names_the_refused_statement(attacker, query, blocked):
    err = _sql_error(attacker, query)
    assert err["code"] == "SQL_BLOCKED", err
    assert err["details"]["blocked"] == blocked
    assert err["details"]["statement"] == (2 if query.startswith("select 1;") else 1)


@pytest.mark.parametrize("wrapped", [
    "DO $$ BEGIN EXECUTE 'GRA' || 'NT SELECT ON vault TO PUBLIC'; END $$",
    "DO $$ BEGIN EXECUTE 'alter default privileges grant select on tables to public'; END $$",
    "DO $$ BEGIN EXECUTE format('REVOKE ALL ON %I FROM %I', 'vault', current_user); END $$",
])
def test_grants_wrapped_in_dynamic_sql_are_refused_by_postgres(attacker, wrapped):
    sql(attacker, "create table vault (id int)")
    err = _sql_error(attacker, wrapped)
    assert err["code"] == "SQL_ERROR" and err["details"]["sqlstate"] == "42501", err
    assert "not allowed in project SQL" in err["message"]
    acl = sql(attacker, "select relacl::text as acl from pg_class where oid = 'vault'::regclass")["rows"]
    assert "=r/" not in (acl[0]["acl"] or "")  # PUBLIC got nothing


def test_set_config_inside_plpgsql_is_not_executable(attacker):
    err = _sql_error(attacker, "DO $$ BEGIN PERFORM set_config('statement_timeout', '0', false); END $$")
    assert err["details"]["sqlstate"] == "42501" and "set_config" in err["message"]


def test_a_function_cannot_pin_its_own_resource_settings(attacker):
    err = _sql_error(attacker, "create function f() returns int language sql set work_mem = '4GB' as 'select 1'")
    assert err["details"]["sqlstate"] == "42501" and "work_mem" in err["message"]


def test_the_statement_limit_cannot_be_lifted(attacker):
    """A DO block EXECUTEs the SET (no parser can see it): the reaper still cancels the statement."""
    started = time.monotonic()
    err = _sql_error(attacker, "DO $$ BEGIN EXECUTE 'SET statement_timeout = 0'; PERFORM pg_sleep(60); END $$")
    elapsed = time.monotonic() - started
    assert err["code"] == "SQL_TIMEOUT", err
    assert elapsed < STATEMENT_TIMEOUT_S + 5, elapsed


def test_reset_role_lands_on_a_role_that_can_do_nothing(attacker, victim):
    """Even without the screen (a DO block hides it), RESET ROLE falls back to the login role."""
    rows = sql(attacker, "DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$; select session_user::text as s, "
                         "current_user::text as c, (select rolsuper from pg_roles where rolname = current_user) as su")
    assert rows["rows"][0]["su"] is False and rows["rows"][0]["s"].endswith("_sql")
    err = _sql_error(attacker, f"DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$; select * from {victim['schema_slot']}.vault")
    assert err["details"]["sqlstate"] == "42501"
    err = _sql_error(attacker, "DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$; select jwt_secret from run402_meta.projects")
    assert err["details"]["sqlstate"] == "42501"


# ---------------------------------------------------------------- expose custom_sql


def _custom(table: str, custom_sql: str) -> dict:
    return {"version": "1", "tables": [{"name": table, "expose": True, "policy": "custom", "custom_sql": custom_sql}]}


def test_custom_sql_accepts_only_create_policy_on_its_table(attacker, victim):
    sql(attacker, "create table notes (id int primary key, body text)")
    hostile = ("create policy ok on notes for select to anon using (true); "
               "RESET ROLE; "
               f"select jwt_secret from run402_meta.projects; "
               f"create policy other on {victim['schema_slot']}.vault using (true); "
               "grant select on notes to public")
    with pytest.raises(ApiError) as info:
        expose(attacker, _custom("notes", hostile))
    body = _error(info)
    assert body["code"] == "INVALID_MANIFEST"
    bad = [e for e in body["errors"] if e["type"] == "custom-sql-not-policy"]
    assert [int(e["detail"].split("statement ")[1].split(":")[0]) for e in bad] == [2, 3, 4, 5]
    # Nothing changed: no policy, no grant.
    assert sql(attacker, "select count(*) as n from pg_policies where tablename = 'notes' "
                         f"and schemaname = '{attacker['schema_slot']}'")["rows"] == [{"n": 0}]


def test_custom_policies_run_as_the_project_and_expose_rows(api, attacker):
    sql(attacker, "create table notes (id int primary key, body text, public boolean);"
                  "insert into notes values (1, 'shown', true), (2, 'hidden', false)")
    manifest = _custom("notes", "create policy pub on notes for select to anon, authenticated using (public)")
    expose(attacker, manifest)
    expose(attacker, manifest)  # convergent: applying twice replaces the same-named policy
    rows = httpx.get(f"{api.api_base}/rest/v1/notes?select=id", headers=anon_headers(attacker)).json()
    assert rows == [{"id": 1}]
    (pol,) = sql(attacker, "select roles::text as r from pg_policies where policyname = 'pub'")["rows"]
    slot = attacker["schema_slot"]
    assert pol["r"] == f"{{{slot}_anon,{slot}_authenticated}}"


def test_custom_sql_in_a_deploy_is_checked_the_same_way(api, attacker):
    m, data = migration("001_notes", "create table notes (id int primary key)")
    spec = site_spec(attacker, {"index.html": b"hi"}, database={
        "migrations": [m], "expose": _custom("notes", "create policy p on notes using (true); RESET ROLE")})
    try:
        p = plan(attacker, spec)
    except ApiError as exc:  # refused at plan time
        body = exc.body
    else:  # or when the commit checks database.expose against the migrated schema
        upload(api.api_base, attacker, p, {"index.html": b"hi", "sql": data})
        done = commit(attacker, p["plan_id"])
        assert done["status"] == "failed", done
        body = done["error"]
    assert "custom-sql-not-policy" in json.dumps(body), body
    assert sql(attacker, "select to_regclass('notes') is null as gone")["rows"] == [{"gone": True}]


def test_a_migration_cannot_smuggle_a_grant(api, attacker):
    m, data = migration("001_g", "create table g (id int); DO $$ BEGIN EXECUTE 'GRA'||'NT SELECT ON g TO PUBLIC'; END $$")
    p = plan(attacker, site_spec(attacker, {"index.html": b"x"}, database={"migrations": [m]}))
    upload(api.api_base, attacker, p, {"index.html": b"x", "sql": data})
    done = commit(attacker, p["plan_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "MIGRATION_FAILED"
    assert done["error"]["details"]["sqlstate"] == "42501"
    assert sql(attacker, "select to_regclass('g') is null as gone")["rows"] == [{"gone": True}]


# ---------------------------------------------------------------- RPC is dark


def test_a_new_function_is_not_callable_until_listed(api, attacker):
    sql(attacker, "create table dark (v text); insert into dark values ('dark row');"
                  "create function peek() returns setof dark language sql security definer as 'select * from dark'")
    (acl,) = sql(attacker, "select proacl::text as a from pg_proc where proname = 'peek'")["rows"]
    assert not any(entry.startswith("=") for entry in acl["a"].strip("{}").split(","))  # no PUBLIC entry
    url = f"{api.api_base}/rest/v1/rpc/peek"
    resp = httpx.post(url, headers=anon_headers(attacker), json={})
    assert resp.status_code in (401, 403, 404) and "dark row" not in resp.text, resp.text
    expose(attacker, {"version": "1", "rpcs": [{"name": "peek", "signature": "()", "grant_to": ["anon"]}]})
    deadline = time.monotonic() + 5
    while (resp := httpx.post(url, headers=anon_headers(attacker), json={})).status_code != 200:
        assert time.monotonic() < deadline, resp.text
        time.sleep(0.2)
    assert resp.json() == [{"v": "dark row"}]


# ---------------------------------------------------------------- deploy locks


def test_a_tenant_cannot_hold_another_projects_deploy_lock(api, attacker, victim):
    """The gateway used advisory locks keyed by hashtext('run402-deploy:<project>'): any session
    could take them. Its locks are rows no tenant can reach now."""
    keys = [f"run402-deploy:{victim['project_id']}", f"run402-plan:{victim['project_id']}"]
    hold = "select " + ", ".join(f"pg_advisory_lock(hashtext('{k}'))" for k in keys) + ", pg_sleep(4)"
    holder = threading.Thread(target=lambda: sql(attacker, hold))
    holder.start()
    try:
        time.sleep(0.5)
        started = time.monotonic()
        p = plan(victim, site_spec(victim, {"index.html": b"on time"}))
        upload(api.api_base, victim, p, {"index.html": b"on time"})
        done = commit(victim, p["plan_id"])
        elapsed = time.monotonic() - started
    finally:
        holder.join()
    assert done["status"] == "ready"
    assert elapsed < 3, f"the victim's deploy waited {elapsed:.1f} s"


# ---------------------------------------------------------------- views and catalog


@pytest.mark.parametrize("condition", [
    "true) union (select id from run402_meta.projects",
    "true limit 1",
    "true; create table loot as select jwt_secret from run402_meta.projects",
])
def test_a_view_filter_is_one_condition(attacker, condition):
    sql(attacker, "create table s (id int)")
    manifest = {"version": "1", "views": [{"name": "v", "base": "s", "select": ["id"], "filter": condition}]}
    with pytest.raises(ApiError) as info:
        expose(attacker, manifest)
    assert _error(info)["code"] == "INVALID_MANIFEST"
    assert sql(attacker, "select to_regclass('v') is null as gone")["rows"] == [{"gone": True}]


def test_a_view_filter_is_applied_as_parsed(api, attacker):
    sql(attacker, "create table s (id int, shown boolean); insert into s values (1, true), (2, false);"
                  "alter table s enable row level security")
    expose(attacker, {"version": "1", "tables": [{"name": "s", "expose": True, "policy": "public_read_write_UNRESTRICTED",
                                                  "i_understand_this_is_unrestricted": True}],
                      "views": [{"name": "v", "base": "s", "select": ["id"], "filter": "shown /* only these */"}]})
    deadline = time.monotonic() + 5
    while (resp := httpx.get(f"{api.api_base}/rest/v1/v?select=id", headers=anon_headers(attacker))).status_code != 200:
        assert time.monotonic() < deadline, resp.text
        time.sleep(0.2)
    assert resp.json() == [{"id": 1}]


def test_another_projects_function_source_is_hidden(attacker, victim):
    sql(victim, "create function secret_fn() returns text language sql as $$ select 'the-recipe' $$")
    err = _sql_error(attacker, "select prosrc from pg_proc where proname = 'secret_fn'")
    assert err["details"]["sqlstate"] == "42501"
    err = _sql_error(attacker, f"select pg_get_functiondef('{victim['schema_slot']}.secret_fn'::regproc)")
    assert err["details"]["sqlstate"] == "42501"
    # The rest of the catalog row (what psql's \df shows) stays readable.
    rows = sql(attacker, "select proname, pronargs from pg_proc where proname = 'secret_fn'")["rows"]
    assert rows == [{"proname": "secret_fn", "pronargs": 0}]
    assert "the-recipe" not in json.dumps(sql(attacker, "select * from information_schema.routines "
                                                       "where routine_name = 'secret_fn'")["rows"])


def test_the_tenant_marker_role_cannot_be_assumed(attacker):
    err = _sql_error(attacker, "DO $$ BEGIN EXECUTE 'SET ROLE run402_tenant'; END $$")
    assert err["details"]["sqlstate"] == "42501", err
