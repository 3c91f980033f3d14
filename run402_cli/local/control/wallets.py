"""Wallet-facing endpoints with no auth: the faucet, billing accounts (the local ledger), a
wallet's projects, and the JSON-RPC subset that lets the local ledger stand in for the
testnet chain (`eth_call balanceOf` on USDC)."""

from __future__ import annotations

import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.errors import GatewayError
from run402_cli.local.http_body import read_json
from run402_cli.local.control.ledger import balance, credit
from run402_cli.local.control.tiers import active_tier
from run402_cli.wire.times import iso as _iso
from run402_cli.local.control.x402 import USDC_BASE_SEPOLIA

__all__ = ["FAUCET_MICROS"]

FAUCET_MICROS = 250_000
_WALLET_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


def _wallet(raw: Any, field: str = "address") -> str:
    if not isinstance(raw, str) or not _WALLET_RE.match(raw):
        raise GatewayError(400, "INVALID_ADDRESS", f"{field} must be 0x followed by 40 hex characters",
                           details={"field": field})
    return raw.lower()


async def _json_body(request: Request) -> dict[str, Any]:
    return await read_json(request, empty={}, want_object=True)


async def _faucet(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    wallet = _wallet((await _json_body(request)).get("address"))
    ctx.limits.check_faucet(wallet)  # per address, and overall: each drip is a ledger row
    tx = "0x" + secrets.token_hex(32)

    def drip() -> None:  # in a thread: a busy pool must not block the event loop
        with ctx.pool.connection() as conn, conn.transaction():
            credit(conn, wallet, FAUCET_MICROS, kind="faucet", reference_type="faucet_tx", reference_id=tx)

    from starlette.concurrency import run_in_threadpool

    await run_in_threadpool(drip)
    return JSONResponse({"transaction_hash": tx, "amount_usd_micros": FAUCET_MICROS, "token": "USDC",
                         "network": "base-sepolia"})


def _account(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    wallet = _wallet(request.path_params["wallet"], "wallet")
    with ctx.pool.connection() as conn:
        available = balance(conn, wallet)
        if available is None:
            raise GatewayError(404, "ACCOUNT_NOT_FOUND", f"No billing account for {wallet}",
                               extra={"exists": False})
        tier, _s, expires = active_tier(conn, wallet)
    return JSONResponse({"identifier_type": "wallet", "exists": True, "available_usd_micros": available,
                         "held_usd_micros": 0, "email_credits_remaining": 0, "tier": tier,
                         "lease_expires_at": _iso(expires), "auto_recharge_enabled": False,
                         "auto_recharge_threshold": 0})


def _history(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    wallet = _wallet(request.path_params["wallet"], "wallet")
    try:
        limit = max(1, min(int(request.query_params.get("limit", "20")), 500))
    except ValueError:
        raise GatewayError(400, "BAD_LIMIT", "limit must be an integer") from None
    with ctx.pool.connection() as conn:
        rows = conn.execute(
            "SELECT id, direction, kind, amount_usd_micros, balance_after, reference_type, reference_id, "
            "metadata, created_at FROM run402_meta.ledger_entries WHERE wallet = %s ORDER BY id DESC LIMIT %s",
            (wallet, limit)).fetchall()
    return JSONResponse({"identifier": wallet, "identifier_type": "wallet", "entries": [
        {"id": str(r[0]), "direction": r[1], "kind": r[2], "amount_usd_micros": r[3],
         "balance_after_available": r[4], "balance_after_held": 0, "reference_type": r[5],
         "reference_id": r[6], "metadata": r[7], "created_at": _iso(r[8])} for r in rows]})


def _wallet_projects(request: Request) -> JSONResponse:
    ctx = request.app.state.ctx
    wallet = _wallet(request.path_params["wallet"], "wallet")
    with ctx.pool.connection() as conn:
        rows = conn.execute(
            "SELECT p.id, p.name, p.tier, p.status, p.api_calls, p.created_at, a.lease_expires_at "
            "FROM run402_meta.projects p LEFT JOIN run402_meta.accounts a ON a.wallet = p.wallet "
            "WHERE p.wallet = %s AND p.status <> 'purged' ORDER BY p.created_at", (wallet,)).fetchall()
    return JSONResponse({"wallet": wallet, "projects": [
        {"id": r[0], "name": r[1], "tier": r[2], "status": r[3], "api_calls": r[4], "storage_bytes": 0,
         "created_at": _iso(r[5]), "lease_expires_at": _iso(r[6])} for r in rows]})


_BALANCE_OF = "0x70a08231"
_CHAINS = {"84532": 84532, "8453": 8453}


def _rpc_result(req_id: Any, result: Any = None, error: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id}
    if error is not None:
        out["error"] = error
    else:
        out["result"] = result
    return out


async def _rpc(request: Request) -> JSONResponse:
    """Only what a wallet needs to read its test USDC. Chain 8453 (mainnet) has no funds here."""
    ctx = request.app.state.ctx
    chain = _CHAINS.get(request.path_params["chain"])
    if chain is None:
        raise GatewayError(404, "UNKNOWN_CHAIN", "Only chains 84532 and 8453 are served locally")
    try:
        call = await read_json(request, want_object=True)
    except GatewayError as exc:
        # Our envelope, plus the JSON-RPC error object a JSON-RPC client looks for.
        exc.extra.update(_rpc_result(None, error={"code": -32700, "message": "Parse error"}))
        raise
    req_id, method, params = call.get("id"), call.get("method"), call.get("params") or []
    if method == "eth_chainId":
        return JSONResponse(_rpc_result(req_id, hex(chain)))
    if method != "eth_call":
        return JSONResponse(_rpc_result(req_id, error={"code": -32601, "message": f"Method {method} not served locally"}))
    tx = params[0] if params and isinstance(params[0], dict) else {}
    data = str(tx.get("data") or tx.get("input") or "")
    if not data.startswith(_BALANCE_OF) or len(data) != 10 + 64:
        return JSONResponse(_rpc_result(req_id, error={"code": -32000, "message": "Only balanceOf is served"}))
    wallet = "0x" + data[-40:].lower()
    micros = 0
    if chain == 84532 and str(tx.get("to", "")).lower() == USDC_BASE_SEPOLIA.lower():
        with ctx.pool.connection() as conn:
            micros = balance(conn, wallet) or 0
    return JSONResponse(_rpc_result(req_id, "0x" + format(micros, "064x")))

