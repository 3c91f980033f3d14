"""`run402 secrets set|list|delete`: the real set -> list -> overwrite -> delete cycle against
the session gateway, a deploy whose `secrets.require` the command satisfies, bad input (exit 1,
one JSON line, nothing changed, no request: the API base is a closed port), parsing, and the
wire shape against the recording stand-in of the hosted API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from run402_cli.app import run
from run402_cli.commands import secrets as secrets_cmd
from tests.commands._helpers import (
    closed_port, files, ok, ready, record, seed_allowance, seed_projects, usage_error,
)
from tests.interop.recording_server import RecordingServer, Reply

VALUE = "sk-live-Zq9w"  # the text no output may ever contain


def compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":")) + "\n"


def provisioned(cli: Any) -> str:
    ready(cli)
    return ok(cli("projects", "provision"))["project_id"]


# --- against the gateway --------------------------------------------------------------------


def test_set_list_overwrite_delete(cli, api, tmp_path):
    pid = provisioned(cli)
    res = cli("secrets", "set", pid, "STRIPE_KEY", VALUE)
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == compact({"status": "ok", "message": f"Secret 'STRIPE_KEY' set for project {pid}."})
    ok(cli("secrets", "set", pid, "A_FROM_STDIN", "--stdin", input=VALUE + "\n"))
    (tmp_path / "cert.pem").write_text("line1\r\nline2\n", newline="")
    ok(cli("secrets", "set", pid, "TLS_CERT", "--file", str(tmp_path / "cert.pem")))
    ok(cli("secrets", "set", pid, "_PIPED", "--file", "-", input="x"))

    listed = cli("secrets", "list", pid)
    body = ok(listed)
    assert [s["key"] for s in body["secrets"]] == ["A_FROM_STDIN", "STRIPE_KEY", "TLS_CERT", "_PIPED"]
    assert all(set(s) == {"key", "created_at", "updated_at"} for s in body["secrets"])
    assert listed.stdout == json.dumps(body, indent=2) + "\n"  # pretty, as the official CLI prints it
    first = {s["key"]: s for s in body["secrets"]}["STRIPE_KEY"]

    ok(cli("secrets", "set", pid, "STRIPE_KEY", "--stdin", input="rotated"))  # overwrite
    again = {s["key"]: s for s in ok(cli("secrets", "list", pid))["secrets"]}["STRIPE_KEY"]
    assert again["created_at"] == first["created_at"] and again["updated_at"] >= first["updated_at"]

    res = cli("secrets", "delete", pid, "STRIPE_KEY")
    assert res.code == 0 and res.stdout == compact({"status": "ok", "message": "Secret 'STRIPE_KEY' deleted."})
    assert "STRIPE_KEY" not in [s["key"] for s in ok(cli("secrets", "list", pid))["secrets"]]
    env = json.loads(cli("secrets", "delete", pid, "STRIPE_KEY").stderr)
    assert env["http"] == 404 and env["code"] == "SECRET_NOT_FOUND"


def test_the_value_is_stored_verbatim(cli, api, tmp_path):
    """What the functions runtime reads back is byte for byte what was given: a file's CRLF,
    stdin's trailing newline, multi-byte UTF-8 up to exactly 4096 bytes."""
    from tests.security.test_secrets import stored_values

    pid = provisioned(cli)
    (tmp_path / "crlf").write_bytes("a\r\nb\r\n".encode())
    ok(cli("secrets", "set", pid, "CRLF", "--file", str(tmp_path / "crlf")))
    ok(cli("secrets", "set", pid, "NEWLINE", "--stdin", input="v\n"))
    ok(cli("secrets", "set", pid, "WIDE", "é" * 2048))  # 4096 UTF-8 bytes: the limit, accepted
    assert stored_values(api, pid) == {"CRLF": "a\r\nb\r\n", "NEWLINE": "v\n", "WIDE": "é" * 2048}


def test_deploy_require_is_satisfied_once_the_secret_is_set(cli, api):
    pid = provisioned(cli)
    spec = json.dumps({"secrets": {"require": ["OPENAI_API_KEY"]}, "site": {"replace": {"index.html": "x"}}})
    usage_error(cli("deploy", "apply", "--spec", spec, "--quiet", "--allow-warnings"), "MISSING_REQUIRED_SECRET")
    ok(cli("secrets", "set", pid, "OPENAI_API_KEY", "--stdin", input=VALUE))
    done = ok(cli("deploy", "apply", "--spec", spec, "--quiet"))
    assert done["status"] == "ok" and done["release_id"].startswith("rel_")


