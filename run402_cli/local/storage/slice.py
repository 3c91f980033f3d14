"""The `assets` slice of an apply spec (spec/api-deploy.md §1.3.9): what the gateway checks,
what its plan reports, and what the activation transaction writes.

- Validation trusts nothing the client normalized: key rules, digests, metadata and the
  exif policy are the shared wire rules (`wire.assets`), refused as 400 with `details.path`.
- Quota: the tier's storage covers the database's own size and the assets' usage together
  (one tier figure, as on the hosted platform), per project. 402 STORAGE_QUOTA_EXCEEDED.
- The plan's cost and quota are measured, not estimated: the writes are made in a
  transaction that is always rolled back, and usage is read inside it (versions retained by
  immutable URLs, replaced keys, deletes: whatever the commit would leave). Over quota is a
  plan-time 402, before any byte is uploaded; activation checks again in its own transaction.
- Image puts are read at commit, before activation (`derive_images`, storage/derive.py): the
  activation writes what was derived (image fields, stripped bytes, variants) and the quota
  check there counts it. A plan shows a key's derived fields once it holds those bytes.
- A prune deletes the keys under `sync.prefix` that the put batch does not name. Deleting
  needs the plan's `asset_sync` values echoed back as `confirm`; if the set of keys changed
  in between (another put, an rm, a function's assets.put) it is `ASSET_SYNC_DRIFT` (409),
  at plan time and again under the revision lock at activation.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, NoReturn

import psycopg

from run402_cli.local.context import GatewayContext
from run402_cli.local.control.callers import Project
from run402_cli.local.control.projects import storage_bytes
from run402_cli.local.control.tiers import TIERS, active_tier
from run402_cli.local.deploy.cas import SHA256_RE, Cas
from run402_cli.local.errors import GatewayError
from run402_cli.local.storage import derive, store
from run402_cli.local.storage.store import Asset
from run402_cli.wire.assets import (
    EXIF_POLICIES, asset_content_type, asset_key_problem, content_type_problem, metadata_problem,
)

__all__ = ["AssetPlan", "activate", "derive_images", "plan", "plan_buckets", "prune_warning", "put_now", "summary",
           "validate_slice"]

MAX_PUTS = 10_000
MAX_OBJECT = 4 * 1024 * 1024 * 1024  # the content plan's own per-object limit
SAMPLE_KEYS = 50
INLINE_THRESHOLD = 1000
_PUT_FIELDS = {"key", "sha256", "size_bytes", "content_type", "visibility", "immutable", "metadata", "exif_policy"}


def _bad(path: str, message: str, code: str = "INVALID_SPEC", **details: Any) -> NoReturn:
    raise GatewayError(400, code, f"{path}: {message}", category="deploy", details={"path": path, **details},
                       next_actions=[{"action": "edit_spec", "path": path}])


def _put_entry(e: Any, where: str) -> str:
    if not isinstance(e, dict):
        _bad(where, "must be an object {key, sha256, size_bytes, ...}")
    unknown = sorted(set(e) - _PUT_FIELDS)
    if unknown:
        _bad(f"{where}.{unknown[0]}", "unknown field", allowed=sorted(_PUT_FIELDS))
    for name in ("key", "sha256", "size_bytes"):
        if name not in e:
            _bad(f"{where}.{name}", "is required")
    problem = asset_key_problem(e["key"])
    if problem:
        _bad(f"{where}.key", f"asset key {problem}")
    if not isinstance(e["sha256"], str) or not SHA256_RE.match(e["sha256"]):
        _bad(f"{where}.sha256", "must be 64 lowercase hex characters")
    size = e["size_bytes"]
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_OBJECT:
        _bad(f"{where}.size_bytes", f"must be an integer from 0 to {MAX_OBJECT}")
    if "content_type" in e and (content_type_problem(e["content_type"]) or len(e["content_type"]) > 255):
        _bad(f"{where}.content_type", content_type_problem(e["content_type"]) or "is longer than 255 characters")
    if e.get("visibility", "public") not in ("public", "private"):
        _bad(f"{where}.visibility", 'must be "public" or "private"')
    if not isinstance(e.get("immutable", True), bool):
        _bad(f"{where}.immutable", "must be a boolean")
    if e.get("metadata") is not None and metadata_problem(e["metadata"]):
        _bad(f"{where}.metadata", f"metadata {metadata_problem(e['metadata'])}", code="INVALID_ASSET_METADATA")
    if e.get("exif_policy") is not None and e["exif_policy"] not in EXIF_POLICIES:
        _bad(f"{where}.exif_policy", 'must be "keep" or "strip"', code="INVALID_EXIF_POLICY")
    return e["key"]


def validate_slice(value: Any) -> None:
    if not isinstance(value, dict):
        _bad("assets", "must be an object {put?, delete?, sync?}")
    unknown = sorted(set(value) - {"put", "delete", "sync"})
    if unknown:
        _bad(f"assets.{unknown[0]}", "unknown field", allowed=["delete", "put", "sync"])
    keys: set[str] = set()
    puts = value.get("put", [])
    if not isinstance(puts, list) or len(puts) > MAX_PUTS:
        _bad("assets.put", f"must be an array of at most {MAX_PUTS} entries")
    for i, e in enumerate(puts):
        key = _put_entry(e, f"assets.put[{i}]")
        if key in keys:
            _bad(f"assets.put[{i}].key", f"key {key!r} appears twice", code="ASSET_DUPLICATE_KEY_IN_PUT", key=key)
        keys.add(key)
    deletes = value.get("delete", [])
    if not isinstance(deletes, list) or len(deletes) > MAX_PUTS or not all(isinstance(k, str) for k in deletes):
        _bad("assets.delete", f"must be an array of at most {MAX_PUTS} keys")
    for i, key in enumerate(deletes):
        if asset_key_problem(key):
            _bad(f"assets.delete[{i}]", f"asset key {asset_key_problem(key)}")
        if key in keys:
            _bad(f"assets.delete[{i}]", f"key {key!r} is both put and deleted", code="ASSET_KEY_IN_PUT_AND_DELETE",
                 key=key)
    if "sync" in value:
        sync = value["sync"]
        if not isinstance(sync, dict) or set(sync) - {"prefix", "prune", "confirm"}:
            _bad("assets.sync", "must be {prefix, prune: true, confirm?}")
        if not isinstance(sync.get("prefix"), str) or not sync["prefix"] or len(sync["prefix"].encode()) > 1024:
            _bad("assets.sync.prefix", "must be a non-empty string")
        if sync.get("prune") is not True:
            _bad("assets.sync.prune", "must be true")
        conf = sync.get("confirm")
        if conf is not None:
            if not isinstance(conf, dict) or set(conf) != {"base_revision", "delete_set_digest",
                                                            "expected_delete_count"}:
                _bad("assets.sync.confirm", "must be {base_revision, delete_set_digest, expected_delete_count}")
            n = conf["expected_delete_count"]
            if not all(isinstance(conf[k], str) for k in ("base_revision", "delete_set_digest")) or \
                    isinstance(n, bool) or not isinstance(n, int) or n < 0:
                _bad("assets.sync.confirm", "base_revision and delete_set_digest are strings, "
                                            "expected_delete_count an integer >= 0")


@dataclass
class AssetPlan:
    puts: list[Asset]                      # the batch as it will be written
    existing: dict[str, Asset]             # rows the batch's keys (and deletes) have now
    deletes: list[str]                     # assets.delete, as given
    prune: list[str] | None                # keys a sync would delete now (None: no sync)
    sync: dict[str, Any] | None            # the plan's asset_sync block
    cost: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.prune) and (self.sync or {}).get("confirmed") is not True

    @property
    def changed(self) -> bool:
        return bool(self.prune) or any(k in self.existing for k in self.deletes) or any(
            a.key not in self.existing or not self.existing[a.key].same_content(a) for a in self.puts)

    @property
    def writes(self) -> list[Asset]:
        return [a for a in self.puts if a.key not in self.existing or not self.existing[a.key].same_content(a)]

    def removals(self) -> list[str]:
        return sorted({*(k for k in self.deletes if k in self.existing), *(self.prune or [])})


def _storage_limit(conn: psycopg.Connection, project: Project) -> tuple[int, int]:
    """(the tier's storage in bytes, the database's own size in bytes)."""
    tier, _started, _expires = active_tier(conn, project.wallet)
    limits = TIERS.get(tier or project.tier, TIERS["prototype"])
    return limits["storage_mb"] * 1024 * 1024, storage_bytes(conn, project.schema_slot)


def _check_quota(conn: psycopg.Connection, project: Project, assets_before: int, assets_after: int) -> None:
    """402 STORAGE_QUOTA_EXCEEDED if growing the project's assets to `assets_after` bytes would
    pass its tier's storage. A change that does not grow them is always allowed."""
    if assets_after <= assets_before:
        return
    limit, database = _storage_limit(conn, project)
    if database + assets_after > limit:
        raise GatewayError(
            402, "STORAGE_QUOTA_EXCEEDED",
            f"This would store {database + assets_after} bytes; the {project.tier} tier allows {limit}",
            category="quota", safe_to_retry=True,
            details={"scope": "project", "storage_bytes": database + assets_before,
                     "storage_bytes_after": database + assets_after, "storage_limit_bytes": limit,
                     "database_bytes": database},
            hint="Free space (run402 assets rm <key>) or move to a larger tier (run402 tier set hobby)",
            next_actions=[{"action": "check_usage"}, {"action": "renew_tier"}])


