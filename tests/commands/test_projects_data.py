"""`run402 projects rest|apply-expose|validate-expose|get-expose|promote-user|demote-user`."""

from __future__ import annotations

import json

import pytest

from run402_cli import config
from run402_cli.api import auth as api_auth
from run402_cli.api import projects as api_projects
from run402_cli.api.client import Client
from run402_cli.commands.projects import data as data_cmd
from tests.commands._helpers import files, ok, ready, record, seed_allowance, seed_projects, usage_error

OPEN_ITEMS = {
    "version": "1",
    "tables": [{"name": "items", "expose": True, "policy": "public_read_write_UNRESTRICTED",
                "i_understand_this_is_unrestricted": True}],
}


def _provision(cli) -> str:
    return ok(cli("projects", "provision"))["project_id"]


def _entry(pid: str) -> dict:
    return config.Settings().keystore().get(pid)


def _admin_sql(pid: str, query: str) -> dict:
    """Check through the API layer, as the project owner."""
    c = Client(config.Settings())
    try:
        return api_projects.sql(c, pid, _entry(pid)["service_key"], query)
    finally:
        c.close()


@pytest.fixture
def items_project(cli, api):
    """A fresh project with an `items` table open to anon (so `rest` can read and write it)."""
    ready(cli)
    pid = _provision(cli)
    ok(cli("projects", "sql", "CREATE TABLE items (id serial PRIMARY KEY, title text NOT NULL, done boolean DEFAULT false)"))
    ok(cli("projects", "apply-expose", json.dumps(OPEN_ITEMS)))
    return pid


# --- bad input: exit 1, one JSON line, nothing changed, no request -------------------------


@pytest.mark.parametrize(
    "args,code",
    [
        # rest
        (["rest"], "BAD_USAGE"),
        (["rest", "prj_1_1"], "BAD_USAGE"),
        (["rest", "items", "select=id", "extra"], "BAD_USAGE"),
        (["rest", "prj_1_1", "items", "select=id", "extra"], "BAD_USAGE"),
        (["rest", "items", "--method", "PUT"], "BAD_FLAG"),
        (["rest", "items", "--method"], "BAD_FLAG"),
        (["rest", "items", "--body", "{oops", "--method", "POST"], "BAD_JSON_FLAG"),
        (["rest", "items", "--body", '{"title": "x"}'], "BAD_USAGE"),
        (["rest", "items", "--method", "DELETE", "--body", "{}"], "BAD_USAGE"),
        (["rest", "items", "--metod", "GET"], "UNKNOWN_FLAG"),
        (["rest", "prj_9_9", "items"], "PROJECT_NOT_FOUND"),
        # apply-expose
        (["apply-expose"], "BAD_USAGE"),
        (["apply-expose", "prj_1_1"], "BAD_USAGE"),
        (["apply-expose", "{not json"], "BAD_USAGE"),
        (["apply-expose", "prj_1_1", "{}", "{}"], "BAD_USAGE"),
        (["apply-expose", "{}", "{}"], "BAD_PROJECT_ID"),
        (["apply-expose", "{}", "--file", "m.json"], "BAD_PROJECT_ID"),
        (["apply-expose", "prj_1_1", "{}", "--file", "m.json"], "BAD_USAGE"),
        (["apply-expose", "--file", "missing.json"], "FILE_NOT_FOUND"),
        (["apply-expose", "--file", "."], "NOT_A_FILE"),
        (["apply-expose", "--file", "bad.json"], "BAD_USAGE"),
        (["apply-expose", "--file"], "BAD_FLAG"),
        (["apply-expose", "--fil", "m.json"], "UNKNOWN_FLAG"),
        (["apply-expose", "prj_9_9", "{}"], "PROJECT_NOT_FOUND"),
        # validate-expose
        (["validate-expose"], "BAD_USAGE"),
        (["validate-expose", "{}", "--file", "m.json"], "BAD_USAGE"),
        (["validate-expose", "{}", "--migration-sql", "select 1", "--migration-file", "m.sql"], "BAD_USAGE"),
        (["validate-expose", "{}", "{}"], "BAD_USAGE"),
        (["validate-expose", "--file", "missing.json"], "FILE_NOT_FOUND"),
        (["validate-expose", "{}", "--migration-file", "missing.sql"], "FILE_NOT_FOUND"),
        (["validate-expose", "--migration-sql"], "BAD_FLAG"),
        (["validate-expose", "prj_9_9", "{}"], "PROJECT_NOT_FOUND"),
        # get-expose (strict)
        (["get-expose", "items"], "BAD_PROJECT_ID"),
        (["get-expose", "prj_1_1", "more"], "BAD_USAGE"),
        (["get-expose", "prj_9_9"], "PROJECT_NOT_FOUND"),
        (["get-expose", "--all"], "UNKNOWN_FLAG"),
        # promote-user / demote-user
        (["promote-user"], "BAD_USAGE"),
        (["promote-user", "prj_1_1"], "BAD_USAGE"),
        (["promote-user", "a@example.com", "b@example.com"], "BAD_USAGE"),
        (["promote-user", "prj_9_9", "a@example.com"], "PROJECT_NOT_FOUND"),
        (["demote-user"], "BAD_USAGE"),
        (["demote-user", "prj_1_1", "a@example.com", "more"], "BAD_USAGE"),
        (["demote-user", "a@example.com", "--force"], "UNKNOWN_FLAG"),
    ],
)
def test_bad_input(cli, isolated_config, tmp_path, monkeypatch, args, code):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_text('{"version": "1"}')
    (tmp_path / "m.sql").write_text("CREATE TABLE t (id int);")
    (tmp_path / "bad.json").write_text("{nope")
    seed_allowance()
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    usage_error(cli("projects", *args), code)
    assert files(isolated_config) == before


