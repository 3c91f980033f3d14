"""Functions (spec/api-deploy.md §5.1): deploy, list, update, delete and logs under
`/projects/v1/admin/<pid>/functions*` with `Authorization: Bearer <service_key>`, and the direct
invoke `<METHOD> /functions/v1/<name>` with `apikey: <service_key>`.

The project key is the credential, so no SIGN-IN-WITH-X is signed for these calls; a 402 on a
lifecycle call (an expired lease) is still paid through the client. Invoke is not a paid
surface and goes without the wallet at all. Note the wire's config keys here are
`timeout`/`memory` (ReleaseSpec says `timeoutSeconds`/`memoryMb`).
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["delete", "deploy", "invoke", "list_", "logs", "update"]


def _base(project_id: str) -> str:
    return f"/projects/v1/admin/{quote(project_id, safe='')}/functions"


def _one(project_id: str, name: str) -> str:
    return f"{_base(project_id)}/{quote(name, safe='')}"


def deploy(client: Client, service_key: str, project_id: str, body: dict[str, Any]) -> Any:
    """`POST …/functions {name, code, config?: {timeout?, memory?}, deps?, schedule?}` ->
    `{name, url, status, runtime, timeout, memory, schedule?, created_at, runtime_version?,
    deps_resolved?, warnings?}`."""
    return client.request("POST", _base(project_id), json=body, bearer=service_key,
                          context="deploying function")


def list_(client: Client, service_key: str, project_id: str) -> Any:
    """`GET …/functions` -> `{functions: [{name, url, runtime, timeout, memory, schedule?,
    schedule_meta?, created_at, updated_at, ...}]}`."""
    return client.request("GET", _base(project_id), bearer=service_key, context="listing functions")


def update(client: Client, service_key: str, project_id: str, name: str, body: dict[str, Any]) -> Any:
    """`PATCH …/functions/<name> {schedule?: string|null, config?: {timeout?, memory?}}`."""
    return client.request("PATCH", _one(project_id, name), json=body, bearer=service_key,
                          context="updating function")


def delete(client: Client, service_key: str, project_id: str, name: str) -> Any:
    """`DELETE …/functions/<name>` -> `{status, name}`."""
    return client.request("DELETE", _one(project_id, name), bearer=service_key,
                          context="deleting function")


def logs(client: Client, service_key: str, project_id: str, name: str, *, tail: int = 50,
         since_ms: Optional[int] = None, request_id: Optional[str] = None) -> Any:
    """`GET …/functions/<name>/logs?tail=N[&since=<epoch ms>][&request_id=req_…]` ->
    `{logs: [{timestamp, message, event_id?, log_stream_name?, ingestion_time?, request_id?}]}`."""
    params: dict[str, Any] = {"tail": tail}
    if since_ms is not None:
        params["since"] = since_ms
    if request_id is not None:
        params["request_id"] = request_id
    return client.request("GET", f"{_one(project_id, name)}/logs", params=params, bearer=service_key,
                          context="fetching function logs")


def invoke(client: Client, service_key: str, name: str, *, method: str = "POST",
           body: Optional[str] = None) -> Any:
    """`<METHOD> /functions/v1/<name>` with `apikey: <service_key>`; `body` is sent as it is
    (text/plain, as a fetch() of a string sends it; never for GET/HEAD). Returns the function's
    response body: parsed when it says JSON, else text ("" when empty)."""
    send = body if body is not None and method not in ("GET", "HEAD") else None
    return client.request(
        method, f"/functions/v1/{quote(name, safe='')}",
        content=send.encode("utf-8") if send is not None else None,
        content_type="text/plain;charset=UTF-8" if send is not None else None,
        headers={"apikey": service_key}, wallet_auth=False, context="invoking function")