def _digest(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()


def _drift(message: str, **details: Any) -> GatewayError:
    return GatewayError(409, "ASSET_SYNC_DRIFT", message, category="deploy", retryable=False, safe_to_retry=True,
                        details=details, hint="Plan again and confirm the new asset_sync values",
                        next_actions=[{"action": "replan"}])


def _prune_set(conn: psycopg.Connection, project_id: str, spec: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    sync = spec["sync"]
    put_keys = {e["key"] for e in spec.get("put", [])}
    doomed = [k for k in store.keys_under(conn, project_id, sync["prefix"]) if k not in put_keys]
    (rev,) = conn.execute("SELECT coalesce((SELECT revision FROM run402_meta.asset_revisions WHERE project_id = %s), "
                          "0)", (project_id,)).fetchone()
    block = {"prefix": sync["prefix"], "prune": True, "base_revision": f"rev_{rev}",
             "delete_set_digest": _digest(doomed), "expected_delete_count": len(doomed),
             "sample_keys": doomed[:SAMPLE_KEYS], "over_inline_threshold": len(doomed) > INLINE_THRESHOLD}
    confirm = sync.get("confirm")
    if confirm is not None:
        if (confirm["delete_set_digest"], confirm["expected_delete_count"]) != (block["delete_set_digest"],
                                                                                len(doomed)):
            raise _drift(f"The keys under {sync['prefix']!r} changed since the plan: {len(doomed)} would be deleted "
                         f"now, {confirm['expected_delete_count']} were confirmed",
                         prefix=sync["prefix"], expected_delete_count=confirm["expected_delete_count"],
                         delete_count=len(doomed), base_revision=confirm["base_revision"],
                         current_revision=block["base_revision"], sample_keys=doomed[:SAMPLE_KEYS])
        block["confirmed"] = True
    return doomed, block


def _desired(e: dict[str, Any], uploaded_by: str | None) -> Asset:
    return Asset(key=e["key"], sha256=e["sha256"], size_bytes=e["size_bytes"],
                 content_type=asset_content_type(e["key"], e.get("content_type")),
                 visibility=e.get("visibility", "public"), immutable=e.get("immutable", True),
                 metadata=e.get("metadata"), exif_policy=e.get("exif_policy"), uploaded_by=uploaded_by)


def _write(conn: psycopg.Connection, project_id: str, p: AssetPlan) -> None:
    for a in p.writes:
        store.write_put(conn, project_id, a)
    store.delete_keys(conn, project_id, p.removals())
    store.bump_revision(conn, project_id)


def plan(conn: psycopg.Connection, project: Project, spec: dict[str, Any] | None, uploaded_by: str | None
         ) -> AssetPlan | None:
    """What the spec's assets slice does now, its cost measured by a rolled-back write; 402
    when it would pass the quota, 409 ASSET_SYNC_DRIFT for a stale prune confirmation."""
    if spec is None:
        return None
    puts = [_desired(e, uploaded_by) for e in spec.get("put", [])]
    deletes = list(spec.get("delete", []))
    existing = store.load_assets(conn, project.id, [a.key for a in puts] + deletes)
    prune, block = _prune_set(conn, project.id, spec) if "sync" in spec else (None, None)
    p = AssetPlan(puts=puts, existing=existing, deletes=deletes, prune=prune, sync=block)
    with conn.transaction(force_rollback=True):
        store.lock_revision(conn, project.id)
        before, keys_before = store.usage(conn, project.id)
        _write(conn, project.id, p)
        after, keys_after = store.usage(conn, project.id)
        _check_quota(conn, project, before, after)
    added = sum(a.size_bytes for a in p.writes)
    p.cost = {"storage_bytes_added": added, "storage_bytes_freed": max(before + added - after, 0),
              "storage_bytes_net": after - before,
              "asset_keys_added": len([a for a in p.writes if a.key not in existing]),
              "asset_keys_removed": len(p.removals()), "asset_keys_after_commit": keys_after,
              "billable_delta_usd_micros": 0, "payment_required": False,
              "quota_before": {"storage_bytes": before, "asset_keys": keys_before},
              "quota_after": {"storage_bytes": after, "asset_keys": keys_after}}
    return p


def plan_buckets(p: AssetPlan, port: int | None, project_id: str, present: set[str]) -> dict[str, Any]:
    """The plan response's asset buckets: asset_entries (with status and asset_ref),
    asset_deletes, asset_sync (when a sync was asked for)."""
    pending: set[str] = set()
    entries = []
    for a in p.puts:
        if a.sha256 in present:
            status = "present"
        elif a.sha256 in pending:
            status = "satisfied_by_plan"
        else:
            status = "upload_pending"
            pending.add(a.sha256)
        # A key already holding these bytes answers with what was derived from them (an image's
        # fields, the stripped bytes' digest): what the post-commit dry run reads back.
        now = p.existing.get(a.key)
        shown = now if now is not None and now.same_content(a) else a
        entries.append({"key": a.key, "sha256": a.sha256, "size_bytes": a.size_bytes, "content_type": a.content_type,
                        "visibility": a.visibility, "immutable": a.immutable, "status": status,
                        "asset_ref": store.asset_ref(port, project_id, shown)})
    out: dict[str, Any] = {"asset_entries": entries, "asset_deletes": p.deletes}
    if p.sync is not None:
        out["asset_sync"] = {k: v for k, v in p.sync.items() if k != "confirmed"}
    return out


def summary(p: AssetPlan) -> str:
    """`2 assets put; 1 asset deleted`, or "" when the slice changes nothing."""
    parts = []
    for n, word in ((len(p.writes), "put"), (len(p.removals()), "deleted")):
        if n:
            parts.append(f"{n} asset{'s' if n != 1 else ''} {word}")
    return "; ".join(parts)


def prune_warning(p: AssetPlan) -> dict[str, Any] | None:
    if not p.needs_confirmation:
        return None
    s = p.sync or {}
    return {"code": "ASSET_PRUNE_REQUIRES_CONFIRMATION", "severity": "high", "requires_confirmation": True,
            "message": f"assets.sync would delete {s['expected_delete_count']} key(s) under {s['prefix']!r}. Echo "
                       "asset_sync's base_revision, delete_set_digest and expected_delete_count back as "
                       "assets.sync.confirm to delete exactly these.",
            "affected": s["sample_keys"],
            "details": {k: s[k] for k in ("base_revision", "delete_set_digest", "expected_delete_count")}}


def activate(conn: psycopg.Connection, project: Project, spec: dict[str, Any], p: AssetPlan) -> None:
    """Inside the activation transaction: re-check the prune and the quota under the revision
    lock, then write. Raises GatewayError (the transaction then rolls back)."""
    store.lock_revision(conn, project.id)
    prune, block = _prune_set(conn, project.id, spec) if "sync" in spec else (None, None)
    # What the keys hold now, under the lock: a put another writer already made is not redone.
    p = AssetPlan(puts=p.puts, existing=store.load_assets(conn, project.id, [a.key for a in p.puts] + p.deletes),
                  deletes=p.deletes, prune=prune, sync=block)
    if p.needs_confirmation:
        assert block is not None and prune is not None
        raise GatewayError(409, "PRUNE_CONFIRMATION_REQUIRED",
                           f"assets.sync would delete {len(prune)} key(s) under {block['prefix']!r}; "
                           "confirm them first", category="deploy", safe_to_retry=True,
                           details={k: block[k] for k in ("base_revision", "delete_set_digest",
                                                          "expected_delete_count", "sample_keys")},
                           next_actions=[{"action": "confirm_prune"}])
    before, _ = store.usage(conn, project.id)
    _write(conn, project.id, p)
    after, _ = store.usage(conn, project.id)
    _check_quota(conn, project, before, after)


def derive_images(ctx: GatewayContext, p: AssetPlan) -> None:
    """Read the image puts `p` writes (outside any transaction) and put what was derived from
    them in their place, for the activation to write."""
    writes = {a.key for a in p.writes}
    derived = derive.derive_all(Cas(ctx.cas_dir), [a for a in p.puts if a.key in writes])
    p.puts = [derived.get(a.key, a) for a in p.puts]


def put_now(ctx: GatewayContext, project: Project, entry: dict[str, Any], port: int | None) -> dict[str, Any]:
    """One put outside a deploy (a function's assets.put): the activation step alone, in its
    own transaction; the bytes are already the project's. Returns the wire asset_ref."""
    a = _desired(entry, uploaded_by="service_key")
    with ctx.pool.connection() as conn:
        existing = store.load_assets(conn, project.id, [a.key])
    p = AssetPlan(puts=[a], existing=existing, deletes=[], prune=None, sync=None)
    derive_images(ctx, p)
    with ctx.pool.connection() as conn, conn.transaction():
        activate(conn, project, {"put": [entry]}, p)
        now = store.load_asset(conn, project.id, a.key)
    return store.asset_ref(port, project.id, now or p.puts[0])
