"""Small things every deploy module shares: ids, the anon-key caller, hosts and URLs, content
types, JSON bodies, the operation event log.

Kept apart so content.py, apply_*.py, releases.py, web/sites.py and web/subdomains.py agree on one
spelling of each."""

from __future__ import annotations

import json
import secrets
from typing import Any

import psycopg
from starlette.requests import Request

from run402_cli.local.control.callers import Project, bearer_token, verify_project_token
from run402_cli.local.context import GatewayContext
from run402_cli.wire.content_types import guess
from run402_cli.wire.times import iso
from run402_cli.local.errors import GatewayError
from run402_cli.local.http_body import read_json  # noqa: F401  (re-exported for the deploy routes)

__all__ = [
    "add_event", "canonical_json", "content_type_for", "deployment_host", "deployment_id_for", "iso",
    "label_url", "new_id", "project_from_apikey", "project_host", "read_json", "release_id_for_deployment",
]

def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def deployment_id_for(release_id: str) -> str:
    """A release and its deployment share their random part: rel_<hex> <-> dpl_<hex>."""
    return "dpl_" + release_id.split("_", 1)[1]


def release_id_for_deployment(deployment_id: str) -> str:
    return "rel_" + deployment_id.split("_", 1)[1]


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_type_for(path: str, declared: str | None = None) -> str:
    """The declared ContentRef type wins; else the extension table the client uses too."""
    return declared or guess(path)


def project_host(project_id: str) -> str:
    return project_id.replace("_", "-")


def deployment_host(deployment_id: str) -> str:
    return deployment_id.replace("_", "-")


def label_url(request: Request, label: str) -> str:
    """http://<label>.localhost:<port>/ for the port this request came in on."""
    port = request.url.port
    return f"http://{label}.localhost{':' + str(port) if port else ''}/"




def project_from_apikey(request: Request, ctx: GatewayContext) -> Project:
    """The deploy observability and content endpoints authenticate with the project's anon key
    in `apikey` (the service key works too); the project is the key's. User tokens do not."""
    token = request.headers.get("apikey") or bearer_token(request)
    if not token:
        raise GatewayError(401, "UNAUTHORIZED", "Missing project key (apikey: <anon_key>)", category="auth",
                           hint="Send the project's anon key in the apikey header")
    project, claims = verify_project_token(ctx, token)
    if claims.get("role") not in ("anon", "service_role"):
        raise GatewayError(403, "FORBIDDEN", "This endpoint needs the project's anon or service key",
                           category="auth")
    return project


def add_event(conn: psycopg.Connection, operation_id: str, project_id: str, event: dict[str, Any]) -> None:
    conn.execute("INSERT INTO run402_meta.deploy_events (operation_id, project_id, event) VALUES (%s, %s, %s)",
                 (operation_id, project_id, json.dumps(event)))
