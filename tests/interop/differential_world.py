"""The shared world of the differential tests: what both CLIs find on disk before a case
(`Seed`, `FILES`) and what the stand-in API answers (`world_routes`).

Everything here is deterministic (fixed key, fixed timestamps, fixed ids), so the two config
dirs of one case start byte-identical and the two CLIs get the same answers. The answers are
plausible hosted-API shapes (spec/api-*.md), only rich enough that neither CLI stops on a
missing field: the point is to compare what the CLIs send and print, not to model the API.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from run402_cli import config, wallet
from tests.interop.recording_server import Recorded, RecordingServer, Reply

__all__ = ["ADDRESS", "ASSET_HOST", "FILES", "PROJECT", "Seed", "asset_plan", "asset_routes", "content_plan",
           "world_routes"]

PRIVATE_KEY = "0x" + "11" * 32
ADDRESS = wallet.address_of(PRIVATE_KEY)  # checksummed, as `init` writes it
PROJECT = "prj_1700000000_0001"
OTHER = "prj_1700000000_0002"  # in the keystore, not active
NEW = "prj_1700000000_0003"  # what provisioning answers
FAUCET_MICROS = 250_000
LEASE = "2030-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class Seed:
    """Local state before a case: an allowance (or not) and keystore projects."""

    allowance: bool = True
    rail: str | None = None
    funded: bool = False
    projects: tuple[str, ...] = (PROJECT, OTHER)
    active: str | None = PROJECT
    extra: Mapping[str, Any] = field(default_factory=dict)  # merged into the active entry
    name: str = ""  # shown in a case's id when the case has no label of its own

    def write(self, config_dir: Path) -> None:
        if self.allowance:
            data: dict[str, Any] = {"address": ADDRESS, "privateKey": PRIVATE_KEY,
                                    "created": "2024-01-01T00:00:00.000Z", "funded": self.funded}
            if self.rail is not None:
                data["rail"] = self.rail
            config.write_allowance(config_dir / "allowance.json", data)
        if self.projects:
            store: dict[str, Any] = {"projects": {
                pid: {"anon_key": f"anon-{pid}", "service_key": f"svc-{pid}",
                      **(dict(self.extra) if pid == self.active else {})}
                for pid in self.projects}}
            if self.active:
                store["active_project_id"] = self.active
            config.atomic_write_json(config_dir / "projects.json", store, prefix="projects")


# Files a case may ask for in its working directory (name -> text).
_SITE = {f"site/{name}": f"<p>{name}</p>\n" for name in
         ("index.html", "about.html", "a.css", "b.js", "logo.txt")}
FILES: dict[str, dict[str, str]] = {
    "site": _SITE,
    "small-site": {"tiny/index.html": "<p>hi</p>\n"},
    "sites-manifest": {"site.json": json.dumps({"files": [
        {"file": "index.html", "data": "<p>hi</p>"}, {"file": "a.txt", "data": "aGk=", "encoding": "base64"}]})},
    "release": {"release.json": json.dumps({"site": {"replace": {"index.html": "<p>hi</p>"}}})},
    "sql": {"q.sql": "select 1;\n"},
    "expose": {"expose.json": json.dumps({"version": "1", "tables": [
        {"name": "items", "expose": True, "policy": "public_read_authenticated_write"}]})},
    "migration": {"setup.sql": "create table items (id serial primary key);\n"},
    "function": {"handler.ts": "export default async (req: Request) => Response.json({ ok: true });\n",
                 "handler.mjs": "export default async () => new Response('hi');\n",
                 "blank.js": "  \n", "notes.txt": "export default async () => new Response('hi');\n"},
    "job": {"job.json": json.dumps({"job_type": "kysigned.fflonk_prove.v0_17_0", "input": {"input.json": {}},
                                    "max_cost_usd_micros": 50000})},
    "secret": {"secret.pem": "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\r\n"},
    "assets": {"logo.png": "not really a png\n", "notes.txt": "hello\n", "app.js": "console.log(1)\n",
               "sub/notes.txt": "other\n"},
}

# --- the answers ------------------------------------------------------------------------

TIER_STATUS = {"wallet": ADDRESS.lower(), "tier": "prototype", "status": "active", "active": True,
               "lease_started_at": "2029-12-25T00:00:00.000Z", "lease_expires_at": LEASE,
               "pool_usage": {"api_calls": 0, "storage_bytes": 0}}
QUOTE = {"tiers": {"prototype": {"price": "$0.10", "lease_days": 7},
                   "hobby": {"price": "$5.00", "lease_days": 30}, "team": {"price": "$20.00", "lease_days": 30}}}
RELEASE = {"release_id": "rel_1", "project_id": PROJECT, "status": "active", "site": {"paths": []},
           "routes": [], "migrations": [], "subdomains": []}
READY = {"operation_id": "op_1", "plan_id": "pln_1", "project_id": PROJECT, "status": "ready",
         "release_id": "rel_1", "urls": {"site": "https://prj-1700000000-0001.run402.com"}}
PLAN = {"plan_id": "pln_1", "operation_id": "op_1", "manifest_digest": "d" * 64, "base_release_id": None,
        "diff": {"is_noop": False, "summary": "1 file added"}, "warnings": [], "missing_content": [],
        "expected_events": []}
JOB_RUN = {"job_id": "job_1", "job_type": "kysigned.fflonk_prove.v0_17_0", "status": "queued",
           "created_at": "2029-12-25T00:00:00.000Z"}
RESOLUTION = {"hostname": "my-app.run402.com", "path": "/x", "method": "GET", "result": 200,
              "match": "static_exact", "release_id": "rel_1", "static_sha256": "a" * 64}


# --- assets (blob storage) --------------------------------------------------------------

ASSET_HOST = "https://pr-1700000000-0001.run402.com"
DIAGNOSE = {"projectId": "prj_1700000000_0001", "key": "logo.png", "expectedSha256": "a" * 64,
            "observedSha256": "a" * 64, "vantage": "gateway-us-east-1", "probeMethod": "GET_RANGE_0_0",
            "acceptEncoding": "identity", "observedAt": "2029-12-25T00:00:00.000Z",
            "probeMayHaveWarmedCache": True, "canonicalUrl": f"{ASSET_HOST}/_blob/logo.png",
            "pathKind": "blob-mutable", "cache": {"xCache": "Hit from cloudfront", "ageSeconds": 3, "cacheKind": "mutable"},
            "invalidation": {"id": None, "status": None}, "hint": "fresh"}
BLOBS = {"blobs": [{"key": "logo.png", "size_bytes": 17, "content_type": "image/png", "visibility": "public",
                    "created_at": "2029-12-25T00:00:00.000Z"}], "next_cursor": None}


def _asset_ref(e: Mapping[str, Any], image: bool) -> dict[str, Any]:
    """A plausible hosted `asset_ref` for one wire put entry (URLs on the pr-<id> host)."""
    from run402_cli.wire.assets import content_digest, etag, immutable_key, sri

    key, sha = str(e.get("key")), str(e.get("sha256"))
    public = e.get("visibility", "public") == "public"
    url = f"{ASSET_HOST}/_blob/{key}" if public else None
    iurl = f"{ASSET_HOST}/_blob/{immutable_key(key, sha)}" if public and e.get("immutable", True) else None
    ref: dict[str, Any] = {"key": key, "sha256": sha, "size_bytes": e.get("size_bytes"),
                           "content_type": e.get("content_type"), "visibility": e.get("visibility", "public"),
                           "immutable": e.get("immutable", True), "url": url, "immutable_url": iurl,
                           "cdn_url": url, "cdn_immutable_url": iurl, "sri": sri(sha), "etag": etag(sha),
                           "content_digest": content_digest(sha)}
    if "metadata" in e:
        ref["metadata"] = e["metadata"]
    if image and str(e.get("content_type", "")).startswith("image/"):
        stem = (iurl or f"{ASSET_HOST}/_blob/{key}").rsplit(".", 1)[0]
        ref.update(width_px=2000, height_px=1000, blurhash="LEHV6nWB2yk8", variant_spec_version="v1",
                   display_url=url, display_immutable_url=iurl,
                   variants={name: {"url": f"{stem}-v1-{name}-abc123.webp", "cdn_url": f"{stem}-v1-{name}-abc123.webp",
                                    "width_px": w, "height_px": w // 2, "format": "webp", "sha256": "b" * 64}
                             for name, w in (("thumb", 320), ("medium", 800), ("large", 1920))})
    return ref


def asset_plan(*, present: bool = True, variants_on_dry_run: bool = False) -> Any:
    """`POST /apply/v1/plans` for an assets slice: a modern plan whose `asset_entries` echo the
    spec's puts; every byte present (nothing to upload) unless `present=False`. A dry run (the
    image refresh after a commit) answers the image fields when `variants_on_dry_run`."""

    def answer(req: Recorded) -> Reply:
        spec = (req.json or {}).get("spec") or {}
        puts = [e for e in ((spec.get("assets") or {}).get("put") or []) if isinstance(e, dict)]
        dry = "dry_run=true" in req.query
        return Reply(200, {
            "kind": "plan_response", "schema_version": "agent-deploy-observability.v1",
            "plan_id": None if dry else "pln_1", "operation_id": None if dry else "op_1",
            "base_release_id": None, "manifest_digest": "d" * 64, "is_noop": False,
            "summary": f"{len(puts)} asset(s)", "expected_events": [], "warnings": [], "payment_required": None,
            "missing_content": [{"sha256": e.get("sha256"), "size": e.get("size_bytes"), "present": present or dry}
                                for e in puts],
            "asset_entries": [{**{k: e.get(k) for k in ("key", "sha256", "size_bytes", "content_type",
                                                        "visibility", "immutable")},
                               "status": "present" if present else "upload_pending",
                               "asset_ref": _asset_ref(e, dry and variants_on_dry_run)} for e in puts],
        })

    return answer


def content_plan(req: Recorded) -> Reply:
    """`POST /content/v1/plans`: one single-part presigned PUT per object, on this server."""
    host = req.headers.get("host", "127.0.0.1")
    items = [c for c in ((req.json or {}).get("content") or []) if isinstance(c, dict)]
    return Reply(200, {"plan_id": "cp_1", "missing": [
        {"sha256": c.get("sha256"), "mode": "single", "part_size_bytes": c.get("size"), "part_count": 1,
         "parts": [{"part_number": 1, "url": f"http://{host}/s3/{c.get('sha256')}", "byte_start": 0,
                    "byte_end": max(int(c.get("size") or 0) - 1, 0)}]} for c in items]})


def asset_routes(**plan: Any) -> dict[tuple[str, Any], Any]:
    """The answers an `assets put` needs (see asset_plan for the options)."""
    return {
        ("POST", "/apply/v1/plans"): asset_plan(**plan),
        ("POST", "/content/v1/plans"): content_plan,
        ("POST", "/content/v1/plans/*/commit"): Reply(200, {"status": "committed"}),
        ("PUT", "/s3/*"): Reply(200, {}, headers={"ETag": '"etag-1"'}),
        ("POST", "/apply/v1/plans/*/commit"): Reply(200, READY),
    }


def _ledger_micros(server: RecordingServer) -> int:
    """Test USDC on Base Sepolia: 0 until this run asked the faucet, then the faucet's grant
    (so `allowance fund` and `init` see their funds arrive on the first poll)."""
    return FAUCET_MICROS if any(r.method == "POST" and r.path == "/faucet/v1" for r in server.requests) else 0


def world_routes(server: RecordingServer, *, balance: int | None = None) -> dict[tuple[str, str], Any]:
    """The canned API. `balance`: a fixed Base Sepolia balance instead of the faucet rule."""

    def micros() -> int:
        return _ledger_micros(server) if balance is None else balance

    def account(_: Recorded) -> Reply:
        # Also what offline_chain.mjs reads for the official CLI's Sepolia balanceOf.
        return Reply(200, {"exists": True, "wallet": ADDRESS.lower(), "available_usd_micros": micros(),
                           "held_usd_micros": 0})

    def rpc(chain_micros: Any) -> Any:
        # Our CLI reads balances from <api_base>/rpc/v1/<chain> when the base is loopback.
        def answer(req: Recorded) -> Reply:
            call = req.json or {}
            result: Any = "0x14a34" if call.get("method") == "eth_chainId" else \
                "0x" + format(chain_micros(), "064x")
            return Reply(200, {"jsonrpc": "2.0", "id": call.get("id", 1), "result": result})
        return answer

    return {
        ("GET", "/tiers/v1"): Reply(200, QUOTE),
        ("GET", "/tiers/v1/status"): Reply(200, TIER_STATUS),
        ("POST", "/tiers/v1/*"): Reply(200, {"wallet": ADDRESS.lower(), "action": "subscribe",
                                            "tier": "prototype", "lease_expires_at": LEASE}),
        ("POST", "/faucet/v1"): Reply(200, {"transaction_hash": "0x" + "ab" * 32, "amount_usd_micros": FAUCET_MICROS,
                                           "token": "USDC", "network": "base-sepolia"}),
        ("GET", "/billing/v1/accounts/*"): account,
        ("POST", "/rpc/v1/84532"): rpc(micros),
        ("POST", "/rpc/v1/8453"): rpc(lambda: 0),
        ("GET", "/wallets/v1/*/projects"): Reply(200, {"wallet": ADDRESS.lower(), "projects": [
            {"id": PROJECT, "name": "demo", "tier": "prototype", "status": "active"}]}),
        ("POST", "/projects/v1"): Reply(201, {"project_id": NEW, "anon_key": f"anon-{NEW}",
                                             "service_key": f"svc-{NEW}", "schema_slot": "p0003",
                                             "tier": "prototype", "lease_expires_at": LEASE}),
        ("DELETE", "/projects/v1/*"): Reply(200, {"status": "deleted", "project_id": PROJECT}),
        ("POST", "/projects/v1/admin/*/sql"): Reply(200, {"status": "ok", "schema": "p0001",
                                                         "rows": [{"one": 1}], "rowCount": 1}),
        ("GET", "/projects/v1/admin/*/schema"): Reply(200, {"schema": "p0001", "tables": []}),
        ("GET", "/projects/v1/admin/*/usage"): Reply(200, {"project_id": PROJECT, "tier": "prototype",
                                                          "api_calls": 0, "storage_bytes": 0}),
        ("POST", "/projects/v1/admin/*/expose"): Reply(200, {"status": "ok", "applied": True}),
        ("GET", "/projects/v1/admin/*/expose"): Reply(200, {"source": "applied", "manifest": {"version": "1"}}),
        ("POST", "/projects/v1/admin/*/expose/validate"): Reply(200, {"hasErrors": False, "errors": [],
                                                                     "warnings": []}),
        ("POST", "/projects/v1/expose/validate"): Reply(200, {"hasErrors": False, "errors": [], "warnings": []}),
        ("POST", "/projects/v1/admin/*/promote-user"): Reply(200, {"status": "ok"}),
        ("POST", "/projects/v1/admin/*/demote-user"): Reply(200, {"status": "ok"}),
        ("GET", "/rest/v1/*"): Reply(200, [{"id": 1}]),
        ("*", "/rest/v1/*"): Reply(201, [{"id": 2}]),
        ("POST", "/auth/v1/*"): Reply(200, {"status": "ok"}),
        ("POST", "/auth/v1/token"): Reply(200, {"access_token": "at", "refresh_token": "rt", "user": {"id": "u1"}}),
        ("PUT", "/auth/v1/user/password"): Reply(200, {"status": "ok"}),
        ("PATCH", "/auth/v1/settings"): Reply(200, {"allow_password_set": False}),
        ("GET", "/auth/v1/providers"): Reply(200, {"providers": ["magic_link"]}),
        ("GET", "/status"): Reply(200, {"schema": "run402-status-v1", "current_status": "operational",
                                       "operator": {"name": "test"}, "capabilities": {}}),
        ("GET", "/health"): Reply(200, {"status": "healthy", "checks": {"postgres": "ok"}, "version": "1"}),
        ("POST", "/subdomains/v1"): Reply(201, {"name": "my-app", "deployment_id": "dpl_1",
                                               "url": "https://my-app.run402.com"}),
        ("GET", "/subdomains/v1"): Reply(200, [{"name": "my-app", "url": "https://my-app.run402.com"}]),
        ("DELETE", "/subdomains/v1/*"): Reply(200, {"status": "ok"}),
        ("POST", "/apply/v1/plans"): Reply(200, PLAN),
        ("POST", "/apply/v1/plans/*/commit"): Reply(200, READY),
        ("GET", "/apply/v1/operations"): Reply(200, {"operations": [READY], "cursor": None}),
        ("GET", "/apply/v1/operations/*"): Reply(200, READY),
        ("GET", "/apply/v1/operations/*/events"): Reply(200, {"operation_id": "op_1", "events": []}),
        ("POST", "/apply/v1/operations/*/resume"): Reply(200, READY),
        ("GET", "/apply/v1/releases/*"): Reply(200, RELEASE),
        ("GET", "/apply/v1/releases/diff"): Reply(200, {"from": "empty", "to": "rel_1", "site": {"added": []}}),
        ("GET", "/apply/v1/resolve"): Reply(200, RESOLUTION),
        ("POST", "/projects/v1/admin/*/secrets"): Reply(200, {"status": "ok", "key": "API_KEY"}),
        ("GET", "/projects/v1/admin/*/secrets"): Reply(200, {"secrets": [
            {"key": "API_KEY", "created_at": "2029-12-25T00:00:00.000Z", "updated_at": "2029-12-25T00:00:00.000Z",
             "value_hash": "legacy"}]}),
        ("DELETE", "/projects/v1/admin/*/secrets/*"): Reply(200, {"status": "deleted", "key": "API_KEY"}),
        ("POST", "/jobs/v1/runs"): Reply(202, JOB_RUN),
        ("GET", "/jobs/v1/runs/*"): Reply(200, JOB_RUN),
        ("GET", "/jobs/v1/runs/*/logs"): Reply(200, {"logs": [{"timestamp": 1700000000000, "message": "proving",
                                                               "log_stream_name": "s", "event_id": "e1"}]}),
        ("DELETE", "/jobs/v1/runs/*"): Reply(200, {**JOB_RUN, "status": "cancelled"}),
        ("GET", "/storage/v1/blobs"): Reply(200, BLOBS),
        ("GET", "/storage/v1/blobs/diagnose"): Reply(200, DIAGNOSE),
        ("GET", "/storage/v1/blob/*"): Reply(200, b"blob bytes\n"),
        ("DELETE", "/storage/v1/blob/*"): Reply(200, {"status": "deleted"}),
        ("POST", "/storage/v1/blob/*/sign"): Reply(200, {"signed_url": f"{ASSET_HOST}/_blob/logo.png?X-Amz-Signature=x",
                                                        "expires_at": "2029-12-25T01:00:00.000Z", "expires_in": 3600}),
    }