def test_bad_input_messages(cli):
    seed_projects(["prj_1_1"], active="prj_1_1")
    env = usage_error(cli("projects", "rest"), "BAD_USAGE")
    assert env["message"].startswith("Missing <table> argument.")
    assert env["hint"] == "Run 'run402 projects schema <id>' to list tables."
    env = usage_error(cli("projects", "apply-expose", "{nope"), "BAD_USAGE")
    assert env["message"] == "Invalid JSON for manifest"
    assert env["details"]["parse_error"]
    env = usage_error(cli("projects", "validate-expose"), "BAD_USAGE")
    assert env["message"] == "Missing manifest."
    assert usage_error(cli("projects", "promote-user"), "BAD_USAGE")["message"] == "Missing <email>."
    env = usage_error(cli("projects", "rest", "items", "--method", "put"), "BAD_FLAG")
    assert env["details"]["allowed"] == ["GET", "POST", "PATCH", "DELETE"]


@pytest.mark.parametrize(
    "args",
    [["rest", "items"], ["apply-expose", "{}"], ["get-expose"], ["promote-user", "a@example.com"],
     ["demote-user", "a@example.com"]],
)
def test_no_active_project(cli, isolated_config, args):
    env = usage_error(cli("projects", *args), "NO_ACTIVE_PROJECT")
    assert env["hint"] == "Run: run402 projects provision"
    assert files(isolated_config) == {}


def test_validate_expose_projectless_needs_an_allowance(cli, isolated_config):
    env = usage_error(cli("projects", "validate-expose", '{"version": "1"}'), "NO_ALLOWANCE")
    assert env["hint"] == "Run: run402 allowance create"
    assert files(isolated_config) == {}


def test_validate_expose_invalid_json_is_a_finding_without_a_request(cli, monkeypatch, isolated_config):
    seed_projects(["prj_1_1"], active="prj_1_1")  # fake keys: any request would fail
    monkeypatch.setenv("RUN402_API_BASE", "http://127.0.0.1:9")  # and nothing listens there
    before = files(isolated_config)
    body = ok(cli("projects", "validate-expose", '{"version": '))
    assert body["status"] == "ok" and body["hasErrors"] is True and body["warnings"] == []
    assert [e["type"] for e in body["errors"]] == ["schema-shape"]
    assert files(isolated_config) == before


# --- parse only ----------------------------------------------------------------------------


def test_parse_rest(cli, monkeypatch):
    calls = record(monkeypatch, data_cmd, "run_rest")
    assert cli("projects", "rest", "items").code == 0
    assert cli("projects", "rest", "prj_2_2", "items", "?select=id").code == 0
    assert cli("projects", "rest", "items", "id=eq.1", "--method", "patch", "--body", '{"done": true}').code == 0
    assert cli("projects", "rest", "items", "--method=POST", "--body", '[{"title": "a"}]').code == 0
    assert calls == [
        data_cmd.RestOptions(table="items"),
        data_cmd.RestOptions(table="items", project_id="prj_2_2", query="?select=id"),
        data_cmd.RestOptions(table="items", query="id=eq.1", method="PATCH", body={"done": True}),
        data_cmd.RestOptions(table="items", method="POST", body=[{"title": "a"}]),
    ]