def test_another_projects_id_with_its_own_key_is_refused(cli, api):
    """The keystore holds both projects; a forged entry pairing one id with the other's key is
    refused by the gateway (403), and nothing is set."""
    from run402_cli import config

    first = provisioned(cli)
    second = ok(cli("projects", "provision"))["project_id"]
    ks = config.Settings().keystore()
    ks.update_project(first, {"service_key": ks.get(second)["service_key"]})
    for args in (("set", first, "K", "v"), ("list", first), ("delete", first, "K")):
        res = cli("secrets", *args)
        assert res.code == 1 and res.stdout == ""
        assert json.loads(res.stderr)["http"] == 403, args


# --- bad input: exit 1, one JSON line, nothing changed, no request ---------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, isolated_config: Path, tmp_path: Path) -> Path:
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "value.txt").write_text(VALUE)
    (tmp_path / "big.txt").write_text("x" * 4097)
    seed_allowance()
    seed_projects(["prj_1_1"], active="prj_1_1")
    return isolated_config


P = "prj_1_1"


@pytest.mark.parametrize("args,code,stdin", [
    (["set"], "BAD_USAGE", None),
    (["set", P], "BAD_USAGE", None),
    (["set", P, "K"], "BAD_USAGE", None),
    (["set", P, "K", "--stdin"], "BAD_USAGE", None),  # nothing piped
    (["set", P, "K", "--file", "-"], "BAD_USAGE", None),
    (["set", P, "K", "--file", "/dev/stdin"], "BAD_USAGE", None),
    (["set", P, "K", VALUE, "--stdin"], "BAD_USAGE", VALUE),
    (["set", P, "K", VALUE, "--file", "value.txt"], "BAD_USAGE", None),
    (["set", P, "K", "--file", "value.txt", "--stdin"], "BAD_USAGE", VALUE),
    (["set", P, "K", "--file", "-", "--stdin"], "BAD_USAGE", VALUE),
    (["set", P, "K", "--file", "nope.txt"], "FILE_NOT_FOUND", None),
    (["set", P, "K", "--file", "."], "NOT_A_FILE", None),
    (["set", P, "K", "--file"], "BAD_FLAG", None),
    (["set", P, "lower", VALUE], "BAD_SECRET_KEY", None),
    (["set", P, "1ABC", VALUE], "BAD_SECRET_KEY", None),
    (["set", P, "A" * 129, VALUE], "BAD_SECRET_KEY", None),
    (["set", P, "A-B", VALUE], "BAD_SECRET_KEY", None),
    (["set", P, VALUE, "API_KEY"], "BAD_SECRET_KEY", None),  # key and value swapped
    (["set", P, "K", "x" * 4097], "SECRET_VALUE_TOO_LARGE", None),
    (["set", P, "K", "é" * 2049], "SECRET_VALUE_TOO_LARGE", None),  # 4098 bytes, 2049 characters
    (["set", P, "K", "--file", "big.txt"], "SECRET_VALUE_TOO_LARGE", None),
    (["set", P, "K", "--stdin"], "SECRET_VALUE_TOO_LARGE", "y" * 5000),
    (["set", "abc", "K", VALUE], "BAD_PROJECT_ID", None),
    (["set", "prj_9_9", "K", VALUE], "PROJECT_NOT_FOUND", None),
    (["set", P, "K", "my", "secret", "phrase"], "BAD_USAGE", None),
    (["set", P, "K", VALUE, "--bogus"], "UNKNOWN_FLAG", None),
    (["set", P, "K", "-" + VALUE], "UNKNOWN_FLAG", None),  # a value that looks like a flag
    (["list"], "BAD_USAGE", None),
    (["list", "abc"], "BAD_PROJECT_ID", None),
    (["list", "prj_9_9"], "PROJECT_NOT_FOUND", None),
    (["list", P, "extra"], "BAD_USAGE", None),
    (["list", P, "--all"], "UNKNOWN_FLAG", None),
    (["delete"], "BAD_USAGE", None),
    (["delete", P], "BAD_USAGE", None),
    (["delete", P, "K", "extra"], "BAD_USAGE", None),
    (["delete", "prj_9_9", "K"], "PROJECT_NOT_FOUND", None),
])
def test_bad_input(cli, offline, args, code, stdin):
    before = files(offline)
    res = cli("secrets", *args, input=stdin)
    env = usage_error(res, code)  # not NETWORK_ERROR: refused before any request
    assert files(offline) == before
    assert VALUE not in res.stderr, "a secret value is never echoed"
    if code == "PROJECT_NOT_FOUND":
        assert env["details"]["source"] == "local_registry"
    if code == "SECRET_VALUE_TOO_LARGE":
        assert env["details"]["max_bytes"] == 4096 and env["details"]["bytes"] > 4096


