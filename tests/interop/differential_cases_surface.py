"""The differential table, part 2: help on every command, the environment, every integer flag,
and the official commands we do not have yet (`missing`, each with the issue it belongs to)."""

from __future__ import annotations

from tests.interop.differential_table import Case, Expect, bad, differs, good, help_rows, missing
from tests.interop.differential_world import PROJECT, Seed

__all__ = ["HELP_PATHS", "ISSUES", "SURFACE"]

# Every group and command of ours that the official CLI also has (`local` is ours only).
HELP_PATHS = [
    "", "init", "status",
    "allowance", "allowance create", "allowance status", "allowance fund", "allowance balance",
    "allowance export",
    "tier", "tier status", "tier set",
    "projects", *(f"projects {c}" for c in (
        "quote", "provision", "use", "list", "info", "keys", "sql", "schema", "usage", "delete", "rest",
        "apply-expose", "get-expose", "validate-expose", "promote-user", "demote-user")),
    "auth", *(f"auth {c}" for c in (
        "magic-link", "verify", "create-user", "invite-user", "set-password", "settings", "providers")),
    "sites", "sites deploy-dir", "sites deploy",
    "deploy", *(f"deploy {c}" for c in ("apply", "resume", "list", "events", "diagnose", "resolve")),
    "deploy release", "deploy release get", "deploy release active", "deploy release diff",
    "subdomains", "subdomains claim", "subdomains list", "subdomains delete",
    "functions", *(f"functions {c}" for c in ("deploy", "invoke", "logs", "update", "list", "delete")),
    "secrets", "secrets set", "secrets list", "secrets delete",
    "assets", *(f"assets {c}" for c in ("put", "get", "ls", "rm", "sign", "diagnose")),
    "cdn", "cdn wait-fresh",
    "jobs", "jobs submit", "jobs get", "jobs logs", "jobs cancel",
    "service", "service status", "service health",
]
OURS_ONLY_PATHS = ["local", "local up", "local down", "local status", "local logs", "local mailbox"]

HELP_TEXT = Expect(exit=0, error="", sends=(), stdout="text")
BAD_ENV = Expect(exit=1, error="BAD_ENV", sends=(), stdout="empty")
FTP = {"RUN402_API_BASE": "ftp://x"}

HELP = [
    *help_rows(HELP_PATHS),
    *(differs("ours-only", HELP_TEXT, *p.split(), flag, seed=Seed(allowance=False, projects=()))
      for p in OURS_ONLY_PATHS for flag in ("--help",)),
    # Help under a bad API base: ours prints help; the official fails most groups at import.
    *(differs("help-env", HELP_TEXT, *p.split(), "--help", label="bad base", env=FTP)
      for p in ("projects", "tier", "status", "init", "allowance", "sites", "subdomains", "auth",
                "deploy release", "projects sql")),
    *(Case((*p.split(), "--help"), label="bad base", env=FTP, want=HELP_TEXT)
      for p in ("", "deploy", "service status")),
]

BAD_BASES = ["ftp://x", "not a url", "http://h:99999", "http://exa mple.com", "127.0.0.1:4020",
             "javascript:alert(1)"]
ENV = [
    *(bad("BAD_ENV", "projects", "list", label=f"API_BASE={v}", env={"RUN402_API_BASE": v})
      for v in BAD_BASES),
    *(bad("BAD_ENV", *argv, label="API_BASE=ftp", env=FTP)
      for argv in (("allowance", "status"), ("tier", "status"), ("deploy", "list"),
                   ("status",), ("projects", "sql", "select 1"), ("subdomains", "list"))),
    good("--version", label="bad base", env=FTP, out="text", note="(d) --version is answered whatever the env"),
    *(differs("env-code", BAD_ENV, "service", sub, label="API_BASE=ftp", env=FTP) for sub in ("status", "health")),
    good("projects", "list", label="API_BASE empty", env={"RUN402_API_BASE": ""}, out="array",
         note="set but empty: a warning on stderr, the default base"),
    bad("BAD_ENV", "projects", "list", label="API_BASE blank", env={"RUN402_API_BASE": "  "},
        note="whitespace only is not 'empty': it is a malformed URL"),
    differs("whitespace-env", BAD_ENV, "projects", "list", label="API_BASE padded",
            env={"RUN402_API_BASE": " {api} "}),
    Case(("service", "status"), label="closed port", env={"RUN402_API_BASE": "http://127.0.0.1:9"},
         want=Expect(exit=1, error="NETWORK_ERROR", sends=(), stdout="empty")),
    Case(("tier", "status"), label="closed port", env={"RUN402_API_BASE": "http://127.0.0.1:9"},
         want=Expect(exit=1, error="NETWORK_ERROR", sends=(), stdout="empty")),
    good("tier", "status", label="API_BASE trailing slash", env={"RUN402_API_BASE": "{api}/"},
         sends=("GET /tiers/v1/status",), note="the trailing slash is dropped, not doubled"),
    differs("deploy-env", BAD_ENV, "projects", "list", label="DEPLOY_BASE=ftp",
            env={"RUN402_DEPLOY_API_BASE": "ftp://x"}),
    differs("deploy-env", BAD_ENV, "service", "status", label="DEPLOY_BASE=ftp",
            env={"RUN402_DEPLOY_API_BASE": "ftp://x"}),
    differs("deploy-env", BAD_ENV, "deploy", "list", label="DEPLOY_BASE=ftp",
            env={"RUN402_DEPLOY_API_BASE": "ftp://x"}),
    good("projects", "list", label="DEPLOY_BASE empty", env={"RUN402_DEPLOY_API_BASE": ""}, out="array"),
    differs("deploy-base", Expect(exit=0, error="", sends=("GET /deploy-gw/apply/v1/operations",), stdout="object"),
            "deploy", "list", label="DEPLOY_BASE elsewhere", env={"RUN402_DEPLOY_API_BASE": "{api}/deploy-gw"}),
]

