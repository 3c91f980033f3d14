"""The data plane through PostgREST: `<METHOD> /rest/v1/<table>[?query]`, as the SDK's
`projects.rest` sends it.

Headers: `apikey: <anon_key>` and `Authorization: Bearer <anon_key>`, no SIWX;
every method but GET adds `Prefer: return=representation`, so writes return the affected rows.
The gateway refuses service keys here (403): this is the browser's view of the project.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["METHODS", "rest"]

METHODS = ("GET", "POST", "PATCH", "DELETE")


def rest(client: Client, anon_key: str, table: str, query: str | None = None,
         method: str = "GET", body: Any = None) -> Any:
    """One PostgREST call on `table`. `query` is PostgREST query syntax (`select=a,b&id=eq.1`),
    a leading `?` optional. Returns the body (usually an array of rows)."""
    path = f"/rest/v1/{quote(table, safe='')}"
    q = (query or "").lstrip("?")
    if q:
        path += "?" + q
    headers = {"apikey": anon_key}
    if method != "GET":
        headers["Prefer"] = "return=representation"
    return client.request(
        method, path, json=body, headers=headers, bearer=anon_key, wallet_auth=False,
        context=f"querying {table}",
    )
