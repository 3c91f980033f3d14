"""One deploy, end to end, in the official client's order: plan -> events -> warning gate ->
upload only what the gateway lacks -> commit -> poll -> DeployResult. No printing: every
DeployEvent goes to the `on_event` callback the command passes (it prints JSON lines on
stderr, or drives a progress bar).

    [site.secret_files.skipped] -> plan.started -> plan.diff -> [plan.warnings] -> [payment.required]
      -> content.upload.skipped* -> content.upload.progress*
      -> commit.phase(validate, started) -> [commit.phase pairs] -> ready

Decisions where the spec leaves room:
- One plan request for the whole tree; `missing_content` (every ref with `present`) decides
  what is uploaded; nothing else is asked of the gateway per file.
- Uploads run on a small thread pool (8; the official v2.10.0 client uploads one object at a
  time). Events are emitted from the calling thread only, as objects finish, so `done` counts
  up 1..total in order and the callback never needs to be thread-safe.
- Every object is hashed again as its bytes are read for upload; a mismatch with the planned
  digest (the file changed since it was hashed) stops the deploy before anything is
  committed (`FILE_CHANGED_DURING_DEPLOY`), instead of shipping bytes the plan did not
  describe.
- A part larger than 1 MiB of a file on disk is streamed in 1 MiB pieces (a 1 GiB upload
  never sits in memory) and hashed as it is sent; smaller parts are read whole, as before.
- Retries: 3 attempts per part, 1 s then 2 s apart, on 5xx, 403 and network errors.
- A spec whose inline plan body exceeds 5 MiB goes through the `manifest_ref` escape hatch
  (uploaded to the CAS as one object, then planned by reference).
- `BASE_RELEASE_CONFLICT` with `safe_to_retry: true` and a current/omitted base re-plans from
  scratch, at most twice (the official client's budget), announcing each retry with `deploy.retry`.
- Secrets the directory walk left out (`WalkResult.secrets`, passed as `skipped_secrets`) are
  announced once, before the first plan, in `site.secret_files.skipped` (not a DeployEvent of
  the official client: ours, so a user sees what was not published and why). Only on stderr:
  the result keeps the official shape.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qs, urlsplit

from run402_cli.deploy.secrets_filter import skipped_secrets_event
from run402_cli.deploy.spec import MANIFEST_CONTENT_TYPE, Content, Release, manifest_upload_size
from run402_cli.errors import ApiError, LocalError, NetworkError, Run402Error
from run402_cli.wire.errors import BASE_RELEASE_CONFLICT, INTERNAL_ERROR, MISSING_REQUIRED_SECRET

__all__ = [
    "DeployError",
    "DeployOutcome",
    "EventSink",
    "INLINE_SPEC_LIMIT",
    "apply",
    "blocking_warnings",
    "dry_run",
    "normalize_plan",
    "poll_operation",
    "resume",
]

EventSink = Callable[[dict[str, Any]], None]
INLINE_SPEC_LIMIT = 5 * 1024 * 1024
UPLOAD_WORKERS = 8
CONTENT_PLAN_BATCH = 1000
PART_ATTEMPTS = 3
STREAM_PART_BYTES = 1 << 20  # a part of a file larger than this is streamed from disk, never held whole
MAX_RETRIES = 2  # BASE_RELEASE_CONFLICT: 3 attempts in all
POLL_TIMEOUT = 600.0

_PHASES = {
    "staging": "stage",
    "gating": "migrate-gate",
    "migrating": "migrate",
    "schema_settling": "schema-settle",
    "activating": "activate",
}
_TERMINAL = {"ready", "failed", "rolled_back", "needs_repair"}
_TERMINAL_PENDING_CODES = {
    "BAD_FIELD", "INVALID_SPEC", "FUNCTION_ACTIVATE_FAILED", "FUNCTION_CONFIG_INVALID",
    "FUNCTION_TIMEOUT_EXCEEDS_TIER", "FUNCTION_MEMORY_EXCEEDS_TIER",
    "FUNCTION_SCHEDULE_EXCEEDS_TIER", "FUNCTION_SCHEDULE_INTERVAL_TOO_SHORT",
    "FUNCTION_SCHEDULE_LIMIT_EXCEEDED", "TIER_LIMIT_EXCEEDED",
}
_DIFF_KEYS = ("is_noop", "summary", "warnings", "migrations", "site", "functions", "secrets",
              "subdomains", "routes", "static_assets")
# Fields of a gateway deploy error, in the order we print them after the required ones.
_ERROR_FIELDS = ("category", "phase", "resource", "mutation_state", "operation_id", "plan_id",
                 "fix", "logs", "rolled_back", "details")


class DeployError(Run402Error):
    """A deploy that failed: a `failed` commit/operation, a blocking warning, a local upload
    failure. The envelope carries every field the gateway gave (phase, resource,
    mutation_state, operation_id, plan_id, fix, logs, ...)."""

    def __init__(self, code: str, message: str, *, body: Mapping[str, Any] | None = None,
                 retryable: bool = False, safe_to_retry: bool = False, hint: str | None = None,
                 next_actions: list[Any] | None = None, http: int | None = None) -> None:
        super().__init__(message, code=code, hint=hint, next_actions=next_actions, retryable=retryable)
        self.safe_to_retry = safe_to_retry
        self.body: dict[str, Any] = dict(body or {})
        self.http = http

    def to_envelope(self) -> dict[str, Any]:
        env: dict[str, Any] = {"status": "error"}
        if self.http is not None:
            env["http"] = self.http
        env.update(code=self.code, message=self.message, retryable=self.retryable,
                   safe_to_retry=self.safe_to_retry)
        for key in _ERROR_FIELDS:
            if self.body.get(key) is not None:
                env[key] = self.body[key]
        for key, value in self.body.items():
            env.setdefault(key, value)
        if self.hint is not None:
            env["hint"] = self.hint
        if not env.get("next_actions"):
            env["next_actions"] = list(self.next_actions)
        env.setdefault("trace_id", None)
        env["status"] = "error"
        return env


def deploy_error(err: Mapping[str, Any] | None, *, status: str | None = None,
                 operation_id: str | None = None, plan_id: str | None = None) -> DeployError:
    """A gateway `error` object (from a commit response or a snapshot) -> DeployError."""
    err = dict(err or {})
    details = err.get("details") if isinstance(err.get("details"), dict) else {}
    code = str(err.get("code") or (f"DEPLOY_{status.upper()}" if status else "DEPLOY_FAILED")).upper()
    body = dict(err)
    body["code"] = code
    for key in ("operation_id", "plan_id", "phase", "resource", "mutation_state"):
        if body.get(key) is None and details.get(key) is not None:
            body[key] = details[key]
    if body.get("operation_id") is None and operation_id:
        body["operation_id"] = operation_id
    if body.get("plan_id") is None and plan_id:
        body["plan_id"] = plan_id
    if status and status != "failed":
        body.setdefault("operation_status", status)
    message = str(err.get("message") or err.get("error") or f"Deploy {status or 'failed'} ({code})")
    for key in ("code", "message", "retryable", "safe_to_retry", "hint"):
        body.pop(key, None)
    return DeployError(
        code, message, body=body,
        retryable=err.get("retryable") is True,
        safe_to_retry=err.get("safe_to_retry") is True,
        hint=err.get("hint") if isinstance(err.get("hint"), str) else None,
        next_actions=err.get("next_actions") if isinstance(err.get("next_actions"), list) else None,
    )


@dataclass
class DeployOutcome:
    result: dict[str, Any]  # DeployResult: release_id, operation_id, urls, diff, warnings
    plan: dict[str, Any]  # the (normalized) plan of the attempt that went through
    objects_uploaded: int = 0
    bytes_put: int = 0
    attempts: int = 1
    timings: dict[str, float] = field(default_factory=dict)


def normalize_plan(raw: Any, client_warnings: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Both plan-response envelope generations -> one dict with `diff` and `warnings`. The modern
    flat envelope's buckets are folded into `diff` (what the SDK does); client-generated
    warnings are merged in, de-duplicated on (code, affected)."""
    plan = dict(raw) if isinstance(raw, dict) else {}
    if "kind" in plan:
        plan["diff"] = {k: plan[k] for k in _DIFF_KEYS if k in plan}
    elif not isinstance(plan.get("diff"), dict):
        plan["diff"] = {}
    warnings = [w for w in (plan.get("warnings") or []) if isinstance(w, dict)]
    seen = {(w.get("code"), json.dumps(w.get("affected"), sort_keys=True)) for w in warnings}
    for w in client_warnings:
        key = (w.get("code"), json.dumps(w.get("affected"), sort_keys=True))
        if key not in seen:
            seen.add(key)
            warnings.append(dict(w))
    plan["warnings"] = warnings
    if not isinstance(plan.get("missing_content"), list):
        plan["missing_content"] = []
    return plan


