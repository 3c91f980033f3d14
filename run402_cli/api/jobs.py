"""Platform-managed jobs: `Authorization: Bearer <service_key>` on every call.

`submit` sends a fresh `Idempotency-Key: job-<uuid4>` header per call (the only namespace that
uses the header; deploys carry their key in the body). A 402 on a submit is paid like any
other (the key authenticates; no SIGN-IN-WITH-X is signed)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["cancel", "get", "idempotency_key", "logs", "submit"]


def idempotency_key() -> str:
    return f"job-{uuid.uuid4()}"


def _run(job_id: str) -> str:
    return f"/jobs/v1/runs/{quote(job_id, safe='')}"


def submit(client: Client, service_key: str, request: dict[str, Any]) -> Any:
    """`POST /jobs/v1/runs {job_type, input, max_cost_usd_micros}` -> 202 ManagedJobResponse."""
    return client.request("POST", "/jobs/v1/runs", json=request, bearer=service_key,
                          headers={"Idempotency-Key": idempotency_key()}, context="submitting job")


def get(client: Client, service_key: str, job_id: str) -> Any:
    """`GET /jobs/v1/runs/<job_id>` -> ManagedJobResponse."""
    return client.request("GET", _run(job_id), bearer=service_key, context="getting job")


def logs(client: Client, service_key: str, job_id: str, *, tail: int | None = None,
         since: int | None = None) -> Any:
    """`GET /jobs/v1/runs/<job_id>/logs?tail=&since=` -> `{logs: [...]}`."""
    params = {k: str(v) for k, v in (("tail", tail), ("since", since)) if v is not None}
    return client.request("GET", _run(job_id) + "/logs", params=params or None, bearer=service_key,
                          context="getting job logs")


def cancel(client: Client, service_key: str, job_id: str) -> Any:
    """`DELETE /jobs/v1/runs/<job_id>`."""
    return client.request("DELETE", _run(job_id), bearer=service_key, context="cancelling job")
