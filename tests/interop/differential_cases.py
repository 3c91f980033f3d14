"""The differential table, part 1: good calls and bad input, group by group.

Part 2 (differential_cases_surface.py) has help, the environment, integer flags and the
commands we do not have yet; part 3 (differential_cases_functions.py) the functions group;
part 4 (differential_cases_assets.py) assets and cdn.
`CASES` is the whole table. Row helpers: differential_table.py.
"""

from __future__ import annotations

import json

from tests.interop.differential_cases_assets import ASSETS
from tests.interop.differential_cases_functions import FUNCTIONS
from tests.interop.differential_cases_surface import SURFACE
from tests.interop.differential_table import Case, Expect, bad, differs, good
from tests.interop.differential_world import OTHER, PROJECT, Seed
from tests.interop.recording_server import Reply

__all__ = ["CASES"]

NO_WALLET = Seed(allowance=False, name="no allowance")
NOTHING = Seed(allowance=False, projects=(), name="fresh")
NO_ACTIVE = Seed(active=None, name="no active project")
DEPLOYED = Seed(extra={"last_deployment_id": "dpl_1", "site_url": "https://prj.run402.com"}, name="deployed")
P = PROJECT
ADMIN = f"/projects/v1/admin/{P}"
SITE_SPEC = json.dumps({"site": {"replace": {"index.html": "<p>hi</p>"}}})
MANIFEST = json.dumps({"version": "1", "tables": [{"name": "items", "expose": True,
                                                   "policy": "public_read_authenticated_write"}]})
NOT_LOCAL = Expect(exit=1, error="NO_ALLOWANCE", sends=(), stdout="empty")

ROOT = [
    good(sends=(), out="text", note="no args: the root help"),
    good("--version", out="text", note="the bare version (versions differ: only the shape is compared)"),
    good("-v", out="text"),
    differs("json-errors", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "nope"),
    differs("json-errors", Expect(exit=1, error="UNKNOWN_FLAG", sends=(), stdout="empty"), "--bogus"),
]

STATUS_INIT = [
    good("status", sends=("GET /tiers/v1/status", "GET /billing/v1/accounts/*",
                          "GET /wallets/v1/*/projects")),
    Case(("status",), label="no allowance", seed=NOTHING, note="non-ok result on stdout, exit 1",
         want=Expect(exit=1, error="", sends=(), stdout="object")),
    bad("UNKNOWN_FLAG", "status", "--bogus"),
    differs("strict-args", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "status", "extra"),
    good("init", "--json", seed=NOTHING, note="creates the allowance, faucet, polls once, tier status",
         sends=("POST /faucet/v1", "GET /tiers/v1/status")),
    good("init", "--json", label="funded", balance=250_000, note="balance > 0: no faucet",
         sends=("GET /tiers/v1/status",)),
    Case(("init",), label="human", balance=250_000, note="no --json: human lines on stdout",
         want=Expect(exit=0, error="", sends=("GET /tiers/v1/status",), stdout="text")),
    bad("RAIL_SWITCH_REQUIRES_CONFIRM", "init", "mpp", "--json", seed=Seed(rail="x402", name="x402 rail")),
    differs("strict-flags", Expect(exit=1, error="UNKNOWN_FLAG", sends=(), stdout="empty"),
            "init", "--bogus", "--json", balance=250_000),
    good("init", "--json", label="faucet 500", seed=NOTHING, sends=("POST /faucet/v1", "GET /tiers/v1/status"),
         routes={("POST", "/faucet/v1"): Reply(500, {"message": "faucet down"})},
         note="a refused faucet is a 'faucet failed' line, not an error: init goes on (both)"),
]

