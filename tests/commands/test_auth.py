"""`run402 auth magic-link|verify|create-user|invite-user|set-password|settings|providers`,
and the end-to-end flow an app builder follows: table -> expose -> sign a user in."""

from __future__ import annotations

import json

import pytest

from run402_cli import config
from run402_cli.api import mailbox as api_mailbox
from run402_cli.api import rest as api_rest
from run402_cli.api.client import Client
from run402_cli.commands import auth as auth_cmd
from tests.commands._helpers import files, ok, ready, record, seed_allowance, seed_projects, usage_error

CB = "http://localhost:3000/cb"


def _provision(cli) -> str:
    return ok(cli("projects", "provision"))["project_id"]


def _entry(pid: str) -> dict:
    return config.Settings().keystore().get(pid)


def _messages(pid: str, to: str | None = None) -> list[dict]:
    """The project's captured mail, read through the API layer."""
    c = Client(config.Settings())
    try:
        return api_mailbox.list_messages(c, pid, _entry(pid)["service_key"], to=to)["messages"]
    finally:
        c.close()


def _token(body_text: str) -> str:
    return next(line.split(": ", 1)[1] for line in body_text.splitlines() if line.startswith("token: "))


def _compact(res) -> dict:
    """Exit 0, empty stderr, one compact JSON line (the official CLI's auth output)."""
    assert res.code == 0, (res.stdout, res.stderr)
    assert res.stderr == ""
    body = json.loads(res.stdout)
    assert res.stdout == json.dumps(body, separators=(",", ":"), ensure_ascii=False) + "\n"
    return body


def _signed_in(cli, pid: str, email: str) -> dict:
    _compact(cli("auth", "magic-link", "--email", email, "--redirect", CB))
    return _compact(cli("auth", "verify", "--token", _token(_messages(pid, email)[0]["body_text"])))


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,code",
    [
        (["magic-link"], "BAD_USAGE"),
        (["magic-link", "--email", "a@example.com"], "BAD_USAGE"),
        (["magic-link", "--redirect", CB], "BAD_USAGE"),
        (["magic-link", "--email", "", "--redirect", CB], "BAD_USAGE"),
        (["magic-link", "--email", "a@example.com", "--redirect", CB, "--intent", "login"], "BAD_FLAG"),
        (["magic-link", "--email", "--redirect", CB], "BAD_FLAG"),
        (["magic-link", "--email", "a@example.com", "--redirect", CB, "--project", "abc"], "BAD_PROJECT_ID"),
        (["magic-link", "--email", "a@example.com", "--redirect", CB, "--project", "prj_9_9"], "PROJECT_NOT_FOUND"),
        (["magic-link", "--mail", "a@example.com"], "UNKNOWN_FLAG"),
        (["magic-link", "a@example.com"], "BAD_USAGE"),
        (["verify"], "BAD_USAGE"),
        (["verify", "--token"], "BAD_FLAG"),
        (["verify", "--tokn", "x"], "UNKNOWN_FLAG"),
        (["create-user"], "BAD_USAGE"),
        (["create-user", "--email", "a@example.com", "--admin", "yes"], "BAD_FLAG"),
        (["create-user", "--email", "a@example.com", "--admin"], "BAD_FLAG"),
        (["create-user", "--email", "a@example.com", "--invite"], "BAD_USAGE"),
        (["invite-user", "--email", "a@example.com"], "BAD_USAGE"),
        (["invite-user", "--redirect", CB], "BAD_USAGE"),
        (["invite-user", "--email", "a@example.com", "--redirect", CB, "--admin", "1"], "BAD_FLAG"),
        (["set-password"], "BAD_USAGE"),
        (["set-password", "--token", "t"], "BAD_USAGE"),
        (["set-password", "--new", "longenough"], "BAD_USAGE"),
        (["settings"], "BAD_USAGE"),
        (["settings", "--project", "prj_1_1"], "BAD_USAGE"),
        (["settings", "--allow-password-set", "no"], "BAD_FLAG"),
        (["settings", "--require-admin-passkey", "TRUE"], "BAD_FLAG"),
        (["settings", "--preferred", "sms"], "BAD_FLAG"),
        (["settings", "--public-signup", "closed"], "BAD_FLAG"),
        (["settings", "--public-signup"], "BAD_FLAG"),
        (["providers", "--project", "nope"], "BAD_PROJECT_ID"),
        (["providers", "extra"], "BAD_USAGE"),
        (["passkeys"], "BAD_USAGE"),  # not offered: needs a browser authenticator
    ],
)
def test_bad_input(cli, isolated_config, args, code):
    seed_allowance()
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    usage_error(cli("auth", *args), code)
    assert files(isolated_config) == before


