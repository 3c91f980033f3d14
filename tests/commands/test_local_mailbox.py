"""`run402 local mailbox [id] [--to email]`: the mail the local gateway captured."""

from __future__ import annotations

import json

import pytest

from run402_cli import config
from run402_cli.api import auth as api_auth
from run402_cli.api.client import Client
from run402_cli.commands import local as local_cmd
from tests.commands._helpers import files, ok, ready, record, seed_projects, usage_error

CB = "http://localhost:3000/cb"


def _link(pid: str, email: str) -> None:
    """Have the gateway mail a magic link, through the API layer."""
    entry = config.Settings().keystore().get(pid)
    c = Client(config.Settings())
    try:
        api_auth.magic_link(c, entry["anon_key"], email, CB)
    finally:
        c.close()


@pytest.mark.parametrize(
    "args,code",
    [
        (["mailbox", "inbox"], "BAD_PROJECT_ID"),
        (["mailbox", "prj_1_1", "more"], "BAD_USAGE"),
        (["mailbox", "prj_9_9"], "PROJECT_NOT_FOUND"),
        (["mailbox", "--to"], "BAD_FLAG"),
        (["mailbox", "--to", " "], "BAD_FLAG"),
        (["mailbox", "--from", "a@example.com"], "UNKNOWN_FLAG"),
    ],
)
def test_bad_input(cli, isolated_config, monkeypatch, args, code):
    monkeypatch.setenv("RUN402_API_BASE", "http://127.0.0.1:9")
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    env = usage_error(cli("local", *args), code)
    if code == "BAD_PROJECT_ID":
        assert env["details"] == {"value": "inbox", "expected_prefix": "prj_"}
    assert files(isolated_config) == before


def test_needs_the_local_api_base(cli, isolated_config):
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    env = usage_error(cli("local", "mailbox"), "BAD_ENV")
    assert "local up" in env["hint"]
    assert files(isolated_config) == before


def test_no_active_project(cli, isolated_config, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", "http://127.0.0.1:9")
    env = usage_error(cli("local", "mailbox"), "NO_ACTIVE_PROJECT")
    assert env["hint"] == "Run: run402 projects provision"
    assert files(isolated_config) == {}


def test_parse(cli, monkeypatch):
    calls = record(monkeypatch, local_cmd, "run_mailbox")
    assert cli("local", "mailbox").code == 0
    assert cli("local", "mailbox", "prj_2_2", "--to", "a@example.com").code == 0
    assert calls == [
        local_cmd.MailboxOptions(),
        local_cmd.MailboxOptions(project_id="prj_2_2", to="a@example.com"),
    ]


def test_mailbox_lists_and_filters(cli, api):
    ready(cli)
    first = ok(cli("projects", "provision"))["project_id"]
    assert ok(cli("local", "mailbox")) == {"project_id": first, "messages": []}
    _link(first, "ann@example.com")
    _link(first, "ben@example.com")
    _link(first, "ann@example.com")
    body = ok(cli("local", "mailbox"))
    assert [m["to"] for m in body["messages"]] == ["ann@example.com", "ben@example.com", "ann@example.com"]
    assert all(set(m) == {"id", "to", "subject", "body_text", "kind", "created_at"} for m in body["messages"])
    ids = [int(m["id"]) for m in body["messages"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    assert [m["to"] for m in ok(cli("local", "mailbox", "--to", "BEN@example.com"))["messages"]] == ["ben@example.com"]
    # another project's mailbox is its own; the explicit id reads the first one
    second = ok(cli("projects", "provision"))["project_id"]
    assert ok(cli("local", "mailbox"))["messages"] == []
    assert len(ok(cli("local", "mailbox", first))["messages"]) == 3
    assert ok(cli("local", "mailbox", second, "--to", "ann@example.com")) == {"project_id": second, "messages": []}


def test_mailbox_with_keys_the_gateway_does_not_know(cli, api, isolated_config):
    seed_projects(["prj_1_1"], active="prj_1_1")  # fake keys
    before = files(isolated_config)
    res = cli("local", "mailbox")
    assert res.code == 1 and res.stdout == ""
    env = json.loads(res.stderr)
    assert env["status"] == "error" and env["http"] in (401, 403, 404)
    assert files(isolated_config) == before