def blocking_warnings(warnings: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [w for w in warnings
            if w.get("requires_confirmation") is True or w.get("code") == MISSING_REQUIRED_SECRET]


def _gate(plan: Mapping[str, Any], allow_all: bool, allowed: tuple[str, ...]) -> None:
    """The warning gate: stop before any upload or commit on an unacknowledged blocking warning."""
    if allow_all:
        return
    unack = [w for w in blocking_warnings(plan["warnings"]) if w.get("code") not in allowed]
    if not unack:
        return
    codes = sorted({str(w.get("code")) for w in unack})
    first = MISSING_REQUIRED_SECRET if MISSING_REQUIRED_SECRET in codes else str(unack[0].get("code"))
    raise DeployError(
        first,
        f"Deploy plan returned warnings that require confirmation: {', '.join(codes)}",
        body={
            "phase": "plan", "resource": "warnings",
            "fix": {"action": "review_warnings", "path": "warnings"},
            "operation_id": plan.get("operation_id"), "plan_id": plan.get("plan_id"),
            "warnings": list(plan["warnings"]),
            "unacknowledged_warnings": unack,
            "unacknowledged_warning_codes": codes,
            "allowed_warning_codes": sorted(allowed),
        },
        safe_to_retry=True,
    )


# --- upload -------------------------------------------------------------------------------


def _changed(content: Content) -> LocalError:
    return LocalError(
        f"{content.label} changed while it was being deployed (its bytes no longer match the "
        "planned SHA-256); nothing was committed.",
        code="FILE_CHANGED_DURING_DEPLOY", retryable=True,
        hint="Re-run the deploy once the files have stopped changing.",
        details={"label": content.label, "sha256": content.sha256, "path": content.path},
    )


def _put_with_retry(client: Any, url: str, data: bytes | Callable[[], Iterator[bytes]],
                    checksum: str | None, label: str, sleep: Callable[[float], None],
                    length: int | None = None) -> str | None:
    """PUT one part; `data` is its bytes, or a function giving a fresh stream of them per attempt."""
    from run402_cli.api import deploy as api

    for attempt in range(1, PART_ATTEMPTS + 1):
        try:
            payload = data() if callable(data) else data
            return api.put_part(client, url, payload, length=length, checksum_sha256_b64=checksum,
                                context=f"uploading {label}")
        except (ApiError, NetworkError) as err:
            status = getattr(err, "http", None)
            retryable = isinstance(err, NetworkError) or status == 403 or (status or 0) >= 500
            if not retryable or attempt == PART_ATTEMPTS:
                raise
            sleep(float(attempt))  # 1 s, then 2 s
    return None  # unreachable


def _upload_object(client: Any, content: Content, session: Mapping[str, Any],
                   sleep: Callable[[float], None]) -> int:
    mode = session.get("mode")
    parts = sorted(session.get("parts") or [], key=lambda p: p.get("part_number", 0))
    if not parts or (mode == "single" and len(parts) != 1):
        raise DeployError("CONTENT_UPLOAD_FAILED",
                          f"Content plan for {content.label} has {len(parts)} parts in {mode} mode",
                          body={"sha256": content.sha256, "label": content.label})
    whole = hashlib.sha256() if mode != "single" else None
    sent = 0
    for part in parts:
        start = int(part["byte_start"])
        end = min(int(part["byte_end"]), content.size - 1)  # inclusive; an empty object is 0..-1
        length = max(0, end - start + 1)
        if content.path is not None and length > STREAM_PART_BYTES:
            etag = _stream_part(client, content, start, end, str(part["url"]), whole, sleep)
            if whole is not None and not etag:
                raise DeployError("CONTENT_UPLOAD_FAILED",
                                  f"Upload of part {part.get('part_number')} of {content.label} "
                                  "returned no ETag", body={"sha256": content.sha256})
            sent += length
            continue
        data = content.read(start, end) if end >= start else b""
        if len(data) != max(0, end - start + 1):
            raise _changed(content)
        if whole is None:
            if hashlib.sha256(data).hexdigest() != content.sha256:
                raise _changed(content)
            checksum = base64.b64encode(bytes.fromhex(content.sha256)).decode("ascii")
        else:
            whole.update(data)
            checksum = base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")
        url = str(part["url"])
        if "x-amz-checksum-sha256" in parse_qs(urlsplit(url).query):
            checksum = None  # already signed into the URL: a header would break SigV4
        etag = _put_with_retry(client, url, data, checksum, content.label, sleep)
        if whole is not None and not etag:
            raise DeployError("CONTENT_UPLOAD_FAILED",
                              f"Upload of part {part.get('part_number')} of {content.label} "
                              "returned no ETag", body={"sha256": content.sha256})
        sent += len(data)
    if whole is not None and whole.hexdigest() != content.sha256:
        raise _changed(content)
    return sent


def _stream_part(client: Any, content: Content, start: int, end: int, url: str,
                 whole: Any, sleep: Callable[[float], None]) -> str | None:
    """PUT the part start..end of a file on disk without holding it in memory: read in 1 MiB
    pieces as the request body is sent, and hashed on the way. A single-part object's digest is
    the planned one; a multipart part's is computed first, by one more read (which also feeds
    `whole`). Either way, the bytes sent must hash to it, or the file changed under us."""
    length = end - start + 1
    if whole is None:
        expected = content.sha256
    else:
        part_hash, seen = hashlib.sha256(), 0
        for piece in content.chunks(start, end):
            part_hash.update(piece)
            whole.update(piece)
            seen += len(piece)
        if seen != length:
            raise _changed(content)
        expected = part_hash.hexdigest()
    checksum: str | None = base64.b64encode(bytes.fromhex(expected)).decode("ascii")
    if "x-amz-checksum-sha256" in parse_qs(urlsplit(url).query):
        checksum = None
    sent_hash: list[Any] = []

    def body() -> Iterator[bytes]:
        h, n = hashlib.sha256(), 0
        sent_hash[:] = [h]
        for piece in content.chunks(start, end):
            h.update(piece)
            n += len(piece)
            yield piece
        if n != length:  # shorter than its Content-Length: the file shrank
            raise _changed(content)

    etag = _put_with_retry(client, url, body, checksum, content.label, sleep, length=length)
    if not sent_hash or sent_hash[0].hexdigest() != expected:
        raise _changed(content)
    return etag


def _upload_missing(client: Any, release: Release, plan: Mapping[str, Any], anon_key: str | None,
                    emit: EventSink, workers: int, sleep: Callable[[float], None]) -> tuple[int, int]:
    seen: set[str] = set()
    present: list[str] = []
    missing: list[Content] = []
    for ref in plan["missing_content"]:
        sha = ref.get("sha256") if isinstance(ref, dict) else None
        if not isinstance(sha, str) or sha in seen:
            continue
        seen.add(sha)
        if ref.get("present") is True:
            present.append(sha)
            continue
        content = release.contents.get(sha)
        if content is None or not content.has_bytes:
            raise DeployError(
                "CONTENT_UPLOAD_FAILED",
                f"Content {sha} is not in the project's CAS and there are no local bytes for it",
                body={"sha256": sha, "label": content.label if content else sha},
                hint="A pre-resolved ContentRef must point at bytes already uploaded to this project.")
        missing.append(content)

    for sha in present:
        c = release.contents.get(sha)
        event: dict[str, Any] = {"type": "content.upload.skipped", "label": c.label if c else sha,
                                 "sha256": sha, "reason": "present"}
        if c is not None:
            event["slice_kind"] = c.slice_kind
        emit(event)
    if not missing:
        return 0, 0

    items = []
    for c in missing:
        item: dict[str, Any] = {"sha256": c.sha256, "size": c.size}
        if c.content_type:
            item["content_type"] = c.content_type
        items.append(item)
    batches = [items[i : i + CONTENT_PLAN_BATCH] for i in range(0, len(items), CONTENT_PLAN_BATCH)]
    return _Pipeline(client, release, anon_key, emit, workers, sleep, by_sha={c.sha256: c for c in missing}).run(batches)


class _Pipeline:
    """Content plans, uploads and content commits, overlapped: batch k+1 is planned while batch
    k uploads, and batch k is committed as soon as its last object is up, while the others go
    on. Done one after another (plan all, upload all, commit all), the plans and commits of a
    10,000-file deploy were a third of its time, with the uploads idle.

    Every finished piece of work reports to one queue, read by the calling thread: it alone
    emits events and decides what comes next, and the first failure stops everything."""

    def __init__(self, client: Any, release: Release, anon_key: str | None, emit: EventSink, workers: int,
                 sleep: Callable[[float], None], by_sha: Mapping[str, Content]) -> None:
        self.client, self.release, self.anon_key, self.emit = client, release, anon_key, emit
        self.workers, self.sleep, self.by_sha = workers, sleep, by_sha
        self.events: queue.SimpleQueue[tuple[str, int, Any, Future[Any]]] = queue.SimpleQueue()

    def _report(self, kind: str, batch: int, what: Any, fut: Future[Any]) -> None:
        fut.add_done_callback(lambda f: self.events.put((kind, batch, what, f)))

    def _jobs(self, cp: Mapping[str, Any]) -> list[tuple[Content, Mapping[str, Any]]]:
        jobs = []
        for s in cp.get("missing") or []:
            if not isinstance(s, dict):
                continue
            c = self.by_sha.get(s.get("sha256")) or self.release.contents.get(s.get("sha256"))
            if c is None or not c.has_bytes:
                raise DeployError("CONTENT_UPLOAD_FAILED",
                                  f"Content plan asked for {s.get('sha256')}, which this deploy has no bytes for",
                                  body={"sha256": s.get("sha256")})
            jobs.append((c, s))
        return jobs

    def run(self, batches: list[list[dict[str, Any]]]) -> tuple[int, int]:
        from run402_cli.api import deploy as api

        if not batches:
            return 0, 0
        # Until a batch's plan is back, each of its objects counts as one upload to come.
        total, done, sent = sum(len(b) for b in batches), 0, 0
        left: dict[int, int] = {}
        commits_left = len(batches)
        planner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run402-content-plan")
        uploads = ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="run402-upload")
        committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="run402-content-commit")
        futures: list[Future[Any]] = []

        def commit(batch: int, plan_id: str) -> None:
            fut = committer.submit(api.content_commit, self.client, self.anon_key, plan_id)
            futures.append(fut)
            self._report("commit", batch, None, fut)

        try:
            for k, batch in enumerate(batches):  # one after another, in order: batch 0 first
                fut = planner.submit(api.content_plan, self.client, self.anon_key, batch)
                futures.append(fut)
                self._report("plan", k, len(batch), fut)
            while commits_left:
                kind, k, what, fut = self.events.get()
                result = fut.result()  # re-raises the first failure
                if kind == "plan":
                    jobs, plan_id = self._jobs(result), str(result.get("plan_id"))
                    total -= what - len(jobs)
                    left[k] = len(jobs)
                    if not jobs:
                        commit(k, plan_id)
                    for c, session in jobs:
                        up = uploads.submit(_upload_object, self.client, c, session, self.sleep)
                        futures.append(up)
                        self._report("upload", k, (c, plan_id), up)
                elif kind == "upload":
                    c, plan_id = what
                    sent += result
                    done += 1
                    self.emit({"type": "content.upload.progress", "label": c.label, "sha256": c.sha256,
                               "done": done, "total": total, "slice_kind": c.slice_kind})
                    left[k] -= 1
                    if not left[k]:
                        commit(k, plan_id)
                else:
                    commits_left -= 1
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        finally:
            for pool in (planner, uploads, committer):
                pool.shutdown(wait=True, cancel_futures=True)
        return done, sent


