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

__all__ = ["ADDRESS", "FILES", "PROJECT", "Seed", "world_routes"]

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
    }
