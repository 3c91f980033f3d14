"""The differential table, part 3: `functions deploy|invoke|logs|update|list|delete`, and the
tier preflight both CLIs run on `deploy apply`. The stand-in's function answers are declared
here (`FN_ROUTES`, passed as each row's `routes`), on top of differential_world's."""

from __future__ import annotations

import json
from typing import Any

from tests.interop.differential_table import Case, Expect, bad, differs, good
from tests.interop.differential_world import PROJECT
from tests.interop.recording_server import Reply

__all__ = ["FUNCTIONS"]

P = PROJECT
FNS = f"/projects/v1/admin/{P}/functions"
DEPLOYED = {"name": "hello", "url": "https://api.run402.com/functions/v1/hello", "status": "deployed",
            "runtime": "node22", "timeout": 10, "memory": 128, "schedule": None,
            "created_at": "2030-01-01T00:00:00.000Z", "runtime_version": "1.48.0", "deps_resolved": {}}
LOGS = {"logs": [{"timestamp": "2029-12-31T00:00:01.000Z", "message": "hello", "event_id": "e1",
                  "log_stream_name": "s1"}]}
FN_ROUTES: dict[tuple[str, str], Any] = {
    ("POST", FNS): Reply(201, DEPLOYED),
    ("GET", FNS): Reply(200, {"functions": [{**DEPLOYED, "updated_at": "2030-01-01T00:00:00.000Z"}]}),
    ("PATCH", f"{FNS}/*"): Reply(200, {"name": "hello", "runtime": "node22", "timeout": 10, "memory": 64,
                                       "schedule": None, "schedule_meta": None,
                                       "updated_at": "2030-01-01T00:00:00.000Z"}),
    ("DELETE", f"{FNS}/*"): Reply(200, {"status": "deleted", "name": "hello"}),
    ("GET", f"{FNS}/*/logs"): Reply(200, LOGS),
    ("*", "/functions/v1/*"): Reply(200, {"ok": True}),
}
FILES = ("function",)
STOP = Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty")  # refused here, no request


def fn_good(*argv: str, sends: tuple[str, ...], out: str = "object", **kw: Any) -> Case:
    kw.setdefault("routes", FN_ROUTES)
    return good("functions", *argv, sends=sends, out=out, files=FILES, **kw)


def fn_bad(code: str, *argv: str, **kw: Any) -> Case:
    kw.setdefault("routes", FN_ROUTES)
    return bad(code, "functions", *argv, files=FILES, **kw)


def fn_differs(reason: str, want: Expect, *argv: str, **kw: Any) -> Case:
    kw.setdefault("routes", FN_ROUTES)
    return differs(reason, want, "functions", *argv, files=FILES, **kw)


DEPLOY = ("deploy", P, "hello", "--file", "handler.ts")
POST = (f"POST {FNS}",)
FN_SOURCE = {"data": "export default async () => new Response('x')"}


def apply_spec(functions: dict[str, Any]) -> str:
    return json.dumps({"functions": functions})


def refused_field(*argv: str, **kw: Any) -> Case:
    """A spec both CLIs refuse in their tier preflight: BAD_FIELD after reading the tier status."""
    return bad("BAD_FIELD", *argv, sends=("GET /tiers/v1/status",), **kw)


