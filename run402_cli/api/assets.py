"""Assets (blob storage) reads and management: `apikey: <service_key>` and
`Authorization: Bearer <service_key>` on every call, no wallet auth (spec/api-deploy.md §3.4).
Uploads are deploys (`deploy/assets.py`), not calls here.

Keys in paths are percent-encoded per segment, '/' kept (`wire.assets.encode_key_path`).
`download` streams the body to a temp file beside the destination and renames it into place:
the destination is either the whole blob or untouched, and the body is never held in memory.
`wait_fresh` polls `diagnose` (100 ms doubling to 1 s, transient errors retried), the
behaviour the official CLI documents for `cdn wait-fresh` but cannot run (§11.2).
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any, Callable
from urllib.parse import quote

from run402_cli.api.client import Client
from run402_cli.errors import LocalError, NetworkError, Run402Error
from run402_cli.wire.assets import VANTAGE, encode_key_path

__all__ = ["diagnose", "download", "list_", "remove", "sign", "wait_fresh"]


def _auth(service_key: str, project_id: str | None) -> dict[str, str]:
    """The service key both ways, and (our addition) the project the caller means: a gateway
    that knows the header refuses a key of another project (403) instead of acting on it."""
    headers = {"apikey": service_key, "Authorization": f"Bearer {service_key}"}
    if project_id:
        headers["X-Run402-Project"] = project_id
    return headers


def _blob(key: str) -> str:
    return f"/storage/v1/blob/{encode_key_path(key)}"


def _component(text: str) -> str:
    """`encodeURIComponent(text)`."""
    return quote(text, safe="!~*'()")


def download(client: Client, service_key: str, key: str, dest: str, *, project_id: str | None = None) -> int:
    """`GET /storage/v1/blob/<key>` streamed to `dest` (parents created; written atomically,
    mode as a newly created file gets under the umask). Returns the bytes written."""
    full = os.path.abspath(os.path.expanduser(dest))
    parent = os.path.dirname(full)
    with client.stream("GET", _blob(key), headers=_auth(service_key, project_id), context="downloading blob") as resp:
        try:
            os.makedirs(parent, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(full)}.", suffix=".part", dir=parent)
        except OSError as exc:
            raise _unwritable(dest, exc) from None
        written = 0
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in resp.iter_bytes():
                    fh.write(chunk)
                    written += len(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, full)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError):
                raise _unwritable(dest, exc) from None
            raise
    return written


def _unwritable(dest: str, exc: OSError) -> LocalError:
    return LocalError(f"Cannot write {dest}: {exc.strerror or exc}", code="OUTPUT_NOT_WRITABLE",
                      details={"output": dest})


def list_(client: Client, service_key: str, *, prefix: str | None = None, limit: int | None = None,
          cursor: str | None = None, sort: str | None = None,
          filters: dict[str, Any] | None = None, project_id: str | None = None) -> Any:
    """`GET /storage/v1/blobs?prefix=&limit=&cursor=&sort=&filter[<k>]=<v>` -> `{blobs, next_cursor}`."""
    params: list[tuple[str, str]] = []
    if prefix:
        params.append(("prefix", prefix))
    if limit is not None:
        params.append(("limit", str(limit)))
    if cursor:
        params.append(("cursor", cursor))
    if sort:
        params.append(("sort", sort))
    for k, v in (filters or {}).items():
        params.append((f"filter[{k}]", ("true" if v else "false") if isinstance(v, bool) else str(v)))
    query = "&".join(f"{_component(k)}={_component(v)}" for k, v in params)
    return client.request("GET", "/storage/v1/blobs" + (f"?{query}" if query else ""),
                          headers=_auth(service_key, project_id), wallet_auth=False, context="listing blobs")


def remove(client: Client, service_key: str, key: str, *, project_id: str | None = None) -> Any:
    """`DELETE /storage/v1/blob/<key>` (the answer is not part of the contract)."""
    return client.request("DELETE", _blob(key), headers=_auth(service_key, project_id), wallet_auth=False,
                          context="deleting blob")


def sign(client: Client, service_key: str, key: str, ttl_seconds: int | None = None, *,
         project_id: str | None = None) -> Any:
    """`POST /storage/v1/blob/<key>/sign {ttl_seconds?}` -> `{signed_url, expires_at, expires_in}`."""
    body = {} if ttl_seconds is None else {"ttl_seconds": ttl_seconds}
    return client.request("POST", _blob(key) + "/sign", json=body, headers=_auth(service_key, project_id),
                          wallet_auth=False, context="signing blob URL")


def diagnose(client: Client, service_key: str, url: str, *, project_id: str | None = None) -> Any:
    """`GET /storage/v1/blobs/diagnose?url=<url>` -> the camelCase diagnose envelope."""
    return client.request("GET", f"/storage/v1/blobs/diagnose?url={_component(url)}",
                          headers=_auth(service_key, project_id), wallet_auth=False, context="diagnosing blob URL")


def _transient(err: Run402Error) -> bool:
    status = getattr(err, "http", None)
    return isinstance(err, NetworkError) or (isinstance(status, int) and (status >= 500 or status in (408, 429)))


def wait_fresh(client: Client, service_key: str, url: str, sha256: str, *, timeout: float = 60.0,
               project_id: str | None = None,
               sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Poll `diagnose` until the URL serves `sha256` (case-insensitive) or `timeout` seconds
    pass -> `{fresh, observedSha256, attempts, elapsedMs, vantage}`. A probe that fails for a
    passing reason (network, 5xx, 408, 429) counts as an attempt and is retried; any other
    error (a refused key, a URL the gateway will not probe) is raised at once."""
    expected = sha256.lower()
    start = clock()
    attempts = 0
    observed: str | None = None
    delay = 0.1

    def result(fresh: bool) -> dict[str, Any]:
        return {"fresh": fresh, "observedSha256": observed, "attempts": attempts,
                "elapsedMs": int((clock() - start) * 1000), "vantage": VANTAGE}

    while clock() - start < timeout:
        attempts += 1
        try:
            env = diagnose(client, service_key, url, project_id=project_id)
            seen = env.get("observedSha256") if isinstance(env, dict) else None
            observed = seen if isinstance(seen, str) else None
            if observed and observed.lower() == expected:
                return result(True)
        except Run402Error as err:
            if not _transient(err):
                raise
            # a 5xx, a 429, a network hiccup: the next poll tries again
        remaining = timeout - (clock() - start)
        if remaining <= 0:
            break
        sleep(min(delay, remaining))
        delay = min(delay * 2, 1.0)
    return result(False)
