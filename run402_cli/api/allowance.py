"""Faucet and billing-account endpoints used by `init`, `status` and `allowance`.
None of them needs wallet auth; wallets are lowercased in URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from run402_cli.api.client import Client

__all__ = ["billing_account", "billing_history", "faucet"]


def faucet(client: Client, address: str) -> Any:
    """`POST /faucet/v1 {address}` -> `{transaction_hash, amount_usd_micros, token, network}`.
    The address goes as the allowance stores it (EIP-55 or lowercase), as the official client
    sends it; the API compares addresses case-insensitively."""
    return client.request(
        "POST", "/faucet/v1", json={"address": address}, wallet_auth=False,
        context="requesting faucet funds",
    )


def billing_account(client: Client, wallet: str) -> Any:
    """`GET /billing/v1/accounts/<wallet>`: the Run402 prepaid balance of a wallet."""
    return client.request(
        "GET", f"/billing/v1/accounts/{quote(wallet.lower(), safe='')}", wallet_auth=False,
        context="fetching billing account",
    )


def billing_history(client: Client, wallet: str, limit: int | None = None) -> Any:
    """`GET /billing/v1/accounts/<wallet>/history[?limit=n]`: ledger entries, newest first."""
    params = {"limit": limit} if limit is not None else None
    return client.request(
        "GET", f"/billing/v1/accounts/{quote(wallet.lower(), safe='')}/history", params=params,
        wallet_auth=False, context="fetching billing history",
    )