ALLOWANCE = [
    good("allowance", "create", seed=NOTHING),
    bad("ALLOWANCE_EXISTS", "allowance", "create"),
    good("allowance", "status"),
    Case(("allowance", "status"), label="none", seed=NOTHING,
         want=Expect(exit=1, error="", sends=(), stdout="object")),
    good("allowance", "fund", sends=("POST /faucet/v1",)),
    bad("NO_ALLOWANCE", "allowance", "fund", seed=NOTHING),
    good("allowance", "balance", sends=("GET /billing/v1/accounts/*",)),
    bad("NO_ALLOWANCE", "allowance", "balance", seed=NOTHING),
    good("allowance", "export", out="text"),
    bad("NO_ALLOWANCE", "allowance", "export", seed=NOTHING),
    differs("strict-flags", Expect(exit=1, error="UNKNOWN_FLAG", sends=(), stdout="empty"),
            "allowance", "create", "--bogus", seed=NOTHING),
    differs("strict-args", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"),
            "allowance", "status", "extra"),
    differs("json-errors", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "allowance", "nope"),
]

TIER = [
    good("tier", "status", sends=("GET /tiers/v1/status",)),
    differs("local-first", NOT_LOCAL, "tier", "status", label="no allowance", seed=NOTHING),
    bad("BAD_USAGE", "tier", "status", "extra"),
    bad("UNKNOWN_FLAG", "tier", "status", "--bogus"),
    good("tier", "set", "prototype", sends=("POST /tiers/v1/prototype", "GET /tiers/v1/status")),
    good("tier", "set", "hobby", sends=("POST /tiers/v1/hobby", "GET /tiers/v1/status")),
    bad("BAD_USAGE", "tier", "set"),
    bad("BAD_USAGE", "tier", "set", "prototype", "extra"),
    bad("UNKNOWN_FLAG", "tier", "set", "--bogus", "prototype"),
    differs("local-first", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"),
            "tier", "set", "bogus"),
]

