"""Subdomains: `Authorization: Bearer <service_key>` on every call.

A claimed subdomain follows the project's latest activated release (auto-reassign)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["claim", "delete", "list_"]


def claim(client: Client, service_key: str, name: str, deployment_id: str) -> Any:
    """`POST /subdomains/v1 {name, deployment_id}` -> 201
    `{name, deployment_id, url, deployment_url, project_id, created_at, updated_at}`."""
    return client.request("POST", "/subdomains/v1", json={"name": name, "deployment_id": deployment_id},
                          bearer=service_key, wallet_auth=False, context="claiming subdomain")


def list_(client: Client, service_key: str) -> list[dict[str, Any]]:
    """`GET /subdomains/v1` -> `{subdomains: [...]}`, unwrapped to the array (missing -> [])."""
    body = client.request("GET", "/subdomains/v1", bearer=service_key, wallet_auth=False,
                          context="listing subdomains")
    if isinstance(body, dict) and isinstance(body.get("subdomains"), list):
        return body["subdomains"]
    return []


def delete(client: Client, service_key: str, name: str) -> Any:
    """`DELETE /subdomains/v1/<name>` -> `{name, deployment_id, project_id, deleted_at}`."""
    return client.request("DELETE", f"/subdomains/v1/{quote(name, safe='')}", bearer=service_key,
                          wallet_auth=False, context="releasing subdomain")
