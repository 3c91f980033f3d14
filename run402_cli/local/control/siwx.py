"""Gateway-side check of the `SIGN-IN-WITH-X` header.

Mirrors the inferred `@x402/extensions` `sign-in-with-x` rules, lenient where the spec
asks the emulator to be (the Host header may carry a port; issuedAt may be 30 s ahead for
clock skew). The message is rebuilt with the client's own `build_siwx_message`, so the
bytes signed and the bytes verified come from one function.

A header is bound to one request path: its `uri` must be the origin followed by exactly the
path it is presented on (the query is not compared, so a client and a proxy that order or
escape query strings differently still agree). How often a nonce may be presented is the
caller's job (it records nonces in its database); we only return it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote, urlsplit

from run402_cli.wire.siwx import SIWX_LIFETIME, build_siwx_message
from run402_cli.wire.x402 import decode_header

__all__ = ["SiwxClaims", "SiwxError", "verify_siwx"]

MAX_AGE = timedelta(minutes=5)
FUTURE_SKEW = timedelta(seconds=30)
LIFETIME_SLACK = timedelta(seconds=30)

_REQUIRED = (
    "domain", "address", "statement", "uri", "version", "chainId", "type", "nonce",
    "issuedAt", "expirationTime", "signature",
)
_CHAIN_RE = re.compile(r"^eip155:([0-9]+)$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9]{8,}$")  # EIP-4361: at least 8 alphanumerics
_SIGNATURE_RE = re.compile(r"^0x[0-9a-fA-F]{130}$")


class SiwxError(Exception):
    """An invalid SIWX header. `reason` is short machine text ("bad_signature", "expired", ...)."""

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason


@dataclass(frozen=True)
class SiwxClaims:
    address: str  # lowercased: the wallet identity
    nonce: str
    issued_at: datetime
    expiration_time: datetime
    path: str  # the decoded path of `uri`, which the request path matched


def _hostname(value: str) -> str:
    """Lowercased hostname of a Host header or domain, without port or IPv6 brackets."""
    try:
        return (urlsplit("//" + value.strip()).hostname or "").lower()
    except ValueError:
        return ""


def _parse_time(value: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        raise SiwxError("malformed", f"{field} is not an ISO-8601 timestamp") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _uri_within(uri: str, origin: str) -> bool:
    """`uri` starts with `origin` at a boundary, so :4020 does not admit :40201."""
    origin = origin.rstrip("/")
    if uri[: len(origin)].lower() != origin.lower():
        return False
    return len(uri) == len(origin) or uri[len(origin)] in "/?#"


def _uri_path(uri: str, origin: str) -> str:
    """The decoded path of `uri`, which `_uri_within(uri, origin)` has admitted."""
    rest = uri[len(origin.rstrip("/")):]
    return unquote(urlsplit(rest).path) or "/"


def verify_siwx(
    header_value: str, *, host: str, origin: str, path: str, now: datetime | None = None
) -> SiwxClaims:
    """Check one `SIGN-IN-WITH-X` value for a request to `origin` + `path` (decoded, no
    query) with Host `host`.

    Returns the claims, or raises SiwxError (the gateway answers 402 per the spec)."""
    try:
        data: dict[str, Any] = decode_header(header_value)
    except ValueError as exc:
        raise SiwxError("malformed", f"SIGN-IN-WITH-X is not base64 JSON: {exc}") from None
    for key in _REQUIRED:
        if key not in data:
            raise SiwxError("missing_field", f"missing {key}")
        if not isinstance(data[key], str):
            reason = "bad_chain_id" if key == "chainId" else "malformed"
            raise SiwxError(reason, f"{key} must be a string")

    chain = _CHAIN_RE.match(data["chainId"])
    if chain is None:
        raise SiwxError("bad_chain_id", "chainId must be a CAIP-2 string like eip155:84532")
    if data["type"] != "eip191":
        raise SiwxError("bad_type", "type must be eip191")
    if data["version"] != "1":
        raise SiwxError("bad_version", "version must be 1")
    if not data["statement"]:
        raise SiwxError("missing_field", "missing statement")
    if not _ADDRESS_RE.match(data["address"]):
        raise SiwxError("malformed", "address is not a 20-byte hex address")
    if not _NONCE_RE.match(data["nonce"]):
        raise SiwxError("bad_nonce", "nonce must be at least 8 alphanumeric characters")
    resources = data.get("resources")
    if resources is not None and not (
        isinstance(resources, list) and all(isinstance(r, str) for r in resources)
    ):
        raise SiwxError("malformed", "resources must be an array of strings")

    if _hostname(data["domain"]) != _hostname(host) or not _hostname(host):
        raise SiwxError("domain_mismatch", f"domain {data['domain']!r} does not match host {host!r}")
    if not _uri_within(data["uri"], origin):
        raise SiwxError("uri_mismatch", f"uri must start with {origin}")
    signed_path = _uri_path(data["uri"], origin)
    if signed_path != (path or "/"):
        raise SiwxError("uri_mismatch", f"uri was signed for {signed_path}, not for {path}")

    issued_at = _parse_time(data["issuedAt"], "issuedAt")
    expiration_time = _parse_time(data["expirationTime"], "expirationTime")
    current = now if now is not None else datetime.now(timezone.utc)
    if current.tzinfo is None:
        current = current.replace(tzinfo=timezone.utc)
    if expiration_time <= current:
        raise SiwxError("expired", "expirationTime has passed")
    if issued_at > current + FUTURE_SKEW:
        raise SiwxError("issued_in_future", "issuedAt is in the future")
    if current - issued_at > MAX_AGE:
        raise SiwxError("too_old", "issuedAt is more than 5 minutes old")
    if expiration_time - issued_at > SIWX_LIFETIME + LIFETIME_SLACK:
        raise SiwxError("lifetime_too_long", "expirationTime is more than 5 minutes after issuedAt")

    if not _SIGNATURE_RE.match(data["signature"]):
        raise SiwxError("bad_signature", "signature must be 0x + 65 bytes hex")
    message = build_siwx_message(
        domain=data["domain"],
        address=data["address"],
        statement=data["statement"],
        uri=data["uri"],
        version=data["version"],
        chain_id_numeric=chain.group(1),
        nonce=data["nonce"],
        issued_at=data["issuedAt"],
        expiration_time=data["expirationTime"],
        resources=resources,
    )
    from run402_cli.wire.eth import recover_personal

    try:
        signer = recover_personal(message, data["signature"])
    except ValueError:
        raise SiwxError("bad_signature", "signature could not be recovered") from None
    if signer.lower() != data["address"].lower():
        raise SiwxError("bad_signature", "signature does not match address")
    return SiwxClaims(
        address=data["address"].lower(),
        nonce=data["nonce"],
        issued_at=issued_at,
        expiration_time=expiration_time,
        path=signed_path,
    )
