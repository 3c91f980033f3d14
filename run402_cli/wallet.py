"""Wallet keys and the `SIGN-IN-WITH-X` header.

The gateway rebuilds the EIP-4361 text with the `siwe` library and checks the signature
against it, so `build_siwx_message` must be byte-identical to `siwe`'s `prepareMessage()`.
The message itself lives in `run402_cli.wire.siwx`, which the gateway's verifier imports too,
so client and gateway can never drift apart.

Signing goes through `run402_cli.wire.eth` (libsecp256k1 via coincurve; byte-identical to
eth-account, tested): a few milliseconds to import, where eth-account costs ~0.6 s.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timezone
from urllib.parse import urlsplit

from run402_cli.wire.siwx import (  # the message both sides build, byte for byte
    SIWX_CHAIN_ID, SIWX_LIFETIME, SIWX_STATEMENT, build_siwx_message, format_iso_millis,
)

__all__ = [
    "SIWX_CHAIN_ID",
    "SIWX_LIFETIME",
    "SIWX_STATEMENT",
    "address_of",
    "build_siwx_message",
    "format_iso_millis",
    "generate_private_key",
    "siwx_header",
]


# Order of the secp256k1 group: a private key must be in [1, n-1].
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def generate_private_key() -> str:
    """A fresh key as "0x" + 64 lowercase hex, drawn from the OS CSPRNG.

    Rejection-samples the (astronomically unlikely) values outside the curve order so
    every returned key is valid."""
    while True:
        raw = secrets.token_bytes(32)
        if 0 < int.from_bytes(raw, "big") < _SECP256K1_N:
            return "0x" + raw.hex()


def address_of(private_key: str) -> str:
    """The EIP-55 checksummed address of `private_key`."""
    from run402_cli.wire.eth import address_of as _address_of

    return _address_of(private_key)


def _hostname(api_base: str) -> str:
    """Hostname of `api_base` without port, lowercased, like JS `new URL(x).hostname`."""
    host = urlsplit(api_base).hostname or ""
    return f"[{host}]" if ":" in host else host  # IPv6 literals keep their brackets


def siwx_header(
    *,
    private_key: str,
    api_base: str,
    path: str,
    now: datetime | None = None,
    nonce: str | None = None,
    statement: str = SIWX_STATEMENT,
    resources: list[str] | None = None,
) -> str:
    """A fresh `SIGN-IN-WITH-X` header value for one request to `api_base + path`.

    Nonces are single-use on the server, so build one per request (never cache this)."""
    from run402_cli.wire.eth import address_of as _address_of, personal_sign

    signer = _address_of(private_key)
    issued = now if now is not None else datetime.now(timezone.utc)
    issued_at = format_iso_millis(issued)
    if issued.tzinfo is None:
        issued = issued.replace(tzinfo=timezone.utc)
    expiration_time = format_iso_millis(issued + SIWX_LIFETIME)
    domain = _hostname(api_base)
    uri = api_base + path
    nonce = nonce if nonce is not None else secrets.token_bytes(16).hex()

    message = build_siwx_message(
        domain=domain,
        address=signer,
        statement=statement,
        uri=uri,
        version="1",
        chain_id_numeric=SIWX_CHAIN_ID.split(":", 1)[1],
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=expiration_time,
        resources=resources,
    )
    signature = personal_sign(message, private_key)
    payload: dict[str, object] = {
        "domain": domain,
        "address": signer,
        "statement": statement,
        "uri": uri,
        "version": "1",
        "chainId": SIWX_CHAIN_ID,
        "type": "eip191",
        "nonce": nonce,
        "issuedAt": issued_at,
        "expirationTime": expiration_time,
        "signature": signature,
    }
    if resources:
        payload["resources"] = list(resources)
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")
