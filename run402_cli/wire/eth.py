"""Ethereum primitives for wallet sign-in (SIGN-IN-WITH-X) and x402 payments, on libsecp256k1.

Signing goes through coincurve (bindings to bitcoin-core's libsecp256k1): constant-time, RFC
6979 deterministic nonces, low-s signatures — the same algorithm eth-keys follows, so every
signature is byte-identical to eth-account's (tests compare them over many keys and messages).
It imports in a few milliseconds, where eth-account costs ~0.6 s (and its py_ecc dependency
raises the interpreter's recursion limit to 100,000, which a JSON parser on a server must not
inherit); eth-account is a test-only oracle.

Signatures on the wire are "0x" + r (32 bytes) + s (32 bytes) + v (27 or 28), 132 characters.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "address_of", "keccak256", "personal_digest", "personal_sign", "recover", "recover_personal",
    "sign_digest", "to_checksum_address", "transfer_digest",
]

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _keccak() -> Any:
    """pycryptodome's keccak module, bound through ctypes. pycryptodome binds its compiled code
    through cffi whenever cffi is importable (a gateway dependency installs it), and cffi then
    parses C declarations with pycparser in every process (~25 ms); through ctypes, what it uses
    wherever cffi is absent, the same compiled code loads without that. Hiding cffi is scoped
    to this one import: a None entry in sys.modules makes `import cffi` raise ImportError."""
    import sys

    if "Crypto.Hash.keccak" in sys.modules:
        return sys.modules["Crypto.Hash.keccak"]
    hide = "cffi" not in sys.modules
    if hide:
        sys.modules["cffi"] = None  # type: ignore[assignment]
    try:
        from Crypto.Hash import keccak  # pycryptodome
    finally:
        if hide:
            del sys.modules["cffi"]
    return keccak


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (not NIST SHA3-256: the padding differs)."""
    return _keccak().new(digest_bits=256, data=data).digest()


def to_checksum_address(address: str) -> str:
    """EIP-55 mixed-case form of a 0x-prefixed 20-byte hex address; ValueError otherwise."""
    if not isinstance(address, str) or len(address) != 42 or address[:2] not in ("0x", "0X"):
        raise ValueError(f"not a 20-byte hex address: {address!r}")
    raw = address[2:].lower()
    int(raw, 16)  # ValueError on non-hex
    digest = keccak256(raw.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(raw))


def _key_bytes(private_key: str) -> bytes:
    hexpart = private_key[2:] if private_key[:2] in ("0x", "0X") else private_key
    if len(hexpart) != 64:
        raise ValueError("a private key is 32 bytes of hex")
    k = int(hexpart, 16)
    if not 0 < k < _N:
        raise ValueError("private key out of range")
    return k.to_bytes(32, "big")


def _address_of_point(uncompressed: bytes) -> str:
    return to_checksum_address("0x" + keccak256(uncompressed[1:])[-20:].hex())


def address_of(private_key: str) -> str:
    """The EIP-55 checksummed address of a hex private key."""
    from coincurve import PrivateKey

    return _address_of_point(PrivateKey(_key_bytes(private_key)).public_key.format(compressed=False))


def sign_digest(digest: bytes, private_key: str) -> str:
    """Sign a 32-byte digest: "0x" + r + s + v (v = 27/28)."""
    from coincurve import PrivateKey

    if len(digest) != 32:
        raise ValueError("a digest is 32 bytes")
    sig = PrivateKey(_key_bytes(private_key)).sign_recoverable(digest, hasher=None)  # r, s, recid
    return "0x" + sig[:64].hex() + format(27 + sig[64], "02x")


def recover(digest: bytes, signature: str) -> str:
    """The checksummed address that signed `digest`; ValueError for a malformed signature."""
    from coincurve import PublicKey

    if not isinstance(signature, str) or len(signature) != 132 or signature[:2] != "0x":
        raise ValueError("a signature is 0x + 65 bytes of hex")
    raw = bytes.fromhex(signature[2:])
    v = raw[64]
    recid = v - 27 if v >= 27 else v
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")
    # Ethereum refuses high-s signatures (EIP-2) and out-of-range values, as eth-keys does.
    if recid not in (0, 1) or not (0 < r < _N and 0 < s <= _N // 2):
        raise ValueError("signature values out of range")
    try:
        public = PublicKey.from_signature_and_message(raw[:64] + bytes([recid]), digest, hasher=None)
    except Exception as exc:  # libsecp256k1 could not recover a point
        raise ValueError("signature could not be recovered") from exc
    return _address_of_point(public.format(compressed=False))


def personal_digest(text: str) -> bytes:
    """EIP-191 version 0x45 ("Ethereum Signed Message") digest of a UTF-8 message."""
    data = text.encode("utf-8")
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode("ascii") + data)


def personal_sign(text: str, private_key: str) -> str:
    return sign_digest(personal_digest(text), private_key)


def recover_personal(text: str, signature: str) -> str:
    return recover(personal_digest(text), signature)


# EIP-712, for the one struct x402's `exact` EVM scheme signs (EIP-3009).
_DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_TRANSFER_TYPE = (b"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
                  b"uint256 validBefore,bytes32 nonce)")


def _uint256(value: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise ValueError(f"not a uint256: {value!r}")
    return value.to_bytes(32, "big")


def _address_word(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(to_checksum_address(address)[2:])


def transfer_digest(domain: dict[str, Any], message: dict[str, Any]) -> bytes:
    """The EIP-712 digest of TransferWithAuthorization `message` under `domain`
    ({name, version, chainId, verifyingContract}); message values are ints, addresses are hex
    strings, `nonce` is 32 bytes."""
    nonce = message["nonce"]
    if not isinstance(nonce, (bytes, bytearray)) or len(nonce) != 32:
        raise ValueError("nonce must be 32 bytes")
    separator = keccak256(keccak256(_DOMAIN_TYPE) + keccak256(domain["name"].encode()) +
                          keccak256(domain["version"].encode()) + _uint256(domain["chainId"]) +
                          _address_word(domain["verifyingContract"]))
    struct = keccak256(keccak256(_TRANSFER_TYPE) + _address_word(message["from"]) + _address_word(message["to"]) +
                       _uint256(message["value"]) + _uint256(message["validAfter"]) +
                       _uint256(message["validBefore"]) + bytes(nonce))
    return keccak256(b"\x19\x01" + separator + struct)
