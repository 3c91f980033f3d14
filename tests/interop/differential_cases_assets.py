"""The differential table, part 4: `assets put|get|ls|rm|sign|diagnose` and `cdn wait-fresh`.
The stand-in's answers for an assets deploy are differential_world.asset_routes (a plan whose
`asset_entries` echo the spec's puts); the storage answers are in world_routes."""

from __future__ import annotations

from typing import Any

from tests.interop.differential_table import Expect, bad, differs, good
from tests.interop.differential_world import ASSET_HOST, OTHER, Seed, asset_routes

__all__ = ["ASSETS"]

FILES = ("assets",)
PLAN = "POST /apply/v1/plans"
COMMIT = "POST /apply/v1/plans/pln_1/commit"
PUT_SENDS = (PLAN, COMMIT)
UPLOAD_SENDS = (PLAN, "POST /content/v1/plans", "PUT /s3/*", "POST /content/v1/plans/cp_1/commit", COMMIT)
URL = f"{ASSET_HOST}/_blob/logo.png"
SHA = "a" * 64
STOP = Expect(exit=1, error="BAD_FLAG", sends=(), stdout="empty")


def put_good(*argv: str, sends: tuple[str, ...] = PUT_SENDS, routes: Any = None, **kw: Any):
    return good("assets", "put", *argv, sends=sends, out=kw.pop("out", "array"), files=FILES,
                routes=routes or asset_routes(), **kw)


def put_bad(code: str, *argv: str, **kw: Any):
    return bad(code, "assets", "put", *argv, files=FILES, routes=asset_routes(), **kw)


