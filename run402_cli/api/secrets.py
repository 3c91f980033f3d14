"""Secrets: `Authorization: Bearer <service_key>` on every call, no wallet auth.

Values are write-only: `set` sends one, nothing ever returns one. `list` keeps only each
entry's key and timestamps, whatever else an API sends (a legacy `value_hash`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["delete", "list_", "set_"]


def _path(project_id: str) -> str:
    return f"/projects/v1/admin/{quote(project_id, safe='')}/secrets"


def set_(client: Client, project_id: str, service_key: str, key: str, value: str) -> Any:
    """`POST /projects/v1/admin/<pid>/secrets {key, value}` (the answer carries no value)."""
    return client.request("POST", _path(project_id), json={"key": key, "value": value},
                          bearer=service_key, wallet_auth=False, context="setting secret")


def list_(client: Client, project_id: str, service_key: str) -> dict[str, list[dict[str, str]]]:
    """`GET .../secrets` -> `{secrets: [{key, created_at?, updated_at?}]}`; a bare array is
    accepted too, and entries without a string key are dropped."""
    body = client.request("GET", _path(project_id), bearer=service_key, wallet_auth=False,
                          context="listing secrets")
    raw = body if isinstance(body, list) else body.get("secrets") if isinstance(body, dict) else None
    out: list[dict[str, str]] = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            continue
        entry = {"key": item["key"]}
        for stamp in ("created_at", "updated_at"):
            if isinstance(item.get(stamp), str) and item[stamp]:
                entry[stamp] = item[stamp]
        out.append(entry)
    return {"secrets": out}


def delete(client: Client, project_id: str, service_key: str, key: str) -> Any:
    """`DELETE .../secrets/<key>` -> `{status, key}`."""
    return client.request("DELETE", f"{_path(project_id)}/{quote(key, safe='')}", bearer=service_key,
                          wallet_auth=False, context="deleting secret")
