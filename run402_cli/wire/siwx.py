"""SIGN-IN-WITH-X on the wire: the EIP-4361 message a wallet signs, byte-identical to the
`siwe` library's `prepareMessage()`, and its constants. The CLI builds it to sign
(wallet.py); the gateway rebuilds it from the header's fields to verify.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

__all__ = ["SIWX_CHAIN_ID", "SIWX_LIFETIME", "SIWX_STATEMENT", "build_siwx_message", "format_iso_millis"]

SIWX_CHAIN_ID = "eip155:84532"  # always Base Sepolia, even for mainnet payments (the official client's value)
SIWX_STATEMENT = "Sign in to Run402"
SIWX_LIFETIME = timedelta(minutes=5)


def format_iso_millis(moment: datetime) -> str:
    """ISO-8601 UTC with exactly three fractional digits and "Z", like JS `toISOString()`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def build_siwx_message(
    *,
    domain: str,
    address: str,
    statement: str,
    uri: str,
    version: str,
    chain_id_numeric: int | str,
    nonce: str,
    issued_at: str,
    expiration_time: str,
    resources: list[str] | None = None,
) -> str:
    """The EIP-4361 text the official client signs: "\\n"-joined, no trailing newline.

    A "Resources:" block appears only when `resources` is non-empty (CI delegation)."""
    lines = [
        f"{domain} wants you to sign in with your Ethereum account:",
        address,
        "",
        statement,
        "",
        f"URI: {uri}",
        f"Version: {version}",
        f"Chain ID: {chain_id_numeric}",
        f"Nonce: {nonce}",
        f"Issued At: {issued_at}",
        f"Expiration Time: {expiration_time}",
    ]
    if resources:
        lines.append("Resources:")
        lines.extend(f"- {resource}" for resource in resources)
    return "\n".join(lines)