ASSETS = [
    # put: one file, through the apply flow; the plan body (the wire spec) is compared
    put_good("notes.txt", note="mutable by default: immutable false in the spec"),
    put_good("notes.txt", "--immutable", label="immutable"),
    put_good("notes.txt", "--private", label="private"),
    put_good("notes.txt", "--key", "docs/", label="key prefix"),
    put_good("notes.txt", "--key", "docs/readme", "--content-type", "text/markdown; charset=utf-8", label="key+type"),
    put_good("notes.txt", "--meta", "tags=hero,banner", "--meta", "n=3", "--meta", "r=-.5", "--meta", "ok=true",
             "--meta", "who=agent_1", "--exif-policy", "strip", label="meta",
             note="--meta coercion (list, numbers, boolean, string) compared in the plan body"),
    put_good("app.js", "--concurrency", "2", "--no-resume", label="ignored flags"),
    put_good("notes.txt", "--json", out="text", label="ndjson", note="NDJSON on stdout: not one JSON document"),
    put_good("logo.png", "--immutable", sends=(PLAN, COMMIT, PLAN), label="image",
             note="an image: one dry-run plan after the commit reads its variants back"),
    put_good("notes.txt", sends=UPLOAD_SENDS, routes=asset_routes(present=False), label="upload",
             note="bytes the plan marks missing: content plan, presigned PUT, content commit"),
    put_good("notes.txt", env={"RUN402_PROJECT": OTHER}, label="RUN402_PROJECT"),
    put_bad("BAD_USAGE"),
    put_bad("BAD_USAGE", "notes.txt", "app.js", "--key", "one.txt"),
    put_bad("BAD_FLAG", "notes.txt", "--content-type", "png"),
    put_bad("BAD_FLAG", "notes.txt", "--meta", "novalue"),
    put_bad("BAD_FLAG", "notes.txt", "--meta", "=v"),
    put_bad("BAD_FLAG", "notes.txt", "--exif-policy", "drop"),
    put_bad("BAD_FLAG", "notes.txt", "--concurrency", "0"),
    put_bad("UNKNOWN_FLAG", "notes.txt", "--bogus"),
    put_bad("PROJECT_NOT_FOUND", "notes.txt", "--project", "prj_9_9"),
    put_bad("INVALID_ASSET_METADATA", "notes.txt", "--meta", "k=" + "x" * 5000),
    differs("file-codes", Expect(exit=1, error="FILE_NOT_FOUND", sends=(), stdout="empty"),
            "assets", "put", "missing.txt", files=FILES, routes=asset_routes()),
    differs("local-first", STOP, "assets", "put", "notes.txt", "--key", "_cas/x", files=FILES,
            routes=asset_routes(), label="reserved key"),
    differs("local-first", STOP, "assets", "put", "notes.txt", "--key", "a/../b", files=FILES,
            routes=asset_routes(), label="dot-dot key"),
    differs("assets-batch", Expect(exit=0, error="", sends=PUT_SENDS, stdout="array"),
            "assets", "put", "notes.txt", "app.js", "--key", "docs/", files=FILES, routes=asset_routes()),
    differs("assets-batch", Expect(exit=1, error="ASSET_DUPLICATE_KEY_IN_PUT", sends=(), stdout="empty"),
            "assets", "put", "notes.txt", "sub/notes.txt", "--key", "docs/", files=FILES, routes=asset_routes()),
    # get / ls / rm / sign / diagnose: /storage/v1 with the service key
    good("assets", "get", "logo.png", "--output", "out/logo.png", sends=("GET /storage/v1/blob/logo.png",)),
    good("assets", "get", "dir/a b.png", "-o", "x.bin", sends=("GET /storage/v1/blob/dir/a%20b.png",)),
    bad("BAD_USAGE", "assets", "get", "logo.png"),
    bad("BAD_USAGE", "assets", "get"),
    good("assets", "ls", sends=("GET /storage/v1/blobs",)),
    good("assets", "ls", "--prefix", "img/", "--limit", "5", "--sort", "createdAt:desc", "--filter", "is_image=true",
         "--filter", "min_width=320", "--filter", "tag=hero", label="all flags", sends=("GET /storage/v1/blobs",),
         note="the query (prefix, limit, sort, filter[k]) is compared as data"),
    good("assets", "ls", "--limit", "1000", label="limit max", sends=("GET /storage/v1/blobs",)),
    good("assets", "ls", label="RUN402_PROJECT", env={"RUN402_PROJECT": OTHER}, sends=("GET /storage/v1/blobs",)),
    bad("BAD_FLAG", "assets", "ls", "--limit", "0"),
    bad("BAD_FLAG", "assets", "ls", "--limit", "1001"),
    bad("BAD_FLAG", "assets", "ls", "--limit", "abc"),
    bad("BAD_FLAG", "assets", "ls", "--sort", "size:asc"),
    bad("BAD_FLAG", "assets", "ls", "--filter", "color=red"),
    bad("BAD_FLAG", "assets", "ls", "--filter", "is_image=yes"),
    bad("BAD_FLAG", "assets", "ls", "--filter", "min_width=-1"),
    bad("PROJECT_NOT_FOUND", "assets", "ls", "--project", "prj_9_9"),
    good("assets", "rm", "img/logo.png", sends=("DELETE /storage/v1/blob/img/logo.png",)),
    bad("BAD_USAGE", "assets", "rm"),
    differs("local-first", Expect(exit=1, error="BAD_USAGE", sends=(), stdout="empty"),
            "assets", "rm", "a/../logo.png", label="dot-dot key",
            note="the official CLI sends it, and its URL parser resolves the '..' away: it deletes logo.png"),
    good("assets", "sign", "logo.png", sends=("POST /storage/v1/blob/logo.png/sign",)),
    good("assets", "sign", "logo.png", "--ttl", "600", label="ttl", sends=("POST /storage/v1/blob/logo.png/sign",)),
    good("assets", "sign", "logo.png", "--ttl", "60", label="ttl min", sends=("POST /storage/v1/blob/logo.png/sign",)),
    bad("BAD_FLAG", "assets", "sign", "logo.png", "--ttl", "59"),
    bad("BAD_FLAG", "assets", "sign", "logo.png", "--ttl", "604801"),
    bad("BAD_USAGE", "assets", "sign"),
    good("assets", "diagnose", URL, sends=("GET /storage/v1/blobs/diagnose",),
         note="the probed URL travels as ?url=<encodeURIComponent>; exit 0: observed == expected"),
    bad("BAD_USAGE", "assets", "diagnose"),
    # cdn wait-fresh: the official command cannot run (spec §11.2); its refusals of bad input match
    differs("wait-fresh", Expect(exit=0, error="", sends=("GET /storage/v1/blobs/diagnose",), stdout="object"),
            "cdn", "wait-fresh", URL, "--sha", SHA),
    bad("BAD_USAGE", "cdn", "wait-fresh", URL),
    bad("BAD_FLAG", "cdn", "wait-fresh", URL, "--sha", "abc"),
    bad("BAD_FLAG", "cdn", "wait-fresh", URL, "--sha", SHA, "--timeout", "0"),
    bad("NO_ACTIVE_PROJECT", "assets", "ls", seed=Seed(active=None, name="no active project")),
]
