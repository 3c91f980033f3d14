"""`assets put` as a deploy: local files -> an assets-only release -> plan / upload what the
gateway lacks / commit (`flow.apply`) -> the AssetRef of each key, read from the plan's
`asset_entries[].asset_ref` (spec/api-deploy.md §3.1, §1.4).

Decisions where the spec leaves room:
- All the files of one `assets put` go in ONE release (one plan, one commit): they land
  together or not at all, and a key given twice is refused before anything is read
  (`ASSET_DUPLICATE_KEY_IN_PUT`; the official CLI uploads one file at a time, the later
  silently overwriting the earlier).
- Files are hashed by streaming (1 MiB reads) and their bytes stay on disk until a part is
  uploaded (`Content.path`); the upload streams large parts too (flow.py).
- For an `image/*` put, the AssetRefs are refreshed by one dry-run plan after the commit (image
  variants are made at commit time), best effort, as the SDK does. The image fields are taken
  from it, and, when the gateway serves other bytes than the file's (`--exif-policy strip`),
  the digest, size and URLs too: `sri` and `etag` then match what is served.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from run402_cli.deploy.spec import Content, Release
from run402_cli.errors import LocalError, UsageError
from run402_cli.wire.assets import sdk_asset_ref

__all__ = ["AssetFile", "AssetPut", "asset_refs", "check_files", "put_release", "refresh_image_refs", "sdk_refs"]

_IMAGE_FIELDS = ("width_px", "height_px", "blurhash", "variant_spec_version", "display_url",
                 "display_immutable_url", "variants", "image_format", "image_info", "image_exif",
                 "image_exif_policy", "source_sha256", "source_size_bytes")
_SERVED_FIELDS = ("sha256", "size_bytes", "url", "immutable_url", "cdn_url", "cdn_immutable_url", "sri", "etag",
                  "content_digest")


@dataclass(frozen=True)
class AssetFile:
    """One local file and the key it is stored under."""

    path: str  # as the user gave it
    key: str
    content_type: str


@dataclass(frozen=True)
class AssetPut:
    """What every file of one put shares."""

    visibility: str = "public"  # public | private
    immutable: bool = False
    metadata: Mapping[str, Any] | None = None
    exif_policy: str | None = None  # keep | strip


def _stat_file(path: str) -> int:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UsageError(f"File not found: {path}", code="FILE_NOT_FOUND",
                         details={"path": path}) from None
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror or exc}", code="FILE_NOT_FOUND",
                         details={"path": path}) from None
    import stat

    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is not a regular file (a directory or a device?).", code="NOT_A_FILE",
                         details={"path": path})
    return st.st_size


def check_files(files: Sequence[AssetFile]) -> list[int]:
    """The size of each file; FILE_NOT_FOUND / NOT_A_FILE before anything is read or sent."""
    return [_stat_file(f.path) for f in files]


def put_release(project: str, files: Sequence[AssetFile], put: AssetPut) -> Release:
    """`{project, assets: {put: [...]}}` with each file hashed (streamed) and left on disk."""
    from run402_cli.deploy.hashcache import sha256_file

    contents: dict[str, Content] = {}
    entries: list[dict[str, Any]] = []
    for i, f in enumerate(files):
        size = _stat_file(f.path)
        try:
            sha, size = sha256_file(f.path, size)
        except OSError as exc:
            raise UsageError(f"Cannot read {f.path}: {exc.strerror or exc}", code="FILE_NOT_FOUND",
                             details={"path": f.path}) from None
        if sha not in contents:
            contents[sha] = Content(sha, size, f.content_type, f"assets.put[{i}] ({f.key})", "asset",
                                    path=os.path.abspath(f.path))
        entry: dict[str, Any] = {"key": f.key, "sha256": sha, "size_bytes": size,
                                 "content_type": f.content_type, "visibility": put.visibility,
                                 "immutable": put.immutable}
        if put.metadata is not None:
            entry["metadata"] = dict(put.metadata)
        if put.exif_policy is not None:
            entry["exif_policy"] = put.exif_policy
        entries.append(entry)
    return Release(project=project, spec={"project": project, "assets": {"put": entries}},
                   contents=contents)


def _entries(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for e in plan.get("asset_entries") or []:
        if isinstance(e, dict) and isinstance(e.get("key"), str):
            ref = e.get("asset_ref") if isinstance(e.get("asset_ref"), dict) else None
            if ref is not None:
                out[e["key"]] = {**ref, "key": ref.get("key", e["key"])}
    return out


def asset_refs(plan: Mapping[str, Any], files: Sequence[AssetFile]) -> list[dict[str, Any]]:
    """The wire `asset_ref` of each file's key, in the files' order."""
    by_key = _entries(plan)
    refs = []
    for f in files:
        ref = by_key.get(f.key)
        if ref is None:
            raise LocalError(
                f"The deploy succeeded but the plan has no asset_entries entry for {f.key!r} "
                "(a gateway older than unified apply v1.48?).",
                code="ASSET_ENTRY_MISSING", details={"key": f.key},
                hint=f"Check the key with: run402 assets ls --prefix {f.key}")
        refs.append(ref)
    return refs


def refresh_image_refs(refs: list[dict[str, Any]], recheck: Mapping[str, Any]) -> None:
    """Copy the image fields of a post-commit dry-run plan into `refs` (in place), and the
    served bytes' digest, size and URLs when they are not the uploaded ones."""
    by_key = _entries(recheck)
    for ref in refs:
        fresh = by_key.get(ref.get("key"))
        if fresh is None:
            continue
        for field in _IMAGE_FIELDS:
            if field in fresh:
                ref[field] = fresh[field]
        derived = fresh.get("source_sha256") == ref.get("sha256") or fresh.get("image_exif_policy") == "strip"
        if isinstance(fresh.get("sha256"), str) and fresh["sha256"] != ref.get("sha256") and derived:
            for field in _SERVED_FIELDS:
                if field in fresh:
                    ref[field] = fresh[field]


def sdk_refs(refs: Sequence[Mapping[str, Any]], files: Sequence[AssetFile]) -> list[dict[str, Any]]:
    """The SDK AssetRef of each wire ref, with the content type this client chose."""
    return [sdk_asset_ref(dict(ref), f.content_type) for ref, f in zip(refs, files)]
