"""x402 v2 on the wire: the base64-JSON headers (PAYMENT-REQUIRED, PAYMENT-SIGNATURE,
PAYMENT-RESPONSE) and the EIP-712 TransferWithAuthorization (EIP-3009) message an `exact`
payment signs. The CLI's payer (payments.py) and the gateway's verifier both use these.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

__all__ = ["chain_id_of", "decode_header", "encode_header", "transfer_typed_data"]

_TRANSFER_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "TransferWithAuthorization": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "validAfter", "type": "uint256"},
        {"name": "validBefore", "type": "uint256"},
        {"name": "nonce", "type": "bytes32"},
    ],
}


def encode_header(obj: dict[str, Any]) -> str:
    """Standard padded base64 of compact JSON (what JS `btoa(JSON.stringify(x))` sends)."""
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def decode_header(value: str) -> dict[str, Any]:
    """Inverse of `encode_header`. Raises ValueError unless it is base64 of a JSON object.

    Missing padding and the URL-safe alphabet are tolerated: decoding leniently costs
    nothing and some proxies strip '='."""
    text = value.strip()
    text += "=" * (-len(text) % 4)
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        obj = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not base64 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def chain_id_of(network: str) -> int:
    """The integer chain id of a CAIP-2 "eip155:N" network."""
    namespace, _, reference = network.partition(":")
    if namespace != "eip155" or not reference.isdigit():
        raise ValueError(f"not an eip155 network: {network!r}")
    return int(reference)


def transfer_typed_data(authorization: dict[str, Any], requirement: dict[str, Any]) -> dict[str, Any]:
    """The EIP-712 `TransferWithAuthorization` typed data (the shape eth-account's
    `full_message` takes; `wire.eth.transfer_digest(domain, message)` hashes it).

    Domain: {extra.name, extra.version, chainId from the network, checksum(asset)}.
    Raises ValueError/KeyError/TypeError on malformed input."""
    from run402_cli.wire.eth import to_checksum_address

    extra = requirement.get("extra") or {}
    name, version = extra.get("name"), extra.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise ValueError("requirement.extra.name and extra.version (the EIP-712 domain) are required")
    nonce = authorization["nonce"]
    if not isinstance(nonce, str) or len(nonce) != 66 or not nonce.startswith("0x"):
        raise ValueError("authorization.nonce must be 0x + 32 bytes hex")
    return {
        "types": _TRANSFER_TYPES,
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": name,
            "version": version,
            "chainId": chain_id_of(requirement["network"]),
            "verifyingContract": to_checksum_address(requirement["asset"]),
        },
        "message": {
            "from": to_checksum_address(authorization["from"]),
            "to": to_checksum_address(authorization["to"]),
            "value": _uint(authorization["value"]),
            "validAfter": _uint(authorization["validAfter"]),
            "validBefore": _uint(authorization["validBefore"]),
            "nonce": bytes.fromhex(nonce[2:]),
        },
    }


def _uint(value: Any) -> int:
    """A uint256 from a decimal string (the wire form) or an int; anything else is refused."""
    if isinstance(value, bool):
        raise ValueError("not an integer")
    if isinstance(value, str):
        if not value.isdigit():  # no sign, no spaces, no hex
            raise ValueError(f"not a decimal integer string: {value!r}")
        value = int(value)
    if not isinstance(value, int) or not 0 <= value < 2**256:
        raise ValueError(f"not a uint256: {value!r}")
    return value
