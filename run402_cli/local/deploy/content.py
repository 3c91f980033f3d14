"""Content upload sessions: `POST /content/v1/plans` (signed upload URLs for what the project
lacks; the PUT target is upload.py) and `POST /content/v1/plans/:id/commit`, which records an
object for the project only once its bytes are proven: a single-part object by the proof its
verified PUT left, a multipart one by assembling its parts and `Cas.put_verified`.

A digest is "present" for a project only once that project has proved it holds the bytes
(`run402_meta.cas_refs`): the store is shared, but knowing a digest is not owning content.
"""

from __future__ import annotations

import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from run402_cli.local.deploy.cas import SHA256_RE, Cas, DigestMismatch
from run402_cli.local.context import GatewayContext
from run402_cli.local.deploy.deploy_common import iso, new_id, project_from_apikey, read_json
from run402_cli.local.errors import GatewayError
from run402_cli.local.deploy.upload import proof_path, upload_url

__all__ = ["linked_present"]

SINGLE_MAX = 16 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024
MAX_OBJECT = 4 * 1024 * 1024 * 1024
# The official client asks for every missing object of a deploy in one content plan (a
# 10,001-file site is one request); the body cap (16 MiB) bounds it too.
MAX_ENTRIES = 100_000
URL_TTL = 3600
_CHUNK = 1024 * 1024


def linked_present(ctx: GatewayContext, project_id: str, shas: list[str], *,
                   release_files: dict[str, Any] | None = None) -> set[str]:
    """The digests of `shas` this project may use: linked to it and still on disk. Digests in
    `release_files` (a release's file table: that project's base release) count as present
    without a lookup: a release pins its content and the store never deletes."""
    pinned = {f["sha256"] for f in (release_files or {}).values()}
    known = pinned.intersection(shas)
    shas = [s for s in shas if s not in pinned]
    if not shas:
        return known
    with ctx.pool.connection() as conn:
        rows = conn.execute("SELECT sha256, size FROM run402_meta.cas_refs WHERE project_id = %s AND sha256 = ANY(%s)",
                            (project_id, list(set(shas)))).fetchall()
    # A stat per object, on plain strings: this runs over every file of a site on every plan.
    base = os.path.join(ctx.cas_dir, "sha256")
    present = known
    for sha, size in rows:
        try:
            if os.stat(f"{base}/{sha[:2]}/{sha[2:]}").st_size == size:
                present.add(sha)
        except OSError:
            pass
    return present


def _entries(body: Any, project_id: str) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise GatewayError(400, "BAD_REQUEST", "Body must be {content: [{sha256, size, content_type?}]}")
    extra = set(body) - {"content", "project_id"}
    if extra:
        raise GatewayError(400, "BAD_REQUEST", f"Unknown field(s): {', '.join(sorted(extra))}")
    if body.get("project_id") not in (None, project_id):
        raise GatewayError(403, "FORBIDDEN", "project_id does not match the key's project", category="auth")
    if len(body["content"]) > MAX_ENTRIES:
        raise GatewayError(400, "BAD_REQUEST", f"At most {MAX_ENTRIES} objects per content plan")
    seen: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(body["content"]):
        where = f"content[{i}]"
        if not isinstance(item, dict) or set(item) - {"sha256", "size", "content_type"}:
            raise GatewayError(400, "BAD_REQUEST", f"{where} must be {{sha256, size, content_type?}}",
                               details={"path": where})
        sha, size, ctype = item.get("sha256"), item.get("size"), item.get("content_type")
        if not isinstance(sha, str) or not SHA256_RE.match(sha):
            raise GatewayError(400, "BAD_REQUEST", f"{where}.sha256 must be 64 lowercase hex characters",
                               details={"path": where + ".sha256"})
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_OBJECT:
            raise GatewayError(400, "BAD_REQUEST", f"{where}.size must be an integer from 0 to {MAX_OBJECT}",
                               details={"path": where + ".size"})
        if ctype is not None and (not isinstance(ctype, str) or len(ctype) > 255):
            raise GatewayError(400, "BAD_REQUEST", f"{where}.content_type must be a string",
                               details={"path": where + ".content_type"})
        if sha in seen and seen[sha]["size"] != size:
            raise GatewayError(400, "BAD_REQUEST", f"{sha} is declared twice with different sizes")
        seen[sha] = {"sha256": sha, "size": size, "content_type": ctype}
    return list(seen.values())


