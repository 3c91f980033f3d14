"""Tier endpoints: the quote, the wallet's tier status, and buying a tier.

Payment for `set_tier` happens inside the client (x402 as an httpx.Auth): this module only
sends the request and returns the result.
"""

from __future__ import annotations

from typing import Any

from run402_cli.api.client import Client

__all__ = ["TIERS", "quote", "set_tier", "status"]

TIERS = ("prototype", "hobby", "team")


def quote(client: Client) -> Any:
    """`GET /tiers/v1`: prices and limits of every tier (no auth)."""
    return client.request("GET", "/tiers/v1", wallet_auth=False, context="fetching tier quote")


def status(client: Client) -> Any:
    """`GET /tiers/v1/status` (SIWX): the wallet's tier, lease and pool usage."""
    return client.request("GET", "/tiers/v1/status", context="fetching tier status")


def set_tier(client: Client, tier: str) -> Any:
    """`POST /tiers/v1/<tier>` with `{}` (SIWX + x402): subscribe, renew, upgrade or downgrade."""
    return client.request("POST", f"/tiers/v1/{tier}", json={}, context=f"setting tier {tier}")