def test_a_terminal_is_not_a_value(offline, monkeypatch, capsys):
    """--stdin on a terminal fails at once instead of waiting for someone to type."""
    import io
    import sys

    master, slave = os.openpty()
    tty = io.TextIOWrapper(io.FileIO(slave, "r", closefd=True))
    try:
        monkeypatch.setattr(sys, "stdin", tty)
        assert run(["secrets", "set", P, "K", "--stdin"]) == 1
    finally:
        tty.close()
        os.close(master)
    out, err = capsys.readouterr()
    assert out == "" and json.loads(err)["message"] == "Missing secret value on stdin."


def test_sources_are_named_when_two_are_given(cli, offline):
    env = usage_error(cli("secrets", "set", P, "K", "v", "--file", "-"), "BAD_USAGE")
    assert env["details"] == {"sources": ["inline", "--file stdin"]}
    assert env["message"] == "Provide exactly one secret value source."


# --- parse only -----------------------------------------------------------------------------


def test_parse(cli, offline, tmp_path, monkeypatch):
    sets = record(monkeypatch, secrets_cmd, "run_set")
    lists = record(monkeypatch, secrets_cmd, "run_list")
    deletes = record(monkeypatch, secrets_cmd, "run_delete")
    (tmp_path / "crlf.txt").write_bytes(b"a\r\nb")
    assert cli("secrets", "set", P, "K", "inline").code == 0
    assert cli("secrets", "set", P, "K", "--stdin", input="piped\n").code == 0
    assert cli("secrets", "set", P, "K", "--file=-", input="dash").code == 0
    assert cli("secrets", "set", P, "K", "--file", "crlf.txt").code == 0
    assert cli("secrets", "set", P, "K", "--", "-starts-with-dash").code == 0
    assert cli("secrets", "set", P, "K", "").code == 0  # an empty inline value is a value
    assert cli("secrets", "list", P).code == 0
    assert cli("secrets", "delete", P, "legacy-lower").code == 0  # a legacy key stays deletable
    S = secrets_cmd.SetOptions
    assert sets == [S(P, "K", "inline", "inline"), S(P, "K", "piped\n", "--stdin"),
                    S(P, "K", "dash", "--file stdin"), S(P, "K", "a\r\nb", "--file"),
                    S(P, "K", "-starts-with-dash", "inline"), S(P, "K", "", "inline")]
    assert lists == [secrets_cmd.ListOptions(P)]
    assert deletes == [secrets_cmd.DeleteOptions(P, "legacy-lower")]
    assert VALUE not in repr(S(P, "K", VALUE, "inline")), "the options never show the value"


# --- the wire: what leaves the machine -------------------------------------------------------


def test_wire_shape(cli, offline, monkeypatch):
    routes = {("GET", "/projects/v1/admin/prj_1_1/secrets"):
              Reply(200, [{"key": "B", "value_hash": "abc", "created_at": "t1"}, {"key": "A"}, {"nokey": 1}])}
    with RecordingServer(routes) as server:
        monkeypatch.setenv("RUN402_API_BASE", server.url)
        ok(cli("secrets", "set", P, "API_KEY", VALUE))
        listed = ok(cli("secrets", "list", P))
        ok(cli("secrets", "delete", P, "A B"))
        sent = server.take()
    assert [(r.method, r.path) for r in sent] == [
        ("POST", "/projects/v1/admin/prj_1_1/secrets"), ("GET", "/projects/v1/admin/prj_1_1/secrets"),
        ("DELETE", "/projects/v1/admin/prj_1_1/secrets/A%20B")]
    assert sent[0].json == {"key": "API_KEY", "value": VALUE}
    assert sent[0].headers["content-type"] == "application/json"
    for req in sent:
        assert req.headers["authorization"] == "Bearer svc-prj_1_1"
        assert "sign-in-with-x" not in req.headers and "apikey" not in req.headers
    # a bare array is accepted; everything but key and timestamps is dropped
    assert listed == {"secrets": [{"key": "B", "created_at": "t1"}, {"key": "A"}]}