PROJECTS = [
    good("projects", "quote", sends=("GET /tiers/v1",)),
    good("projects", "provision", sends=("POST /projects/v1",)),
    good("projects", "provision", "--name", "my-app", "--tier", "hobby", sends=("POST /projects/v1",)),
    good("projects", "provision", "--name=my-app", label="--flag=value", sends=("POST /projects/v1",)),
    bad("BAD_PROJECT_NAME", "projects", "provision", "--name", ""),
    bad("BAD_PROJECT_NAME", "projects", "provision", "--name", "x" * 129),
    bad("BAD_PROJECT_NAME", "projects", "provision", "--name", "a\nb"),
    bad("BAD_FLAG", "projects", "provision", "--name"),
    bad("BAD_FLAG", "projects", "provision", "--tier", "--name", "x"),
    bad("UNKNOWN_FLAG", "projects", "provision", "--nmae", "x"),
    differs("local-first", Expect(exit=1, error="BAD_FLAG", sends=(), stdout="empty"),
            "projects", "provision", "--tier", "bogus"),
    bad("NO_ALLOWANCE", "projects", "provision", seed=NO_WALLET),
    differs("exit1", Expect(exit=1, error="BAD_RESPONSE", sends=("POST /projects/v1",), stdout="empty"),
            "projects", "provision", label="answer without keys", routes={("POST", "/projects/v1"): Reply(200, {})},
            note="nothing to save: the official prints {} and exits 0"),
    good("projects", "use", OTHER),
    bad("BAD_USAGE", "projects", "use"),
    bad("PROJECT_NOT_FOUND", "projects", "use", "prj_9_9"),
    differs("bad-id", Expect(exit=1, error="BAD_PROJECT_ID", sends=(), stdout="empty"), "projects", "use", "abc"),
    good("projects", "list", out="array"),
    good("projects", "list", label="empty", seed=NOTHING),
    differs("strict-args", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"),
            "projects", "list", "extra"),
    bad("UNKNOWN_FLAG", "projects", "list", "--bogus"),
    good("projects", "info"),
    good("projects", "info", OTHER),
    bad("BAD_PROJECT_ID", "projects", "info", "abc"),
    bad("PROJECT_NOT_FOUND", "projects", "info", "prj_9_9"),
    bad("NO_ACTIVE_PROJECT", "projects", "info", seed=NO_ACTIVE),
    good("projects", "keys"),
    bad("BAD_PROJECT_ID", "projects", "keys", "abc"),
    good("projects", "sql", "select 1", sends=(f"POST {ADMIN}/sql",)),
    good("projects", "sql", P, "select $1", "--params", "[1]", sends=(f"POST {ADMIN}/sql",)),
    good("projects", "sql", "--file", "q.sql", files=("sql",), sends=(f"POST {ADMIN}/sql",)),
    bad("BAD_USAGE", "projects", "sql"),
    bad("BAD_JSON_FLAG", "projects", "sql", "select 1", "--params", "[nope"),
    bad("BAD_USAGE", "projects", "sql", "select 1", "--params", '{"a":1}'),
    bad("FILE_NOT_FOUND", "projects", "sql", "--file", "nope.sql"),
    bad("BAD_PROJECT_ID", "projects", "sql", "select", "1"),
    bad("PROJECT_NOT_FOUND", "projects", "sql", "prj_9_9", "select 1"),
    good("projects", "schema", sends=(f"GET {ADMIN}/schema",)),
    good("projects", "usage", sends=(f"GET {ADMIN}/usage",)),
    bad("BAD_PROJECT_ID", "projects", "usage", "abc"),
    bad("CONFIRMATION_REQUIRED", "projects", "delete"),
    good("projects", "delete", "--confirm", sends=(f"DELETE /projects/v1/{P}",)),
    good("projects", "rest", "items", sends=("GET /rest/v1/items",), out="array"),
    good("projects", "rest", "items", "select=id&id=eq.1", sends=("GET /rest/v1/items",), out="array"),
    bad("BAD_USAGE", "projects", "rest"),
    differs("ours-only", Expect(exit=0, error="", sends=("POST /rest/v1/items",), stdout="array"),
            "projects", "rest", "items", "--method", "POST", "--body", '[{"title":"x"}]'),
    good("projects", "apply-expose", MANIFEST, sends=(f"POST {ADMIN}/expose",)),
    good("projects", "apply-expose", "--file", "expose.json", files=("expose",), sends=(f"POST {ADMIN}/expose",)),
    bad("BAD_USAGE", "projects", "apply-expose", "{nope"),
    bad("BAD_USAGE", "projects", "apply-expose"),
    good("projects", "get-expose", sends=(f"GET {ADMIN}/expose",)),
    good("projects", "validate-expose", MANIFEST, sends=(f"POST {ADMIN}/expose/validate",)),
    good("projects", "validate-expose", "--file", "expose.json", "--migration-file", "setup.sql",
         files=("expose", "migration"), sends=(f"POST {ADMIN}/expose/validate",)),
    bad("BAD_USAGE", "projects", "validate-expose", MANIFEST, "--migration-file", "setup.sql",
        "--migration-sql", "select 1", files=("migration",)),
    good("projects", "promote-user", "ada@example.com", sends=(f"POST {ADMIN}/promote-user",)),
    good("projects", "demote-user", P, "ada@example.com", sends=(f"POST {ADMIN}/demote-user",)),
    bad("BAD_USAGE", "projects", "promote-user"),
    differs("json-errors", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "projects", "nope"),
]

AUTH = [
    good("auth", "magic-link", "--email", "ada@example.com", "--redirect", "http://localhost:3000/cb",
         sends=("POST /auth/v1/magic-link",)),
    bad("BAD_USAGE", "auth", "magic-link", "--redirect", "http://localhost:3000/cb"),
    bad("BAD_FLAG", "auth", "magic-link", "--email", "a@b.c", "--redirect", "http://x/", "--intent", "nope"),
    bad("UNKNOWN_FLAG", "auth", "magic-link", "--emial", "a@b.c"),
    good("auth", "verify", "--token", "tok123", sends=("POST /auth/v1/token",)),
    bad("BAD_USAGE", "auth", "verify"),
    good("auth", "create-user", "--email", "ada@example.com", "--admin", "true", sends=("POST /auth/v1/admin/users",)),
    bad("BAD_FLAG", "auth", "create-user", "--email", "ada@example.com", "--admin", "yes"),
    bad("BAD_USAGE", "auth", "create-user", "--email", "ada@example.com", "--invite"),
    good("auth", "invite-user", "--email", "ada@example.com", "--redirect", "http://localhost:3000/cb",
         sends=("POST /auth/v1/admin/users",)),
    good("auth", "set-password", "--token", "at", "--new", "correct horse", sends=("PUT /auth/v1/user/password",)),
    bad("BAD_USAGE", "auth", "set-password", "--token", "at"),
    good("auth", "settings", "--public-signup", "invite_only", "--allow-password-set", "false",
         sends=("PATCH /auth/v1/settings",)),
    bad("BAD_USAGE", "auth", "settings"),
    good("auth", "providers", sends=("GET /auth/v1/providers",)),
    differs("json-errors", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "auth", "nope"),
]

