"""The data plane on the real gateway: dark by default, row ownership, tokens, the browser
auth flow, convergent manifests."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from tests.local._support import (
    anon_headers,
    expose,
    provision,
    signup_and_login,
    sql,
    user_headers,
)

NOTES = {"version": "1", "tables": [{"name": "notes", "expose": True, "policy": "user_owns_rows",
                                     "owner_column": "owner_id", "force_owner_on_insert": True}]}


@pytest.fixture
def notes(api):
    """A project with a `notes` table owned per user, and two signed-in users."""
    project = provision("notes")
    sql(project, "create table notes (id serial primary key, owner_id uuid, body text not null)")
    expose(project, NOTES)
    a = signup_and_login(api.api_base, project, "a@example.com")
    b = signup_and_login(api.api_base, project, "b@example.com")
    return project, a, b


def test_a_new_table_is_dark_until_exposed(api):
    project = provision("dark")
    sql(project, "create table things (id int primary key, v text); insert into things values (1, 'secret')")
    url = f"{api.api_base}/rest/v1/things"
    dark = httpx.get(url, headers=anon_headers(project))
    assert dark.status_code in (401, 403)
    assert "secret" not in dark.text
    assert httpx.post(url, headers=anon_headers(project), json={"id": 2, "v": "x"}).status_code in (401, 403)
    expose(project, {"version": "1", "tables": [{"name": "things", "expose": True,
                                                 "policy": "public_read_authenticated_write"}]})
    lit = httpx.get(url, headers=anon_headers(project))
    assert lit.status_code == 200 and lit.json() == [{"id": 1, "v": "secret"}]
    # anon still cannot write under public_read_authenticated_write
    assert httpx.post(url, headers=anon_headers(project), json={"id": 2, "v": "x"}).status_code in (401, 403)


def test_user_owns_rows(api, notes):
    project, a, b = notes
    url = f"{api.api_base}/rest/v1/notes"
    ha, hb = user_headers(project, a), user_headers(project, b)
    # A claims B's id in the body: the row is A's all the same.
    mine = httpx.post(url, headers=ha, json={"body": "a1", "owner_id": b["user"]["id"]})
    assert mine.status_code == 201, mine.text
    assert mine.json()[0]["owner_id"] == a["user"]["id"]
    assert httpx.post(url, headers=hb, json={"body": "b1"}).status_code == 201

    assert [r["body"] for r in httpx.get(url, headers=ha).json()] == ["a1"]
    assert [r["body"] for r in httpx.get(url, headers=hb).json()] == ["b1"]
    # A cannot change or delete B's row (it is invisible to A's filters).
    assert httpx.patch(f"{url}?body=eq.b1", headers=ha, json={"body": "hacked"}).json() == []
    assert httpx.delete(f"{url}?body=eq.b1", headers=ha).json() == []
    assert [r["body"] for r in httpx.get(url, headers=hb).json()] == ["b1"]
    # A cannot move its own row to B.
    moved = httpx.patch(f"{url}?body=eq.a1", headers=ha, json={"owner_id": b["user"]["id"]})
    assert moved.status_code in (401, 403)
    # anon sees nothing; the service key on the admin path sees all.
    assert httpx.get(url, headers=anon_headers(project)).status_code in (401, 403)
    svc = {"apikey": project["service_key"], "Authorization": f"Bearer {project['service_key']}"}
    all_rows = httpx.get(f"{api.api_base}/admin/v1/rest/notes?order=id", headers=svc).json()
    assert sorted(r["body"] for r in all_rows) == ["a1", "b1"]


def test_browser_flow_signup_signin_insert_refresh(api, notes):
    project, a, _ = notes
    headers = {"apikey": project["anon_key"]}
    me = httpx.get(f"{api.api_base}/auth/v1/user", headers=user_headers(project, a))
    assert me.status_code == 200 and me.json()["email"] == "a@example.com"
    claims = jwt.decode(a["access_token"], options={"verify_signature": False})
    assert claims["role"] == "authenticated" and claims["project_id"] == project["project_id"]
    assert 3000 <= claims["exp"] - claims["iat"] <= 3600

    refreshed = httpx.post(f"{api.api_base}/auth/v1/token?grant_type=refresh_token", headers=headers,
                           json={"refresh_token": a["refresh_token"]})
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != a["refresh_token"]
    assert httpx.post(f"{api.api_base}/rest/v1/notes", headers=user_headers(project, new),
                      json={"body": "after refresh"}).status_code == 201
    again = httpx.post(f"{api.api_base}/auth/v1/token?grant_type=refresh_token", headers=headers,
                       json={"refresh_token": a["refresh_token"]})
    assert again.status_code == 401
    # Replaying a used token ends the user's other sessions too (theft response).
    after = httpx.post(f"{api.api_base}/auth/v1/token?grant_type=refresh_token", headers=headers,
                       json={"refresh_token": new["refresh_token"]})
    assert after.status_code == 401


def test_logout_ends_the_users_sessions(api, notes):
    project, _, b = notes
    headers = {"apikey": project["anon_key"]}
    second = httpx.post(f"{api.api_base}/auth/v1/token?grant_type=password", headers=headers,
                        json={"email": "b@example.com", "password": "correct horse battery"})
    assert second.status_code == 200, second.text
    assert httpx.post(f"{api.api_base}/auth/v1/logout", headers=headers).status_code == 401
    out = httpx.post(f"{api.api_base}/auth/v1/logout", headers=user_headers(project, b))
    assert out.status_code == 204 and out.content == b""
    # Every refresh token of the user is spent, the other session's too.
    for session in (b, second.json()):
        refresh = httpx.post(f"{api.api_base}/auth/v1/token?grant_type=refresh_token", headers=headers,
                             json={"refresh_token": session["refresh_token"]})
        assert refresh.status_code == 401 and refresh.json()["code"] == "INVALID_GRANT"


def test_wrong_password_and_duplicate_signup(api, notes):
    project, _, _ = notes
    headers = {"apikey": project["anon_key"]}
    bad = httpx.post(f"{api.api_base}/auth/v1/token?grant_type=password", headers=headers,
                     json={"email": "a@example.com", "password": "wrong password"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_CREDENTIALS"
    dup = httpx.post(f"{api.api_base}/auth/v1/signup", headers=headers,
                     json={"email": "A@example.com", "password": "another password"})
    assert dup.status_code == 409


def _forge(project: dict, **claims) -> str:
    base = {"role": "authenticated", "project_id": project["project_id"],
            "sub": "00000000-0000-0000-0000-000000000001", "exp": int(time.time()) + 600}
    base.update(claims)
    return base


@pytest.mark.parametrize("kind", ["alg_none", "wrong_secret", "expired", "service_key", "garbage", "missing"])
def test_bad_tokens_are_refused_on_rest(api, notes, kind):
    project, a, _ = notes
    if kind == "alg_none":
        token = jwt.encode(_forge(project), None, algorithm="none")
    elif kind == "wrong_secret":
        token = jwt.encode(_forge(project), "s" * 48, algorithm="HS256")
    elif kind == "expired":
        secret_less = jwt.decode(a["access_token"], options={"verify_signature": False})
        assert secret_less["exp"] > time.time()
        token = jwt.encode(_forge(project, exp=int(time.time()) - 10), "s" * 48, algorithm="HS256")
    elif kind == "service_key":
        token = project["service_key"]
    elif kind == "garbage":
        token = "abc.def.ghi"
    else:
        token = None
    headers = {"apikey": project["anon_key"]}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    else:
        headers = {}
    resp = httpx.get(f"{api.api_base}/rest/v1/notes", headers=headers)
    assert resp.status_code in (401, 403), resp.text
    if kind == "service_key":
        assert resp.status_code == 403


def test_keys_and_tokens_of_one_project_are_refused_on_another(api, notes, tmp_path, monkeypatch):
    project, a, _ = notes
    monkeypatch.setenv("RUN402_CONFIG_DIR", str(tmp_path / "other"))
    other = provision("other")
    sql(other, "create table notes (id serial primary key, owner_id uuid, body text not null)")
    expose(other, NOTES)
    # A's user token, presented with the other project's anon key: refused.
    mixed = {"apikey": other["anon_key"], "Authorization": f"Bearer {a['access_token']}"}
    assert httpx.get(f"{api.api_base}/rest/v1/notes", headers=mixed).status_code == 403
    # The first project's service key on the other's admin endpoints: refused.
    resp = httpx.post(f"{api.api_base}/projects/v1/admin/{other['project_id']}/sql", content="select 1",
                      headers={"Authorization": f"Bearer {project['service_key']}", "Content-Type": "text/plain"})
    assert resp.status_code == 403
    # A token cannot choose another schema with Accept-Profile.
    sneaky = dict(user_headers(project, a), **{"Accept-Profile": other["schema_slot"]})
    rows = httpx.get(f"{api.api_base}/rest/v1/notes", headers=sneaky)
    assert rows.status_code == 200 and all(r["owner_id"] == a["user"]["id"] for r in rows.json())


def _snapshot(project: dict) -> dict:
    """What a manifest controls, read back from the catalog."""
    slot = project["schema_slot"]
    q = {
        "policies": f"select tablename, policyname, cmd, roles::text, qual, with_check from pg_policies "
                    f"where schemaname = '{slot}' order by 1, 2",
        "grants": f"select table_name, grantee, privilege_type from information_schema.role_table_grants "
                  f"where table_schema = '{slot}' and grantee like '{slot}\\_%' order by 1, 2, 3",
        "rls": f"select relname, relrowsecurity, relforcerowsecurity from pg_class c join pg_namespace n "
               f"on n.oid = c.relnamespace where nspname = '{slot}' and relkind = 'r' order by 1",
        "triggers": f"select event_object_table, trigger_name from information_schema.triggers "
                    f"where trigger_schema = '{slot}' order by 1, 2",
        "views": f"select table_name from information_schema.views where table_schema = '{slot}' order by 1",
    }
    return {k: sql(project, v)["rows"] for k, v in q.items()}


def test_reapplying_a_manifest_changes_nothing_and_removal_goes_dark(api):
    project = provision("converge")
    sql(project, "create table notes (id serial primary key, owner_id uuid, body text);"
                 "create table posts (id serial primary key, title text); insert into posts (title) values ('hi');"
                 "create function add(a int, b int) returns int language sql as 'select a + b'")
    manifest = {"version": "1", "tables": [
        NOTES["tables"][0],
        {"name": "posts", "expose": True, "policy": "public_read_authenticated_write"}],
        "views": [{"name": "titles", "base": "posts", "select": ["title"]}],
        "rpcs": [{"name": "add", "signature": "(a int, b int)", "grant_to": ["anon"]}]}
    expose(project, manifest)
    first = _snapshot(project)
    assert first["triggers"] and first["views"] and first["policies"]
    result = expose(project, manifest)
    assert result["dropped"] == {"tables": [], "views": [], "rpcs": []}
    assert _snapshot(project) == first

    h = anon_headers(project)
    assert httpx.get(f"{api.api_base}/rest/v1/posts", headers=h).status_code == 200
    assert httpx.post(f"{api.api_base}/rest/v1/rpc/add", headers=h, json={"a": 2, "b": 3}).json() == 5
    # Remove posts, the view and the rpc: they go dark again.
    smaller = {"version": "1", "tables": [NOTES["tables"][0]]}
    result = expose(project, smaller)
    assert result["dropped"] == {"tables": ["posts"], "views": ["titles"], "rpcs": ["add"]}
    assert httpx.get(f"{api.api_base}/rest/v1/posts", headers=h).status_code in (401, 403)
    assert httpx.post(f"{api.api_base}/rest/v1/rpc/add", headers=h, json={"a": 2, "b": 3}).status_code in (401, 403, 404)
    after = _snapshot(project)
    slot = project["schema_slot"]
    assert not [g for g in after["grants"] if g["table_name"] == "posts"
                and g["grantee"] in (f"{slot}_anon", f"{slot}_authenticated")]
    assert not [p for p in after["policies"] if p["tablename"] == "posts"]
    state = project["client"].request("GET", f"/projects/v1/admin/{project['project_id']}/expose",
                                      bearer=project["service_key"])
    assert state["source"] == "applied" and state["manifest"]["tables"] == smaller["tables"]


def test_an_invalid_manifest_reports_every_error_and_changes_nothing(api):
    project = provision("invalid")
    sql(project, "create table t (id int primary key, owner text)")
    before = _snapshot(project)
    with pytest.raises(Exception) as info:
        expose(project, {"version": "1", "tables": [
            {"name": "t", "expose": True, "policy": "public_read_write_UNRESTRICTED"},
            {"name": "missing", "expose": True, "policy": "user_owns_rows", "owner_column": "x"}],
            "rpcs": [{"name": "nope", "grant_to": ["root"]}]})
    env = info.value.to_envelope()
    types = sorted(e["type"] for e in env["errors"])
    assert types == ["grant-to-role-unknown", "missing-rpc", "missing-table", "unrestricted-ack-required"]
    assert _snapshot(project) == before


def test_service_routes_accept_the_official_clients_headers(api):
    """The Node CLI sends `apikey: <anon>` + `Authorization: Bearer <service>` on admin auth routes."""
    project = provision("headers")
    headers = {"apikey": project["anon_key"], "Authorization": f"Bearer {project['service_key']}"}
    settings = httpx.patch(f"{api.api_base}/auth/v1/settings", headers=headers, json={"public_signup": "invite_only"})
    assert settings.status_code == 200 and settings.json()["public_signup"] == "invite_only"
    created = httpx.post(f"{api.api_base}/auth/v1/admin/users", headers=headers, json={"email": "x@example.com"})
    assert created.status_code == 201
    # ...while the anon key alone is still refused there.
    anon_only = {"apikey": project["anon_key"], "Authorization": f"Bearer {project['anon_key']}"}
    assert httpx.patch(f"{api.api_base}/auth/v1/settings", headers=anon_only,
                       json={"public_signup": "open"}).status_code == 403
    # invite_only: a stranger cannot sign up.
    resp = httpx.post(f"{api.api_base}/auth/v1/signup", headers={"apikey": project["anon_key"]},
                      json={"email": "stranger@example.com", "password": "long enough pw"})
    assert resp.status_code == 403


def test_small_and_large_answers_come_back_whole_with_postgrests_headers(api):
    """A small answer is passed on in one piece (with its length), a large one (past
    data/upstream.WHOLE_BODY) streamed through; both byte for byte, on one kept-alive connection."""
    project = provision("sizes")
    sql(project, "create table blobs (id int primary key, pad text not null); "
                 "insert into blobs select i, repeat(chr(65 + i % 26), 2000) from generate_series(1, 400) i")
    expose(project, {"version": "1", "tables": [{"name": "blobs", "expose": True,
                                                 "policy": "public_read_authenticated_write"}]})
    url = f"{api.api_base}/rest/v1/blobs"
    with httpx.Client(headers=anon_headers(project)) as client:
        for _ in range(2):
            small = client.get(url, params={"id": "eq.3", "select": "id"}, headers={"Prefer": "count=exact"})
            assert small.status_code == 200 and small.json() == [{"id": 3}]
            assert small.headers["content-range"] == "0-0/1"
            assert small.headers["content-length"] == str(len(small.content))
            large = client.get(url, params={"order": "id"})
            assert large.status_code == 200 and len(large.content) > 800_000
            assert [(r["id"], r["pad"]) for r in large.json()] == [
                (i, chr(65 + i % 26) * 2000) for i in range(1, 401)]
            head = client.head(url, params={"select": "id"})
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-type"].startswith("application/json")
