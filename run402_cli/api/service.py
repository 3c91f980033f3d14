"""Service endpoints: `GET /status`, `GET /health`. No auth."""

from __future__ import annotations

from typing import Any

from run402_cli.api.client import Client

__all__ = ["health", "status"]


def status(client: Client) -> Any:
    """The service status document, as the server sends it."""
    return client.request("GET", "/status", wallet_auth=False, context="fetching service status")


def health(client: Client) -> Any:
    """The health document. A degraded service answers 503, which raises ApiError."""
    return client.request("GET", "/health", wallet_auth=False, context="checking service health")
