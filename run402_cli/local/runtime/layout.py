"""Where the local gateway keeps its things, and its installation secrets.

    <local dir>/                (RUN402_LOCAL_DIR, default: platformdirs user data dir run402/local)
      state.json                the running gateway: pid, port, api_base (gone when stopped)
      port                      the last port used, so api_base stays stable across restarts
      gateway.secret.json       0600: PostgREST JWT secret, authenticator password, treasury key,
                                upload URL signing key, project secrets' encryption key
      logs/                     gateway.log, postgres.log, postgrest.log
      pg/ (or pg-location)      the PostgreSQL cluster (see pgcluster.py); pg.lock serializes its
                                start/stop between the gateway's watchdog and `run402 local up|down`
      postgrest/                postgrest.conf (0600) and postgrest.pid: the next start kills a
                                PostgREST a crashed gateway left running (checked via /proc)
      cas/sha256/ab/...         content-addressed blobs (cas/staging/: uploads not yet verified)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from run402_cli.config import atomic_write_json

__all__ = ["DEFAULT_PORT", "LocalLayout", "default_local_dir"]

DEFAULT_PORT = 4020


def default_local_dir() -> Path:
    raw = os.environ.get("RUN402_LOCAL_DIR")
    if raw:
        return Path(raw).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("run402")) / "local"


@dataclass(frozen=True)
class LocalLayout:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def port_file(self) -> Path:
        return self.root / "port"

    @property
    def secrets_file(self) -> Path:
        return self.root / "gateway.secret.json"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def cas_dir(self) -> Path:
        return self.root / "cas"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.logs_dir.mkdir(exist_ok=True, mode=0o700)

    def read_state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_state(self, state: dict[str, Any]) -> None:
        atomic_write_json(self.state_file, state, prefix="state")

    def secrets(self) -> dict[str, str]:
        """Created once per installation; never leaves this file except to PostgREST's config.

        `upload_url_secret` signs the gateway's self-served upload URLs (deploy/content.py);
        `secrets_key` (32 bytes, hex) encrypts project secrets at rest (secrets/store.py);
        `blob_url_secret` signs private blob URLs (storage/serve.py). Files
        written before either existed are not rewritten: the missing key is derived from the JWT
        secret, each with its own label, so the same file always gives the same keys."""
        try:
            data = json.loads(self.secrets_file.read_text())
            if isinstance(data, dict) and {"postgrest_jwt_secret", "authenticator_password", "treasury_key"} <= data.keys():
                for name, label in (("upload_url_secret", b"run402 upload-url v1"),
                                    ("secrets_key", b"run402 secrets-key v1"),
                                    ("blob_url_secret", b"run402 blob-url v1")):
                    if name not in data:
                        data[name] = hmac.new(str(data["postgrest_jwt_secret"]).encode(), label,
                                              hashlib.sha256).hexdigest()
                return data
        except (OSError, ValueError):
            pass
        data = {
            "postgrest_jwt_secret": secrets.token_urlsafe(48),
            "authenticator_password": secrets.token_urlsafe(32),
            # The local testnet's payee: payments to the gateway are addressed to this key's address.
            "treasury_key": "0x" + secrets.token_bytes(32).hex(),
            "upload_url_secret": secrets.token_hex(32),
            "secrets_key": secrets.token_hex(32),
            "blob_url_secret": secrets.token_hex(32),
        }
        self.ensure()
        atomic_write_json(self.secrets_file, data, prefix="gateway-secret")
        return data
