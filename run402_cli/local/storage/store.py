"""A project's assets in the metadata database, and the shapes derived from a row.

Why it is built this way:
- A key's row says what `/_blob/<key>` serves now; its bytes are a CAS object the project
  proved it holds (cas_refs), so storage never copies bytes, and a site file and an asset with
  the same digest are one object on disk.
- Every immutable put also records a version (`asset_versions`, by its content-addressed key
  `<stem>-<8hex>.<ext>`): an immutable URL keeps serving its bytes after the key is
  overwritten. `rm` takes the key down with all its versions.
- An image's WebP variants (`asset_variants`, by `<stem>-<8hex>-v1-<name>-<6hex>.webp`) are
  served like versions: an immutable put's variants are retained after an overwrite, a
  mutable put's go with the bytes they were made from; `rm` takes them all.
- When the gateway serves other bytes than the uploaded ones (EXIF stripped), the row keeps
  the upload's identity (`source_sha256`, `source_size_bytes`): the same file put again is
  the same content, nothing to upload and no new version.
- Usage is what the project keeps serving: live keys, the retained versions whose bytes are
  no longer the key's, and the variants (the quota that counts it is slice.py's).
- Writers hold the project's revision row (`lock_revision`) for their transaction, so an
  asset write, a prune's re-check and a quota check never interleave.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from run402_cli.wire.assets import (
    VARIANT_SPEC_VERSION, content_digest, encode_key_path, etag, immutable_key, sri, variant_key,
)

__all__ = [
    "Asset", "BLOB_PREFIX", "COLUMNS", "asset_host", "asset_ref", "bump_revision", "delete_keys",
    "keys_under", "load_asset", "load_assets", "load_version", "lock_revision", "project_of_asset_host",
    "usage", "write_put",
]

BLOB_PREFIX = "/_blob/"
COLUMNS = ("key, sha256, size_bytes, content_type, visibility, immutable, metadata, exif_policy, width_px, "
            "height_px, image_format, uploaded_by, created_at, updated_at, source_sha256, source_size_bytes, "
            "image_info, image_exif, blurhash, variants")


@dataclass(frozen=True)
class Asset:
    key: str
    sha256: str
    size_bytes: int
    content_type: str
    visibility: str
    immutable: bool
    metadata: dict[str, Any] | None = None
    exif_policy: str | None = None
    width_px: int | None = None
    height_px: int | None = None
    image_format: str | None = None
    uploaded_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    source_sha256: str | None = None      # the uploaded bytes, when other bytes are served
    source_size_bytes: int | None = None
    image_info: dict[str, Any] | None = None
    image_exif: dict[str, Any] | None = None
    blurhash: str | None = None
    variants: dict[str, Any] | None = None  # {name: {sha256, size_bytes, width_px, height_px}}

    @property
    def upload(self) -> tuple[str, int]:
        """(sha256, size) of the bytes the client uploaded for this row."""
        if self.source_sha256 is not None and self.source_size_bytes is not None:
            return self.source_sha256, self.source_size_bytes
        return self.sha256, self.size_bytes

    def same_content(self, other: "Asset") -> bool:
        """True if writing `other` over this row would change nothing a reader can see."""
        return (self.upload, self.content_type, self.visibility, self.immutable, self.metadata,
                self.exif_policy) == (other.upload, other.content_type, other.visibility,
                                      other.immutable, other.metadata, other.exif_policy)


# -- hosts and URLs --------------------------------------------------------------------------

def _public_id(project_id: str) -> str:
    return project_id.removeprefix("prj_").replace("_", "-")


def asset_host(project_id: str) -> str:
    """The label of the project's asset host: `pr-<public id>` (prj_1733_4 -> pr-1733-4)."""
    return "pr-" + _public_id(project_id)


def project_of_asset_host(label: str) -> str | None:
    """The project id an asset host label names (not checked against the database)."""
    return "prj_" + label[3:].replace("-", "_") if label.startswith("pr-") and len(label) > 3 else None