# Every integer flag of ours the official CLI shares (the argv before the flag).
INT_FLAGS = [
    (("deploy", "list"), "--limit", "/apply/v1/operations"),
    (("deploy", "release", "get", "rel_1"), "--site-limit", "/apply/v1/releases/rel_1"),
    (("deploy", "release", "active"), "--site-limit", "/apply/v1/releases/active"),
    (("deploy", "release", "diff", "--from", "empty", "--to", "active"), "--limit", "/apply/v1/releases/diff"),
]
BAD_INTS = ["abc", "0", "-1", "1.5", "1e3", str(2**53), ""]
BAD_FLAG = Expect(exit=1, error="BAD_FLAG", sends=(), stdout="empty")
INTEGERS = [
    *(differs("uniform-codes", BAD_FLAG, *head, flag, value, label=f"{flag} {value!r}")
      for head, flag, _ in INT_FLAGS for value in BAD_INTS),
    *(differs("uniform-codes", BAD_FLAG, *head, flag, label=f"{flag} at the end") for head, flag, _ in INT_FLAGS),
    *(good(*head, flag, value, label=f"{flag} {value}", sends=(f"GET {path}",))
      for head, flag, path in INT_FLAGS for value in ("5", str(2**53 - 1))),
    good("deploy", "list", "--limit", "05", label="leading zero", sends=("GET /apply/v1/operations",)),
    good("deploy", "list", "--limit=7", label="--flag=value", sends=("GET /apply/v1/operations",)),
]

# The issue (one per missing group or command family) each missing row belongs to.
ISSUES = {
    "allowance-billing": "allowance checkout / history (billing ledger)",
    "projects-admin": "projects costs / pin (admin-only)",
    "auth-passkeys": "auth passkey-* (WebAuthn)",
    "email": "email mailbox, send, inbound, webhooks; sender-domain",
    "ai": "ai translate/moderate/usage and image generate",
    "apps": "apps marketplace browse/fork/inspect/publish/versions/update/delete",
    "domains": "custom domains add/list/status/delete",
    "billing": "billing accounts, Stripe checkout, email packs",
    "contracts": "KMS contract wallets",
    "ci": "ci link github / list / revoke / set-asset-scopes (OIDC deploys)",
    "agent": "agent contact/status/verify-email/passkey, message send",
}
P = PROJECT
MISSING = [
    missing("allowance-billing", "allowance", "checkout", "--amount", "5000000"),
    missing("allowance-billing", "allowance", "history", "--limit", "5"),
    missing("projects-admin", "projects", "costs", P, "--window", "7d"),
    missing("projects-admin", "projects", "pin", P),
    missing("auth-passkeys", "auth", "passkeys", "--token", "at"),
    missing("auth-passkeys", "auth", "passkey-login-options", "--app-origin", "https://app.example.com"),
    missing("email", "email", "status"),
    missing("email", "email", "list"),
    missing("email", "email", "webhooks", "list"),
    missing("email", "sender-domain", "status"),
    missing("ai", "ai", "usage", P),
    missing("ai", "image", "generate", "a startup mascot"),
    missing("apps", "apps", "browse"),
    missing("apps", "apps", "inspect", "ver_1"),
    missing("domains", "domains", "list"),
    missing("billing", "billing", "balance", "ada@example.com"),
    missing("billing", "billing", "history", "ada@example.com"),
    missing("contracts", "contracts", "list-wallets"),
    missing("contracts", "contracts", "status", "call_1"),
    missing("ci", "ci", "list"),
    missing("ci", "ci", "revoke", "cib_1"),
    missing("agent", "agent", "status"),
    missing("agent", "message", "send", "hello"),
]

SURFACE: list[Case] = [*HELP, *ENV, *INTEGERS, *MISSING]
