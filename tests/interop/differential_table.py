"""The row types of the differential table, its helpers, and the reasons we differ on purpose.

A `Case` is one argv given to both CLIs (same env, same seeded config dir, same files, the same
recording stand-in of the API). By default they must MATCH on: exit code, the error `code` on
stderr, the requests sent (method, path, query, JSON body, credentials) and the stdout shape
(the set of top-level JSON keys). `want`, when given, also pins the behaviour: on both CLIs for
a matching row, on ours alone for a `deliberate` row. A `missing` row names a command the
official CLI has and ours does not yet; it is reported, not failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from tests.interop.differential_world import Seed

__all__ = ["Case", "Expect", "REASONS", "bad", "differs", "good", "help_rows", "missing"]

API = "{api}"  # an env value: the recording server's URL


@dataclass(frozen=True)
class Expect:
    """What one CLI must do. Fields left as None are not checked."""

    exit: int | None = None
    error: str | None = None  # the error `code`; "" = no error line at all
    sends: tuple[str, ...] | None = None  # "METHOD /path" of every request, any order
    stdout: str | None = None  # "empty" | "text" | "object" | "array" | "scalar"


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    label: str = ""  # makes the id unique when argv repeats
    note: str = ""
    env: Mapping[str, str | None] = field(default_factory=dict)  # None = unset; "{api}" = server
    seed: Seed = field(default_factory=Seed)
    files: tuple[str, ...] = ()  # keys of differential_world.FILES, created in the cwd
    stdin: str | None = None  # None: stdin is /dev/null (no input, not a pipe)
    balance: int | None = None  # a fixed Base Sepolia balance (default: the faucet rule)
    routes: Mapping[tuple[str, str], Any] = field(default_factory=dict)  # answer overrides
    want: Expect | None = None
    deliberate: str | None = None  # why ours differs; `want` is then OUR documented behaviour
    missing: str | None = None  # the issue (group) a command we lack belongs to
    help: bool = False  # a help row: both print text on stdout, exit 0, send nothing

    @property
    def id(self) -> str:
        def word(a: str) -> str:
            a = a if len(a) <= 32 else a[:29] + "..."  # a long JSON or SQL argument, shortened
            return a if a and " " not in a else repr(a)
        words = " ".join(word(a) for a in self.argv) or "(no args)"
        label = self.label or self.seed.name
        return f"{words} [{label}]" if label else words

    @property
    def full_env(self) -> dict[str, str | None]:
        return {"RUN402_API_BASE": API, **self.env}


# Why ours differs, one line each. Every deliberate row cites one of these.
REASONS = {
    "exit1": "(a) an error always exits 1 with one JSON error line; the official CLI exits 0 on "
             "some failures (init's faucet error, provision answered without keys)",
    "help-env": "(b) --help/-h always prints help and exits 0, whatever RUN402_API_BASE says; "
                "the official CLI fails most groups' help with BAD_ENV",
    "deploy-env": "(c) RUN402_DEPLOY_API_BASE is validated at start-up for every command (fail "
                  "early); the official CLI never validates it",
    "json-errors": "an unknown command is one JSON BAD_USAGE line on stderr and nothing on "
                   "stdout; the official CLI prints 'Unknown command' text and its help on stdout",
    "strict-flags": "an unknown flag is UNKNOWN_FLAG on every command; the official CLI ignores "
                    "unknown flags on some (allowance, init, status, subdomains claim -d ...)",
    "strict-args": "an extra positional is BAD_USAGE on every command; the official CLI ignores "
                   "it on some (status, allowance *, projects list)",
    "uniform-codes": "flag errors are UNKNOWN_FLAG / BAD_FLAG on every command, as the official "
                     "reference promises; the official deploy subcommands say BAD_USAGE",
    "local-first": "checked locally before any request (tier name, --tier, the allowance a "
                   "signed call needs); the official CLI sends it and lets the API refuse",
    "bad-id": "a project id that is not prj_... is BAD_PROJECT_ID before any request, as the "
              "official info/keys/schema do; its `projects use` says PROJECT_NOT_FOUND and its "
              "`deploy list --project` sends the request",
    "ours-only": "ours only: a command or flag the official CLI does not have (local gateway, "
                 "projects rest --method/--body)",
    "env-code": "(d) a bad RUN402_API_BASE is BAD_ENV on every command but help/--version; the "
                "official `service` commands report it with no code at all",
    "deploy-base": "RUN402_DEPLOY_API_BASE sends deploy traffic (/apply/v1, /content/v1) there; "
                   "the official CLI defines the variable but never reads it",
    "secret-codes": "a secret key or value the API would refuse is BAD_SECRET_KEY / SECRET_VALUE_TOO_LARGE "
                    "(the rule named, the text not echoed); the official SDK's own check says LOCAL_ERROR",
    "required-arg": "a missing required positional is BAD_USAGE before any request; the official `secrets "
                    "list` looks up project '' (PROJECT_NOT_FOUND) and `secrets delete <id>` deletes a "
                    "secret named 'undefined'",
    "whitespace-env": "any whitespace in RUN402_API_BASE is BAD_ENV; the official CLI's URL "
                      "parser strips leading/trailing spaces and then sends to the unstripped base",
    "local-codes": "input the official SDK refuses with its catch-all LOCAL_ERROR (a bad function "
                   "name, a reserved or native dep, a schedule without 5 fields, blank code) is "
                   "BAD_USAGE / BAD_FLAG naming the flag, like every other bad input",
    "fn-preflight": "functions deploy/update check the tier's function caps first (GET "
                    "/tiers/v1/status; the function list for the scheduled count), as deploy apply "
                    "does on both CLIs; the official CLI checks them on deploy apply only",
    "file-codes": "a missing file is FILE_NOT_FOUND (a directory NOT_A_FILE), as on every other "
                  "command; the official `assets put` says BAD_USAGE",
    "assets-batch": "the files of one `assets put` go in one deploy (one plan, one commit: all land "
                    "or none), so a key given twice is refused before anything is sent; the official "
                    "CLI deploys file by file, the later silently overwriting the earlier",
    "wait-fresh": "`cdn wait-fresh` polls diagnose until the URL serves --sha, as documented; the "
                  "official v2.10.0 command calls an SDK namespace that does not exist and always fails",
    "code-file": "functions deploy --file takes a .js, .mjs or .ts module; the official CLI sends "
                 "the text of any file as the function's code",
}


def good(*argv: str, sends: tuple[str, ...] = (), out: str = "object", **kw: Any) -> Case:
    """A call that succeeds on both, sending exactly `sends`."""
    return Case(tuple(argv), want=Expect(exit=0, error="", sends=sends, stdout=out), **kw)


def bad(code: str, *argv: str, sends: tuple[str, ...] = (), **kw: Any) -> Case:
    """A call both refuse with `code` (by default before any request)."""
    return Case(tuple(argv), want=Expect(exit=1, error=code, sends=sends, stdout="empty"), **kw)


def differs(reason: str, want: Expect, *argv: str, **kw: Any) -> Case:
    assert reason in REASONS, reason
    return Case(tuple(argv), want=want, deliberate=reason, **kw)


def missing(issue: str, *argv: str, **kw: Any) -> Case:
    # A fresh config dir: the official CLI proves it knows the command by failing on its own
    # terms (NO_ALLOWANCE, NO_ACTIVE_PROJECT, a usage error), cheaply, without signing anything.
    kw.setdefault("seed", Seed(allowance=False, projects=()))
    return Case(tuple(argv), missing=issue, **kw)


def help_rows(paths: list[str], **kw: Any) -> list[Case]:
    """`<path> --help` and `<path> -h` for every command path."""
    rows = []
    for path in paths:
        for flag in ("--help", "-h"):
            rows.append(Case((*path.split(), flag), help=True, seed=Seed(allowance=False, projects=(), name=""),
                             want=Expect(exit=0, error="", sends=(), stdout="text"), **kw))
    return rows
