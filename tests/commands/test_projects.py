"""`run402 projects quote|provision|list|use|info|keys|sql|schema|usage|delete`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from run402_cli import config
from run402_cli.api import projects as api_projects
from run402_cli.api.client import Client
from run402_cli.commands.projects import core as projects_cmd
from tests.commands._helpers import (
    files, mode, ok, ready, record, seed_allowance, seed_projects, usage_error,
)

REPO = Path(__file__).resolve().parents[2]


def _provision(cli, *args):
    return ok(cli("projects", "provision", *args))


# --- quote ---------------------------------------------------------------------------------


def test_quote(cli, api, isolated_config):
    body = ok(cli("projects", "quote"))
    assert set(body["tiers"]) >= {"prototype", "hobby", "team"}
    assert body["tiers"]["prototype"]["price"] == "$0.10"
    assert files(isolated_config) == {}  # no auth, no local state


# --- provision -----------------------------------------------------------------------------


def test_provision_saves_keys_and_activates(cli, api, isolated_config):
    summary = ready(cli)
    body = _provision(cli, "--tier", "prototype", "--name", "my-app")
    pid = body["project_id"]
    assert pid.startswith("prj_")
    assert body["anon_key"] and body["service_key"] and body["schema_slot"]
    assert "note" not in body and "previous_active_project_id" not in body

    path = isolated_config / "projects.json"
    assert mode(path) == 0o600
    store = json.loads(path.read_text())
    assert store["active_project_id"] == pid
    assert store["projects"][pid] == {"anon_key": body["anon_key"], "service_key": body["service_key"]}

    # check through the API layer that the wallet owns it, under that name
    listed = api_projects.list_for_wallet(Client(config.Settings()), summary["allowance"]["address"])
    assert [(p["id"], p["name"]) for p in listed["projects"]] == [(pid, "my-app")]


def test_second_provision_notes_the_active_change(cli, api):
    ready(cli)
    first = _provision(cli)["project_id"]
    second = _provision(cli)
    assert second["note"] == f"active project changed: {first} -> {second['project_id']}"
    assert second["previous_active_project_id"] == first
    store = config.Settings().keystore().load()
    assert store["active_project_id"] == second["project_id"]
    assert store["previous_active_project_id"] == first


def test_provision_failure_saves_nothing(cli, api, isolated_config):
    seed_allowance()  # no funds, no tier: the gateway asks for a payment we cannot make
    before = files(isolated_config)
    res = cli("projects", "provision")
    assert res.code == 1 and res.stdout == ""
    assert json.loads(res.stderr)["http"] == 402
    assert files(isolated_config) == before


def test_provision_requires_an_allowance(cli, isolated_config):
    env = usage_error(cli("projects", "provision"), "NO_ALLOWANCE")
    assert env["hint"] == "Run: run402 allowance create"
    assert files(isolated_config) == {}


@pytest.mark.parametrize(
    "name,detail",
    [("", None), ("x" * 129, 129), ("two\nlines", None), ("tab\there", None), ("del\x7f", None)],
)
def test_provision_bad_name(cli, isolated_config, name, detail):
    seed_allowance()
    before = files(isolated_config)
    env = usage_error(cli("projects", "provision", "--name", name), "BAD_PROJECT_NAME")
    assert env["details"]["field"] == "--name"
    if detail:
        assert env["details"]["length"] == detail
    assert files(isolated_config) == before


def test_provision_name_of_128_is_fine(cli, monkeypatch):
    calls = record(monkeypatch, projects_cmd, "run_provision")
    assert cli("projects", "provision", "--name", "é" * 128).code == 0
    assert calls[0].name == "é" * 128


@pytest.mark.parametrize(
    "args,code",
    [
        (["--tier", "gold"], "BAD_FLAG"),
        (["--tier"], "BAD_FLAG"),
        (["--name"], "BAD_FLAG"),
        (["--name", "--tier"], "BAD_FLAG"),
        (["--nme", "x"], "UNKNOWN_FLAG"),
        (["extra"], "BAD_USAGE"),
    ],
)
def test_provision_bad_input(cli, isolated_config, args, code):
    seed_allowance()
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    usage_error(cli("projects", "provision", *args), code)
    assert files(isolated_config) == before


@pytest.mark.parametrize("args", [["--name", "--tier", "x"], ["--tier", "--name", "x"]])
def test_provision_value_flag_followed_by_a_flag(cli, isolated_config, args):
    seed_allowance()
    before = files(isolated_config)
    env = usage_error(cli("projects", "provision", *args), "BAD_FLAG")
    assert env["details"]["flag"] == args[0]
    assert files(isolated_config) == before


def test_provision_unknown_flag_suggests_name(cli):
    env = usage_error(cli("projects", "provision", "--nme", "x"), "UNKNOWN_FLAG")
    assert env["details"]["closest"][0] == "--name"


def test_parse_provision(cli, monkeypatch):
    calls = record(monkeypatch, projects_cmd, "run_provision")
    assert cli("projects", "provision").code == 0
    assert cli("projects", "provision", "--tier=hobby", "--name", "a b").code == 0
    assert calls == [
        projects_cmd.ProvisionOptions(tier="prototype", name=None),
        projects_cmd.ProvisionOptions(tier="hobby", name="a b"),
    ]


# --- use / list / info / keys --------------------------------------------------------------


def test_list_empty_is_compact(cli):
    res = cli("projects", "list")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == '{"status":"ok","projects":[],"message":"No projects yet."}\n'


def test_list(cli):
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_2")
    config.Settings().keystore().update_project("prj_1_1", {"site_url": "https://a.run402.com"})
    body = ok(cli("projects", "list"))
    assert body == [
        {"project_id": "prj_1_1", "active": False, "site_url": "https://a.run402.com"},
        {"project_id": "prj_1_2", "active": True, "site_url": None},
    ]


def test_use(cli, isolated_config):
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_1")
    res = cli("projects", "use", "prj_1_2")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == '{"status":"ok","active_project_id":"prj_1_2"}\n'
    store = json.loads((isolated_config / "projects.json").read_text())
    assert store["active_project_id"] == "prj_1_2"
    assert store["previous_active_project_id"] == "prj_1_1"
    assert mode(isolated_config / "projects.json") == 0o600


@pytest.mark.parametrize(
    "args,code",
    [
        (["use"], "BAD_USAGE"),
        (["use", "abc"], "BAD_PROJECT_ID"),
        (["use", "prj_9_9"], "PROJECT_NOT_FOUND"),
        (["use", "prj_1_1", "prj_1_2"], "BAD_USAGE"),
        (["use", "prj_1_1", "--force"], "UNKNOWN_FLAG"),
        (["list", "--all"], "UNKNOWN_FLAG"),
        (["list", "x"], "BAD_USAGE"),
    ],
)
def test_local_bad_input(cli, isolated_config, args, code):
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_1")
    before = files(isolated_config)
    env = usage_error(cli("projects", *args), code)
    if code == "BAD_PROJECT_ID":
        assert env["details"] == {"value": "abc", "expected_prefix": "prj_"}
    if code == "PROJECT_NOT_FOUND":
        assert env["details"] == {"project_id": "prj_9_9", "source": "local_registry"}
    assert files(isolated_config) == before


def test_info_uses_the_active_project_and_api_base(cli, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", "http://127.0.0.1:4020")
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_2")
    assert ok(cli("projects", "info")) == {
        "project_id": "prj_1_2",
        "rest_url": "http://127.0.0.1:4020/rest/v1",
        "anon_key": "anon-prj_1_2",
        "service_key": "svc-prj_1_2",
        "site_url": None,
    }
    assert ok(cli("projects", "info", "prj_1_1"))["project_id"] == "prj_1_1"


def test_info_default_api_base(cli):
    seed_projects(["prj_1_1"], active="prj_1_1")
    assert ok(cli("projects", "info"))["rest_url"] == "https://api.run402.com/rest/v1"


def test_keys(cli):
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_1")
    assert ok(cli("projects", "keys")) == {
        "project_id": "prj_1_1", "anon_key": "anon-prj_1_1", "service_key": "svc-prj_1_1",
    }
    assert ok(cli("projects", "keys", "prj_1_2"))["service_key"] == "svc-prj_1_2"


@pytest.mark.parametrize("verb", ["info", "keys", "schema", "usage", "delete"])
def test_strict_project_positional(cli, isolated_config, verb):
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    env = usage_error(cli("projects", verb, "users"), "BAD_PROJECT_ID")
    assert env["details"] == {"value": "users", "expected_prefix": "prj_"}
    usage_error(cli("projects", verb, "prj_7_7"), "PROJECT_NOT_FOUND")
    usage_error(cli("projects", verb, "prj_1_1", "more"), "BAD_USAGE")
    usage_error(cli("projects", verb, "--bogus"), "UNKNOWN_FLAG")
    assert files(isolated_config) == before


@pytest.mark.parametrize("verb", ["info", "keys", "schema", "usage", "delete", "sql"])
def test_no_active_project(cli, isolated_config, verb):
    args = ["select 1"] if verb == "sql" else []
    env = usage_error(cli("projects", verb, *args), "NO_ACTIVE_PROJECT")
    assert env["hint"] == "Run: run402 projects provision"
    assert files(isolated_config) == {}


@pytest.mark.parametrize("verb", ["info", "schema", "usage", "quote"])
def test_bad_api_base(cli, monkeypatch, isolated_config, verb):
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    monkeypatch.setenv("RUN402_API_BASE", "mailto:me@example.com")
    usage_error(cli("projects", verb), "BAD_ENV")
    assert files(isolated_config) == before


@pytest.mark.parametrize(
    "verb,fn,opts",
    [
        ("info", "run_info", projects_cmd.InfoOptions),
        ("keys", "run_keys", projects_cmd.KeysOptions),
        ("schema", "run_schema", projects_cmd.SchemaOptions),
        ("usage", "run_usage", projects_cmd.UsageOptions),
    ],
)
def test_parse_project_positional(cli, monkeypatch, verb, fn, opts):
    calls = record(monkeypatch, projects_cmd, fn)
    assert cli("projects", verb).code == 0
    assert cli("projects", verb, "prj_5_5").code == 0
    assert calls == [opts(project_id=None), opts(project_id="prj_5_5")]


def test_parse_use_and_list(cli, monkeypatch):
    use = record(monkeypatch, projects_cmd, "run_use")
    lst = record(monkeypatch, projects_cmd, "run_list")
    quote = record(monkeypatch, projects_cmd, "run_quote")
    assert cli("projects", "use", "prj_2_2").code == 0
    assert cli("projects", "list").code == 0
    assert cli("projects", "quote").code == 0
    assert use == [projects_cmd.UseOptions(project_id="prj_2_2")]
    assert lst == [projects_cmd.ListOptions()]
    assert quote == [projects_cmd.QuoteOptions()]


def test_concurrent_use_leaves_a_valid_keystore(isolated_config):
    ids = [f"prj_100_{i}" for i in range(20)]
    seed_projects(ids, active=ids[0])
    env = dict(os.environ)
    env["RUN402_CONFIG_DIR"] = str(isolated_config)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "run402_cli", "projects", "use", pid],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for pid in ids
    ]
    outs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    for pid, (code, out, err) in zip(ids, outs):
        assert code == 0, err
        assert json.loads(out) == {"status": "ok", "active_project_id": pid}
    store = json.loads((isolated_config / "projects.json").read_text())
    assert store["active_project_id"] in ids
    assert sorted(store["projects"]) == sorted(ids)
    assert all(store["projects"][pid]["service_key"] == f"svc-{pid}" for pid in ids)
    assert mode(isolated_config / "projects.json") == 0o600
    assert not (isolated_config / "projects.json.lock").exists()
    assert not list(isolated_config.glob(".projects.*.tmp"))


# --- sql -----------------------------------------------------------------------------------


def test_sql_create_insert_select(cli, api, tmp_path):
    ready(cli)
    pid = _provision(cli)["project_id"]
    created = ok(cli("projects", "sql", "CREATE TABLE items (id serial PRIMARY KEY, title text NOT NULL)"))
    assert created["status"] == "ok" and created["rows"] == []
    inserted = ok(cli("projects", "sql", pid, "INSERT INTO items (title) VALUES ($1), ($2)",
                      "--params", '["a", "b"]'))
    assert inserted["rowCount"] == 2 and inserted["rows"] == []
    script = tmp_path / "more.sql"
    script.write_text("INSERT INTO items (title) VALUES ('c');\n")
    assert ok(cli("projects", "sql", "--file", str(script)))["rowCount"] == 1
    selected = ok(cli("projects", "sql", "SELECT title FROM items WHERE id > $1 ORDER BY id",
                      "--params", "[0]"))
    assert [r["title"] for r in selected["rows"]] == ["a", "b", "c"]
    assert selected["rowCount"] == 3
    assert selected["schema"] == _provision_schema(cli, pid)


def _provision_schema(cli, pid):
    return ok(cli("projects", "schema", pid))["schema"]


def test_sql_error_from_the_gateway(cli, api):
    ready(cli)
    _provision(cli)
    res = cli("projects", "sql", "SELEC 1")
    assert res.code == 1 and res.stdout == ""
    env = json.loads(res.stderr)
    assert env["http"] == 400 and env["status"] == "error"


def test_schema_and_usage(cli, api):
    ready(cli)
    pid = _provision(cli)["project_id"]
    ok(cli("projects", "sql", "CREATE TABLE notes (id int PRIMARY KEY, body text)"))
    schema = ok(cli("projects", "schema"))
    table = next(t for t in schema["tables"] if t["name"] == "notes")
    assert [c["name"] for c in table["columns"]] == ["id", "body"]
    assert table["rls_enabled"] in (True, False)
    usage = ok(cli("projects", "usage", pid))
    assert usage["project_id"] == pid
    assert usage["tier"] == "prototype"
    assert {"api_calls", "api_calls_limit", "storage_bytes", "storage_limit_bytes", "status"} <= set(usage)


@pytest.mark.parametrize(
    "args,code",
    [
        (["select 1", "--params", "[1"], "BAD_JSON_FLAG"),
        (["select 1", "--params", '{"a": 1}'], "BAD_USAGE"),
        (["select 1", "--params"], "BAD_FLAG"),
        (["select 1", "--file"], "BAD_FLAG"),
        (["select 1", "--file", "x.sql"], "BAD_PROJECT_ID"),
        (["select 1", "select 2"], "BAD_PROJECT_ID"),
        (["prj_1_1", "select 1", "select 2"], "BAD_USAGE"),
        (["prj_1_1", "select 1", "--file", "x.sql"], "BAD_USAGE"),
        ([], "BAD_USAGE"),
        (["prj_1_1"], "BAD_USAGE"),
        (["  "], "BAD_USAGE"),
        (["select 1", "--param", "[1]"], "UNKNOWN_FLAG"),
        (["prj_9_9", "select 1"], "PROJECT_NOT_FOUND"),
    ],
)
def test_sql_bad_input(cli, isolated_config, tmp_path, monkeypatch, args, code):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.sql").write_text("select 1")
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    usage_error(cli("projects", "sql", *args), code)
    assert files(isolated_config) == before


def test_sql_bad_params_details(cli):
    seed_projects(["prj_1_1"], active="prj_1_1")
    env = usage_error(cli("projects", "sql", "select $1", "--params", "[oops"), "BAD_JSON_FLAG")
    assert env["details"]["flag"] == "--params"
    assert env["details"]["value_preview"] == "[oops"
    assert env["details"]["parse_error"]


def test_sql_missing_file(cli, isolated_config, tmp_path):
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    missing = tmp_path / "nope.sql"
    env = usage_error(cli("projects", "sql", "--file", str(missing)), "FILE_NOT_FOUND")
    assert env["field"] == "--file"
    assert str(missing) in env["message"]
    env = usage_error(cli("projects", "sql", "--file", str(tmp_path)), "NOT_A_FILE")
    assert env["field"] == "--file"
    assert files(isolated_config) == before


def test_parse_sql(cli, monkeypatch, tmp_path):
    calls = record(monkeypatch, projects_cmd, "run_sql")
    script = tmp_path / "s.sql"
    script.write_text("CREATE TABLE t (id int);")
    assert cli("projects", "sql", "select 1").code == 0
    assert cli("projects", "sql", "prj_3_3", "select $1, $2", "--params", '[1, "x"]').code == 0
    assert cli("projects", "sql", "prj_3_3", "--file", str(script)).code == 0
    assert cli("projects", "sql", "--file", str(script), "--params", "[]").code == 0
    assert calls == [
        projects_cmd.SqlOptions(sql="select 1"),
        projects_cmd.SqlOptions(sql="select $1, $2", project_id="prj_3_3", params=(1, "x")),
        projects_cmd.SqlOptions(sql="CREATE TABLE t (id int);", project_id="prj_3_3", file=str(script)),
        projects_cmd.SqlOptions(sql="CREATE TABLE t (id int);", params=(), file=str(script)),
    ]


# --- delete --------------------------------------------------------------------------------


def test_delete_requires_confirm(cli, isolated_config):
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    env = usage_error(cli("projects", "delete"), "CONFIRMATION_REQUIRED")
    assert set(env) == {"status", "code", "message", "details"}  # raw envelope, as in Node
    assert env["details"] == {
        "project_id": "prj_1_1",
        "destroys": ["schemas", "functions", "subdomains", "mailbox", "blobs", "secrets"],
    }
    assert files(isolated_config) == before


def test_delete(cli, api, isolated_config):
    summary = ready(cli)
    first = _provision(cli)["project_id"]
    second = _provision(cli)["project_id"]
    res = cli("projects", "delete", "--confirm")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == f'{{"status":"ok","message":"Project {second} deleted."}}\n'
    store = json.loads((isolated_config / "projects.json").read_text())
    assert second not in store["projects"]
    assert store["active_project_id"] == first  # the previous one becomes active again
    assert "previous_active_project_id" not in store
    assert mode(isolated_config / "projects.json") == 0o600
    listed = api_projects.list_for_wallet(Client(config.Settings()), summary["allowance"]["address"])
    assert second not in [p["id"] for p in listed["projects"]]
    # explicit id form
    assert cli("projects", "delete", first, "--confirm").code == 0
    assert json.loads((isolated_config / "projects.json").read_text()) == {"projects": {}}


def test_delete_failure_keeps_the_keystore(cli, api, isolated_config):
    seed_allowance()
    seed_projects(["prj_1_1"], active="prj_1_1")  # unknown to the gateway, fake keys
    before = files(isolated_config)
    res = cli("projects", "delete", "--confirm")
    assert res.code == 1 and res.stdout == ""
    assert json.loads(res.stderr)["status"] == "error"
    assert files(isolated_config) == before


def test_parse_delete(cli, monkeypatch):
    calls = record(monkeypatch, projects_cmd, "run_delete")
    assert cli("projects", "delete").code == 0
    assert cli("projects", "delete", "prj_4_4", "--confirm").code == 0
    assert calls == [
        projects_cmd.DeleteOptions(project_id=None, confirm=False),
        projects_cmd.DeleteOptions(project_id="prj_4_4", confirm=True),
    ]
