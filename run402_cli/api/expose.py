"""The expose manifest: apply, read back, and validate without applying.

Apply and get take the project's service key. Validation with a project sends the service key
alone (no SIWX, as the SDK's `withAuth:false`); validation without a project is wallet-authed
(SIWX) and checks the manifest's shape only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["apply", "get", "validate_project", "validate_projectless"]


def _path(project_id: str, suffix: str = "") -> str:
    return f"/projects/v1/admin/{quote(project_id, safe='')}/expose{suffix}"


def _validation_body(manifest: Any, migration_sql: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"manifest": manifest}
    if migration_sql is not None:
        body["migration_sql"] = migration_sql
    return body


def apply(client: Client, project_id: str, service_key: str, manifest: Any) -> Any:
    """`POST .../expose` (Bearer SVC), body = the manifest ->
    `{status, project_id, applied{tables,views,rpcs}, dropped{...}, warnings}`.
    An invalid manifest is a 400 `INVALID_MANIFEST` with `errors[]` (raised as ApiError)."""
    return client.request(
        "POST", _path(project_id), json=manifest, bearer=service_key,
        context="applying expose manifest",
    )


def get(client: Client, project_id: str, service_key: str) -> Any:
    """`GET .../expose` (Bearer SVC) -> `{status, project_id, source, manifest}`;
    `source` is `applied`, or `introspected` when no manifest was ever applied."""
    return client.request(
        "GET", _path(project_id), bearer=service_key, context="fetching expose manifest",
    )


def validate_project(client: Client, project_id: str, service_key: str, manifest: Any,
                     migration_sql: str | None = None) -> Any:
    """`POST .../expose/validate` (Bearer SVC only) `{manifest, migration_sql?}` ->
    `{hasErrors, errors, warnings}`, checked against the live schema plus the migration."""
    return client.request(
        "POST", _path(project_id, "/validate"), json=_validation_body(manifest, migration_sql),
        bearer=service_key, wallet_auth=False, context="validating expose manifest",
    )


def validate_projectless(client: Client, manifest: Any, migration_sql: str | None = None) -> Any:
    """`POST /projects/v1/expose/validate` (SIWX) `{manifest, migration_sql?}` ->
    `{hasErrors, errors, warnings}`; references are checked against the migration only."""
    return client.request(
        "POST", "/projects/v1/expose/validate", json=_validation_body(manifest, migration_sql),
        context="validating expose manifest",
    )
