"""Project endpoints: provision, the wallet's list, and the admin calls
that take the project's service key (SQL, schema, usage, delete)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["delete", "list_for_wallet", "provision", "schema", "sql", "usage"]


def _pid(project_id: str) -> str:
    return quote(project_id, safe="")


def provision(client: Client, tier: str | None = None, name: str | None = None) -> Any:
    """`POST /projects/v1 {tier?, name?}` (SIWX; payable) ->
    `{project_id, anon_key, service_key, schema_slot}`. Saves nothing: the caller does."""
    body: dict[str, Any] = {}
    if tier is not None:
        body["tier"] = tier
    if name is not None:
        body["name"] = name
    return client.request("POST", "/projects/v1", json=body, context="provisioning project")


def list_for_wallet(client: Client, wallet: str) -> Any:
    """`GET /wallets/v1/<wallet>/projects` (no auth) -> `{wallet, projects:[...]}`."""
    return client.request(
        "GET", f"/wallets/v1/{quote(wallet.lower(), safe='')}/projects", wallet_auth=False,
        context="listing wallet projects",
    )


def sql(client: Client, project_id: str, service_key: str, query: str,
        params: list[Any] | None = None) -> Any:
    """`POST /projects/v1/admin/<id>/sql`: raw SQL as text/plain, or `{sql, params}` as JSON
    when there are parameters."""
    path = f"/projects/v1/admin/{_pid(project_id)}/sql"
    if params:
        return client.request(
            "POST", path, json={"sql": query, "params": params}, bearer=service_key,
            context="running SQL",
        )
    return client.request(
        "POST", path, content=query.encode("utf-8"), content_type="text/plain",
        bearer=service_key, context="running SQL",
    )


def schema(client: Client, project_id: str, service_key: str) -> Any:
    """`GET /projects/v1/admin/<id>/schema`: tables, columns, constraints, RLS policies."""
    return client.request(
        "GET", f"/projects/v1/admin/{_pid(project_id)}/schema", bearer=service_key,
        context="fetching schema",
    )


def usage(client: Client, project_id: str, service_key: str) -> Any:
    """`GET /projects/v1/admin/<id>/usage`: API calls and storage against the limits."""
    return client.request(
        "GET", f"/projects/v1/admin/{_pid(project_id)}/usage", bearer=service_key,
        context="fetching usage",
    )


def delete(client: Client, project_id: str, service_key: str) -> Any:
    """`DELETE /projects/v1/<id>`: immediate cascade purge. Returns "" (204) or the body."""
    return client.request(
        "DELETE", f"/projects/v1/{_pid(project_id)}", bearer=service_key,
        context="deleting project",
    )