def asset_ref(port: int | None, project_id: str, a: Asset) -> dict[str, Any]:
    """The wire `asset_ref` (§3.2). Every public URL is on the project's asset host (the spec
    lets `url` sit on a pretty host; one host keeps a key's URLs stable when subdomains
    change); private keys have no public URL."""
    suffix = f":{port}" if port else ""
    cdn_base = url_base = f"http://{asset_host(project_id)}.localhost{suffix}{BLOB_PREFIX}"
    public = a.visibility == "public"
    mutable_path = encode_key_path(a.key)
    immutable_path = encode_key_path(immutable_key(a.key, a.sha256))
    ref: dict[str, Any] = {
        "key": a.key, "sha256": a.sha256, "size_bytes": a.size_bytes, "content_type": a.content_type,
        "visibility": a.visibility, "immutable": a.immutable,
        "url": url_base + mutable_path if public else None,
        "immutable_url": url_base + immutable_path if public and a.immutable else None,
        "cdn_url": cdn_base + mutable_path if public else None,
        "cdn_immutable_url": cdn_base + immutable_path if public and a.immutable else None,
        "sri": sri(a.sha256), "etag": etag(a.sha256), "content_digest": content_digest(a.sha256),
        "metadata": a.metadata,
    }
    if a.source_sha256 is not None:
        ref.update(source_sha256=a.source_sha256, source_size_bytes=a.source_size_bytes)
    if a.image_format is not None:
        ref["image_format"] = a.image_format
        if a.width_px is not None and a.height_px is not None:
            ref.update(width_px=a.width_px, height_px=a.height_px, blurhash=a.blurhash)
        ref.update(display_url=ref["cdn_url"], display_immutable_url=ref["cdn_immutable_url"])
        if public and a.variants:
            ref["variant_spec_version"] = VARIANT_SPEC_VERSION
            ref["variants"] = {}
            for name, v in a.variants.items():
                path = encode_key_path(variant_key(a.key, a.sha256, name, v["sha256"]))
                ref["variants"][name] = {"url": url_base + path, "cdn_url": cdn_base + path, "width_px": v["width_px"],
                                         "height_px": v["height_px"], "format": "webp", "sha256": v["sha256"]}
    for name in ("image_info", "image_exif"):
        if getattr(a, name) is not None:
            ref[name] = getattr(a, name)
    if a.exif_policy is not None or a.image_format is not None:
        ref["image_exif_policy"] = a.exif_policy or "keep"
    return ref


# -- reading ---------------------------------------------------------------------------------

def _asset(row: tuple) -> Asset:
    return Asset(*row)


def load_asset(conn: psycopg.Connection, project_id: str, key: str) -> Asset | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM run402_meta.assets WHERE project_id = %s AND key = %s",
                       (project_id, key)).fetchone()
    return _asset(row) if row else None


def load_assets(conn: psycopg.Connection, project_id: str, keys: list[str]) -> dict[str, Asset]:
    if not keys:
        return {}
    rows = conn.execute(f"SELECT {COLUMNS} FROM run402_meta.assets WHERE project_id = %s AND key = ANY(%s)",
                        (project_id, keys)).fetchall()
    return {r[0]: _asset(r) for r in rows}


def keys_under(conn: psycopg.Connection, project_id: str, prefix: str) -> dict[str, int]:
    """{key: size_bytes} of the project's keys starting with `prefix`, in key order."""
    rows = conn.execute("SELECT key, size_bytes FROM run402_meta.assets WHERE project_id = %s "
                        "AND starts_with(key, %s) ORDER BY key", (project_id, prefix)).fetchall()
    return dict(rows)


def load_version(conn: psycopg.Connection, project_id: str, ikey: str) -> tuple[str, str, int, str] | None:
    """(key, sha256, size_bytes, content_type) of an immutable URL's version or image variant."""
    return conn.execute("SELECT key, sha256, size_bytes, content_type FROM run402_meta.asset_versions "
                        "WHERE project_id = %s AND immutable_key = %s UNION ALL "
                        "SELECT key, sha256, size_bytes, 'image/webp' FROM run402_meta.asset_variants "
                        "WHERE project_id = %s AND variant_key = %s LIMIT 1",
                        (project_id, ikey, project_id, ikey)).fetchone()


def usage(conn: psycopg.Connection, project_id: str) -> tuple[int, int]:
    """(bytes the project's assets keep serving, live keys)."""
    (live, keys) = conn.execute("SELECT coalesce(sum(size_bytes), 0), count(*) FROM run402_meta.assets "
                                "WHERE project_id = %s", (project_id,)).fetchone()
    (retained,) = conn.execute(
        "SELECT coalesce(sum(v.size_bytes), 0) FROM run402_meta.asset_versions v LEFT JOIN run402_meta.assets a "
        "ON a.project_id = v.project_id AND a.key = v.key AND a.sha256 = v.sha256 "
        "WHERE v.project_id = %s AND a.key IS NULL", (project_id,)).fetchone()
    (variants,) = conn.execute("SELECT coalesce(sum(size_bytes), 0) FROM (SELECT DISTINCT sha256, size_bytes FROM "
                               "run402_meta.asset_variants WHERE project_id = %s) d", (project_id,)).fetchone()
    return int(live) + int(retained) + int(variants), int(keys)