def test_parse_apply_and_get_expose(cli, monkeypatch, tmp_path):
    apply = record(monkeypatch, data_cmd, "run_apply_expose")
    get = record(monkeypatch, data_cmd, "run_get_expose")
    path = tmp_path / "m.json"
    path.write_text('{"version": "1", "tables": []}')
    assert cli("projects", "apply-expose", '{"version": "1"}').code == 0
    assert cli("projects", "apply-expose", "prj_3_3", "--file", str(path)).code == 0
    assert cli("projects", "get-expose").code == 0
    assert cli("projects", "get-expose", "prj_3_3").code == 0
    assert apply == [
        data_cmd.ApplyExposeOptions(manifest={"version": "1"}),
        data_cmd.ApplyExposeOptions(manifest={"version": "1", "tables": []}, project_id="prj_3_3", file=str(path)),
    ]
    assert get == [data_cmd.GetExposeOptions(), data_cmd.GetExposeOptions(project_id="prj_3_3")]


def test_parse_validate_expose(cli, monkeypatch, tmp_path):
    calls = record(monkeypatch, data_cmd, "run_validate_expose")
    sql = tmp_path / "m.sql"
    sql.write_text("CREATE TABLE t (id int);")
    assert cli("projects", "validate-expose", "{}").code == 0
    assert cli("projects", "validate-expose", "{}", "prj_4_4", "--migration-sql", "").code == 0
    assert cli("projects", "validate-expose", "prj_4_4", "--migration-file", str(sql), input='{"a": 1}').code == 0
    assert calls == [
        data_cmd.ValidateExposeOptions(manifest_text="{}"),
        data_cmd.ValidateExposeOptions(manifest_text="{}", project_id="prj_4_4", migration_sql=""),
        data_cmd.ValidateExposeOptions(
            manifest_text='{"a": 1}', project_id="prj_4_4", migration_sql="CREATE TABLE t (id int);",
        ),
    ]


def test_parse_promote_and_demote(cli, monkeypatch):
    promote = record(monkeypatch, data_cmd, "run_promote_user")
    demote = record(monkeypatch, data_cmd, "run_demote_user")
    assert cli("projects", "promote-user", "a@example.com").code == 0
    assert cli("projects", "demote-user", "prj_5_5", "a@example.com").code == 0
    assert promote == [data_cmd.PromoteUserOptions(email="a@example.com")]
    assert demote == [data_cmd.DemoteUserOptions(email="a@example.com", project_id="prj_5_5")]


# --- against the gateway -------------------------------------------------------------------


def test_rest_reads_and_writes_with_the_anon_key(cli, items_project):
    pid = items_project
    created = ok(cli("projects", "rest", "items", "--method", "POST",
                     "--body", '[{"title": "a"}, {"title": "b"}, {"title": "c"}]'))
    assert [r["title"] for r in created] == ["a", "b", "c"]  # return=representation
    rows = ok(cli("projects", "rest", pid, "items", "select=id,title&order=id.desc&limit=2"))
    assert [r["title"] for r in rows] == ["c", "b"] and set(rows[0]) == {"id", "title"}
    patched = ok(cli("projects", "rest", "items", "title=eq.a", "--method", "PATCH", "--body", '{"done": true}'))
    assert [(r["title"], r["done"]) for r in patched] == [("a", True)]
    deleted = ok(cli("projects", "rest", "items", "?title=eq.b", "--method", "DELETE"))
    assert [r["title"] for r in deleted] == ["b"]
    # check through the API layer, as the owner
    rows = _admin_sql(pid, "SELECT title, done FROM items ORDER BY id")["rows"]
    assert rows == [{"title": "a", "done": True}, {"title": "c", "done": False}]


def test_rest_errors_come_from_postgrest(cli, items_project):
    res = cli("projects", "rest", "no_such_table")
    assert res.code == 1 and res.stdout == ""
    env = json.loads(res.stderr)
    assert env["status"] == "error" and env["http"] in (400, 404)


def test_apply_and_get_expose(cli, api, tmp_path):
    ready(cli)
    pid = _provision(cli)
    ok(cli("projects", "sql", "CREATE TABLE items (id serial PRIMARY KEY, title text)"))
    before = ok(cli("projects", "get-expose"))
    assert before["source"] == "introspected"
    assert before["manifest"]["tables"] == [{"name": "items", "expose": False}]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(OPEN_ITEMS))
    applied = ok(cli("projects", "apply-expose", pid, "--file", str(manifest)))
    assert applied["status"] == "ok" and applied["project_id"] == pid
    assert applied["applied"] == {"tables": ["items"], "views": [], "rpcs": []}
    after = ok(cli("projects", "get-expose", pid))
    assert after["source"] == "applied"
    assert after["manifest"]["tables"] == OPEN_ITEMS["tables"]
    # convergent: dropping the table from the manifest reports it and makes it dark again
    dropped = ok(cli("projects", "apply-expose", '{"version": "1", "tables": []}'))
    assert dropped["dropped"]["tables"] == ["items"]