def test_bad_input_messages(cli):
    seed_projects(["prj_1_1"], active="prj_1_1")
    assert usage_error(cli("auth", "magic-link", "--redirect", CB), "BAD_USAGE")["message"] == "Missing --email"
    assert usage_error(cli("auth", "magic-link", "--email", "a@b.co"), "BAD_USAGE")["message"] == \
        "Missing --redirect <url>"
    env = usage_error(cli("auth", "create-user", "--email", "a@b.co", "--admin", "yes"), "BAD_FLAG")
    assert env["message"] == "--admin must be 'true' or 'false'"
    assert usage_error(cli("auth", "settings"), "BAD_USAGE")["message"] == "Set at least one auth setting flag"
    env = usage_error(cli("auth", "magic-link", "--mail", "a@b.co"), "UNKNOWN_FLAG")
    assert env["details"]["closest"][0] == "--email"


@pytest.mark.parametrize(
    "args",
    [
        ["magic-link", "--email", "a@example.com", "--redirect", CB],
        ["verify", "--token", "t"],
        ["create-user", "--email", "a@example.com"],
        ["invite-user", "--email", "a@example.com", "--redirect", CB],
        ["set-password", "--token", "t", "--new", "longenough"],
        ["settings", "--public-signup", "open"],
        ["providers"],
    ],
)
def test_no_active_project(cli, isolated_config, args):
    env = usage_error(cli("auth", *args), "NO_ACTIVE_PROJECT")
    assert env["hint"] == "Run: run402 projects provision"
    assert files(isolated_config) == {}


# --- parse only ----------------------------------------------------------------------------


def test_parse_magic_link_and_verify(cli, monkeypatch):
    links = record(monkeypatch, auth_cmd, "run_magic_link")
    verifies = record(monkeypatch, auth_cmd, "run_verify")
    assert cli("auth", "magic-link", "--email", "a@b.co", "--redirect", CB).code == 0
    assert cli("auth", "magic-link", "--email=a@b.co", "--redirect", CB, "--intent", "invite",
               "--state", "s1", "--project", "prj_2_2").code == 0
    assert cli("auth", "verify", "--token", "tok", "--project", "prj_2_2").code == 0
    assert links == [
        auth_cmd.MagicLinkOptions(email="a@b.co", redirect=CB),
        auth_cmd.MagicLinkOptions(email="a@b.co", redirect=CB, intent="invite", state="s1", project_id="prj_2_2"),
    ]
    assert verifies == [auth_cmd.VerifyOptions(token="tok", project_id="prj_2_2")]


def test_parse_users_and_passwords(cli, monkeypatch):
    creates = record(monkeypatch, auth_cmd, "run_create_user")
    passwords = record(monkeypatch, auth_cmd, "run_set_password")
    assert cli("auth", "create-user", "--email", "a@b.co").code == 0
    assert cli("auth", "create-user", "--email", "a@b.co", "--admin", "false", "--invite", "--redirect", CB).code == 0
    assert cli("auth", "invite-user", "--email", "a@b.co", "--redirect", CB, "--admin", "true").code == 0
    assert cli("auth", "set-password", "--token", "t", "--new", "n", "--current", "c").code == 0
    assert creates == [
        auth_cmd.CreateUserOptions(email="a@b.co"),
        auth_cmd.CreateUserOptions(email="a@b.co", admin=False, invite=True, redirect=CB),
        auth_cmd.CreateUserOptions(email="a@b.co", admin=True, invite=True, redirect=CB),
    ]
    assert passwords == [auth_cmd.SetPasswordOptions(token="t", new="n", current="c")]


def test_parse_settings_and_providers(cli, monkeypatch):
    calls = record(monkeypatch, auth_cmd, "run_settings")
    providers = record(monkeypatch, auth_cmd, "run_providers")
    assert cli("auth", "settings", "--preferred", "null").code == 0
    assert cli("auth", "settings", "--allow-password-set", "false", "--public-signup", "invite_only",
               "--require-admin-passkey", "true", "--preferred", "passkey").code == 0
    assert cli("auth", "providers", "--project", "prj_3_3").code == 0
    assert calls == [
        auth_cmd.SettingsOptions(patch=(("preferred_sign_in_method", None),)),
        auth_cmd.SettingsOptions(patch=(
            ("allow_password_set", False), ("preferred_sign_in_method", "passkey"),
            ("public_signup", "invite_only"), ("require_passkey_for_project_admin", True),
        )),
    ]
    assert providers == [auth_cmd.ProvidersOptions(project_id="prj_3_3")]


