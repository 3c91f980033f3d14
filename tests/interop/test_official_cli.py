"""The official CLI v2.10.0 drives our local gateway through every capability we have, as its
user would: each step checks the exit code and the JSON it prints, and the site's bytes are
fetched over HTTP. Then a mixed session: our CLI and the official one on one config dir, each
continuing where the other stopped.

Every capability that lands later adds its steps here (assets, email next).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx
import pytest

from tests.interop.reference import RefResult
from tests.local._deploy_support import host_of, site

pytestmark = pytest.mark.usefixtures("api")

MANIFEST = {"version": "1", "tables": [
    {"name": "items", "expose": True, "policy": "public_read_authenticated_write"}]}
SITE = {"index.html": b"<h1>hello from the official CLI</h1>\n", "css/site.css": b"body { margin: 0 }\n"}
ABOUT = b"<p>about</p>"


def ok(result: RefResult | Any, step: str) -> Any:
    """The step's JSON stdout, after checking it exited 0."""
    assert result.code == 0, f"{step}: exit {result.code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return json.loads(result.stdout)


def write_site(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def ledger_micros(api_base: str, address: str) -> int:
    return httpx.get(f"{api_base}/billing/v1/accounts/{address.lower()}").json()["available_usd_micros"]


def test_the_official_cli_uses_every_capability(ref: Callable[..., RefResult], api: Any, tmp_path: Path) -> None:
    # --- wallet, faucet, a real x402 payment for the tier --------------------------------
    created = ok(ref("allowance", "create"), "allowance create")
    address = created["address"]
    funded = ok(ref("allowance", "fund"), "allowance fund")
    assert funded["onchain"]["base-sepolia_usd_micros"] == 250_000
    tier = ok(ref("tier", "set", "prototype"), "tier set prototype")
    assert tier["tier"] == "prototype" and tier["status_after"]["active"] is True
    # the payment moved real money on our ledger: 0.10 USD of the faucet's 0.25
    assert tier["allowance_remaining_usd_micros"] == 150_000 == ledger_micros(api.api_base, address)
    balance = ok(ref("allowance", "balance"), "allowance balance")
    assert balance["run402"]["balance_usd_micros"] == 150_000
    assert ok(ref("tier", "status"), "tier status")["tier"] == "prototype"

    # --- a project: provision, keys, SQL, schema, expose, REST -------------------------
    project = ok(ref("projects", "provision", "--name", "official-e2e"), "projects provision")
    pid = project["project_id"]
    assert pid.startswith("prj_") and project["anon_key"] and project["service_key"]
    assert ok(ref("projects", "list"), "projects list") == [{"project_id": pid, "active": True}]
    info = ok(ref("projects", "info"), "projects info")
    assert info["rest_url"] == f"{api.api_base}/rest/v1" and info["anon_key"] == project["anon_key"]
    assert ok(ref("projects", "keys", pid), "projects keys")["service_key"] == project["service_key"]

    ok(ref("projects", "sql", "create table items (id serial primary key, title text not null)"), "sql ddl")
    inserted = ok(ref("projects", "sql", "insert into items (title) values ('a'), ('b') returning id"), "sql insert")
    assert [r["id"] for r in inserted["rows"]] == [1, 2]
    picked = ok(ref("projects", "sql", "select title from items where id = $1", "--params", "[2]"), "sql params")
    assert picked["rows"] == [{"title": "b"}]
    schema = ok(ref("projects", "schema"), "projects schema")
    (items,) = [t for t in schema["tables"] if t["name"] == "items"]
    assert [c["name"] for c in items["columns"]] == ["id", "title"]

    wrong = {"version": "1", "tables": [{**MANIFEST["tables"][0], "name": "nope"}]}
    refused = ok(ref("projects", "validate-expose", json.dumps(wrong)), "validate-expose (bad)")
    assert refused["hasErrors"] is True and refused["errors"][0]["type"] == "missing-table"
    assert ok(ref("projects", "validate-expose", json.dumps(MANIFEST)), "validate-expose")["hasErrors"] is False
    applied = ok(ref("projects", "apply-expose", json.dumps(MANIFEST)), "apply-expose")
    assert applied["applied"]["tables"] == ["items"]
    got = ok(ref("projects", "get-expose"), "get-expose")
    assert got["source"] == "applied" and got["manifest"]["tables"] == MANIFEST["tables"]
    assert ok(ref("projects", "rest", "items", "select=title&id=eq.1"), "projects rest") == [{"title": "a"}]
    # what a browser with the anon key sees, straight over HTTP
    rows = httpx.get(f"{api.api_base}/rest/v1/items?order=id", headers={"apikey": project["anon_key"]}).json()
    assert [r["title"] for r in rows] == ["a", "b"]
    assert ok(ref("projects", "usage"), "projects usage")["api_calls"] > 0

    # --- a static site: deploy-dir, then an unchanged re-deploy uploads nothing ----------
    root = write_site(tmp_path / "site", SITE)
    first = ok(ref("sites", "deploy-dir", str(root), "--confirm-prune"), "sites deploy-dir")
    assert first["bytes_uploaded"] == first["bytes_total"] == sum(map(len, SITE.values()))
    host = host_of(first["url"])
    for name, data in SITE.items():
        assert site(api.api_base, host, "/" + name).content == data, name
    again = ok(ref("sites", "deploy-dir", str(root), "--confirm-prune"), "sites deploy-dir (unchanged)")
    assert again["bytes_uploaded"] == 0 and again["deployment_id"] == first["deployment_id"]

    # --- deploy: apply a patch, inspect operations and releases --------------------------
    spec = {"site": {"patch": {"put": {"about.html": ABOUT.decode()}}}}
    applied = ok(ref("deploy", "apply", "--spec", json.dumps(spec)), "deploy apply")
    release_id, operation_id = applied["release_id"], applied["operation_id"]
    assert [a["path"] for a in applied["diff"]["site"]["added"]] == ["about.html"]
    assert site(api.api_base, host, "/about.html").content == ABOUT
    assert site(api.api_base, host, "/index.html").content == SITE["index.html"]  # a patch keeps the rest
    operations = ok(ref("deploy", "list"), "deploy list")["operations"]
    assert operation_id in [o["operation_id"] for o in operations]
    events = ok(ref("deploy", "events", operation_id), "deploy events")["events"]
    assert events and events[0]["type"] == "plan.created"
    active = ok(ref("deploy", "release", "active"), "release active")["release"]
    assert active["release_id"] == release_id and active["status"] == "active"
    base_release = active["parent_id"]
    parent = ok(ref("deploy", "release", "get", base_release), "release get")["release"]
    assert parent["release_id"] == base_release
    diff = ok(ref("deploy", "release", "diff", "--from", base_release, "--to", "active"), "release diff")["diff"]
    assert [a["path"] for a in diff["site"]["added"]] == ["about.html"] and diff["to_release_id"] == release_id
    diagnosed = ok(ref("deploy", "diagnose", f"{first['url']}about.html"), "deploy diagnose")
    assert diagnosed["would_serve"] is True and diagnosed["match"] == "static_exact"
    resolved = ok(ref("deploy", "resolve", "--host", host.split(":")[0], "--path", "/nope.html"), "deploy resolve")
    assert resolved["would_serve"] is False and resolved["diagnostic_status"] == 404

    # --- a subdomain on the last deployment: claim, serve, list, release ----------------
    name = f"e2e-{secrets.token_hex(3)}"
    claimed = ok(ref("subdomains", "claim", name), "subdomains claim")
    assert claimed["deployment_id"] == first["deployment_id"] and claimed["project_id"] == pid
    sub_host = host_of(claimed["url"])
    assert site(api.api_base, sub_host, "/").content == SITE["index.html"]
    assert [s["name"] for s in ok(ref("subdomains", "list"), "subdomains list")] == [name]
    assert ok(ref("subdomains", "delete", name, "--confirm"), "subdomains delete")["status"] == "ok"
    assert ok(ref("subdomains", "list"), "subdomains list (after)") == []
    assert site(api.api_base, sub_host, "/").status_code == 404

    # --- secrets and functions: deploy, invoke (the secret inside), logs, list, delete -----
    ok(ref("secrets", "set", pid, "GREETING", "hello-from-a-secret"), "secrets set")
    assert [s["key"] for s in ok(ref("secrets", "list", pid), "secrets list")["secrets"]] == ["GREETING"]
    fn = tmp_path / "greet.ts"
    fn.write_text("export default async (req: Request): Promise<Response> => { console.log('greeting', req.method); "
                  "return Response.json({ greeting: process.env.GREETING, method: req.method }); };\n")
    deployed = ok(ref("functions", "deploy", pid, "greet", "--file", str(fn), "--timeout", "5"), "functions deploy")
    assert deployed["status"] == "deployed" and deployed["timeout"] == 5
    invoked = ok(ref("functions", "invoke", pid, "greet", "--method", "GET"), "functions invoke")
    assert invoked == {"greeting": "hello-from-a-secret", "method": "GET"}
    logs = ok(ref("functions", "logs", pid, "greet"), "functions logs")["logs"]
    assert any(e["message"] == "greeting GET" for e in logs)
    assert [f["name"] for f in ok(ref("functions", "list", pid), "functions list")["functions"]] == ["greet"]
    assert ok(ref("functions", "delete", pid, "greet"), "functions delete")["status"] == "ok"
    assert ok(ref("secrets", "delete", pid, "GREETING"), "secrets delete")["status"] == "ok"

    # --- the project goes, and with it its data -----------------------------------------
    ok(ref("projects", "delete", pid, "--confirm"), "projects delete")
    assert ok(ref("projects", "list"), "projects list (after)")["message"] == "No projects yet."
    gone = httpx.get(f"{api.api_base}/rest/v1/items", headers={"apikey": project["anon_key"]})
    assert gone.status_code in (401, 403, 404), gone.text


def test_both_clis_share_one_config_dir(ref: Callable[..., RefResult], cli: Callable[..., Any],
                                       api: Any, tmp_path: Path) -> None:
    """Either CLI continues where the other stopped: the allowance, projects.json, the active
    project and the last deployment are one state, whoever wrote it."""
    made = cli("allowance", "create")
    assert made.code == 0, made.stderr
    address = made.json["address"]
    assert ok(ref("allowance", "status"), "official allowance status")["address"].lower() == address.lower()
    assert ok(ref("allowance", "fund"), "official fund")["onchain"]["base-sepolia_usd_micros"] == 250_000
    paid = cli("tier", "set", "prototype")  # ours pays with the wallet the official one funded
    assert paid.code == 0, paid.stderr
    assert ledger_micros(api.api_base, address) == 150_000

    ours = cli("projects", "provision", "--name", "made-by-ours")
    assert ours.code == 0, ours.stderr
    pid_ours = ours.json["project_id"]
    theirs = ok(ref("projects", "provision", "--name", "made-by-official"), "official provision")
    pid_theirs = theirs["project_id"]
    # the official CLI made its project the active one; ours sees that, and both projects
    listed = cli("projects", "list")
    assert listed.code == 0, listed.stderr
    assert {p["project_id"]: p["active"] for p in listed.json} == {pid_ours: False, pid_theirs: True}

    assert cli("projects", "use", pid_ours).code == 0
    assert ok(ref("projects", "sql", "create table notes (body text)"), "official sql")["schema"] \
        == ours.json["schema_slot"]  # the official CLI follows the project ours made active
    wrote = cli("projects", "sql", "insert into notes values ('from ours') returning body")
    assert wrote.code == 0 and wrote.json["rows"] == [{"body": "from ours"}], wrote.stderr

    # a site deployed by the official CLI, a subdomain claimed by ours on that deployment
    root = write_site(tmp_path / "site", SITE)
    deployed = ok(ref("sites", "deploy-dir", str(root), "--confirm-prune"), "official deploy-dir")
    name = f"mix-{secrets.token_hex(3)}"
    claimed = cli("subdomains", "claim", name)
    assert claimed.code == 0, claimed.stderr
    assert claimed.json["deployment_id"] == deployed["deployment_id"]
    assert site(api.api_base, host_of(claimed.json["url"]), "/css/site.css").content == SITE["css/site.css"]
    # ...and ours re-deploys unchanged files: the official CLI's upload counts, nothing new
    redeployed = cli("sites", "deploy-dir", str(root), "--confirm-prune", "--quiet")
    assert redeployed.code == 0 and redeployed.json["bytes_uploaded"] == 0, redeployed.stderr
    assert [s["name"] for s in ok(ref("subdomains", "list"), "official subdomains list")] == [name]

    # the official CLI deletes the project ours made; ours no longer lists it
    ok(ref("projects", "delete", pid_ours, "--confirm"), "official delete")
    left = cli("projects", "list")
    assert [p["project_id"] for p in left.json] == [pid_theirs]
    keys = cli("projects", "keys", pid_theirs)
    assert keys.code == 0 and keys.json["service_key"] == theirs["service_key"]


def test_the_official_cli_stores_assets(ref: Callable[..., RefResult], cli: Callable[..., Any],
                                        api: Any, tmp_path: Path) -> None:
    """`assets put|get|ls|sign|rm` of the official CLI on our gateway, and what it stored read
    back by ours: the bytes served at its URLs are the file's, checked the way a browser checks
    SRI."""
    ok(ref("allowance", "create"), "allowance create")
    ok(ref("allowance", "fund"), "allowance fund")
    ok(ref("tier", "set", "prototype"), "tier set prototype")
    ok(ref("projects", "provision", "--name", "official-assets"), "projects provision")
    data = secrets.token_bytes(70_000) + b"\n"
    src = tmp_path / "report.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).digest()

    [put] = ok(ref("assets", "put", str(src), "--key", "docs/", "--immutable", "--meta", "owner=official"),
               "assets put")
    assert put["key"] == "docs/report.bin" and put["sha256"] == digest.hex()
    assert put["sri"] == "sha256-" + base64.b64encode(digest).decode()
    served = site(api.api_base, host_of(put["cdnUrl"]), urlsplit(put["cdnUrl"]).path)
    assert served.status_code == 200 and served.content == data
    assert served.headers["etag"] == put["etag"]

    out = tmp_path / "back.bin"
    ok(ref("assets", "get", "docs/report.bin", "--output", str(out)), "assets get")
    assert out.read_bytes() == data
    listed = ok(ref("assets", "ls", "--prefix", "docs/"), "assets ls")
    assert [b["key"] for b in listed["blobs"]] == ["docs/report.bin"]
    assert listed["blobs"][0]["metadata"] == {"owner": "official"}

    private = tmp_path / "secret.txt"
    private.write_bytes(b"for signed eyes only\n")
    [hidden] = ok(ref("assets", "put", str(private), "--private"), "assets put --private")
    assert hidden["cdnUrl"] is None and hidden["url"] is None
    signed = ok(ref("assets", "sign", "secret.txt", "--ttl", "120"), "assets sign")
    got = site(api.api_base, host_of(signed["signed_url"]), urlsplit(signed["signed_url"]).path
               + "?" + urlsplit(signed["signed_url"]).query)
    assert got.status_code == 200 and got.content == private.read_bytes()

    # ours reads what the official CLI stored, then the official CLI removes it
    ours = cli("assets", "ls", "--prefix", "docs/")
    assert ours.code == 0 and [b["key"] for b in ours.json["blobs"]] == ["docs/report.bin"], ours.stderr
    ok(ref("assets", "rm", "docs/report.bin"), "assets rm")
    assert ok(ref("assets", "ls", "--prefix", "docs/"), "assets ls (after)")["blobs"] == []
    gone = site(api.api_base, host_of(put["url"]), urlsplit(put["url"]).path)
    assert gone.status_code == 404