async def _create(request: Request) -> JSONResponse:
    body = await read_json(request)
    return await run_in_threadpool(_create_sync, request, body)


_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def upload_base(ctx: GatewayContext, scheme: str, host: str) -> str:
    """Where this content plan's PUTs go: the upload process (runtime/uploads.py) for a client
    that reached the gateway itself on loopback, else (a proxy or a tunnel may forward the
    gateway's port alone; no upload process) the gateway, as the client addressed it."""
    own = f"{scheme}://{host}"
    port = ctx.upload_port()
    name, _, gateway_port = host.lower().rpartition(":")
    if port is None or scheme != "http" or name not in _LOOPBACK_NAMES \
            or gateway_port != ctx.api_base.rpartition(":")[2]:
        return own
    return f"http://127.0.0.1:{port}"


def _create_sync(request: Request, body: Any) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    entries = _entries(body, project.id)
    present = linked_present(ctx, project.id, [e["sha256"] for e in entries])
    Cas(ctx.cas_dir).sweep_staging(2 * URL_TTL)
    base = upload_base(ctx, request.url.scheme, request.headers.get("host") or request.url.netloc)
    now = datetime.now(timezone.utc)
    expires_at = now + timedelta(seconds=URL_TTL)
    expires = int(time.time()) + URL_TTL
    plan_id = new_id("cplan")
    missing, rows = [], []
    for e in entries:
        if e["sha256"] in present:
            continue
        upload_id = "u_" + secrets.token_hex(12)
        size = e["size"]
        part_size = size if size <= SINGLE_MAX else PART_SIZE
        count = 1 if size <= SINGLE_MAX else -(-size // PART_SIZE)
        parts = []
        for n in range(1, count + 1):
            start = (n - 1) * part_size
            end = max(min(start + part_size, size) - 1, start)  # inclusive; 0 for an empty object
            length = min(start + part_size, size) - start
            parts.append({"part_number": n, "byte_start": start, "byte_end": end,
                          "url": upload_url(request, base, upload_id, n, expires, length,
                                            e["sha256"] if count == 1 else None)})
        missing.append({"sha256": e["sha256"], "mode": "single" if size <= SINGLE_MAX else "multipart",
                        "parts": parts, "part_size_bytes": max(part_size, 0), "part_count": count,
                        "upload_id": upload_id, "staging_key": f"_staging/{upload_id}", "expires_at": iso(expires_at)})
        rows.append((upload_id, plan_id, project.id, e["sha256"], size, e["content_type"], max(part_size, 1), count,
                     expires_at))
    with ctx.pool.connection() as conn, conn.transaction():
        conn.execute("INSERT INTO run402_meta.content_plans (id, project_id, expires_at) VALUES (%s, %s, %s)",
                     (plan_id, project.id, expires_at))
        with conn.cursor() as cur:  # one pipelined batch, not a round trip per object
            cur.executemany("INSERT INTO run402_meta.content_uploads (upload_id, plan_id, project_id, sha256, "
                            "size, content_type, part_size, part_count, expires_at) "
                            "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)", rows)
    return JSONResponse({"plan_id": plan_id, "expires_at": iso(expires_at), "missing": missing,
                         "entries": [{"sha256": e["sha256"], "missing": e["sha256"] not in present} for e in entries]})


def _assemble(staging: Path, part_count: int) -> Path:
    if part_count == 1:
        return staging / "part-1"
    out = staging / f"assembled.{secrets.token_hex(4)}.tmp"
    with open(out, "wb") as dst:
        for n in range(1, part_count + 1):
            with open(staging / f"part-{n}", "rb") as src:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
    return out


async def _commit(request: Request) -> JSONResponse:
    return await run_in_threadpool(_commit_sync, request)


def _commit_sync(request: Request) -> JSONResponse:
    ctx: GatewayContext = request.app.state.ctx
    project = project_from_apikey(request, ctx)
    plan_id = request.path_params["id"]
    with ctx.pool.connection() as conn:
        plan = conn.execute("SELECT expires_at FROM run402_meta.content_plans WHERE id = %s AND project_id = %s",
                            (plan_id, project.id)).fetchone()
        uploads = conn.execute("SELECT upload_id, sha256, size, part_count, status FROM run402_meta.content_uploads "
                               "WHERE plan_id = %s ORDER BY upload_id", (plan_id,)).fetchall()
    if plan is None:
        raise GatewayError(404, "CONTENT_PLAN_NOT_FOUND", f"Content plan {plan_id} not found")
    cas = Cas(ctx.cas_dir)
    batch: set[Path] = set()

    def proven(upload: tuple) -> tuple[str, Any] | None:
        """The outcome when no bytes need reading (most uploads), else None."""
        upload_id, sha, size, part_count, status = upload
        if status == "committed":
            return "committed", None
        if part_count != 1:
            return None
        proof = str(proof_path(cas, upload_id))
        if not os.path.exists(proof):
            return None
        stored = cas.path(sha)  # the PUT verified and published it: is it still there, whole?
        try:
            ok = os.stat(stored).st_size == size
        except OSError:
            ok = False
        try:
            os.unlink(proof)
        except FileNotFoundError:
            pass
        if ok:
            batch.add(stored.parent)
            return "stored", None
        return None  # the object went missing: verify what is staged, if anything

    def admit(upload: tuple) -> tuple[str, Any]:
        upload_id, sha, size, part_count, _ = upload
        staging = cas.staging_root / upload_id
        absent = [n for n in range(1, part_count + 1) if not (staging / f"part-{n}").is_file()]
        if absent:
            return "incomplete", {"sha256": sha, "upload_id": upload_id, "missing_parts": absent}
        try:
            cas.put_verified(_assemble(staging, part_count), sha, size, batch=batch)
        except DigestMismatch as exc:
            cas.discard_staging(upload_id)  # wrong bytes are never kept; the client re-uploads
            return "mismatched", {"sha256": sha, "size": size, "actual_sha256": exc.actual_sha256,
                                  "actual_size": exc.actual_size, "upload_id": upload_id}
        cas.discard_staging(upload_id)  # the object is in the store (or was): staging goes
        return "stored", None

    # A proof is a stat and an unlink: done here, one after another (threads would only take
    # turns holding the GIL, and hold up the event loop's PUTs). Verifying is reading and
    # hashing, which releases the GIL: those few objects at a time.
    outcomes: list[tuple[str, Any] | None] = [proven(u) for u in uploads]
    unproven = [u for u, outcome in zip(uploads, outcomes) if outcome is None]
    if unproven:
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="run402-cas-commit") as pool:
            verified = iter(list(pool.map(admit, unproven)))
        outcomes = [outcome if outcome is not None else next(verified) for outcome in outcomes]
    committed, incomplete, mismatched, stored = [], [], [], []
    for upload, (kind, info) in zip(uploads, outcomes):
        if kind in ("committed", "stored"):
            committed.append(upload[1])
            if kind == "stored":
                stored.append(upload)
        else:
            (incomplete if kind == "incomplete" else mismatched).append(info)
    if stored:
        cas.sync(batch)  # the objects and their names are on disk before the database says so
        with ctx.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO run402_meta.cas_refs (project_id, sha256, size) VALUES (%s, %s, %s) "
                            "ON CONFLICT DO NOTHING", [(project.id, u[1], u[2]) for u in stored])
            cur.execute("UPDATE run402_meta.content_uploads SET status = 'committed' WHERE upload_id = ANY(%s)",
                        ([u[0] for u in stored],))
    if mismatched:
        raise GatewayError(400, "CONTENT_DIGEST_MISMATCH",
                           f"{len(mismatched)} object(s) did not match their declared sha256/size; nothing was "
                           "stored for them", category="deploy", details={"plan_id": plan_id, "mismatched": mismatched,
                                                                          "committed": committed},
                           next_actions=[{"action": "reupload_content"}])
    if incomplete:
        raise GatewayError(400, "CONTENT_UPLOAD_INCOMPLETE", f"{len(incomplete)} object(s) have parts not uploaded",
                           category="deploy", details={"plan_id": plan_id, "incomplete": incomplete})
    with ctx.pool.connection() as conn:
        conn.execute("UPDATE run402_meta.content_plans SET status = 'committed' WHERE id = %s", (plan_id,))
    return JSONResponse({"plan_id": plan_id, "status": "committed", "committed": committed})

