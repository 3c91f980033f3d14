"""Local state: the config dir, environment, allowance.json and projects.json.

Byte-compatible with the official Node client's files, so a user can switch
between the two CLIs: 2-space pretty JSON, mode 0600, written through a temp file in the
same directory and renamed over the target; keystore writes hold the `projects.json.lock/`
directory lock.
"""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from run402_cli.errors import LocalError, ProjectNotFound, UsageError

__all__ = [
    "DEFAULT_API_BASE",
    "Allowance",
    "Keystore",
    "Settings",
    "atomic_write_json",
    "now_iso",
    "read_allowance",
    "require_allowance",
    "resolve_project",
    "write_allowance",
]

DEFAULT_API_BASE = "https://api.run402.com"
_ADDRESS_RE = re.compile(r"^0x[a-fA-F0-9]{40}$")
_KEY_RE = re.compile(r"^0x[a-fA-F0-9]{64}$")
_LOCK_RETRIES = 200
_LOCK_SLEEP = 0.02
# A lock directory older than this is a crashed writer's leftover (no write takes this long).
_STALE_LOCK_SECONDS = 30.0


def now_iso() -> str:
    """ISO-8601 with milliseconds and Z, as the Node client writes timestamps."""
    from datetime import datetime, timezone  # here: every command imports this module

    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass
class Settings:
    """What the environment says, read once per invocation. `check_env()` validates the API
    bases at start-up (the CLI calls it before any command but help and --version)."""

    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    warnings: list[str] = field(default_factory=list)

    @property
    def config_dir(self) -> Path:
        raw = self.env.get("RUN402_CONFIG_DIR")
        return Path(raw).expanduser() if raw else Path.home() / ".config" / "run402"

    @property
    def allowance_path(self) -> Path:
        raw = self.env.get("RUN402_ALLOWANCE_PATH")
        return Path(raw).expanduser() if raw else self.config_dir / "allowance.json"

    @property
    def allowance_path_is_explicit(self) -> bool:
        return bool(self.env.get("RUN402_ALLOWANCE_PATH"))

    @property
    def projects_path(self) -> Path:
        return self.config_dir / "projects.json"

    @property
    def api_base(self) -> str:
        return _validated_base(self.env, "RUN402_API_BASE", DEFAULT_API_BASE, self.warnings)

    @property
    def deploy_api_base(self) -> str:
        """Where deploy traffic (`/apply/v1`, `/content/v1`) goes: RUN402_DEPLOY_API_BASE, else
        the API base."""
        return _validated_base(self.env, "RUN402_DEPLOY_API_BASE", self.api_base, self.warnings)

    def check_env(self) -> list[str]:
        """Validate RUN402_API_BASE and RUN402_DEPLOY_API_BASE now: BAD_ENV naming the variable
        and its value on a bad one; the warnings for set-but-empty ones are returned."""
        self.deploy_api_base  # reads (and validates) the API base too
        return self.warnings

    def keystore(self) -> Keystore:
        return Keystore(self.projects_path)

    def allowance(self) -> Allowance | None:
        return read_allowance(self.allowance_path, migrate_legacy=not self.allowance_path_is_explicit)


def _validated_base(env: Mapping[str, str], name: str, default: str, warnings: list[str]) -> str:
    raw = env.get(name)
    if raw is None:
        return default
    if raw == "":  # set but empty (a templating slip): warn, use the default. Blank is malformed.
        msg = f"{name} is set but empty; using {default}"
        if msg not in warnings:
            warnings.append(msg)
        return default
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 -- raises on a port that is not 0..65535
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable or any(c.isspace() or not c.isprintable() for c in raw):
        shown = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", raw)  # never echo a password in a URL
        raise LocalError(
            f"{name} must be an http(s) URL, got {shown!r}",
            code="BAD_ENV",
            hint=f"Set {name} to e.g. https://api.run402.com or http://127.0.0.1:4020 (no trailing slash)",
            details={"variable": name, "value": shown},
        )
    return raw


# --- atomic files -------------------------------------------------------------------------