# --- against the gateway -------------------------------------------------------------------


def test_magic_link_then_verify(cli, api, isolated_config):
    ready(cli)
    pid = _provision(cli)
    out = _compact(cli("auth", "magic-link", "--email", "ada@example.com", "--redirect", CB, "--state", "s-1"))
    assert out == {"status": "ok", "email": "ada@example.com", "redirect_url": CB, "intent": "signin"}
    (mail,) = _messages(pid, "ada@example.com")
    assert mail["kind"] == "magic_link" and CB in mail["body_text"]
    session = _compact(cli("auth", "verify", "--token", _token(mail["body_text"]), "--project", pid))
    assert session["status"] == "ok"
    assert session["access_token"] and session["refresh_token"] and session["token_type"] == "bearer"
    assert session["user"]["email"] == "ada@example.com"
    assert session["magic_link"] == {"intent": "signin", "client_state": "s-1", "state_source": "anonymous",
                                     "state_trusted": False}
    # single use
    before = files(isolated_config)
    res = cli("auth", "verify", "--token", _token(mail["body_text"]))
    assert res.code == 1 and res.stdout == ""
    assert json.loads(res.stderr)["http"] == 401
    assert files(isolated_config) == before


def test_invite_intent_uses_the_service_key(cli, api):
    ready(cli)
    pid = _provision(cli)
    out = _compact(cli("auth", "magic-link", "--email", "bo@example.com", "--redirect", CB, "--intent", "invite",
                       "--state", "team-7"))
    assert out["intent"] == "invite"
    (mail,) = _messages(pid, "bo@example.com")
    session = _compact(cli("auth", "verify", "--token", _token(mail["body_text"])))
    assert session["magic_link"]["state_source"] == "service_key"
    assert session["magic_link"]["state_trusted"] is True


def test_create_and_invite_users(cli, api):
    ready(cli)
    pid = _provision(cli)
    created = _compact(cli("auth", "create-user", "--email", "cy@example.com", "--admin", "true"))
    assert created["status"] == "ok" and created["email"] == "cy@example.com"
    assert created["is_admin"] is True and created["created"] is True and created["invite_sent"] is False
    assert _messages(pid) == []
    again = _compact(cli("auth", "create-user", "--email", "cy@example.com", "--admin", "false"))
    assert again["id"] == created["id"] and again["created"] is False and again["is_admin"] is False
    invited = _compact(cli("auth", "invite-user", "--email", "di@example.com", "--redirect", CB, "--admin", "true"))
    assert invited["invite_sent"] is True and invited["is_admin"] is True
    (mail,) = _messages(pid, "di@example.com")
    session = _compact(cli("auth", "verify", "--token", _token(mail["body_text"])))
    assert session["user"]["role"] == "project_admin"
    assert session["magic_link"]["intent"] == "invite"
    via_create = _compact(cli("auth", "create-user", "--email", "ed@example.com", "--invite", "--redirect", CB))
    assert via_create["invite_sent"] is True
    assert len(_messages(pid, "ed@example.com")) == 1


def test_set_password(cli, api):
    ready(cli)
    pid = _provision(cli)
    access = _signed_in(cli, pid, "fay@example.com")["access_token"]
    res = cli("auth", "set-password", "--token", access, "--new", "first-password")
    assert res.code == 0 and res.stderr == "" and res.stdout == '{"status":"ok"}\n'
    # once a password exists, changing it needs the current one
    res = cli("auth", "set-password", "--token", access, "--new", "second-password")
    assert res.code == 1 and res.stdout == ""
    assert json.loads(res.stderr)["code"] == "INVALID_CREDENTIALS"
    res = cli("auth", "set-password", "--token", access, "--new", "second-password", "--current", "first-password")
    assert res.stdout == '{"status":"ok"}\n'