def test_apply_expose_invalid_manifest_is_a_gateway_error(cli, api):
    ready(cli)
    _provision(cli)
    res = cli("projects", "apply-expose", '{"version": "1", "tables": [{"name": "ghost", "expose": true, '
                                          '"policy": "public_read_authenticated_write"}]}')
    assert res.code == 1 and res.stdout == ""
    env = json.loads(res.stderr)
    assert env["http"] == 400 and env["code"] == "INVALID_MANIFEST"
    assert [e["type"] for e in env["errors"]] == ["missing-table"]


def test_validate_expose_with_a_project(cli, api, tmp_path):
    ready(cli)
    pid = _provision(cli)
    ok(cli("projects", "sql", "CREATE TABLE notes (id serial PRIMARY KEY, owner uuid)"))
    good = {"version": "1", "tables": [{"name": "notes", "expose": True, "policy": "user_owns_rows",
                                        "owner_column": "owner"}]}
    body = ok(cli("projects", "validate-expose", json.dumps(good)))  # the active project
    assert body == {"status": "ok", "hasErrors": False, "errors": [], "warnings": []}
    # a table the migration would create counts; one nobody creates does not
    migration = tmp_path / "m.sql"
    migration.write_text("CREATE TABLE posts (id serial PRIMARY KEY, author uuid);")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"version": "1", "tables": [
        {"name": "posts", "expose": True, "policy": "user_owns_rows", "owner_column": "author"},
        {"name": "ghosts", "expose": True, "policy": "public_read_authenticated_write"},
    ]}))
    body = ok(cli("projects", "validate-expose", pid, "--file", str(manifest), "--migration-file", str(migration)))
    assert body["hasErrors"] is True
    assert [e["type"] for e in body["errors"]] == ["missing-table"]
    assert "ghosts" in body["errors"][0]["detail"]
    # nothing was applied
    assert ok(cli("projects", "get-expose"))["source"] == "introspected"


def test_validate_expose_projectless_and_from_stdin(cli, api):
    ready(cli)  # an allowance, and no project at all
    manifest = {"version": "1", "tables": [{"name": "t", "expose": True}]}
    body = ok(cli("projects", "validate-expose", input=json.dumps(manifest)))
    assert body["status"] == "ok" and body["hasErrors"] is True
    assert [e["type"] for e in body["errors"]] == ["schema-shape"]  # policy is required
    assert [w["type"] for w in body["warnings"]] == ["validation-inconclusive"]


def test_promote_and_demote_user(cli, api):
    ready(cli)
    pid = _provision(cli)
    ok(cli("auth", "create-user", "--email", "ada@example.com"))
    res = cli("projects", "promote-user", "ada@example.com")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == '{"status":"ok","email":"ada@example.com"}\n'
    assert _role(pid, "ada@example.com") == "project_admin"
    res = cli("projects", "demote-user", pid, "ada@example.com")
    assert res.stdout == '{"status":"ok","email":"ada@example.com"}\n'
    assert _role(pid, "ada@example.com") == "authenticated"


def _role(pid: str, email: str) -> str:
    """Sign the user in through the API layer (a service-key invite link, read back from the
    local mailbox) and read the role their session carries."""
    from run402_cli.api import mailbox

    entry = _entry(pid)
    c = Client(config.Settings())
    try:
        api_auth.magic_link(c, entry["service_key"], email, "http://localhost:3000/cb", "invite")
        body = mailbox.list_messages(c, pid, entry["service_key"], to=email)["messages"][0]["body_text"]
        token = next(line.split(": ", 1)[1] for line in body.splitlines() if line.startswith("token: "))
        return api_auth.verify(c, entry["anon_key"], token)["user"]["role"]
    finally:
        c.close()


def test_promote_unknown_user_is_a_404(cli, api):
    ready(cli)
    _provision(cli)
    res = cli("projects", "promote-user", "nobody@example.com")
    assert res.code == 1 and res.stdout == ""
    env = json.loads(res.stderr)
    assert env["http"] == 404 and env["code"] == "USER_NOT_FOUND"
