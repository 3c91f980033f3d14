"""Tiers: the quote, a wallet's lease, and buying a tier with x402."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.control.callers import wallet_from_siwx
from run402_cli.wire.functions import TIER_FUNCTION_LIMITS
from run402_cli.wire.times import iso as _iso
from run402_cli.local.errors import GatewayError
from run402_cli.local.control.ledger import charge, ensure_account, micros_to_usd

__all__ = ["TIERS", "active_tier", "tier_status"]

# Function caps per tier are in wire.functions.TIER_FUNCTION_LIMITS (the CLI's preflight quotes them too).
TIERS: dict[str, dict[str, Any]] = {
    "prototype": {"price_micros": 100_000, "lease_days": 7, "storage_mb": 250, "api_calls": 500_000,
                  "max_secrets": 10, "rank": 1,
                  "description": "Prototype: 7 days, paid with testnet USDC"},
    "hobby": {"price_micros": 5_000_000, "lease_days": 30, "storage_mb": 1024, "api_calls": 5_000_000,
              "max_secrets": 50, "rank": 2, "description": "Hobby: 30 days"},
    "team": {"price_micros": 20_000_000, "lease_days": 30, "storage_mb": 10240, "api_calls": 50_000_000,
             "max_secrets": 200, "rank": 3, "description": "Team: 30 days"},
}




def active_tier(conn: psycopg.Connection, wallet: str) -> tuple[str | None, datetime | None, datetime | None]:
    row = conn.execute("SELECT tier, lease_started_at, lease_expires_at FROM run402_meta.accounts "
                       "WHERE wallet = %s", (wallet,)).fetchone()
    if not row or not row[0] or row[2] is None or row[2] <= datetime.now(timezone.utc):
        return None, (row[1] if row else None), (row[2] if row else None)
    return row[0], row[1], row[2]


def tier_status(conn: psycopg.Connection, wallet: str) -> dict[str, Any]:
    row = conn.execute("SELECT tier, lease_started_at, lease_expires_at FROM run402_meta.accounts "
                       "WHERE wallet = %s", (wallet,)).fetchone()
    tier, started, expires = row if row else (None, None, None)
    active = bool(tier and expires and expires > datetime.now(timezone.utc))
    projects, api_calls = conn.execute(
        "SELECT count(*), coalesce(sum(api_calls), 0) FROM run402_meta.projects "
        "WHERE wallet = %s AND status <> 'purged'", (wallet,)).fetchone()
    t = TIERS.get(tier or "")
    out: dict[str, Any] = {
        "wallet": wallet,
        "tier": tier,
        "lease_started_at": _iso(started),
        "lease_expires_at": _iso(expires),
        "active": active,
        "pool_usage": {
            "projects": projects,
            "total_api_calls": int(api_calls),
            "total_storage_bytes": 0,
            "api_calls_limit": t["api_calls"] if t else 0,
            "storage_bytes_limit": t["storage_mb"] * 1024 * 1024 if t else 0,
        },
    }
    if t:
        fn_caps = TIER_FUNCTION_LIMITS[tier]  # type: ignore[index]
        out["function_limits"] = {
            **{k: v for k, v in fn_caps.items() if k != "max_functions"},
            "current_scheduled_functions": 0,
        }
    return out


def _quote(request: Request) -> JSONResponse:
    return JSONResponse({"tiers": {
        name: {"price": micros_to_usd(t["price_micros"]), "price_usd_micros": t["price_micros"],
               "lease_days": t["lease_days"], "storage_mb": t["storage_mb"], "api_calls": t["api_calls"],
               "max_functions": TIER_FUNCTION_LIMITS[name]["max_functions"], "description": t["description"]}
        for name, t in TIERS.items()}})


def _status(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    wallet = wallet_from_siwx(request, ctx)
    with ctx.pool.connection() as conn:
        return JSONResponse(tier_status(conn, wallet))


def subscribe(conn: psycopg.Connection, wallet: str, tier: str) -> dict[str, Any]:
    """Grant `tier` to `wallet` (inside the payment transaction). Renewal extends from expiry."""
    ensure_account(conn, wallet)
    current, _started, expires = active_tier(conn, wallet)
    now = datetime.now(timezone.utc)
    days = timedelta(days=TIERS[tier]["lease_days"])
    if current is None:
        action, new_start, new_expiry = "subscribe", now, now + days
    elif current == tier:
        action, new_start, new_expiry = "renew", _started or now, (expires or now) + days
    else:
        action, new_start, new_expiry = "upgrade", now, now + days
    conn.execute("UPDATE run402_meta.accounts SET tier = %s, lease_started_at = %s, lease_expires_at = %s "
                 "WHERE wallet = %s", (tier, new_start, new_expiry, wallet))
    conn.execute("UPDATE run402_meta.projects SET tier = %s WHERE wallet = %s AND status <> 'purged'",
                 (tier, wallet))
    (remaining,) = conn.execute("SELECT available_usd_micros FROM run402_meta.accounts WHERE wallet = %s",
                                (wallet,)).fetchone()
    return {"wallet": wallet, "action": action, "tier": tier, "previous_tier": current,
            "lease_started_at": _iso(new_start), "lease_expires_at": _iso(new_expiry),
            "allowance_remaining_usd_micros": remaining}


def check_tier_change(conn: psycopg.Connection, wallet: str, tier: str) -> None:
    """Refuse before asking for money: a lower tier while a higher one is active."""
    current, _s, expires = active_tier(conn, wallet)
    if current and TIERS[tier]["rank"] < TIERS[current]["rank"]:
        raise GatewayError(
            409, "TIER_DOWNGRADE_NOT_ALLOWED",
            f"Cannot downgrade from {current} to {tier} while {current} is active (until {_iso(expires)})",
            category="payment", hint="Wait for the lease to end, then subscribe to the lower tier")


def _set(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    tier = request.path_params["tier"]
    if tier not in TIERS:
        raise GatewayError(400, "INVALID_TIER", f"Unknown tier {tier!r}",
                           details={"allowed": list(TIERS)})
    wallet = wallet_from_siwx(request, ctx)
    with ctx.pool.connection() as conn:
        check_tier_change(conn, wallet, tier)
    result, _payer = charge(
        request, ctx, amount=TIERS[tier]["price_micros"], kind="tier_" + tier,
        description=f"Run402 {tier} tier ({TIERS[tier]['lease_days']} days)",
        grant=lambda conn, payer: subscribe(conn, wallet, tier),
    )
    return JSONResponse(result)