FUNCTIONS = [
    # deploy
    fn_good(*DEPLOY, sends=POST),
    fn_good(*DEPLOY, "--deps", " lodash , @scope/pkg@^1,dayjs@1.11.0", label="deps", sends=POST),
    fn_good(*DEPLOY, "--schedule", "", label="schedule cleared", sends=POST),
    fn_good(*DEPLOY, "--deps", "", label="deps empty", sends=POST, note="'' is no --deps at all, on both"),
    fn_good("deploy", P, "hello", "--file=handler.mjs", label="--file=", sends=POST),
    fn_bad("BAD_USAGE", "deploy", P, "hello"),
    fn_bad("BAD_USAGE", "deploy", P),
    fn_bad("BAD_USAGE", "deploy"),
    fn_bad("BAD_FLAG", "deploy", P, "hello", "--file"),
    fn_bad("FILE_NOT_FOUND", "deploy", P, "hello", "--file", "missing.ts"),
    fn_bad("UNKNOWN_FLAG", *DEPLOY, "--bogus"),
    fn_bad("BAD_FLAG", *DEPLOY, "--timeout", "0"),
    fn_bad("BAD_FLAG", *DEPLOY, "--memory", "1.5"),
    fn_bad("BAD_FLAG", *DEPLOY, "--timeout"),
    fn_bad("BAD_USAGE", *DEPLOY, "--deps", "lodash,,dayjs"),
    fn_bad("PROJECT_NOT_FOUND", "deploy", "prj_9_9", "hello", "--file", "handler.ts"),
    fn_differs("bad-id", Expect(exit=1, error="BAD_PROJECT_ID", sends=(), stdout="empty"),
               "deploy", "hello", "world", "--file", "handler.ts", label="args swapped"),
    fn_differs("local-codes", STOP, "deploy", P, "Hello", "--file", "handler.ts"),
    fn_differs("local-codes", STOP, *DEPLOY, "--deps", "sharp"),
    fn_differs("local-codes", STOP, *DEPLOY, "--deps", "@run402/functions@1.48.0"),
    fn_differs("local-codes", STOP, *DEPLOY, "--schedule", "* * *"),
    fn_differs("local-codes", Expect(exit=1, error="BAD_FLAG", sends=(), stdout="empty"),
               "deploy", P, "hello", "--file", "blank.js"),
    fn_differs("local-first", STOP, *DEPLOY, "--schedule", "61 * * * *"),
    fn_differs("local-first", STOP, *DEPLOY, "--schedule", "0 0 31 2 *", label="never runs"),
    fn_differs("local-first", STOP, *DEPLOY, "--deps", "img@npm:sharp@0.33", label="aliased native module"),
    fn_differs("code-file", Expect(exit=1, error="BAD_FLAG", sends=(), stdout="empty"),
               "deploy", P, "hello", "--file", "notes.txt"),
    fn_differs("fn-preflight", Expect(exit=1, error="BAD_FIELD", sends=("GET /tiers/v1/status",), stdout="empty"),
               *DEPLOY, "--timeout", "30", label="over the prototype cap"),
    fn_differs("fn-preflight", Expect(exit=0, error="", sends=("GET /tiers/v1/status", f"GET {FNS}", *POST),
                                      stdout="object"),
               *DEPLOY, "--schedule", "0 * * * *", label="hourly"),
    # invoke
    fn_good("invoke", P, "hello", "--body", '{"event":"test"}', sends=("POST /functions/v1/hello",)),
    fn_good("invoke", P, "hello", "--body", "plain words", label="text body", sends=("POST /functions/v1/hello",)),
    fn_good("invoke", P, "hello", "--method", "GET", "--body", "ignored", sends=("GET /functions/v1/hello",)),
    fn_good("invoke", P, "hello", "--method", "DELETE", sends=("DELETE /functions/v1/hello",)),
    fn_good("invoke", P, "hello", label="text answer", sends=("POST /functions/v1/hello",), out="text",
            routes={**FN_ROUTES, ("*", "/functions/v1/*"): Reply(200, "pong")}),
    Case(("functions", "invoke", P, "hello"), label="500", files=FILES,
         routes={**FN_ROUTES, ("*", "/functions/v1/*"): Reply(500, {"error": "boom", "request_id": "req_abcd1234"})},
         want=Expect(exit=1, error="API_ERROR", sends=("POST /functions/v1/hello",), stdout="empty")),
    fn_bad("BAD_USAGE", "invoke", P),
    fn_bad("UNKNOWN_FLAG", "invoke", P, "hello", "--data", "x"),
    fn_bad("PROJECT_NOT_FOUND", "invoke", "prj_9_9", "hello"),
    fn_differs("local-first", STOP, "invoke", P, "Not_Valid"),
    # logs
    fn_good("logs", P, "hello", sends=(f"GET {FNS}/hello/logs",)),
    fn_good("logs", P, "hello", "--tail", "5", "--since", "2029-12-31T00:00:00Z", "--request-id", "req_abcd",
            sends=(f"GET {FNS}/hello/logs",)),
    fn_good("logs", P, "hello", "--since", "1893369600000", label="epoch ms", sends=(f"GET {FNS}/hello/logs",)),
    fn_good("logs", P, "hello", "--tail", "1000", label="tail max", sends=(f"GET {FNS}/hello/logs",)),
    fn_bad("BAD_FLAG", "logs", P, "hello", "--tail", "0"),
    fn_bad("BAD_FLAG", "logs", P, "hello", "--tail", "1001"),
    fn_bad("BAD_FLAG", "logs", P, "hello", "--tail", "ten"),
    fn_bad("BAD_USAGE", "logs", P, "hello", "--since", "yesterday"),
    fn_bad("BAD_USAGE", "logs", P, "hello", "--request-id", "abc"),
    fn_bad("BAD_USAGE", "logs", P, "hello", "--request-id", "req_abc"),
    fn_bad("BAD_USAGE", "logs", P),
    # update
    fn_good("update", P, "hello", "--schedule-remove", sends=(f"PATCH {FNS}/hello",)),
    fn_good("update", P, "hello", "--schedule", "", label="schedule cleared", sends=(f"PATCH {FNS}/hello",)),
    fn_bad("BAD_USAGE", "update", P, "hello"),
    fn_bad("BAD_USAGE", "update", P, "hello", "--schedule", "0 * * * *", "--schedule-remove"),
    fn_bad("BAD_FLAG", "update", P, "hello", "--timeout", "abc"),
    fn_bad("UNKNOWN_FLAG", "update", P, "hello", "--deps", "lodash"),
    fn_differs("local-codes", STOP, "update", P, "hello", "--schedule", "@hourly"),
    fn_differs("fn-preflight", Expect(exit=0, error="", sends=("GET /tiers/v1/status", f"PATCH {FNS}/hello"),
                                      stdout="object"),
               "update", P, "hello", "--memory", "64"),
    # list, delete
    fn_good("list", P, sends=(f"GET {FNS}",)),
    fn_bad("BAD_USAGE", "list"),
    fn_bad("BAD_USAGE", "list", P, "extra"),
    fn_bad("UNKNOWN_FLAG", "list", P, "--all"),
    fn_bad("PROJECT_NOT_FOUND", "list", "prj_9_9"),
    fn_differs("bad-id", Expect(exit=1, error="BAD_PROJECT_ID", sends=(), stdout="empty"), "list", "abc"),
    fn_good("delete", P, "hello", sends=(f"DELETE {FNS}/hello",)),
    fn_bad("BAD_USAGE", "delete", P),
    fn_bad("BAD_USAGE", "delete", P, "hello", "extra"),
    fn_differs("local-first", STOP, "delete", P, "UPPER"),
    fn_differs("json-errors", STOP, "nope"),
    # deploy apply: the same preflight on both CLIs (the stand-in's tier status has no caps:
    # the prototype row of the static table applies)
    refused_field("deploy", "apply", "--quiet", "--spec", apply_spec(
        {"replace": {"api": {"source": FN_SOURCE, "config": {"timeoutSeconds": 30}}}}), label="timeout"),
    refused_field("deploy", "apply", "--quiet", "--spec", apply_spec(
        {"replace": {"api": {"source": FN_SOURCE, "config": {"memoryMb": 1024}}}}), label="memory"),
    refused_field("deploy", "apply", "--quiet", "--spec", apply_spec(
        {"replace": {"api": {"source": FN_SOURCE, "schedule": "*/5 * * * *"}}}), label="cron gap"),
    refused_field("deploy", "apply", "--quiet", "--spec", apply_spec(
        {"patch": {"set": {"a": {"source": FN_SOURCE, "schedule": "0 * * * *"},
                           "b": {"source": FN_SOURCE, "schedule": "0 1 * * *"}}}}), label="scheduled count"),
    good("deploy", "apply", "--quiet", "--spec", apply_spec(
        {"replace": {"api": {"source": FN_SOURCE, "config": {"timeoutSeconds": 10, "memoryMb": 128},
                             "schedule": "*/15 * * * *"}}}), label="within the caps",
         sends=("GET /tiers/v1/status", "POST /apply/v1/plans", "POST /apply/v1/plans/pln_1/commit")),
]