def atomic_write_json(path: Path, data: Any, *, prefix: str) -> None:
    """Write `data` as 2-space JSON to `path`: temp file (0600) in the same dir, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import secrets  # here, not at import time (~5 ms every command would pay)

    tmp = path.parent / f".{prefix}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=2, ensure_ascii=False))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


# --- allowance ----------------------------------------------------------------------------


@dataclass
class Allowance:
    address: str
    private_key: str
    raw: dict[str, Any]

    @property
    def rail(self) -> str:
        return self.raw.get("rail") or "x402"

    @property
    def funded(self) -> bool:
        return bool(self.raw.get("funded"))

    def __repr__(self) -> str:  # never let the key reach a log or a traceback
        return f"Allowance(address={self.address!r})"


def read_allowance(path: Path, *, migrate_legacy: bool = True) -> Allowance | None:
    """None when missing or not JSON (the official client's "no allowance"); BAD_ALLOWANCE_FILE
    when it is JSON of the wrong shape."""
    if migrate_legacy and not path.exists():
        legacy = path.parent / "wallet.json"
        if legacy.exists():
            os.replace(legacy, path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("address"), str)
        or not _ADDRESS_RE.match(data["address"])
        or not isinstance(data.get("privateKey"), str)
        or not _KEY_RE.match(data["privateKey"])
    ):
        raise LocalError(
            f"Allowance file has the wrong shape: {path}",
            code="BAD_ALLOWANCE_FILE",
            hint=f"Back up {path}, then run 'run402 init' to create a new allowance",
            details={"path": str(path)},
        )
    return Allowance(address=data["address"], private_key=data["privateKey"], raw=data)


def require_allowance(settings: Settings) -> Allowance:
    allowance = settings.allowance()
    if allowance is None:
        raise LocalError(
            "No agent allowance found.", code="NO_ALLOWANCE", hint="Run: run402 allowance create"
        )
    return allowance


def write_allowance(path: Path, data: dict[str, Any]) -> None:
    atomic_write_json(path, data, prefix="allowance")


# --- keystore (projects.json) -----------------------------------------------------------

_DROPPED_FIELDS = ("tier", "lease_expires_at", "expires_at")


class Keystore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"projects": {}}
        if isinstance(data, list):  # legacy array format
            projects = {}
            for item in data:
                if isinstance(item, dict) and isinstance(item.get("project_id"), str):
                    projects[item["project_id"]] = {
                        k: item[k]
                        for k in ("anon_key", "service_key", "site_url", "deployed_at")
                        if k in item
                    }
            return {"projects": projects}
        if not isinstance(data, dict):
            return {"projects": {}}
        out: dict[str, Any] = {}
        for key in ("active_project_id", "previous_active_project_id"):
            if data.get(key):
                out[key] = data[key]
        projects = data.get("projects") if isinstance(data.get("projects"), dict) else {}
        out["projects"] = {
            pid: {k: v for k, v in entry.items() if k not in _DROPPED_FIELDS}
            for pid, entry in projects.items()
            if isinstance(entry, dict)
        }
        return out

    def get(self, project_id: str) -> dict[str, Any] | None:
        return self.load()["projects"].get(project_id)

    def active_project_id(self) -> str | None:
        return self.load().get("active_project_id")

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(_LOCK_RETRIES):
            try:
                os.mkdir(self.lock_path, 0o700)
                break
            except FileExistsError:
                self._break_if_stale()
                time.sleep(_LOCK_SLEEP)
        else:
            raise LocalError(
                f"Could not acquire keystore lock after {_LOCK_RETRIES} retries: {self.lock_path}",
                code="KEYSTORE_LOCKED",
                retryable=True,
                hint=f"If no other run402 is running, remove {self.lock_path}",
            )
        try:
            store = self.load()
            yield store
            atomic_write_json(self.path, store, prefix="projects")
        finally:
            try:
                os.rmdir(self.lock_path)
            except OSError:
                pass

    def _break_if_stale(self) -> None:
        try:
            age = time.time() - self.lock_path.stat().st_mtime
        except OSError:
            return
        if age > _STALE_LOCK_SECONDS:
            try:
                os.rmdir(self.lock_path)
            except OSError:
                pass

    def save_project(self, project_id: str, keys: dict[str, Any]) -> None:
        with self._locked() as store:
            store["projects"][project_id] = dict(keys)

    def update_project(self, project_id: str, patch: dict[str, Any]) -> None:
        with self._locked() as store:
            if project_id in store["projects"]:
                store["projects"][project_id].update(patch)

    def set_active(self, project_id: str) -> str | None:
        """Make `project_id` active; returns the project that was active before (or None)."""
        with self._locked() as store:
            old = store.get("active_project_id")
            if old and old != project_id:
                store["previous_active_project_id"] = old
            store["active_project_id"] = project_id
            return old

    def remove_project(self, project_id: str) -> None:
        with self._locked() as store:
            store["projects"].pop(project_id, None)
            if store.get("active_project_id") == project_id:
                prev = store.get("previous_active_project_id")
                if prev and prev != project_id and prev in store["projects"]:
                    store["active_project_id"] = prev
                else:
                    store.pop("active_project_id", None)
                store.pop("previous_active_project_id", None)


def resolve_project(settings: Settings, project_id: str | None) -> tuple[str, dict[str, Any]]:
    """An explicit id, else the active project; it must be in the local keystore."""
    ks = settings.keystore()
    if project_id is None:
        project_id = ks.active_project_id()
        if project_id is None:
            raise LocalError(
                "No active project.", code="NO_ACTIVE_PROJECT", hint="Run: run402 projects provision"
            )
    elif not project_id.startswith("prj_"):
        raise UsageError(
            f"Not a project id: {project_id!r}",
            code="BAD_PROJECT_ID",
            details={"value": project_id, "expected_prefix": "prj_"},
            hint="Project ids start with 'prj_'. Run: run402 projects list",
        )
    entry = ks.get(project_id)
    if entry is None:
        raise ProjectNotFound(project_id)
    return project_id, entry
