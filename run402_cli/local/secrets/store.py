"""Project secrets at rest: `run402_meta.secrets (project_id, key, value, ...)`, the value
encrypted with AES-256-GCM under the installation's `secrets_key` (runtime/layout.py).

    value = "v1:" + base64(nonce (12 random bytes) || ciphertext || tag)
    AAD   = "run402 secret v1" NUL project_id NUL key

The AAD binds a ciphertext to its row: copied to another project or another key, it fails to
decrypt instead of handing one tenant's secret to another. Postgres never sees a plaintext
(neither a table, nor a WAL segment, a dump or a statement log). Nothing here logs or raises a
value, and no endpoint returns one: `secret_values` is for the functions runtime alone, which
puts them in a function's environment.

The key reaches this module through the GatewayContext (`ctx.secrets_key`, from the
installation secrets: runtime/layout.py). A change of a project's secrets bumps
`ctx.secrets_changed(project_id)`, so its function workers start afresh with the new values.
"""

from __future__ import annotations

import base64
import logging
import os
from datetime import datetime
from typing import Any

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.tiers import TIERS
from run402_cli.local.errors import GatewayError
from run402_cli.wire.secrets import SECRET_NOT_FOUND, TIER_LIMIT_EXCEEDED, secret_key_problem
from run402_cli.wire.times import iso

__all__ = [
    "SecretUnreadable", "decrypt", "delete_secret", "encrypt", "list_secrets", "max_secrets",
    "secret_values", "set_secret",
]

log = logging.getLogger("run402.gateway")

_PREFIX = "v1:"
_NONCE = 12
_KEY_BYTES = 32


class SecretUnreadable(Exception):
    """A stored value that does not decrypt under this key for this (project, key): tampered,
    moved from another row, or written under another installation's key."""


def _checked(key: bytes) -> bytes:
    if not isinstance(key, (bytes, bytearray)) or len(key) != _KEY_BYTES:
        raise RuntimeError("the gateway has no 32-byte secrets key (runtime/layout.py secrets_key)")
    return bytes(key)


def _key_of(ctx: GatewayContext) -> bytes:
    return _checked(ctx.secrets_key)


def _aad(project_id: str, name: str) -> bytes:
    return b"run402 secret v1\x00" + project_id.encode() + b"\x00" + name.encode()


def encrypt(key: bytes, project_id: str, name: str, value: str) -> str:
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(_checked(key)).encrypt(nonce, value.encode("utf-8"), _aad(project_id, name))
    return _PREFIX + base64.b64encode(nonce + sealed).decode("ascii")


def decrypt(key: bytes, project_id: str, name: str, stored: Any) -> str:
    if not isinstance(stored, str) or not stored.startswith(_PREFIX):
        raise SecretUnreadable(f"secret {name} of {project_id}: not a v1 ciphertext")
    try:
        raw = base64.b64decode(stored[len(_PREFIX):], validate=True)
        plain = AESGCM(_checked(key)).decrypt(raw[:_NONCE], raw[_NONCE:], _aad(project_id, name))
        return plain.decode("utf-8")
    except (ValueError, InvalidTag, UnicodeDecodeError):
        raise SecretUnreadable(f"secret {name} of {project_id}: does not decrypt for this project and key") from None


def secret_values(ctx: GatewayContext, conn: psycopg.Connection, project_id: str) -> dict[str, str]:
    """Every secret of the project, decrypted: {KEY: value}, for a function's environment (the
    functions runtime is the only caller). A row that does not decrypt is left out, and logged
    by key, never by value."""
    secret = _key_of(ctx)
    out: dict[str, str] = {}
    for name, stored in conn.execute("SELECT key, value FROM run402_meta.secrets WHERE project_id = %s "
                                     "ORDER BY key COLLATE \"C\"", (project_id,)).fetchall():
        try:
            out[name] = decrypt(secret, project_id, name, stored)
        except SecretUnreadable:
            log.warning("secret %s of project %s does not decrypt; left out of the environment", name, project_id)
    return out


def max_secrets(tier: str) -> int:
    """The tier's count limit of secrets per project (control/tiers.py TIERS)."""
    return int((TIERS.get(tier) or TIERS["prototype"])["max_secrets"])


def _entry(name: str, created: datetime, updated: datetime) -> dict[str, Any]:
    return {"key": name, "created_at": iso(created), "updated_at": iso(updated)}


def set_secret(ctx: GatewayContext, project_id: str, name: str, value: str) -> dict[str, Any]:
    """Insert or overwrite; a new key past the project's tier limit is 403 TIER_LIMIT_EXCEEDED
    and nothing is written. Returns the entry (no value)."""
    stored = encrypt(_key_of(ctx), project_id, name, value)
    with ctx.pool.connection() as conn, conn.transaction():
        # The project row, locked: two concurrent sets cannot both take the last free slot.
        row = conn.execute("SELECT tier FROM run402_meta.projects WHERE id = %s FOR UPDATE", (project_id,)).fetchone()
        if row is None:
            raise GatewayError(404, "PROJECT_NOT_FOUND", f"Project {project_id} not found", category="lifecycle")
        tier = row[0]
        exists = conn.execute("SELECT 1 FROM run402_meta.secrets WHERE project_id = %s AND key = %s",
                              (project_id, name)).fetchone() is not None
        if not exists:
            (count,) = conn.execute("SELECT count(*) FROM run402_meta.secrets WHERE project_id = %s",
                                    (project_id,)).fetchone()
            limit = max_secrets(tier)
            if count >= limit:
                raise GatewayError(
                    403, TIER_LIMIT_EXCEEDED,
                    f"The {tier} tier allows {limit} secrets per project; this project has {count}.",
                    category="tier", details={"limit": limit, "tier": tier, "resource": "secrets", "count": count},
                    hint="Delete a secret you no longer need (run402 secrets delete), or move to a larger tier.",
                    next_actions=[{"action": "delete_secret"}, {"action": "renew_tier"}],
                    extra={"mutation_state": "none"})
        saved = conn.execute(
            "INSERT INTO run402_meta.secrets (project_id, key, value) VALUES (%s, %s, %s) "
            "ON CONFLICT (project_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now() "
            "RETURNING key, created_at, updated_at", (project_id, name, stored)).fetchone()
    ctx.secrets_changed(project_id)
    return _entry(*saved)


def list_secrets(ctx: GatewayContext, project_id: str) -> list[dict[str, Any]]:
    with ctx.pool.connection() as conn:
        rows = conn.execute("SELECT key, created_at, updated_at FROM run402_meta.secrets WHERE project_id = %s "
                            'ORDER BY key COLLATE "C"', (project_id,)).fetchall()
    return [_entry(*r) for r in rows]


def delete_secret(ctx: GatewayContext, project_id: str, name: str) -> None:
    with ctx.pool.connection() as conn:
        gone = conn.execute("DELETE FROM run402_meta.secrets WHERE project_id = %s AND key = %s RETURNING key",
                            (project_id, name)).fetchone()
    if gone is None:
        # named only when it is a key: a value typed in its place is not echoed back
        shown = name if secret_key_problem(name) is None else None
        raise GatewayError(404, SECRET_NOT_FOUND,
                           f"Secret {shown!r} is not set on this project" if shown else "No such secret on this project",
                           details={"key": shown})
    ctx.secrets_changed(project_id)