def test_settings_take_effect(cli, api):
    ready(cli)
    pid = _provision(cli)
    out = _compact(cli("auth", "settings", "--public-signup", "invite_only", "--preferred", "null"))
    assert out == {"status": "ok", "public_signup": "invite_only", "preferred_sign_in_method": None,
                   "allow_password_set": True, "require_passkey_for_project_admin": False}
    out = _compact(cli("auth", "settings", "--allow-password-set", "false", "--project", pid))
    assert out["allow_password_set"] is False and out["public_signup"] == "invite_only"
    # invite_only: a magic link for a stranger cannot create a user
    _compact(cli("auth", "magic-link", "--email", "gus@example.com", "--redirect", CB))
    res = cli("auth", "verify", "--token", _token(_messages(pid, "gus@example.com")[0]["body_text"]))
    assert res.code == 1
    assert json.loads(res.stderr)["code"] == "SIGNUP_RESTRICTED"


def test_providers(cli, api):
    ready(cli)
    _provision(cli)
    res = cli("auth", "providers")
    assert res.code == 0 and res.stderr == ""
    body = json.loads(res.stdout)
    assert "email" in body["providers"]
    assert res.stdout.startswith("{\n  ")  # pretty, as the official CLI prints it


def test_gateway_errors_are_one_json_line(cli, api):
    ready(cli)
    _provision(cli)
    res = cli("auth", "magic-link", "--email", "not-an-email", "--redirect", CB)
    assert res.code == 1 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1
    env = json.loads(res.stderr)
    assert env["http"] == 400 and env["code"] == "INVALID_EMAIL"


# --- the whole flow, through the CLI -------------------------------------------------------


def test_end_to_end_user_owned_rows(cli, api, tmp_path):
    """provision -> table with a uuid owner -> expose user_owns_rows + force_owner_on_insert ->
    magic link -> local mailbox -> verify -> the user writes and reads only their own rows."""
    ready(cli)
    pid = _provision(cli)
    ok(cli("projects", "sql", "CREATE TABLE notes (id serial PRIMARY KEY, owner uuid, body text NOT NULL)"))
    manifest = {"version": "1", "tables": [{"name": "notes", "expose": True, "policy": "user_owns_rows",
                                            "owner_column": "owner", "force_owner_on_insert": True}]}
    applied = ok(cli("projects", "apply-expose", json.dumps(manifest)))
    assert applied["applied"]["tables"] == ["notes"] and applied["warnings"] == []

    _compact(cli("auth", "magic-link", "--email", "hal@example.com", "--redirect", CB))
    mailbox = ok(cli("local", "mailbox", "--to", "hal@example.com"))
    assert mailbox["project_id"] == pid
    (mail,) = mailbox["messages"]
    session = _compact(cli("auth", "verify", "--token", _token(mail["body_text"])))
    user_id, access = session["user"]["id"], session["access_token"]

    # `projects rest` speaks as anon (who gets nothing here); check the user's view via api/
    c = Client(config.Settings())
    try:
        inserted = api_rest.rest(c, access, "notes", None, "POST", {"body": "mine"})
        assert [(r["owner"], r["body"]) for r in inserted] == [(user_id, "mine")]  # owner forced
        assert [r["body"] for r in api_rest.rest(c, access, "notes", "select=body")] == ["mine"]
    finally:
        c.close()
    ok(cli("projects", "sql", "INSERT INTO notes (owner, body) VALUES (gen_random_uuid(), 'theirs')"))
    c = Client(config.Settings())
    try:
        assert [r["body"] for r in api_rest.rest(c, access, "notes", "select=body")] == ["mine"]
    finally:
        c.close()
    res = cli("projects", "rest", "notes")  # anon: no grant on a user_owns_rows table
    assert res.code == 1 and json.loads(res.stderr)["http"] in (401, 403)

    got = ok(cli("projects", "get-expose"))
    assert got["source"] == "applied" and got["manifest"]["tables"] == manifest["tables"]

    # a migration that adds a column, and a manifest that names one nobody creates
    next_manifest = {"version": "1", "tables": [{"name": "notes", "expose": True, "policy": "user_owns_rows",
                                                 "owner_column": "author_id"}]}
    res = cli("projects", "validate-expose", pid, json.dumps(next_manifest),
              "--migration-sql", "ALTER TABLE notes ADD COLUMN title text;")
    body = ok(res)
    assert body["status"] == "ok" and body["hasErrors"] is True
    assert [e["type"] for e in body["errors"]] == ["missing-column"]
    assert "author_id" in body["errors"][0]["detail"]
    # and with the migration that does create it, the same manifest is clean
    body = ok(cli("projects", "validate-expose", json.dumps(next_manifest),
                  "--migration-sql", "ALTER TABLE notes ADD COLUMN author_id uuid;"))
    assert body["hasErrors"] is False
