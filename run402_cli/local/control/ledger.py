"""The local testnet ledger: test USDC per wallet, and x402 settlement.

Settlement is one transaction: mark the authorization nonce used, debit the payer, and grant
what was bought. If any step fails, nothing happened — no debit, no grant, nonce still unused.
"""

from __future__ import annotations

from typing import Any, Callable

import psycopg
from starlette.requests import Request

from run402_cli.local.context import GatewayContext
from run402_cli.local.errors import GatewayError
from run402_cli.local.control.x402 import (
    PaymentInvalid,
    payment_header,
    payment_required,
    payment_required_header,
    requirement,
    verify_payment,
)
from run402_cli.wire.errors import PAYMENT_REQUIRED

__all__ = ["balance", "charge", "credit", "ensure_account", "micros_to_usd"]


def micros_to_usd(micros: int) -> str:
    return f"${micros / 1_000_000:.2f}"


def ensure_account(conn: psycopg.Connection, wallet: str) -> None:
    conn.execute("INSERT INTO run402_meta.accounts (wallet) VALUES (%s) ON CONFLICT DO NOTHING", (wallet,))


def balance(conn: psycopg.Connection, wallet: str) -> int | None:
    row = conn.execute("SELECT available_usd_micros FROM run402_meta.accounts WHERE wallet = %s",
                       (wallet,)).fetchone()
    return row[0] if row else None


def credit(conn: psycopg.Connection, wallet: str, amount: int, *, kind: str,
           reference_type: str | None = None, reference_id: str | None = None) -> int:
    ensure_account(conn, wallet)
    (after,) = conn.execute(
        "UPDATE run402_meta.accounts SET available_usd_micros = available_usd_micros + %s "
        "WHERE wallet = %s RETURNING available_usd_micros", (amount, wallet)).fetchone()
    _entry(conn, wallet, "credit", kind, amount, after, reference_type, reference_id)
    return after


def _entry(conn, wallet, direction, kind, amount, after, ref_type, ref_id) -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        "INSERT INTO run402_meta.ledger_entries (wallet, direction, kind, amount_usd_micros, balance_after, "
        "reference_type, reference_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (wallet, direction, kind, amount, after, ref_type, ref_id))


def _payment_error(request: Request, req: dict[str, Any], status_code: str, message: str,
                   description: str, **extra: Any) -> GatewayError:
    pr = payment_required(accepts=[req], resource_url=str(request.url), description=description,
                          error=message)
    return GatewayError(
        402, status_code, message, category="payment",
        next_actions=[{"action": "submit_payment", "label": f"Pay {micros_to_usd(int(req['amount']))} test USDC"}],
        headers={"PAYMENT-REQUIRED": payment_required_header(pr)},
        extra={"x402": pr, **extra},
    )


def charge(
    request: Request,
    ctx: GatewayContext,
    *,
    amount: int,
    description: str,
    kind: str,
    grant: Callable[[psycopg.Connection, str], dict[str, Any]],
) -> tuple[dict[str, Any], str]:
    """Take an x402 payment of `amount` micros for `grant(conn, payer)`; returns (result, payer).
    No payment header -> 402 with the requirements."""
    req = requirement(amount_micros=amount, pay_to=ctx.treasury_address)
    header = payment_header(request.headers)
    if not header:
        raise _payment_error(request, req, PAYMENT_REQUIRED,
                             f"Payment required: {micros_to_usd(amount)} test USDC", description)
    try:
        paid = verify_payment(header, requirement=req)
    except PaymentInvalid as exc:
        raise _payment_error(request, req, exc.code, exc.message, description) from None
    with ctx.pool.connection() as conn, conn.transaction():
        used = conn.execute(
            "INSERT INTO run402_meta.payment_nonces (nonce, payer, amount_usd_micros, resource) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING nonce",
            (paid.nonce, paid.payer, amount, request.url.path)).fetchone()
        if used is None:
            raise _payment_error(request, req, "PAYMENT_ALREADY_USED",
                                 "This payment authorization was already settled", description)
        ensure_account(conn, paid.payer)
        row = conn.execute(
            "UPDATE run402_meta.accounts SET available_usd_micros = available_usd_micros - %s "
            "WHERE wallet = %s AND available_usd_micros >= %s RETURNING available_usd_micros",
            (amount, paid.payer, amount)).fetchone()
        if row is None:
            have = balance(conn, paid.payer) or 0
            raise _payment_error(
                request, req, "INSUFFICIENT_FUNDS",
                f"Insufficient test USDC: have {micros_to_usd(have)}, need {micros_to_usd(amount)}",
                description,
                hint="Run: run402 allowance fund (the local faucet credits 0.25 test USDC)",
                details={"available_usd_micros": have, "required_usd_micros": amount},
            )
        _entry(conn, paid.payer, "debit", kind, amount, row[0], "x402_nonce", paid.nonce)
        result = grant(conn, paid.payer)
    return result, paid.payer