PLAN_COMMIT = ("POST /apply/v1/plans", "POST /apply/v1/plans/pln_1/commit")
SITES = [
    good("sites", "deploy-dir", "site", "--quiet", files=("site",), sends=PLAN_COMMIT),
    good("sites", "deploy-dir", "site", "--dry-run", files=("site",), sends=("POST /apply/v1/plans",)),
    bad("PRUNE_CONFIRMATION_REQUIRED", "sites", "deploy-dir", "tiny", files=("small-site",)),
    good("sites", "deploy-dir", "tiny", "--confirm-prune", "--quiet", files=("small-site",), sends=PLAN_COMMIT),
    bad("BAD_USAGE", "sites", "deploy-dir"),
    bad("BAD_USAGE", "sites", "deploy-dir", "site", "other", files=("site",)),
    bad("UNSUPPORTED_OPTION", "sites", "deploy-dir", "site", "--target", "prod", files=("site",)),
    bad("BAD_USAGE", "sites", "deploy-dir", "site", "--inherit", files=("site",)),
    bad("NO_ALLOWANCE", "sites", "deploy-dir", "site", files=("site",), seed=NO_WALLET),
    good("sites", "deploy", "--manifest", "site.json", "--quiet", files=("sites-manifest",), sends=PLAN_COMMIT),
    bad("BAD_USAGE", "sites", "deploy", "extra", "--manifest", "site.json", files=("sites-manifest",)),
]

DEPLOY = [
    good("deploy", "apply", "--spec", SITE_SPEC, "--quiet", sends=PLAN_COMMIT),
    good("deploy", "apply", "--manifest", "release.json", "--quiet", files=("release",), sends=PLAN_COMMIT),
    good("deploy", "apply", "--quiet", label="stdin", stdin=SITE_SPEC, sends=PLAN_COMMIT),
    bad("MANIFEST_EMPTY", "deploy", "apply", "--spec", "{}"),
    bad("BAD_USAGE", "deploy", "apply", "--spec", "{nope"),
    bad("BAD_USAGE", "deploy", "apply", "--manifest", "nope.json"),
    bad("BAD_USAGE", "deploy", "apply", "--spec", SITE_SPEC, "--spec", SITE_SPEC),
    bad("BAD_USAGE", "deploy", "apply", "--spec", SITE_SPEC, label="and stdin", stdin=SITE_SPEC),
    bad("UNSAFE_SECRET_MANIFEST", "deploy", "apply", "--spec", json.dumps({"secrets": {"set": {"A": "v"}}})),
    bad("BAD_USAGE", "deploy", "apply", "--spec", SITE_SPEC, "extra"),
    differs("uniform-codes", Expect(exit=1, error="UNKNOWN_FLAG", sends=(), stdout="empty"),
            "deploy", "apply", "--spec", SITE_SPEC, "--bogus"),
    differs("uniform-codes", Expect(exit=1, error="BAD_FLAG", sends=(), stdout="empty"),
            "deploy", "apply", "--spec"),
    good("deploy", "resume", "op_1", "--quiet", sends=("POST /apply/v1/operations/op_1/resume",)),
    bad("BAD_USAGE", "deploy", "resume"),
    bad("BAD_USAGE", "deploy", "resume", "op_1", "op_2"),
    bad("OPERATION_NOT_FOUND", "deploy", "resume", "abc"),
    good("deploy", "list", sends=("GET /apply/v1/operations",)),
    bad("BAD_USAGE", "deploy", "list", "extra"),
    differs("bad-id", Expect(exit=1, error="BAD_PROJECT_ID", sends=(), stdout="empty"),
            "deploy", "list", "--project", "abc"),
    good("deploy", "events", "op_1", sends=("GET /apply/v1/operations/op_1/events",)),
    bad("BAD_USAGE", "deploy", "events"),
    good("deploy", "release", "get", "rel_1", sends=("GET /apply/v1/releases/rel_1",)),
    bad("BAD_USAGE", "deploy", "release", "get"),
    good("deploy", "release", "active", sends=("GET /apply/v1/releases/active",)),
    good("deploy", "release", "diff", "--from", "empty", "--to", "active", sends=("GET /apply/v1/releases/diff",)),
    bad("BAD_USAGE", "deploy", "release", "diff", "--from", "empty"),
    bad("BAD_USAGE", "deploy", "release", "diff", "--from", "active", "--to", "empty"),
    bad("BAD_USAGE", "deploy", "release", "nope"),
    good("deploy", "diagnose", "https://my-app.run402.com/x", sends=("GET /apply/v1/resolve",)),
    good("deploy", "diagnose", "--method=POST", "https://my-app.run402.com/x", sends=("GET /apply/v1/resolve",)),
    bad("BAD_USAGE", "deploy", "diagnose"),
    bad("BAD_USAGE", "deploy", "diagnose", "https://a.example.com/", "https://b.example.com/"),
    good("deploy", "resolve", "--host", "my-app.run402.com", "--path", "/x", sends=("GET /apply/v1/resolve",)),
    bad("BAD_USAGE", "deploy", "resolve", "--url", "https://a.example.com/", "--host", "a.example.com"),
    bad("BAD_USAGE", "deploy", "resolve"),
    bad("BAD_USAGE", "deploy", "nope"),
]

