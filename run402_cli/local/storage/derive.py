"""From an uploaded image to what the gateway serves: its image fields, the EXIF-stripped
bytes when asked, its WebP variants. Runs at commit time, after the upload's bytes are in the
CAS and before the activation transaction (which then writes the derived row), on the
commit's worker thread, never on the event loop.

Decisions where the spec leaves room:
- Read: JPEG, PNG, WebP, GIF, BMP, TIFF (Pillow; images.py) and SVG (root element only), when
  the content type says image and the file is at most 50 MB. Anything else, anything larger,
  anything corrupt or claiming more than 64 megapixels is stored and served as uploaded, with
  no image fields: a deploy never fails because of what is inside an image.
- `exif_policy: "strip"` is lossless (strip.py): the stripped bytes are a CAS object of their
  own and the only bytes served (key, immutable URL, `sha256`, `sri`), the upload's digest is
  kept as `source_sha256`. `image_info.exif_strip` says what happened: `stripped`,
  `none_found` (nothing there) or `unsupported` (GIF, TIFF, SVG, HEIC/AVIF, unreadable or
  over 50 MB: served as uploaded, `image_info.exif_strip_note` says why). `image_exif` (a
  short summary: camera, dates, whether there is GPS) is only reported under `keep`.
- Variants (thumb 320w, medium 800w, large 1920w, WebP) are made for public raster images
  only: a private asset has no public URL, so neither do its variants (none are made).
  SVG gets none (it scales already).
- At most two images are decoded at once in the whole gateway, so a burst of uploads cannot
  multiply the memory a decode takes.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from run402_cli.local.deploy.cas import Cas
from run402_cli.local.storage.store import Asset

__all__ = ["MAX_BYTES", "derive", "derive_all", "is_image"]

MAX_BYTES = 50 * 1024 * 1024
RASTER_TYPES = frozenset({"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/apng", "image/webp",
                          "image/gif", "image/bmp", "image/x-ms-bmp", "image/tiff"})
SVG_TYPE = "image/svg+xml"
_DECODING = threading.BoundedSemaphore(2)
_WORKERS = 2


def _base_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def is_image(a: Asset) -> bool:
    """Whether a put is one derive() reads or strips (its content type says image/*)."""
    return _base_type(a.content_type).startswith("image/")


def _put_bytes(cas: Cas, data: bytes) -> tuple[str, int]:
    sha = hashlib.sha256(data).hexdigest()
    if cas.has(sha):
        return sha, len(data)
    upload_id = "img_" + secrets.token_hex(12)
    staging = cas.staging_path(upload_id)
    staging.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        tmp = staging / "body"
        tmp.write_bytes(data)
        cas.put_verified(tmp, sha, len(data))
    finally:
        cas.discard_staging(upload_id)
    return sha, len(data)


def _unsupported(note: str) -> dict[str, Any]:
    return {"exif_strip": "unsupported", "exif_strip_note": note}


def derive(cas: Cas, a: Asset) -> Asset:
    """`a` (as the client put it: its sha256 is the upload's) with the image fields filled
    in, and, for a stripped image, the stripped bytes as its sha256/size_bytes."""
    if not is_image(a):
        return a
    ctype, strip = _base_type(a.content_type), a.exif_policy == "strip"
    if ctype not in RASTER_TYPES and ctype != SVG_TYPE:
        if not strip:
            return a
        return replace(a, image_info=_unsupported(f"{ctype} is not read here; the bytes are served as uploaded"))
    if a.size_bytes > MAX_BYTES:
        note = f"larger than {MAX_BYTES // (1024 * 1024)} MB: not read, served as uploaded"
        return replace(a, image_info=_unsupported(note) if strip else None)
    try:
        data = cas.path(a.sha256).read_bytes()
    except OSError:
        return a
    if ctype == SVG_TYPE:
        return _svg(a, data, strip)
    from run402_cli.local.storage import images

    with _DECODING:
        pic = images.read_image(data, variants=a.visibility == "public", exif_summary=not strip)
    out = a
    info: dict[str, Any] | None = None
    if pic is not None:
        info = dict(pic.image_info)
        variants = {name: {"sha256": sha, "size_bytes": size, "width_px": w, "height_px": h}
                    for name, body, w, h in pic.variants for sha, size in [_put_bytes(cas, body)]}
        out = replace(a, width_px=pic.width_px, height_px=pic.height_px, image_format=pic.image_format,
                      image_exif=pic.image_exif, blurhash=pic.blurhash, variants=variants or None)
    if strip:
        info = {**(info or {}), **_strip(cas, data, pic.orientation if pic else None)}
        if "served" in info:
            sha, size = info.pop("served")
            out = replace(out, sha256=sha, size_bytes=size, source_sha256=a.sha256, source_size_bytes=a.size_bytes)
    return replace(out, image_info=info)


def _strip(cas: Cas, data: bytes, orientation: int | None) -> dict[str, Any]:
    from run402_cli.local.storage.strip import CannotStrip, strip

    try:
        stripped, changed = strip(data, orientation)
    except CannotStrip as exc:
        return _unsupported(exc.note)
    except Exception:  # noqa: BLE001 - hostile bytes: served as they are, and said so
        return _unsupported("the file could not be parsed; the bytes are served as uploaded")
    if not changed:
        return {"exif_strip": "none_found"}
    out: dict[str, Any] = {"exif_strip": "stripped", "served": _put_bytes(cas, stripped)}
    if orientation is not None and 2 <= orientation <= 8:
        out["exif_strip_note"] = "only the Orientation tag was kept, so the picture still displays upright"
    return out


def _svg(a: Asset, data: bytes, strip: bool) -> Asset:
    from run402_cli.local.storage.images import read_svg

    dims = read_svg(data)
    info: dict[str, Any] | None = None
    if dims is not None:
        info = {"has_alpha": True, "color_space": None, "animated": False, "frame_count": 1, "bit_depth": None,
                "orientation": None, "vector": True}
    if strip:
        info = {**(info or {}), **_unsupported("SVG has no EXIF; its <metadata> is not removed, the bytes are "
                                               "served as uploaded")}
    if dims is None:
        return replace(a, image_info=info)
    return replace(a, width_px=dims[0], height_px=dims[1], image_format="svg", image_info=info)


def derive_all(cas: Cas, puts: list[Asset]) -> dict[str, Asset]:
    """derive() for every image put, two at a time; {key: derived asset}. The same bytes with
    the same options are derived once."""
    todo = [a for a in puts if is_image(a)]
    if not todo:
        return {}

    def job_key(a: Asset) -> tuple:
        return (a.sha256, a.size_bytes, a.content_type, a.visibility, a.exif_policy)

    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(todo)), thread_name_prefix="run402-images") as pool:
        jobs: dict[tuple, Any] = {}
        for a in todo:
            if job_key(a) not in jobs:
                jobs[job_key(a)] = pool.submit(derive, cas, a)
        return {a.key: replace(jobs[job_key(a)].result(), key=a.key, metadata=a.metadata, immutable=a.immutable,
                               uploaded_by=a.uploaded_by) for a in todo}
