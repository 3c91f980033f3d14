"""The unified deploy ("apply") and content endpoints.

Auth, as the local contract fixes it (and the official client sends it):
- `POST /apply/v1/plans`, `.../plans/:id/commit`, `.../operations/:id/resume`: SIGN-IN-WITH-X
  only (the wallet owns the project);
- everything else under `/apply/v1/*` and `/content/v1/*`: `apikey: <anon_key>`, and the
  gateway infers the project from the key (no project id in the path or body). These go
  without SIWX (`wallet_auth=False`): the key is the credential, so the read-only commands
  (`deploy list|events|release|resolve`) need no allowance and sign nothing, and a deploy
  signs only the two calls that need a wallet.
- presigned upload URLs: nothing but the bytes (and `x-amz-checksum-sha256`).

Deploy error codes are upper-cased, as the SDK does (`operation_not_found` ->
`OPERATION_NOT_FOUND`). Path segments are URL-encoded.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, TypedDict
from urllib.parse import quote

from run402_cli.api.client import Client
from run402_cli.errors import ApiError

__all__ = [
    "CommitResponse",
    "ContentPlanResponse",
    "OperationSnapshot",
    "PlanResponse",
    "active_release",
    "commit",
    "content_commit",
    "content_plan",
    "diff_releases",
    "get_operation",
    "get_release",
    "list_operations",
    "operation_events",
    "plan",
    "put_part",
    "resolve",
    "resume",
]


class PlanResponse(TypedDict, total=False):
    kind: str  # "plan_response" (modern flat envelope); absent on legacy gateways
    schema_version: str
    plan_id: Optional[str]  # null for a dry run
    operation_id: Optional[str]
    base_release_id: Optional[str]
    manifest_digest: str
    is_noop: bool
    summary: str
    expected_events: list[str]
    missing_content: list[dict[str, Any]]  # [{sha256, size, present}], every referenced ref
    warnings: list[dict[str, Any]]
    payment_required: Optional[dict[str, Any]]
    migrations: dict[str, Any]
    site: dict[str, Any]
    functions: dict[str, Any]
    secrets: dict[str, Any]
    subdomains: dict[str, Any]
    routes: dict[str, Any]
    static_assets: dict[str, Any]
    diff: dict[str, Any]  # legacy envelope


class ContentPlanResponse(TypedDict, total=False):
    plan_id: str  # cplan_...
    expires_at: str
    # [{sha256, mode: single|multipart, parts: [{part_number, url, byte_start, byte_end}],
    #   part_size_bytes, part_count, upload_id, staging_key, expires_at}]
    missing: list[dict[str, Any]]
    entries: list[dict[str, Any]]  # [{sha256, missing}]


class CommitResponse(TypedDict, total=False):
    operation_id: str
    status: str  # running | schema_settling | activation_pending | ready | failed
    release_id: Optional[str]
    urls: Optional[dict[str, str]]
    error: Optional[dict[str, Any]]


class OperationSnapshot(CommitResponse, total=False):
    project_id: str
    plan_id: str
    base_release_id: Optional[str]
    target_release_id: Optional[str]
    payment_required: Optional[dict[str, Any]]
    activate_attempts: int
    last_activate_attempt_at: Optional[str]
    created_at: str
    updated_at: str
    phase: str


def _seg(value: str) -> str:
    return quote(value, safe="")


def _key(anon_key: str | None) -> dict[str, str]:
    # No key in the keystore: the header is simply omitted (the gateway then answers 401).
    return {"apikey": anon_key} if anon_key else {}


def _call(client: Client, method: str, path: str, **kw: Any) -> Any:
    kw.setdefault("base", client.deploy_base)
    try:
        return client.request(method, path, **kw)
    except ApiError as err:
        if isinstance(err.body, dict) and isinstance(err.body.get("code"), str):
            err.body = {**err.body, "code": err.body["code"].upper()}
            err.code = err.body["code"]
        raise


def plan(client: Client, body: dict[str, Any], *, dry_run: bool = False) -> PlanResponse:
    """`POST /apply/v1/plans[?dry_run=true]` `{spec, manifest_ref?, idempotency_key?}` (SIWX)."""
    path = "/apply/v1/plans?dry_run=true" if dry_run else "/apply/v1/plans"
    return _call(client, "POST", path, json=body, context="planning deploy")


def content_plan(client: Client, anon_key: str | None, content: list[dict[str, Any]]) -> ContentPlanResponse:
    """`POST /content/v1/plans {content: [{sha256, size, content_type?}]}` (apikey)."""
    return _call(client, "POST", "/content/v1/plans", json={"content": content},
                 headers=_key(anon_key), wallet_auth=False, context="planning content upload")


def put_part(client: Client, url: str, data: bytes | Iterable[bytes], *, length: int | None = None,
             checksum_sha256_b64: str | None = None, context: str = "uploading content") -> str | None:
    """PUT raw bytes to a presigned part URL; returns the response's ETag (or None).
    No Content-Type, no auth; `x-amz-checksum-sha256` when given. `data` may be an iterable
    of chunks (a part streamed from disk), with its `length` (sent as Content-Length:
    presigned PUTs take no chunked bodies)."""
    headers = {"x-amz-checksum-sha256": checksum_sha256_b64} if checksum_sha256_b64 else {}
    if not isinstance(data, (bytes, bytearray)):
        if length is None:
            raise ValueError("a streamed part needs its length")
        headers["Content-Length"] = str(length)
    resp = client.send("PUT", url, content=data, headers=headers, context=context)
    return resp.headers.get("etag")


# A commit may work a while before it answers: verifying and assembling large objects, making
# the variants of every photo a deploy puts (most of a second for each 12 MP JPEG), running
# migrations. It gets as long as the official client waits for an answer's head (Node's
# fetch: 300 s), not the 60 s of a read elsewhere; a server that answers early with an
# operation still running is polled as before.
COMMIT_TIMEOUT = 300.0


def content_commit(client: Client, anon_key: str | None, content_plan_id: str) -> Any:
    """`POST /content/v1/plans/:id/commit {}`: promote the staged uploads into the CAS."""
    return _call(client, "POST", f"/content/v1/plans/{_seg(content_plan_id)}/commit", json={},
                 headers=_key(anon_key), wallet_auth=False, context="committing content upload",
                 timeout=COMMIT_TIMEOUT)


def commit(client: Client, plan_id: str, idempotency_key: str | None = None) -> CommitResponse:
    """`POST /apply/v1/plans/:id/commit {}` or `{idempotency_key}` (SIWX)."""
    body = {"idempotency_key": idempotency_key} if idempotency_key else {}
    return _call(client, "POST", f"/apply/v1/plans/{_seg(plan_id)}/commit", json=body,
                 context="committing deploy", timeout=COMMIT_TIMEOUT)


def get_operation(client: Client, anon_key: str | None, operation_id: str) -> OperationSnapshot:
    return _call(client, "GET", f"/apply/v1/operations/{_seg(operation_id)}",
                 headers=_key(anon_key), wallet_auth=False, context="polling deploy operation")


def list_operations(client: Client, anon_key: str | None, *, limit: int | None = None,
                    cursor: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if limit is not None:
        params["limit"] = limit
    if cursor is not None:
        params["cursor"] = cursor
    return _call(client, "GET", "/apply/v1/operations", params=params or None,
                 headers=_key(anon_key), wallet_auth=False, context="listing deploy operations")


def operation_events(client: Client, anon_key: str | None, operation_id: str) -> dict[str, Any]:
    return _call(client, "GET", f"/apply/v1/operations/{_seg(operation_id)}/events",
                 headers=_key(anon_key), wallet_auth=False, context="fetching deploy events")


def resume(client: Client, operation_id: str) -> OperationSnapshot:
    """`POST /apply/v1/operations/:id/resume` (SIWX, no apikey, no body)."""
    return _call(client, "POST", f"/apply/v1/operations/{_seg(operation_id)}/resume",
                 context="resuming deploy operation", timeout=COMMIT_TIMEOUT)  # runs it to the end too


def get_release(client: Client, anon_key: str | None, release_id: str, *,
                site_limit: int | None = None) -> dict[str, Any]:
    params = {"site_limit": site_limit} if site_limit is not None else None
    return _call(client, "GET", f"/apply/v1/releases/{_seg(release_id)}", params=params,
                 headers=_key(anon_key), wallet_auth=False, context="fetching release")


def active_release(client: Client, anon_key: str | None, *, site_limit: int | None = None) -> dict[str, Any]:
    params = {"site_limit": site_limit} if site_limit is not None else None
    return _call(client, "GET", "/apply/v1/releases/active", params=params,
                 headers=_key(anon_key), wallet_auth=False, context="fetching active release")


def diff_releases(client: Client, anon_key: str | None, from_: str, to: str, *,
                  limit: int | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"from": from_, "to": to}
    if limit is not None:
        params["limit"] = limit
    return _call(client, "GET", "/apply/v1/releases/diff", params=params,
                 headers=_key(anon_key), wallet_auth=False, context="diffing releases")


def resolve(client: Client, anon_key: str | None, host: str, *, path: str | None = None,
            method: str | None = None) -> dict[str, Any]:
    """`GET /apply/v1/resolve?host=&path=&method=` (apikey; the project is never sent)."""
    params: dict[str, Any] = {"host": host}
    if path is not None:
        params["path"] = path
    if method is not None:
        params["method"] = method
    return _call(client, "GET", "/apply/v1/resolve", params=params, headers=_key(anon_key),
                 wallet_auth=False, context="resolving deploy URL")