SUBDOMAINS = [
    good("subdomains", "claim", "my-app", seed=DEPLOYED, sends=("POST /subdomains/v1",)),
    good("subdomains", "claim", "my-app", "--deployment", "dpl_2", sends=("POST /subdomains/v1",)),
    bad("NO_DEPLOYMENT", "subdomains", "claim", "my-app"),
    bad("BAD_USAGE", "subdomains", "claim"),
    bad("BAD_USAGE", "subdomains", "claim", "a", "b", seed=DEPLOYED),
    bad("UNKNOWN_FLAG", "subdomains", "claim", "my-app", "--deploy", "dpl_2"),
    good("subdomains", "list", sends=("GET /subdomains/v1",), out="array"),
    bad("BAD_USAGE", "subdomains", "list", "extra"),
    bad("NO_ACTIVE_PROJECT", "subdomains", "list", seed=NO_ACTIVE),
    bad("CONFIRMATION_REQUIRED", "subdomains", "delete", "my-app"),
    good("subdomains", "delete", "my-app", "--confirm", sends=("DELETE /subdomains/v1/my-app",)),
    bad("BAD_USAGE", "subdomains", "delete", "--confirm"),
]

SECRETS_PATH = f"{ADMIN}/secrets"
TOO_BIG = "x" * 4097
SECRETS = [
    good("secrets", "list", P, sends=(f"GET {SECRETS_PATH}",)),
    good("secrets", "list", OTHER, sends=(f"GET /projects/v1/admin/{OTHER}/secrets",)),
    good("secrets", "set", P, "API_KEY", "sk-1234", sends=(f"POST {SECRETS_PATH}",)),
    good("secrets", "set", P, "API_KEY", "--stdin", label="piped", stdin="sk-1234\n", sends=(f"POST {SECRETS_PATH}",),
         note="stdin to EOF, verbatim: the trailing newline is part of the value (compared in the body)"),
    good("secrets", "set", P, "API_KEY", "--file", "-", label="--file -", stdin="sk-1234", sends=(f"POST {SECRETS_PATH}",)),
    good("secrets", "set", P, "API_KEY", "--file", "/dev/stdin", stdin="sk-1234", sends=(f"POST {SECRETS_PATH}",)),
    good("secrets", "set", P, "TLS_CERT", "--file", "secret.pem", files=("secret",), sends=(f"POST {SECRETS_PATH}",),
         note="the file as it is: CRLF line endings reach the body unchanged"),
    good("secrets", "set", P, "API_KEY", "--file=secret.pem", files=("secret",), sends=(f"POST {SECRETS_PATH}",)),
    good("secrets", "set", P, "EMPTY", "", sends=(f"POST {SECRETS_PATH}",), note="an empty inline value is a value"),
    good("secrets", "delete", P, "API_KEY", sends=(f"DELETE {SECRETS_PATH}/API_KEY",)),
    good("secrets", "delete", P, "legacy key", sends=(f"DELETE {SECRETS_PATH}/legacy%20key",),
         note="delete does not check the key pattern: a legacy key stays deletable"),
    bad("BAD_USAGE", "secrets", "set"),
    bad("BAD_USAGE", "secrets", "set", P, "API_KEY"),
    bad("BAD_USAGE", "secrets", "set", P, "API_KEY", "--stdin", label="no stdin", note="stdin is /dev/null: no value"),
    bad("BAD_USAGE", "secrets", "set", P, "API_KEY", "--stdin", label="empty pipe", stdin=""),
    bad("BAD_USAGE", "secrets", "set", P, "API_KEY", "v", "--stdin", stdin="x"),
    bad("BAD_USAGE", "secrets", "set", P, "API_KEY", "--file", "secret.pem", "--stdin", files=("secret",), stdin="x"),
    bad("BAD_USAGE", "secrets", "set", P, "API_KEY", "a", "b"),
    bad("FILE_NOT_FOUND", "secrets", "set", P, "API_KEY", "--file", "nope.pem"),
    bad("BAD_FLAG", "secrets", "set", P, "API_KEY", "--file"),
    bad("UNKNOWN_FLAG", "secrets", "set", P, "API_KEY", "v", "--bogus"),
    bad("UNKNOWN_FLAG", "secrets", "set", P, "API_KEY", "-sk_live_1", note="ours does not echo the token"),
    bad("PROJECT_NOT_FOUND", "secrets", "set", "prj_9_9", "API_KEY", "v"),
    differs("secret-codes", Expect(exit=1, error="BAD_SECRET_KEY", sends=(), stdout="empty"),
            "secrets", "set", P, "api_key", "v"),
    differs("secret-codes", Expect(exit=1, error="BAD_SECRET_KEY", sends=(), stdout="empty"),
            "secrets", "set", P, "sk-1234", "API_KEY", label="swapped", note="key and value swapped: not echoed"),
    differs("secret-codes", Expect(exit=1, error="SECRET_VALUE_TOO_LARGE", sends=(), stdout="empty"),
            "secrets", "set", P, "API_KEY", "--stdin", label="4097 bytes", stdin=TOO_BIG),
    bad("BAD_USAGE", "secrets", "list", P, "extra"),
    bad("UNKNOWN_FLAG", "secrets", "list", P, "--bogus"),
    bad("PROJECT_NOT_FOUND", "secrets", "list", "prj_9_9"),
    differs("bad-id", Expect(exit=1, error="BAD_PROJECT_ID", sends=(), stdout="empty"), "secrets", "list", "abc"),
    differs("required-arg", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "secrets", "list"),
    differs("required-arg", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "secrets", "delete", P),
    bad("BAD_USAGE", "secrets", "delete", P, "API_KEY", "extra"),
    bad("PROJECT_NOT_FOUND", "secrets", "delete", "prj_9_9", "API_KEY"),
    differs("json-errors", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "secrets", "nope"),
]

