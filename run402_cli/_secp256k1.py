"""The little secp256k1 the CLI needs on every wallet-authenticated request: an address from a
key, and an EIP-191 `personal_sign` for SIGN-IN-WITH-X.

Why not eth-account here: importing it costs ~0.6 s, paid by every `deploy apply` and
`sites deploy-dir` (two SIWX requests each). This module imports in a few milliseconds. It
follows eth-keys' algorithm exactly — deterministic nonces (RFC 6979 with HMAC-SHA256) and
low-s normalisation — so its signatures are byte-identical to eth-account's (tests compare them
over many keys and messages). EIP-712 payment signing stays with eth-account: it is rare.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["address", "keccak256", "personal_sign"]

_P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_G = (0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798,
      0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8)


def keccak256(data: bytes) -> bytes:
    try:
        from Crypto.Hash import keccak  # pycryptodome (a dependency of eth-account's keyfile)

        return keccak.new(digest_bits=256, data=data).digest()
    except ImportError:  # pragma: no cover - eth-hash picks whatever backend exists
        from eth_hash.auto import keccak as eth_keccak

        return eth_keccak(data)


# Jacobian coordinates: (X, Y, Z) stands for (X/Z², Y/Z³); no inversion until the end.
def _double(p: tuple[int, int, int]) -> tuple[int, int, int]:
    x, y, z = p
    if y == 0:
        return (0, 0, 0)
    ysq = y * y % _P
    s = 4 * x * ysq % _P
    m = 3 * x * x % _P
    nx = (m * m - 2 * s) % _P
    ny = (m * (s - nx) - 8 * ysq * ysq) % _P
    return (nx, ny, 2 * y * z % _P)


def _add(p: tuple[int, int, int], q: tuple[int, int, int]) -> tuple[int, int, int]:
    if p[1] == 0:
        return q
    if q[1] == 0:
        return p
    z1z1, z2z2 = p[2] * p[2] % _P, q[2] * q[2] % _P
    u1, u2 = p[0] * z2z2 % _P, q[0] * z1z1 % _P
    s1, s2 = p[1] * q[2] * z2z2 % _P, q[1] * p[2] * z1z1 % _P
    if u1 == u2:
        return _double(p) if s1 == s2 else (0, 0, 1)
    h, r = u2 - u1, s2 - s1
    h2 = h * h % _P
    h3 = h * h2 % _P
    u1h2 = u1 * h2 % _P
    nx = (r * r - h3 - 2 * u1h2) % _P
    ny = (r * (u1h2 - nx) - s1 * h3) % _P
    return (nx, ny, h * p[2] * q[2] % _P)


def _multiply(k: int) -> tuple[int, int]:
    """k·G in affine coordinates (double-and-add; the key never leaves this process)."""
    result: tuple[int, int, int] = (0, 0, 1)
    addend = (_G[0], _G[1], 1)
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _double(addend)
        k >>= 1
    z_inv = pow(result[2], -1, _P)
    return (result[0] * z_inv * z_inv % _P, result[1] * z_inv * z_inv * z_inv % _P)


def _key_int(private_key: str) -> int:
    k = int(private_key[2:] if private_key[:2] in ("0x", "0X") else private_key, 16)
    if not 0 < k < _N:
        raise ValueError("private key out of range")
    return k


def address(private_key: str) -> str:
    """The EIP-55 checksummed address of a hex private key."""
    x, y = _multiply(_key_int(private_key))
    raw = keccak256(x.to_bytes(32, "big") + y.to_bytes(32, "big"))[-20:].hex()
    digest = keccak256(raw.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(raw))


def _deterministic_k(msg_hash: bytes, key: bytes) -> int:
    v, k = b"\x01" * 32, b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + key + msg_hash, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + key + msg_hash, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    return int.from_bytes(hmac.new(k, v, hashlib.sha256).digest(), "big")


def personal_sign(text: str, private_key: str) -> str:
    """EIP-191 signature of `text`: "0x" + r + s + v (v = 27/28), 132 characters."""
    data = text.encode("utf-8")
    msg_hash = keccak256(b"\x19Ethereum Signed Message:\n" + str(len(data)).encode("ascii") + data)
    d = _key_int(private_key)
    k = _deterministic_k(msg_hash, d.to_bytes(32, "big"))
    r, y = _multiply(k)
    s = pow(k, -1, _N) * (int.from_bytes(msg_hash, "big") + r * d) % _N
    recovery = (y & 1) ^ (0 if s * 2 < _N else 1)
    if s * 2 >= _N:
        s = _N - s
    return "0x" + r.to_bytes(32, "big").hex() + s.to_bytes(32, "big").hex() + format(27 + recovery, "02x")