def _upload_manifest(client: Any, release: Release, anon_key: str | None) -> dict[str, Any]:
    """For a spec over 5 MiB: put the normalized spec in the CAS and plan with a `manifest_ref` instead."""
    from run402_cli.api import deploy as api

    data = json.dumps(release.spec, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    sha = hashlib.sha256(data).hexdigest()
    content = Content(sha, len(data), MANIFEST_CONTENT_TYPE, "manifest", "release", data=data)
    cplan = api.content_plan(client, anon_key, [{"sha256": sha, "size": len(data),
                                                 "content_type": MANIFEST_CONTENT_TYPE}])
    for s in cplan.get("missing") or []:
        if s.get("sha256") == sha:
            _upload_object(client, content, s, time.sleep)
    api.content_commit(client, anon_key, str(cplan.get("plan_id")))
    return {"sha256": sha, "size": len(data), "contentType": MANIFEST_CONTENT_TYPE}


# --- commit and poll ----------------------------------------------------------------------


def _is_terminal(snapshot: Mapping[str, Any]) -> bool:
    status = snapshot.get("status")
    if status in _TERMINAL:
        return True
    if status == "activation_pending":
        err = snapshot.get("error") if isinstance(snapshot.get("error"), dict) else None
        if err and (err.get("retryable") is False or err.get("safe_to_retry") is False
                    or str(err.get("code", "")).upper() in _TERMINAL_PENDING_CODES):
            return True
    return False


def _ready(snapshot: Mapping[str, Any], release: Release | None, emit: EventSink) -> dict[str, Any]:
    if not snapshot.get("release_id") or not isinstance(snapshot.get("urls"), dict):
        raise DeployError(INTERNAL_ERROR, "The gateway reported ready without release_id and urls",
                          body={"operation_id": snapshot.get("operation_id")})
    event: dict[str, Any] = {"type": "ready", "releaseId": snapshot["release_id"], "urls": snapshot["urls"]}
    if release is not None and release.slice_kinds:
        event["slice_kinds"] = release.slice_kinds
    emit(event)
    return snapshot  # type: ignore[return-value]


def poll_operation(client: Any, anon_key: str | None, operation_id: str, *, emit: EventSink,
                   release: Release | None = None, plan_id: str | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   clock: Callable[[], float] = time.monotonic,
                   timeout: float = POLL_TIMEOUT) -> dict[str, Any]:
    """Poll `GET /apply/v1/operations/:id` until terminal, emitting commit.phase events.
    Returns the ready snapshot; raises DeployError on failure or after `timeout`."""
    from run402_cli.api import deploy as api

    started = clock()
    interval = 1.0
    current: str | None = None
    last_status: str | None = None
    kinds = release.slice_kinds if release is not None else []

    def phase(name: str, status: str) -> None:
        event: dict[str, Any] = {"type": "commit.phase", "phase": name, "status": status}
        if kinds:
            event["slice_kinds"] = kinds
        emit(event)

    while True:
        snap = api.get_operation(client, anon_key, operation_id)
        status = str(snap.get("status"))
        if status != last_status:
            new = _PHASES.get(status)
            if new is not None and new != current:
                if current is not None:
                    phase(current, "done")
                phase(new, "started")
                current = new
            elif status == "activation_pending":
                if current is not None and current != "activate":
                    phase(current, "done")
                phase("activate", "failed")
                current = None
            last_status = status
        if _is_terminal(snap):
            if status == "ready":
                if current is not None:
                    phase(current, "done")
                return _ready(snap, release, emit)
            if current is not None:
                phase(current, "failed")
            raise deploy_error(snap.get("error"), status=status, operation_id=operation_id,
                               plan_id=plan_id or snap.get("plan_id"))
        elapsed = clock() - started
        if elapsed >= timeout:
            raise DeployError(
                INTERNAL_ERROR,
                f"Timed out waiting for deploy operation {operation_id} (last status {status})",
                body={"operation_id": operation_id, "phase": status},
                retryable=True, safe_to_retry=True, http=504,
                hint=f"Check it later with: run402 deploy events {operation_id}")
        sleep(interval)
        if clock() - started > 30:
            interval = min(interval * 1.5, 30.0)


def _commit(client: Any, release: Release, plan: Mapping[str, Any], anon_key: str | None,
            emit: EventSink, sleep: Callable[[float], None],
            clock: Callable[[], float]) -> dict[str, Any]:
    from run402_cli.api import deploy as api

    event: dict[str, Any] = {"type": "commit.phase", "phase": "validate", "status": "started"}
    if release.slice_kinds:
        event["slice_kinds"] = release.slice_kinds
    emit(event)
    plan_id = str(plan["plan_id"])
    resp = api.commit(client, plan_id, release.idempotency_key)
    status = resp.get("status")
    operation_id = resp.get("operation_id") or plan.get("operation_id")
    if status == "ready":
        return _ready(resp, release, emit)
    if status == "failed":
        raise deploy_error(resp.get("error"), status="failed", operation_id=operation_id, plan_id=plan_id)
    return poll_operation(client, anon_key, str(operation_id), emit=emit, release=release,
                          plan_id=plan_id, sleep=sleep, clock=clock)


# --- the whole thing ----------------------------------------------------------------------


def _plan(client: Any, release: Release, anon_key: str | None) -> dict[str, Any]:
    from run402_cli.api import deploy as api

    body: dict[str, Any] = {"spec": release.spec}
    if manifest_upload_size(release) > INLINE_SPEC_LIMIT:
        body = {"spec": {"project": release.project},
                "manifest_ref": _upload_manifest(client, release, anon_key)}
    if release.idempotency_key:
        body["idempotency_key"] = release.idempotency_key
    return normalize_plan(api.plan(client, body), release.client_warnings)


def _apply_once(client: Any, release: Release, anon_key: str | None, emit: EventSink,
                allow_all: bool, allowed: tuple[str, ...], workers: int,
                sleep: Callable[[float], None], clock: Callable[[], float]) -> DeployOutcome:
    t0 = clock()
    emit({"type": "plan.started"})
    plan = _plan(client, release, anon_key)
    t1 = clock()
    emit({"type": "plan.diff", "diff": plan["diff"]})
    if plan["warnings"]:
        emit({"type": "plan.warnings", "warnings": plan["warnings"]})
    _gate(plan, allow_all, allowed)
    if not plan.get("plan_id"):
        raise DeployError("DRY_RUN_PLAN_NOT_COMMITTABLE", "The gateway returned a plan without plan_id",
                          body={"manifest_digest": plan.get("manifest_digest")})
    pay = plan.get("payment_required")
    if isinstance(pay, dict):
        emit({"type": "payment.required", **{k: pay.get(k) for k in ("amount", "asset", "payTo", "reason")}})
    objects, sent = _upload_missing(client, release, plan, anon_key, emit, workers, sleep)
    t2 = clock()
    ready = _commit(client, release, plan, anon_key, emit, sleep, clock)
    t3 = clock()
    result = {
        "release_id": ready["release_id"],
        "operation_id": ready.get("operation_id") or plan.get("operation_id"),
        "urls": ready["urls"],
        "diff": plan["diff"],
        "warnings": plan["warnings"],
    }
    return DeployOutcome(result=result, plan=plan, objects_uploaded=objects, bytes_put=sent,
                         timings={"plan": t1 - t0, "upload": t2 - t1, "commit": t3 - t2})


def _error_code_and_safety(err: Run402Error) -> tuple[str, bool]:
    if isinstance(err, DeployError):
        return err.code, err.safe_to_retry
    if isinstance(err, ApiError) and isinstance(err.body, dict):
        return str(err.body.get("code") or err.code).upper(), err.body.get("safe_to_retry") is True
    return err.code, False


def apply(
    client: Any,
    release: Release,
    *,
    anon_key: str | None,
    on_event: EventSink | None = None,
    skipped_secrets: Iterable[Any] = (),
    allow_warnings: bool = False,
    allowed_warning_codes: Iterable[str] = (),
    max_retries: int = MAX_RETRIES,
    workers: int = UPLOAD_WORKERS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
) -> DeployOutcome:
    """Deploy `release`; returns the outcome or raises (DeployError, ApiError, ...).
    `skipped_secrets`: the walk's SkippedSecret items, announced once before planning."""
    emit = on_event or (lambda _e: None)
    secrets_event = skipped_secrets_event(skipped_secrets)
    if secrets_event is not None:
        emit(secrets_event)  # once, not per BASE_RELEASE_CONFLICT attempt
    allowed = tuple(dict.fromkeys(allowed_warning_codes))
    attempt = 1
    while True:
        try:
            outcome = _apply_once(client, release, anon_key, emit, allow_warnings, allowed,
                                  workers, sleep, clock)
            outcome.attempts = attempt
            return outcome
        except Run402Error as err:
            code, safe = _error_code_and_safety(err)
            if code != BASE_RELEASE_CONFLICT or not safe or not release.base_is_current:
                raise
            if attempt > max_retries:
                extra = {"attempts": attempt, "max_retries": max_retries, "last_retry_code": code}
                if isinstance(err, DeployError):
                    err.body.update(extra)
                elif isinstance(err, ApiError) and isinstance(err.body, dict):
                    err.body = {**err.body, **extra}
                raise
            delay_ms = min(250 * 2 ** (attempt - 1), 2000) + int(jitter() * 100)
            body = err.body if isinstance(getattr(err, "body", None), dict) else {}
            emit({
                "type": "deploy.retry", "attempt": attempt, "nextAttempt": attempt + 1,
                "maxAttempts": max_retries + 1, "delayMs": delay_ms, "code": code,
                "phase": body.get("phase"), "resource": body.get("resource"),
                "operationId": body.get("operation_id"), "planId": body.get("plan_id"),
                "message": err.message,
            })
            sleep(delay_ms / 1000)
            attempt += 1


def dry_run(client: Any, release: Release) -> dict[str, Any]:
    """`POST /apply/v1/plans?dry_run=true` with the inline spec (never an idempotency key)."""
    from run402_cli.api import deploy as api

    if manifest_upload_size(release) > INLINE_SPEC_LIMIT:
        raise LocalError("A dry run needs the spec inline, and this one is larger than 5 MiB.",
                         code="DRY_RUN_REQUIRES_INLINE_SPEC",
                         details={"limit_bytes": INLINE_SPEC_LIMIT})
    return normalize_plan(api.plan(client, {"spec": release.spec}, dry_run=True), release.client_warnings)


def resume(client: Any, operation_id: str, *, anon_key_for: Callable[[str | None], str | None],
           on_event: EventSink | None = None, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """`POST /apply/v1/operations/:id/resume`, then poll to a terminal state. The apikey for
    polling comes from the project the snapshot names (`anon_key_for(project_id)`), which
    fixes the official CLI, whose polling after a resume sends no key."""
    from run402_cli.api import deploy as api

    emit = on_event or (lambda _e: None)
    snap = api.resume(client, operation_id)
    if _is_terminal(snap) or snap.get("status") == "ready":
        if snap.get("status") != "ready":
            raise deploy_error(snap.get("error"), status=str(snap.get("status")),
                               operation_id=operation_id, plan_id=snap.get("plan_id"))
        ready = _ready(snap, None, emit)
    else:
        ready = poll_operation(client, anon_key_for(snap.get("project_id")), operation_id,
                               emit=emit, plan_id=snap.get("plan_id"), sleep=sleep, clock=clock)
    return {"release_id": ready["release_id"], "operation_id": ready.get("operation_id") or operation_id,
            "urls": ready["urls"], "diff": {}, "warnings": []}