RUNS = "/jobs/v1/runs"
JOB_JSON = json.dumps({"job_type": "kysigned.fflonk_prove.v0_17_0", "input": {"input.json": {}},
                       "max_cost_usd_micros": 50000})
JOBS = [
    good("jobs", "submit", "--file", "job.json", files=("job",), sends=(f"POST {RUNS}",)),
    good("jobs", "submit", "--stdin", label="piped", stdin=JOB_JSON, sends=(f"POST {RUNS}",)),
    good("jobs", "submit", "--stdin", "--project", OTHER, stdin=JOB_JSON, sends=(f"POST {RUNS}",),
         note="--project picks the key: the other project's service key is sent"),
    good("jobs", "submit", "--stdin", label="any object", stdin="{}", sends=(f"POST {RUNS}",),
         note="the CLI checks only that it is an object; the API judges the rest"),
    bad("BAD_USAGE", "jobs", "submit"),
    bad("BAD_USAGE", "jobs", "submit", "--stdin", label="no stdin", note="stdin is /dev/null"),
    bad("BAD_USAGE", "jobs", "submit", "--file", "job.json", "--stdin", files=("job",), stdin=JOB_JSON),
    bad("BAD_USAGE", "jobs", "submit", "--stdin", "extra", stdin=JOB_JSON),
    bad("BAD_JSON", "jobs", "submit", "--stdin", label="bad json", stdin="{nope"),
    bad("BAD_JSON", "jobs", "submit", "--stdin", label="array", stdin="[1]"),
    bad("FILE_NOT_FOUND", "jobs", "submit", "--file", "nope.json"),
    bad("UNKNOWN_FLAG", "jobs", "submit", "--stdin", "--idempotency-key", "k", stdin=JOB_JSON),
    bad("PROJECT_NOT_FOUND", "jobs", "submit", "--stdin", "--project", "prj_9_9", stdin=JOB_JSON),
    differs("bad-id", Expect(exit=1, error="BAD_PROJECT_ID", sends=(), stdout="empty"),
            "jobs", "submit", "--stdin", "--project", "abc", stdin=JOB_JSON),
    good("jobs", "get", "job_1", sends=(f"GET {RUNS}/job_1",)),
    good("jobs", "get", "--project", OTHER, "job_1", sends=(f"GET {RUNS}/job_1",)),
    good("jobs", "get", "job 1", sends=(f"GET {RUNS}/job%201",)),
    bad("BAD_USAGE", "jobs", "get"),
    bad("BAD_USAGE", "jobs", "get", "job_1", "job_2"),
    bad("NO_ACTIVE_PROJECT", "jobs", "get", "job_1", seed=NO_ACTIVE),
    good("jobs", "logs", "job_1", sends=(f"GET {RUNS}/job_1/logs",)),
    good("jobs", "logs", "job_1", "--tail", "5", "--since", "1700000000000", sends=(f"GET {RUNS}/job_1/logs",)),
    good("jobs", "logs", "job_1", "--tail=1000", sends=(f"GET {RUNS}/job_1/logs",)),
    *(bad("BAD_FLAG", "jobs", "logs", "job_1", flag, value, label=f"{flag} {value!r}")
      for flag, value in (("--tail", "0"), ("--tail", "1001"), ("--tail", "abc"), ("--since", "-1"),
                          ("--since", "yesterday"))),
    bad("BAD_FLAG", "jobs", "logs", "job_1", "--tail"),
    bad("BAD_USAGE", "jobs", "logs"),
    good("jobs", "cancel", "job_1", sends=(f"DELETE {RUNS}/job_1",)),
    bad("BAD_USAGE", "jobs", "cancel"),
    bad("UNKNOWN_FLAG", "jobs", "cancel", "job_1", "--yes"),
    differs("json-errors", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"), "jobs", "nope"),
]

SERVICE = [
    good("service", "status", sends=("GET /status",)),
    good("service", "health", sends=("GET /health",)),
    Case(("service", "health"), label="503", routes={("GET", "/health"): Reply(503, {"status": "degraded"})},
         note="a degraded service is an API error, exit 1",
         want=Expect(exit=1, sends=("GET /health",), stdout="empty")),
    good("service", "status", label="no local state", seed=NOTHING, sends=("GET /status",)),
]

CASES: list[Case] = [*ROOT, *STATUS_INIT, *ALLOWANCE, *TIER, *PROJECTS, *AUTH, *SITES, *DEPLOY,
                     *SUBDOMAINS, *FUNCTIONS, *SECRETS, *ASSETS, *JOBS, *SERVICE, *SURFACE]
