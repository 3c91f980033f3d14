"""x402 v2 payments (scheme `exact`, EIP-3009): the client kernel's retry, and an `httpx.Auth`.

The flow copies `@x402/fetch` `wrapFetchWithPayment`: send, and on a 402 carrying a
`PAYMENT-REQUIRED` header sign a `TransferWithAuthorization` and resend the same request
once with `PAYMENT-SIGNATURE`. The second answer is returned as-is.

We do not use the official `x402` Python SDK here: its `ExactEvmScheme` writes
`validAfter: "0"` (the spec's TypeScript client writes now-600) and reads the clock itself,
importing it pulls pydantic, web3-dependent signers and ~1 s of start-up, and it is not a
dependency of this package. The wire format is small enough to own; tests cross-check our
EIP-712 digest against the SDK's when it is installed.

The header encoding and the EIP-712 message live in `run402_cli.wire.x402`, which the gateway's
verifier imports too: signer and verifier build the very same message.

`payment_retry_headers` is the one decision (pay this 402 or not, and with what); the API
client (api/client.py) calls it on its own requests, and `X402Auth` wraps it for httpx users
(httpx is imported only when X402Auth is first used: the CLI does not need it).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from run402_cli.errors import PaymentError
from run402_cli.wire.x402 import (  # the wire shapes the gateway's verifier shares
    _uint, chain_id_of, decode_header, encode_header, transfer_typed_data,
)

__all__ = [
    "PAYABLE_NETWORKS",
    "X402Auth",
    "payment_retry_headers",
    "chain_id_of",
    "choose_requirement",
    "decode_header",
    "encode_header",
    "sign_payment",
    "transfer_typed_data",
]

PAYABLE_NETWORKS = ("eip155:84532", "eip155:8453")  # Base Sepolia, Base: all the official client pays on
VALID_AFTER_SKEW = 600  # seconds; the TS client backdates validAfter by 10 minutes

_SIWX = "sign-in-with-x"
_PAYMENT_HEADERS = ("payment-signature", "x-payment")

def sign_payment(
    private_key: str,
    requirement: dict[str, Any],
    resource: dict[str, Any] | None,
    extensions: dict[str, Any] | None = None,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """A signed x402 v2 `PaymentPayload` for one `accepts` entry: an EIP-3009 authorization signed as EIP-712.

    `resource` and `extensions` are copied from the PaymentRequired; like JSON.stringify
    dropping `undefined`, they are omitted when None."""
    from run402_cli.wire.eth import address_of, sign_digest, to_checksum_address, transfer_digest

    moment = int(now if now is not None else time.time())
    authorization = {
        "from": address_of(private_key),
        "to": to_checksum_address(requirement["payTo"]),
        "value": str(_uint(requirement["amount"])),
        "validAfter": str(moment - VALID_AFTER_SKEW),
        "validBefore": str(moment + int(requirement["maxTimeoutSeconds"])),
        "nonce": "0x" + secrets.token_bytes(32).hex(),
    }
    typed = transfer_typed_data(authorization, requirement)
    signature = sign_digest(transfer_digest(typed["domain"], typed["message"]), private_key)
    payload: dict[str, Any] = {
        "x402Version": 2,
        "payload": {"authorization": authorization, "signature": signature},
    }
    if extensions is not None:
        payload["extensions"] = extensions
    if resource is not None:
        payload["resource"] = resource
    payload["accepted"] = requirement
    return payload


def choose_requirement(accepts: Any) -> dict[str, Any]:
    """The first `exact` EIP-3009 option on Base / Base Sepolia, or PaymentError.

    Permit2 options are skipped: we only implement `transferWithAuthorization`."""
    options = accepts if isinstance(accepts, list) else []
    for option in options:
        if (
            isinstance(option, dict)
            and option.get("scheme") == "exact"
            and option.get("network") in PAYABLE_NETWORKS
            and (option.get("extra") or {}).get("assetTransferMethod", "eip3009") == "eip3009"
        ):
            return option
    seen = [
        {"scheme": o.get("scheme"), "network": o.get("network")} for o in options if isinstance(o, dict)
    ]
    raise PaymentError(
        "No payment option this client can pay",
        details={"accepts": seen, "supported": {"scheme": "exact", "networks": list(PAYABLE_NETWORKS)}},
    )


def payment_retry_headers(
    private_key: str,
    request_headers: Mapping[str, str],
    response_headers: Any,
    *,
    now: Callable[[], float] = time.time,
) -> dict[str, str] | None:
    """For a request that got a 402: the headers to resend it with once, paid; or None when
    the 402 goes back to the caller as it is (no PAYMENT-REQUIRED header, a payment already
    attached, nothing to pay). PaymentError when it asks for a payment this client cannot
    make. `response_headers` needs a case-insensitive `.get`."""
    header = response_headers.get("payment-required")
    sent = {name.lower() for name in request_headers}
    if header is None or any(h in sent for h in _PAYMENT_HEADERS):
        return None  # unpayable here, or already paid once: the caller maps the 402
    try:
        required = decode_header(header)
    except ValueError as exc:
        raise PaymentError(f"Failed to parse payment requirements: {exc}") from None
    if required.get("x402Version") != 2:
        raise PaymentError(
            "Failed to parse payment requirements: unsupported x402Version "
            f"{required.get('x402Version')!r} (only 2 is supported)"
        )
    if required.get("accepts") == []:
        # Nothing to pay: the 402 is about something else (e.g. a refused SIGN-IN-WITH-X);
        # the caller shows its envelope.
        return None
    option = choose_requirement(required.get("accepts"))
    try:
        payment = sign_payment(
            private_key, option, required.get("resource"), required.get("extensions"), now=now(),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise PaymentError(f"Failed to sign payment: {exc}", details={"accepted": option}) from None
    return {
        "PAYMENT-SIGNATURE": encode_header(payment),
        # A request header in the TS client too (harmless quirk, kept for wire parity).
        "Access-Control-Expose-Headers": "PAYMENT-RESPONSE,X-PAYMENT-RESPONSE",
    }


def __getattr__(name: str) -> Any:
    if name == "X402Auth":  # built on first use, so importing this module never imports httpx
        cls = _x402_auth_class()
        globals()["X402Auth"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _x402_auth_class() -> type:
    from collections.abc import Generator

    import httpx

    class X402Auth(httpx.Auth):
        """Pays x402 v2 402s by signing and resending the request once.

        `inner` is the per-request SIWX auth. It runs before each send; on the paid retry it
        runs again so the retry carries a fresh SIWX nonce (the server burns them)."""

        requires_request_body = True  # the retry resends the same body

        def __init__(
            self,
            private_key: str,
            *,
            inner: httpx.Auth | None = None,
            now: Callable[[], float] = time.time,
        ) -> None:
            self._private_key = private_key
            self._inner = inner
            self._now = now

        def _apply_inner(self, request: httpx.Request) -> httpx.Request:
            """Let `inner` decorate the request (its first yield); later steps of its flow are ignored."""
            if self._inner is None:
                return request
            flow = self._inner.auth_flow(request)
            try:
                return next(flow)
            finally:
                flow.close()

        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
            caller_siwx = _SIWX in request.headers
            request = self._apply_inner(request)
            response = yield request
            if response.status_code != 402:
                return
            extra = payment_retry_headers(self._private_key, request.headers, response.headers, now=self._now)
            if extra is None:
                return
            # A copy of the body-read request, so the first attempt (kept in
            # `response.history`) is not mutated by the retry's headers.
            retry = httpx.Request(request.method, request.url, headers=request.headers.copy(),
                                  content=request.content, extensions=dict(request.extensions))
            retry.headers.update(extra)
            if self._inner is not None and not caller_siwx:
                retry.headers.pop(_SIWX, None)  # inner may only set-if-absent; force a fresh nonce
                retry = self._apply_inner(retry)
            yield retry

    X402Auth.__module__ = __name__
    X402Auth.__qualname__ = "X402Auth"
    return X402Auth