# -- writing (inside the caller's transaction, holding lock_revision) ---------------------------

def lock_revision(conn: psycopg.Connection, project_id: str) -> int:
    conn.execute("INSERT INTO run402_meta.asset_revisions (project_id) VALUES (%s) ON CONFLICT DO NOTHING",
                 (project_id,))
    (rev,) = conn.execute("SELECT revision FROM run402_meta.asset_revisions WHERE project_id = %s FOR UPDATE",
                          (project_id,)).fetchone()
    return int(rev)


def bump_revision(conn: psycopg.Connection, project_id: str) -> None:
    conn.execute("UPDATE run402_meta.asset_revisions SET revision = revision + 1 WHERE project_id = %s",
                 (project_id,))


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def write_put(conn: psycopg.Connection, project_id: str, a: Asset) -> None:
    """Upsert a key (created_at kept on overwrite) with its image variants and, for an
    immutable put, its version. Bytes the gateway derived are linked to the project."""
    conn.execute(
        "INSERT INTO run402_meta.assets (project_id, key, sha256, size_bytes, content_type, visibility, immutable, "
        "metadata, exif_policy, width_px, height_px, image_format, uploaded_by, source_sha256, source_size_bytes, "
        "image_info, image_exif, blurhash, variants) "
        "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (project_id, key) DO UPDATE SET "
        "sha256 = EXCLUDED.sha256, size_bytes = EXCLUDED.size_bytes, content_type = EXCLUDED.content_type, "
        "visibility = EXCLUDED.visibility, immutable = EXCLUDED.immutable, metadata = EXCLUDED.metadata, "
        "exif_policy = EXCLUDED.exif_policy, width_px = EXCLUDED.width_px, height_px = EXCLUDED.height_px, "
        "image_format = EXCLUDED.image_format, uploaded_by = EXCLUDED.uploaded_by, "
        "source_sha256 = EXCLUDED.source_sha256, source_size_bytes = EXCLUDED.source_size_bytes, "
        "image_info = EXCLUDED.image_info, image_exif = EXCLUDED.image_exif, blurhash = EXCLUDED.blurhash, "
        "variants = EXCLUDED.variants, updated_at = clock_timestamp()",
        (project_id, a.key, a.sha256, a.size_bytes, a.content_type, a.visibility, a.immutable, _json(a.metadata),
         a.exif_policy, a.width_px, a.height_px, a.image_format, a.uploaded_by, a.source_sha256, a.source_size_bytes,
         _json(a.image_info), _json(a.image_exif), a.blurhash, _json(a.variants)))
    conn.execute("DELETE FROM run402_meta.asset_variants WHERE project_id = %s AND key = %s AND NOT retained",
                 (project_id, a.key))
    derived = [(a.sha256, a.size_bytes)] if a.source_sha256 is not None else []
    for name, v in (a.variants or {}).items():
        conn.execute("INSERT INTO run402_meta.asset_variants (project_id, variant_key, key, name, sha256, size_bytes, "
                     "width_px, height_px, retained) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (project_id, "
                     "variant_key) DO UPDATE SET retained = run402_meta.asset_variants.retained OR EXCLUDED.retained",
                     (project_id, variant_key(a.key, a.sha256, name, v["sha256"]), a.key, name, v["sha256"],
                      v["size_bytes"], v["width_px"], v["height_px"], a.immutable))
        derived.append((v["sha256"], v["size_bytes"]))
    for sha, size in derived:
        conn.execute("INSERT INTO run402_meta.cas_refs (project_id, sha256, size) VALUES (%s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (project_id, sha, size))
    if a.immutable:
        # An 8-hex suffix names the version; the first digest to claim it keeps it (its URL is
        # promised to serve those bytes for good).
        conn.execute("INSERT INTO run402_meta.asset_versions (project_id, immutable_key, key, sha256, size_bytes, "
                     "content_type) VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                     (project_id, immutable_key(a.key, a.sha256), a.key, a.sha256, a.size_bytes, a.content_type))


def delete_keys(conn: psycopg.Connection, project_id: str, keys: list[str]) -> list[str]:
    """Delete keys and their versions; returns the keys that existed."""
    if not keys:
        return []
    gone = [r[0] for r in conn.execute("DELETE FROM run402_meta.assets WHERE project_id = %s AND key = ANY(%s) "
                                       "RETURNING key", (project_id, keys))]
    conn.execute("DELETE FROM run402_meta.asset_versions WHERE project_id = %s AND key = ANY(%s)", (project_id, keys))
    conn.execute("DELETE FROM run402_meta.asset_variants WHERE project_id = %s AND key = ANY(%s)", (project_id, keys))
    return sorted(gone)
