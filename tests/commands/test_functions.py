"""`run402 functions deploy|invoke|logs|update|list|delete`: bad input (exit 1, one JSON line, no
request, nothing changed), parsing, and the exact wire of every call against a recording
stand-in of the hosted API (tests/interop/recording_server.py: it answers from canned replies
and records what it is sent); the tier preflight of `functions deploy|update` and `deploy apply`.
End-to-end runs against the local gateway live with the gateway's functions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from run402_cli.commands.functions import calls as calls_cmd
from run402_cli.commands.functions import deploy as deploy_cmd
from run402_cli.commands.functions import manage as manage_cmd
from tests.commands._helpers import closed_port, files, ok, record, seed_allowance, seed_projects, usage_error
from tests.interop.recording_server import Recorded, RecordingServer, Reply

P = "prj_1_1"
KEY = f"svc-{P}"
ADMIN = f"/projects/v1/admin/{P}/functions"
HANDLER = "export default async (req: Request) => Response.json({ ok: true });\n"
DEPLOYED = {"name": "hello", "url": "https://api.run402.com/functions/v1/hello", "status": "deployed",
            "runtime": "node22", "timeout": 10, "memory": 128, "created_at": "2026-01-01T00:00:00Z",
            "runtime_version": "1.48.0", "deps_resolved": {}}
PROTOTYPE = {"wallet": "0xabc", "tier": "prototype", "active": True, "pool_usage": {"projects": 1}}


@pytest.fixture
def code(tmp_path: Path) -> Path:
    path = tmp_path / "handler.ts"
    path.write_text(HANDLER)
    return path


# --- bad input: no request is possible (a closed port), nothing is written ------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, isolated_config: Path, tmp_path: Path) -> Path:
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "handler.ts").write_text(HANDLER)
    (tmp_path / "handler.mjs").write_text(HANDLER)
    (tmp_path / "blank.js").write_text("  \n\t\n")
    (tmp_path / "notes.txt").write_text(HANDLER)
    (tmp_path / "latin1.js").write_bytes(b"export default 'caf\xe9'")
    (tmp_path / "dir.ts").mkdir()
    seed_projects([P, "prj_1_2"], active=P)
    return isolated_config


DEPLOY = ["deploy", P, "hello", "--file", "handler.ts"]
BAD_INPUT = [
    # positionals
    (["deploy"], "BAD_USAGE"),
    (["deploy", P], "BAD_USAGE"),
    (["deploy", P, "Hello", "--file", "handler.ts"], "BAD_USAGE"),
    (["deploy", P, "_x", "--file", "handler.ts"], "BAD_USAGE"),
    (["deploy", P, "a" * 129, "--file", "handler.ts"], "BAD_USAGE"),
    (["deploy", P, "a.b", "--file", "handler.ts"], "BAD_USAGE"),
    (["deploy", P, "hello\n", "--file", "handler.ts"], "BAD_USAGE"),
    (["deploy", "abc", "hello", "--file", "handler.ts"], "BAD_PROJECT_ID"),
    (["deploy", "prj_9_9", "hello", "--file", "handler.ts"], "PROJECT_NOT_FOUND"),
    (["deploy", P, "hello", "extra", "--file", "handler.ts"], "BAD_USAGE"),
    (["deploy", P, "hello", "--bogus"], "UNKNOWN_FLAG"),
    # --file
    (["deploy", P, "hello"], "BAD_USAGE"),
    (["deploy", P, "hello", "--file"], "BAD_FLAG"),
    (["deploy", P, "hello", "--file", "--timeout", "5"], "BAD_FLAG"),
    (["deploy", P, "hello", "--file", ""], "BAD_USAGE"),
    (["deploy", P, "hello", "--file", "missing.ts"], "FILE_NOT_FOUND"),
    (["deploy", P, "hello", "--file", "dir.ts"], "NOT_A_FILE"),
    (["deploy", P, "hello", "--file", "notes.txt"], "BAD_FLAG"),
    (["deploy", P, "hello", "--file", "blank.js"], "BAD_FLAG"),
    (["deploy", P, "hello", "--file", "latin1.js"], "BAD_FLAG"),
    # integers
    *((DEPLOY + [flag, value], "BAD_FLAG") for flag in ("--timeout", "--memory")
      for value in ("0", "-1", "1.5", "abc", "", "1e3", str(2**53), "٣")),
    (DEPLOY + ["--timeout"], "BAD_FLAG"),
    # --deps
    (DEPLOY + ["--deps", "lodash,,dayjs"], "BAD_USAGE"),
    (DEPLOY + ["--deps", "lodash,"], "BAD_USAGE"),
    (DEPLOY + ["--deps", " "], "BAD_USAGE"),
    (DEPLOY + ["--deps", "sharp"], "BAD_USAGE"),
    (DEPLOY + ["--deps", "lodash,canvas@2"], "BAD_USAGE"),
    (DEPLOY + ["--deps", "bcrypt@^5"], "BAD_USAGE"),
    (DEPLOY + ["--deps", "@run402/functions"], "BAD_USAGE"),
    (DEPLOY + ["--deps", "@run402/functions@1.48.0"], "BAD_USAGE"),
    (DEPLOY + ["--deps", "run402-functions@1"], "BAD_USAGE"),
    (DEPLOY + ["--deps", "img@npm:sharp@0.33"], "BAD_USAGE"),
    (DEPLOY + ["--deps", "a" * 201], "BAD_USAGE"),
    (DEPLOY + ["--deps", ",".join(f"p{i}" for i in range(31))], "BAD_USAGE"),
    (DEPLOY + ["--deps", "lo dash"], "BAD_USAGE"),
    # --schedule
    *((DEPLOY + ["--schedule", expr], "BAD_USAGE") for expr in (
        "* * * *", "61 * * * *", "@daily", "*/0 * * * *", "0 0 31 2 *", " ", "* * * * MONDAY")),
    # invoke
    (["invoke", P], "BAD_USAGE"),
    (["invoke", P, "Bad"], "BAD_USAGE"),
    (["invoke", "abc", "hello"], "BAD_PROJECT_ID"),
    (["invoke", P, "hello", "--method", "TRACE"], "BAD_FLAG"),
    (["invoke", P, "hello", "--method", "GE T"], "BAD_FLAG"),
    (["invoke", P, "hello", "--body"], "BAD_FLAG"),
    (["invoke", P, "hello", "--headers", "x"], "UNKNOWN_FLAG"),
    # logs
    (["logs", P], "BAD_USAGE"),
    (["logs", P, "hello", "--tail", "0"], "BAD_FLAG"),
    (["logs", P, "hello", "--tail", "1001"], "BAD_FLAG"),
    (["logs", P, "hello", "--tail", "ten"], "BAD_FLAG"),
    (["logs", P, "hello", "--since", "yesterday"], "BAD_USAGE"),
    (["logs", P, "hello", "--since", "-5"], "BAD_USAGE"),
    (["logs", P, "hello", "--since", "1969-12-31T00:00:00Z"], "BAD_USAGE"),
    (["logs", P, "hello", "--since", "99999999999999999"], "BAD_USAGE"),
    (["logs", P, "hello", "--request-id", "abc"], "BAD_USAGE"),
    (["logs", P, "hello", "--request-id", "req_ab"], "BAD_USAGE"),
    (["logs", P, "hello", "--request-id", "req_abc$"], "BAD_USAGE"),
    (["logs", P, "hello", "--request-id", "req_" + "a" * 129], "BAD_USAGE"),
    (["logs", P, "hello", "--follow", "yes"], "BAD_USAGE"),
    # update
    (["update", P, "hello"], "BAD_USAGE"),
    (["update", P], "BAD_USAGE"),
    (["update", P, "hello", "--schedule", "0 * * * *", "--schedule-remove"], "BAD_USAGE"),
    (["update", P, "hello", "--schedule", "", "--schedule-remove"], "BAD_USAGE"),
    (["update", P, "hello", "--schedule", "bad"], "BAD_USAGE"),
    (["update", P, "hello", "--timeout", "0"], "BAD_FLAG"),
    (["update", P, "hello", "--memory", "x"], "BAD_FLAG"),
    (["update", P, "hello", "--deps", "lodash"], "UNKNOWN_FLAG"),
    (["update", "prj_9_9", "hello", "--timeout", "5"], "PROJECT_NOT_FOUND"),
    # list, delete
    (["list"], "BAD_USAGE"),
    (["list", P, "extra"], "BAD_USAGE"),
    (["list", "abc"], "BAD_PROJECT_ID"),
    (["list", "prj_9_9"], "PROJECT_NOT_FOUND"),
    (["list", P, "--all"], "UNKNOWN_FLAG"),
    (["delete", P], "BAD_USAGE"),
    (["delete", P, "UPPER"], "BAD_USAGE"),
    (["delete", P, "hello", "extra"], "BAD_USAGE"),
    (["delete", P, "hello", "--yes"], "UNKNOWN_FLAG"),
    (["nope"], "BAD_USAGE"),
]


@pytest.mark.parametrize("args,code", BAD_INPUT, ids=[" ".join(a)[:60] for a, _ in BAD_INPUT])
def test_bad_input(cli, offline, args, code):
    before = files(offline)
    env = usage_error(cli("functions", *args), code)
    assert files(offline) == before
    assert env["retryable"] is False and env["next_actions"] == [] and env["trace_id"] is None


def test_refusals_say_what_is_wrong(cli, offline):
    env = usage_error(cli("functions", *DEPLOY, "--deps", "@scope/x@^1,sharp@0.33"), "BAD_USAGE")
    assert "sharp" in env["message"] and env["details"] == {"flag": "--deps", "value": "@scope/x@^1,sharp@0.33",
                                                           "index": 1}
    env = usage_error(cli("functions", *DEPLOY, "--schedule", "0 25 * * *"), "BAD_USAGE")
    assert "hour field" in env["message"] and env["details"]["cron_field"] == "hour"
    assert env["details"]["flag"] == "--schedule" and "hint" in env
    env = usage_error(cli("functions", "deploy", P, "Hello", "--file", "handler.ts"), "BAD_USAGE")
    assert env["details"]["name"] == "Hello" and env["details"]["pattern"].startswith("^[a-z0-9]")
    env = usage_error(cli("functions", *DEPLOY[:3], "--file", "notes.txt"), "BAD_FLAG")
    assert env["field"] == "--file" and env["details"]["allowed"] == [".js", ".mjs", ".ts"] and env["hint"]
    env = usage_error(cli("functions", "logs", P, "hello", "--request-id", "job_1234"), "BAD_USAGE")
    assert env["details"]["flag"] == "--request-id" and env["details"]["value"] == "job_1234"
    env = usage_error(cli("functions", "logs", P, "hello", "--tail", "5000"), "BAD_FLAG")
    assert env["details"] == {"flag": "--tail", "value": 5000, "max": 1000}
    env = usage_error(cli("functions", "update", P, "hello", "--schedule", "* * * * *", "--schedule-remove"),
                      "BAD_USAGE")
    assert env["details"] == {"flags": ["--schedule", "--schedule-remove"]}
    env = usage_error(cli("functions", "deploy", "prj_9_9", "hello", "--file", "handler.ts"), "PROJECT_NOT_FOUND")
    assert env["details"] == {"project_id": "prj_9_9", "source": "local_registry"}


def test_help_touches_nothing(cli, offline):
    for sub in ("", "deploy", "invoke", "logs", "update", "list", "delete"):
        res = cli("functions", *([sub] if sub else []), "--help")
        assert res.code == 0 and res.stderr == "" and "run402 functions" in res.stdout


# --- parse only -----------------------------------------------------------------------------


def test_parse(cli, offline, monkeypatch):
    deploys = record(monkeypatch, deploy_cmd, "run_deploy")
    invokes = record(monkeypatch, calls_cmd, "run_invoke")
    logs = record(monkeypatch, calls_cmd, "run_logs")
    updates = record(monkeypatch, manage_cmd, "run_update")
    assert cli("functions", *DEPLOY).code == 0
    assert cli("functions", "deploy", P, "a-b_1", "--file=handler.mjs", "--timeout", "05", "--memory", "256",
               "--deps", " lodash , @scope/pkg@^1 ,dayjs@1.11.0", "--schedule", "*/15 * * * *").code == 0
    assert cli("functions", *DEPLOY, "--schedule", "", "--deps", "").code == 0
    assert cli("functions", "invoke", P, "hello").code == 0
    assert cli("functions", "invoke", P, "hello", "--method", "get", "--body", "x").code == 0
    assert cli("functions", "invoke", P, "hello", "--method", "PURGE", "--body", "").code == 0
    assert cli("functions", "logs", P, "hello").code == 0
    assert cli("functions", "logs", P, "hello", "--tail", "1000", "--since", "2026-03-29T14:00:00Z",
               "--request-id", "req_abc-DEF_123", "--follow").code == 0
    assert cli("functions", "logs", P, "hello", "--since", "1774792800000").code == 0
    assert cli("functions", "logs", P, "hello", "--since", "2026-03-29").code == 0
    assert cli("functions", "logs", P, "hello", "--since", "2026-03-29T16:00:00+02:00").code == 0
    assert cli("functions", "update", P, "hello", "--schedule-remove").code == 0
    assert cli("functions", "update", P, "hello", "--schedule", "").code == 0
    assert cli("functions", "update", P, "hello", "--schedule", "0 */4 * * *", "--timeout", "15").code == 0
    assert cli("functions", "update", P, "hello", "--memory", "256").code == 0

    handler = str(offline.parent / "handler.ts")
    assert [(d.name, d.timeout, d.memory, d.deps, d.schedule, d.path) for d in deploys] == [
        ("hello", None, None, None, None, handler),
        ("a-b_1", 5, 256, ("lodash", "@scope/pkg@^1", "dayjs@1.11.0"), "*/15 * * * *",
         str(offline.parent / "handler.mjs")),
        ("hello", None, None, None, "", handler),
    ]
    assert deploys[0].code == HANDLER and deploys[0].body() == {"name": "hello", "code": HANDLER}
    assert deploys[1].body() == {"name": "a-b_1", "code": HANDLER, "config": {"timeout": 5, "memory": 256},
                                 "deps": ["lodash", "@scope/pkg@^1", "dayjs@1.11.0"], "schedule": "*/15 * * * *"}
    assert deploys[2].body() == {"name": "hello", "code": HANDLER, "schedule": None}
    assert invokes == [calls_cmd.InvokeOptions(P, "hello", "POST", None),
                       calls_cmd.InvokeOptions(P, "hello", "GET", "x"),
                       calls_cmd.InvokeOptions(P, "hello", "PURGE", None)]
    assert logs == [calls_cmd.LogsOptions(P, "hello", 50, None, None, False),
                    calls_cmd.LogsOptions(P, "hello", 1000, 1774792800000, "req_abc-DEF_123", True),
                    calls_cmd.LogsOptions(P, "hello", 50, 1774792800000, None, False),
                    calls_cmd.LogsOptions(P, "hello", 50, 1774742400000, None, False),
                    calls_cmd.LogsOptions(P, "hello", 50, 1774792800000, None, False)]
    assert [u.body() for u in updates] == [
        {"schedule": None}, {"schedule": None}, {"schedule": "0 */4 * * *", "config": {"timeout": 15}},
        {"config": {"memory": 256}}]


# --- the wire, against a recording stand-in of the hosted API ------------------------------


class StandIn:
    def __init__(self, server: RecordingServer) -> None:
        self.server = server

    def answer(self, method: str, path: str, reply: Any) -> None:
        self.server.routes[(method, path)] = reply

    def sent(self) -> list[Recorded]:
        return self.server.take()


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, isolated_config: Path) -> Iterator[StandIn]:
    seed_projects([P, "prj_1_2"], active="prj_1_2")
    routes = {
        ("POST", ADMIN): Reply(201, DEPLOYED),
        ("GET", ADMIN): Reply(200, {"functions": []}),
        ("PATCH", f"{ADMIN}/hello"): Reply(200, {"name": "hello", "schedule": None, "timeout": 10}),
        ("DELETE", f"{ADMIN}/hello"): Reply(200, {"status": "deleted", "name": "hello"}),
        ("GET", f"{ADMIN}/hello/logs"): Reply(200, {"logs": []}),
        ("GET", "/tiers/v1/status"): Reply(200, PROTOTYPE),
    }
    with RecordingServer(routes, default=Reply(404, {"error": "not routed"})) as server:
        monkeypatch.setenv("RUN402_API_BASE", server.url)
        yield StandIn(server)


def wire(req: Recorded) -> tuple[str, str, str, dict[str, str], bytes]:
    """What a request carries: method, path, query, credentials and body type, bytes."""
    keep = {k: v for k, v in req.headers.items() if k in ("authorization", "apikey", "content-type")}
    return req.method, req.path, req.query, keep, req.body


BEARER = {"authorization": f"Bearer {KEY}"}
JSON = {**BEARER, "content-type": "application/json"}


def test_deploy_sends_the_code_as_text(cli, api, code):
    out = ok(cli("functions", "deploy", P, "hello", "--file", str(code)))
    assert out == DEPLOYED
    [req] = api.sent()
    assert wire(req)[:4] == ("POST", ADMIN, "", JSON)
    assert req.json == {"name": "hello", "code": HANDLER}
    assert "sign-in-with-x" not in req.headers  # the service key is the credential


def test_deploy_with_every_option(cli, api, code):
    seed_allowance()  # with a wallet: the tier status is read signed, the lifecycle call still is not
    api.answer("GET", "/tiers/v1/status", Reply(200, {**PROTOTYPE, "tier": "team"}))
    api.answer("POST", ADMIN, Reply(201, {**DEPLOYED, "warnings": ["bundle is 11 MB"]}))
    res = cli("functions", "deploy", P, "hello", "--file", str(code), "--timeout", "30", "--memory", "512",
              "--deps", "lodash,@scope/pkg@^1", "--schedule", "*/5 * * * *")
    assert ok(res)["warnings"] == ["bundle is 11 MB"]
    status, listing, deploy = api.sent()
    assert (status.method, status.path) == ("GET", "/tiers/v1/status") and "sign-in-with-x" in status.headers
    assert wire(listing)[:4] == ("GET", ADMIN, "", BEARER)
    assert wire(deploy)[:4] == ("POST", ADMIN, "", JSON) and "sign-in-with-x" not in deploy.headers
    assert deploy.json == {"name": "hello", "code": HANDLER, "config": {"timeout": 30, "memory": 512},
                           "deps": ["lodash", "@scope/pkg@^1"], "schedule": "*/5 * * * *"}


def test_deploy_schedule_empty_sends_null_without_preflight(cli, api, code):
    ok(cli("functions", "deploy", P, "hello", "--file", str(code), "--schedule", ""))
    [req] = api.sent()
    assert req.json == {"name": "hello", "code": HANDLER, "schedule": None}


def test_deploy_error_is_one_json_line(cli, api, code):
    api.answer("POST", ADMIN, Reply(400, {"error": "bundle failed", "code": "FUNCTION_BUILD_FAILED"}))
    env = usage_error(cli("functions", "deploy", P, "hello", "--file", str(code)), "FUNCTION_BUILD_FAILED")
    assert env["http"] == 400 and env["message"] == "bundle failed"
    api.answer("POST", ADMIN, Reply(402, {"error": "lease expired"}))
    env = usage_error(cli("functions", "deploy", P, "hello", "--file", str(code)), "PAYMENT_REQUIRED")
    assert env["http"] == 402


@pytest.mark.parametrize("answer, printed", [
    (Reply(200, {"ok": True, "n": [1, 2]}), json.dumps({"ok": True, "n": [1, 2]}, indent=2) + "\n"),
    (Reply(200, "plain text"), "plain text\n"),
    (Reply(200, b"", {"Content-Type": "application/json"}), "\n"),
    (Reply(204, b""), "\n"),
    (Reply(200, "été", {"Content-Type": "text/html"}), "été\n"),
])
def test_invoke_prints_json_or_text(cli, api, answer, printed):
    api.answer("POST", "/functions/v1/hello", answer)
    res = cli("functions", "invoke", P, "hello", "--body", '{"event":"test"}')
    assert res.code == 0 and res.stderr == "" and res.stdout == printed
    [req] = api.sent()
    assert wire(req) == ("POST", "/functions/v1/hello", "",
                         {"apikey": KEY, "content-type": "text/plain;charset=UTF-8"}, b'{"event":"test"}')
    assert "authorization" not in req.headers and "sign-in-with-x" not in req.headers


def test_invoke_methods_and_bodies(cli, api):
    for method in ("GET", "HEAD", "PUT", "DELETE"):
        api.answer(method, "/functions/v1/hello", Reply(200, {"m": method}))
    ok(cli("functions", "invoke", P, "hello", "--method", "get", "--body", "ignored"))
    assert cli("functions", "invoke", P, "hello", "--method", "HEAD").code == 0
    ok(cli("functions", "invoke", P, "hello", "--method", "PUT", "--body", "raw bytes, not JSON"))
    ok(cli("functions", "invoke", P, "hello", "--method", "DELETE"))
    get, head, put, delete = api.sent()
    assert wire(get) == ("GET", "/functions/v1/hello", "", {"apikey": KEY}, b"")
    assert wire(head)[:2] == ("HEAD", "/functions/v1/hello") and head.body == b""
    assert wire(put)[4] == b"raw bytes, not JSON" and put.headers["content-type"] == "text/plain;charset=UTF-8"
    assert wire(delete) == ("DELETE", "/functions/v1/hello", "", {"apikey": KEY}, b"")


def test_invoke_error_status(cli, api):
    api.answer("POST", "/functions/v1/hello", Reply(500, {"error": "boom", "request_id": "req_abcd1234"}))
    env = usage_error(cli("functions", "invoke", P, "hello"), "API_ERROR")
    assert env["http"] == 500 and env["request_id"] == "req_abcd1234" and "boom" in env["message"]
    api.answer("POST", "/functions/v1/hello", Reply(502, "<html>bad gateway</html>"))
    env = usage_error(cli("functions", "invoke", P, "hello"), "API_ERROR")
    assert env["body_preview"] == "<html>bad gateway</html>"


def test_logs(cli, api):
    entries = [{"timestamp": "2026-03-29T14:00:01.000Z", "message": "hi", "event_id": "e1"}]
    api.answer("GET", f"{ADMIN}/hello/logs", Reply(200, {"logs": entries}))
    assert ok(cli("functions", "logs", P, "hello")) == {"logs": entries}
    ok(cli("functions", "logs", P, "hello", "--tail", "7", "--since", "2026-03-29T14:00:00Z",
           "--request-id", "req_abcd"))
    api.answer("GET", f"{ADMIN}/hello/logs", Reply(200, {}))
    assert ok(cli("functions", "logs", P, "hello")) == {"logs": []}
    first, second, third = api.sent()
    assert wire(first) == ("GET", f"{ADMIN}/hello/logs", "tail=50", BEARER, b"")
    assert wire(second)[2] == "tail=7&since=1774792800000&request_id=req_abcd"
    assert third.query == "tail=50"


def test_logs_follow_prints_new_lines_until_ctrl_c(cli, api, monkeypatch):
    t1, t2, t3 = "2026-03-29T14:00:01.000Z", "2026-03-29T14:00:02.000Z", "2026-03-29T14:00:03.000Z"
    pages = [
        [{"timestamp": t1, "message": "one"}, {"timestamp": t2, "message": "two", "event_id": "e2"}],
        [{"timestamp": t2, "message": "two", "event_id": "e2"}, {"timestamp": t2, "message": "two-b"}],
        [{"timestamp": t1, "message": "late and old"}, {"timestamp": t2, "message": "two-b"},
         {"timestamp": t3, "message": "three"}],
        [],
    ]
    api.answer("GET", f"{ADMIN}/hello/logs", lambda req: Reply(200, {"logs": pages.pop(0)}))
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if not pages:
            raise KeyboardInterrupt

    monkeypatch.setattr(calls_cmd, "_pause", pause)
    res = cli("functions", "logs", P, "hello", "--follow", "--tail", "20")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout.splitlines() == [f"[{t1}] one", f"[{t2}] two", f"[{t2}] two-b", f"[{t3}] three"]
    assert pauses == [3.0] * 4
    queries = [r.query for r in api.sent()]
    assert queries == ["tail=20", "tail=20&since=1774792802000", "tail=20&since=1774792802000",
                       "tail=20&since=1774792803000"]


def test_logs_follow_fails_on_an_error_status(cli, api, monkeypatch):
    api.answer("GET", f"{ADMIN}/hello/logs", Reply(404, {"error": "Function not found"}))
    monkeypatch.setattr(calls_cmd, "_pause", lambda s: None)
    env = usage_error(cli("functions", "logs", P, "hello", "--follow"), "API_ERROR")
    assert env["http"] == 404


def test_log_cursor_dedup():
    cursor = calls_cmd.LogCursor(high_ms=1000)
    assert cursor.fresh([{"timestamp": 999, "message": "old"}, {"timestamp": 1000, "message": "edge"}]) == [
        {"timestamp": 1000, "message": "edge"}]
    assert cursor.fresh([{"timestamp": 1000, "message": "edge"}]) == []
    same_time = [{"timestamp": 1000, "message": "edge", "log_stream_name": "s2"}]
    assert cursor.fresh(same_time) == same_time  # another stream: another entry
    assert cursor.fresh([{"timestamp": 1000, "message": "edge"}]) == []  # still remembered
    assert cursor.fresh([{"timestamp": "garbage", "message": "x"}, "not an entry"]) == []


def test_update(cli, api):
    out = ok(cli("functions", "update", P, "hello", "--schedule-remove"))
    assert out == {"name": "hello", "schedule": None, "timeout": 10}
    ok(cli("functions", "update", P, "hello", "--schedule", "0 */4 * * *", "--timeout", "5", "--memory", "64"))
    remove, status, listing, change = api.sent()
    assert wire(remove) == ("PATCH", f"{ADMIN}/hello", "", JSON, b'{"schedule":null}')
    assert status.path == "/tiers/v1/status" and listing.path == ADMIN
    assert change.json == {"schedule": "0 */4 * * *", "config": {"timeout": 5, "memory": 64}}


def test_list_and_delete(cli, api):
    listed = {"functions": [{"name": "hello", "schedule": "0 * * * *", "schedule_meta": {"run_count": 3}}]}
    api.answer("GET", ADMIN, Reply(200, listed))
    assert ok(cli("functions", "list", P)) == listed
    res = cli("functions", "delete", P, "hello")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == '{"status":"ok","message":"Function \'hello\' deleted."}\n'
    lst, delete = api.sent()
    assert wire(lst) == ("GET", ADMIN, "", BEARER, b"")
    assert wire(delete) == ("DELETE", f"{ADMIN}/hello", "", BEARER, b"")
    api.answer("DELETE", f"{ADMIN}/hello", Reply(404, {"error": "Function not found"}))
    env = usage_error(cli("functions", "delete", P, "hello"), "API_ERROR")
    assert env["http"] == 404 and env["error"] == "Function not found"


# --- the tier preflight ---------------------------------------------------------------------


def _refusal(res: Any, resource: str) -> dict[str, Any]:
    env = usage_error(res, "BAD_FIELD")
    assert env["phase"] == "validate" and env["resource"] == resource and env["category"] == "deploy"
    assert env["details"]["field"] == resource and env["hint"]
    assert env["retryable"] is False and env["next_actions"] == [] and env["trace_id"] is None
    return env


def _no_deploy(api: StandIn) -> list[str]:
    sent = [f"{r.method} {r.path}" for r in api.sent()]
    assert f"POST {ADMIN}" not in sent and not any(s.startswith("PATCH") for s in sent)
    return sent


FALLBACK_CASES = [
    (["--timeout", "11"], "functions.hello.config.timeoutSeconds",
     {"value": 11, "tier_max": 10, "max_function_timeout_seconds": 10}),
    (["--memory", "129"], "functions.hello.config.memoryMb",
     {"value": 129, "tier_max": 128, "max_function_memory_mb": 128}),
    (["--schedule", "*/5 * * * *"], "functions.hello.schedule",
     {"value": "*/5 * * * *", "tier_max": 15, "interval_minutes": 5, "min_interval_minutes": 15,
      "min_cron_interval_minutes": 15}),
    (["--schedule", "0,10 9 * * *"], "functions.hello.schedule",
     {"value": "0,10 9 * * *", "tier_max": 15, "interval_minutes": 10, "min_interval_minutes": 15,
      "min_cron_interval_minutes": 15}),
]


@pytest.mark.parametrize("flags, resource, extra", FALLBACK_CASES, ids=[c[1] + " " + c[0][1] for c in FALLBACK_CASES])
@pytest.mark.parametrize("verb", ["deploy", "update"])
def test_preflight_static_fallback(cli, api, code, verb, flags, resource, extra):
    head = ["deploy", P, "hello", "--file", str(code)] if verb == "deploy" else ["update", P, "hello"]
    env = _refusal(cli("functions", *head, *flags), resource)
    assert env["details"] == {"field": resource, "tier": "prototype", "limit_source": "local_static_fallback",
                              **extra}
    assert _no_deploy(api)[0] == "GET /tiers/v1/status"


def test_preflight_within_limits_deploys(cli, api, code):
    ok(cli("functions", "deploy", P, "hello", "--file", str(code), "--timeout", "10", "--memory", "128",
           "--schedule", "*/15 * * * *"))
    assert [f"{r.method} {r.path}" for r in api.sent()] == ["GET /tiers/v1/status", f"GET {ADMIN}", f"POST {ADMIN}"]


@pytest.mark.parametrize("status", [
    {**PROTOTYPE, "function_limits": {"max_function_timeout_seconds": 20}},
    {**PROTOTYPE, "limits": {"functions": {"max_timeout_seconds": 20}}},
    {**PROTOTYPE, "limits": {"function_limits": {"timeout_seconds_max": 20}}},
    {**PROTOTYPE, "pool_usage": {"function_timeout_seconds_max": 20}},
    {**PROTOTYPE, "max_function_timeout_seconds": 20},
    {**PROTOTYPE, "function_limits": {"max_function_timeout_seconds": "99", "max_timeout_seconds": 20}},
], ids=["function_limits", "limits.functions", "limits.function_limits", "pool_usage", "top level", "skips strings"])
def test_preflight_reads_the_tier_status_under_every_alias(cli, api, code, status):
    api.answer("GET", "/tiers/v1/status", Reply(200, status))
    ok(cli("functions", "deploy", P, "hello", "--file", str(code), "--timeout", "20"))  # 20 > 10 of the table
    api.sent()
    env = _refusal(cli("functions", "deploy", P, "hello", "--file", str(code), "--timeout", "21"),
                   "functions.hello.config.timeoutSeconds")
    assert env["details"]["limit_source"] == "tier_status" and env["details"]["tier_max"] == 20
    assert "Lower the setting" in env["hint"]


def test_preflight_scheduled_count(cli, api, code):
    api.answer("GET", ADMIN, Reply(200, {"functions": [{"name": "nightly", "schedule": "0 3 * * *"},
                                                       {"name": "plain", "schedule": None}]}))
    env = _refusal(cli("functions", "deploy", P, "hello", "--file", str(code), "--schedule", "0 * * * *"),
                   "functions.scheduled_count")
    assert env["details"] == {"field": "functions.scheduled_count", "value": 2, "tier": "prototype",
                              "limit_source": "local_static_fallback", "tier_max": 1,
                              "max_scheduled_functions": 1, "count_source": "functions_list"}
    assert _no_deploy(api) == ["GET /tiers/v1/status", f"GET {ADMIN}"]
    # re-scheduling the function that already holds the one slot is fine
    api.answer("PATCH", f"{ADMIN}/nightly", Reply(200, {"name": "nightly"}))
    ok(cli("functions", "update", P, "nightly", "--schedule", "0 4 * * *"))
    # a tier with room: from the status
    api.answer("GET", "/tiers/v1/status", Reply(200, {**PROTOTYPE, "function_limits": {"max_scheduled_functions": 2}}))
    ok(cli("functions", "deploy", P, "hello", "--file", str(code), "--schedule", "0 * * * *"))


@pytest.mark.parametrize("reply", [Reply(500, {"error": "down"}), Reply(401, {"error": "no wallet"}),
                                   Reply(200, {"tier": None, "active": False}), Reply(200, "not json"),
                                   Reply(200, {"tier": "enterprise"})],
                         ids=["500", "401", "no tier", "text", "unknown tier"])
def test_preflight_is_skipped_when_the_tier_status_says_nothing(cli, api, code, reply):
    api.answer("GET", "/tiers/v1/status", reply)
    ok(cli("functions", "deploy", P, "hello", "--file", str(code), "--timeout", "900", "--schedule", "* * * * *"))
    sent = [f"{r.method} {r.path}" for r in api.sent()]
    assert sent[0] == "GET /tiers/v1/status" and sent[-1] == f"POST {ADMIN}"


def test_preflight_list_failure_skips_only_the_count(cli, api, code):
    api.answer("GET", ADMIN, Reply(503, {"error": "later"}))
    ok(cli("functions", "deploy", P, "hello", "--file", str(code), "--schedule", "0 * * * *"))
    env = _refusal(cli("functions", "deploy", P, "hello", "--file", str(code), "--schedule", "* * * * *"),
                   "functions.hello.schedule")
    assert env["details"]["interval_minutes"] == 1


def test_preflight_without_limited_options_reads_nothing(cli, api, code):
    ok(cli("functions", "deploy", P, "hello", "--file", str(code), "--deps", "lodash"))
    ok(cli("functions", "update", P, "hello", "--schedule-remove"))
    assert [f"{r.method} {r.path}" for r in api.sent()] == [f"POST {ADMIN}", f"PATCH {ADMIN}/hello"]


# --- deploy apply runs the same preflight, before anything is planned ------------------------


def _apply(cli: Any, functions: dict[str, Any]) -> Any:
    return cli("deploy", "apply", "--project", P, "--quiet", "--spec", json.dumps({"functions": functions}))


def _fn(**kw: Any) -> dict[str, Any]:
    return {"source": {"data": "export default async () => new Response('x')"}, **kw}


APPLY_CASES = [
    ({"replace": {"api": _fn(config={"timeoutSeconds": 11})}}, "functions.api.config.timeoutSeconds",
     {"value": 11, "tier_max": 10, "max_function_timeout_seconds": 10}),
    ({"patch": {"set": {"api": _fn(config={"memoryMb": 512})}}}, "functions.api.config.memoryMb",
     {"value": 512, "tier_max": 128, "max_function_memory_mb": 128}),
    ({"replace": {"api": _fn(schedule="* * * * *")}}, "functions.api.schedule",
     {"value": "* * * * *", "tier_max": 15, "interval_minutes": 1, "min_interval_minutes": 15,
      "min_cron_interval_minutes": 15}),
    ({"replace": {"a": _fn(schedule="0 * * * *"), "b": _fn(schedule="0 1 * * *")}}, "functions.scheduled_count",
     {"value": 2, "tier_max": 1, "max_scheduled_functions": 1, "count_source": "manifest"}),
]


@pytest.mark.parametrize("functions, resource, extra", APPLY_CASES, ids=[c[1] for c in APPLY_CASES])
def test_apply_preflight(cli, api, functions, resource, extra):
    seed_allowance()
    env = _refusal(_apply(cli, functions), resource)
    assert env["details"] == {"field": resource, "tier": "prototype", "limit_source": "local_static_fallback",
                              **extra}
    assert [f"{r.method} {r.path}" for r in api.sent()] == ["GET /tiers/v1/status"]


def test_apply_patch_counts_the_active_release(cli, api):
    seed_allowance()
    api.answer("GET", "/apply/v1/releases/active", Reply(200, {"release_id": "rel_1", "functions": [
        {"name": "nightly", "schedule": "0 3 * * *"}, {"name": "gone", "schedule": "0 4 * * *"}]}))
    api.answer("POST", "/apply/v1/plans", Reply(400, {"code": "stop_here", "message": "planned"}))
    env = _refusal(_apply(cli, {"patch": {"set": {"api": _fn(schedule="0 5 * * *")}, "delete": ["gone"]}}),
                   "functions.scheduled_count")
    assert env["details"]["value"] == 2 and env["details"]["count_source"] == "active_release_inventory"
    status, active = api.sent()
    assert active.path == "/apply/v1/releases/active" and active.query == "site_limit=1"
    assert active.headers["apikey"] == f"anon-{P}"
    # removing a schedule in the same patch makes room: the deploy goes on to plan
    env = usage_error(_apply(cli, {"patch": {"set": {"api": _fn(schedule="0 5 * * *"),
                                                     "nightly": _fn(schedule=None)}, "delete": ["gone"]}}),
                      "STOP_HERE")
    assert [r.path for r in api.sent()][-1] == "/apply/v1/plans"


def test_apply_without_function_limits_reads_no_tier_status(cli, api):
    seed_allowance()
    api.answer("POST", "/apply/v1/plans", Reply(400, {"code": "stop_here", "message": "planned"}))
    usage_error(_apply(cli, {"replace": {"api": _fn(schedule=None)}}), "STOP_HERE")
    assert [r.path for r in api.sent()] == ["/apply/v1/plans"]
