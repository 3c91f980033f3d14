"""Gateway side of x402 v2: we are our own facilitator on a local testnet.

`requirement` / `payment_required` build what the gateway advertises in `PAYMENT-REQUIRED`;
`verify_payment` checks a `PAYMENT-SIGNATURE` (or `X-PAYMENT`) value offline: shape, payee,
amount, time window and the EIP-712 signature. It uses the same typed-data builder as the
client (`run402_cli.payments.transfer_typed_data`), so what is signed is what is checked.

Nonce reuse and balances are NOT checked here: the caller does that in one DB transaction.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from run402_cli.wire.x402 import decode_header, encode_header, transfer_typed_data

__all__ = [
    "USDC_BASE",
    "USDC_BASE_SEPOLIA",
    "PaymentInvalid",
    "VerifiedPayment",
    "payment_header",
    "payment_required",
    "payment_required_header",
    "requirement",
    "verify_payment",
]

USDC_BASE_SEPOLIA = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
USDC_BASE = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"

# network -> (asset, EIP-712 domain name). The on-chain contracts differ: Base Sepolia's
# USDC signs as "USDC", Base mainnet's as "USD Coin" (both version "2").
_ASSETS = {
    "eip155:84532": (USDC_BASE_SEPOLIA, "USDC"),
    "eip155:8453": (USDC_BASE, "USD Coin"),
}
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NONCE_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")
_AUTH_FIELDS = ("from", "to", "value", "validAfter", "validBefore", "nonce")


def requirement(
    *, amount_micros: int, pay_to: str, network: str = "eip155:84532", max_timeout_seconds: int = 300
) -> dict[str, Any]:
    """One `accepts` entry: scheme exact, USDC on `network`, amount in atomic units (= micro-USD)."""
    if network not in _ASSETS:
        raise ValueError(f"unsupported network {network!r}; use one of {sorted(_ASSETS)}")
    asset, name = _ASSETS[network]
    return {
        "scheme": "exact",
        "network": network,
        "asset": asset,
        "amount": str(int(amount_micros)),
        "payTo": pay_to,
        "maxTimeoutSeconds": int(max_timeout_seconds),
        "extra": {"name": name, "version": "2"},
    }


def payment_required(
    *, accepts: list[dict[str, Any]], resource_url: str, description: str, error: str | None = None
) -> dict[str, Any]:
    """The PaymentRequired v2 object (key order as the spec lists it)."""
    pr: dict[str, Any] = {"x402Version": 2}
    if error is not None:
        pr["error"] = error
    pr["resource"] = {"url": resource_url, "description": description, "mimeType": "application/json"}
    pr["accepts"] = accepts
    return pr


def payment_header(headers: Any) -> str | None:
    """The x402 payment a request carries: `PAYMENT-SIGNATURE` (v2), or `X-PAYMENT` (v1)."""
    return headers.get("payment-signature") or headers.get("x-payment") or None


def payment_required_header(pr: dict[str, Any]) -> str:
    """Value of the `PAYMENT-REQUIRED` response header: standard base64 of compact JSON."""
    return encode_header(pr)


class PaymentInvalid(Exception):
    """A payment the gateway refuses. `code` is UPPER_SNAKE (PAYMENT_INVALID_SIGNATURE, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class VerifiedPayment:
    payer: str  # lowercase
    pay_to: str  # lowercase
    amount_micros: int
    nonce: str  # lowercase 0x + 64 hex: the replay key
    network: str
    valid_before: int


def _malformed(message: str) -> PaymentInvalid:
    return PaymentInvalid("PAYMENT_MALFORMED", message)


def _int_field(auth: dict[str, Any], key: str) -> int:
    value = auth[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).isdigit():
        raise _malformed(f"authorization.{key} must be a decimal integer string")
    number = int(value)
    if number >= 2**256:
        raise _malformed(f"authorization.{key} exceeds uint256")
    return number


def verify_payment(
    header_value: str, *, requirement: dict[str, Any], now: float | None = None
) -> VerifiedPayment:
    """Check a PaymentPayload against the requirement we advertised; raise PaymentInvalid.

    The EIP-712 domain comes from *our* requirement, not from the payload's `accepted`, so a
    client cannot choose what it signs against."""
    try:
        payment = decode_header(header_value)
    except ValueError as exc:
        raise _malformed(f"payment header is not base64 JSON: {exc}") from None
    if payment.get("x402Version") != 2:
        raise _malformed(f"x402Version must be 2, got {payment.get('x402Version')!r}")

    accepted = payment.get("accepted")
    if not isinstance(accepted, dict):
        raise _malformed("accepted must be an object")
    if accepted.get("scheme") != requirement["scheme"]:
        raise PaymentInvalid("PAYMENT_WRONG_SCHEME", f"scheme must be {requirement['scheme']}")
    if accepted.get("network") != requirement["network"]:
        raise PaymentInvalid("PAYMENT_WRONG_NETWORK", f"network must be {requirement['network']}")
    if str(accepted.get("asset", "")).lower() != requirement["asset"].lower():
        raise PaymentInvalid("PAYMENT_WRONG_ASSET", f"asset must be {requirement['asset']}")

    inner = payment.get("payload")
    auth = inner.get("authorization") if isinstance(inner, dict) else None
    signature = inner.get("signature") if isinstance(inner, dict) else None
    if not isinstance(auth, dict) or any(k not in auth for k in _AUTH_FIELDS):
        raise _malformed(f"payload.authorization must have {', '.join(_AUTH_FIELDS)}")
    for key in ("from", "to"):
        if not isinstance(auth[key], str) or not _ADDRESS_RE.match(auth[key]):
            raise _malformed(f"authorization.{key} is not an address")
    if not isinstance(auth["nonce"], str) or not _NONCE_RE.match(auth["nonce"]):
        raise _malformed("authorization.nonce must be 0x + 32 bytes hex")
    if not isinstance(signature, str) or not _SIGNATURE_RE.match(signature):
        raise PaymentInvalid("PAYMENT_INVALID_SIGNATURE", "signature must be 0x + 65 bytes hex")
    value = _int_field(auth, "value")
    valid_after = _int_field(auth, "validAfter")
    valid_before = _int_field(auth, "validBefore")

    if auth["to"].lower() != requirement["payTo"].lower():
        raise PaymentInvalid("PAYMENT_WRONG_PAYEE", f"authorization.to must be {requirement['payTo']}")
    if value < int(requirement["amount"]):
        raise PaymentInvalid(
            "PAYMENT_AMOUNT_TOO_LOW", f"value {value} is below the required {requirement['amount']}"
        )
    current = now if now is not None else time.time()
    if current < valid_after:
        raise PaymentInvalid("PAYMENT_NOT_YET_VALID", f"authorization is valid only after {valid_after}")
    if current >= valid_before:
        raise PaymentInvalid("PAYMENT_EXPIRED", f"authorization expired at {valid_before}")

    from run402_cli.wire.eth import recover, transfer_digest

    try:
        typed = transfer_typed_data(auth, requirement)
        signer = recover(transfer_digest(typed["domain"], typed["message"]), signature)
    except (ValueError, KeyError, TypeError):
        raise PaymentInvalid("PAYMENT_INVALID_SIGNATURE", "signature could not be recovered") from None
    if signer.lower() != auth["from"].lower():
        raise PaymentInvalid("PAYMENT_INVALID_SIGNATURE", "signature does not match authorization.from")

    return VerifiedPayment(
        payer=auth["from"].lower(),
        pay_to=auth["to"].lower(),
        amount_micros=value,
        nonce=auth["nonce"].lower(),
        network=requirement["network"],
        valid_before=valid_before,
    )
