"""The asset (blob storage) rules the CLI (before it sends) and the gateway (before it trusts)
both apply, and the shapes both derive from an asset's digest.

- keys: `asset_key_problem` (what is wrong with a key, or None), `immutable_key` (the
  content-addressed name), `variant_key` (an image variant's name), `encode_key_path` (a key
  inside a URL path);
- content types: `asset_content_type` (explicit, else by the key's extension),
  `content_type_problem` (what a `--content-type` value must look like);
- metadata: `metadata_problem`, `coerce_meta_value` (the CLI's `--meta k=v` coercion);
- listing: the sort keys, the filter keys and `filter_problem` / `coerce_filter_value`;
- integrity: `sri`, `etag`, `content_digest` from the SHA-256 hex;
- output: `sdk_asset_ref` (the SDK AssetRef the CLI prints, from a wire `asset_ref`) and
  `html_tags` (the `<script>`, `<link>`, `<img>` and `<picture>` snippets for it).

Every `*_problem` function returns a message to put after the field's name, or None.
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any
from urllib.parse import quote

from run402_cli.wire.content_types import DEFAULT_CONTENT_TYPE, guess_asset

__all__ = [
    "ASSET_KEY_MAX", "CDN_VERSION", "EXIF_POLICIES", "FILTER_KEYS", "LS_LIMIT_MAX", "METADATA_MAX_BYTES",
    "RESERVED_KEY_PREFIXES", "SHA256_HEX", "SIGN_TTL_DEFAULT", "SIGN_TTL_MAX", "SIGN_TTL_MIN", "SORT_KEYS",
    "VANTAGE", "VARIANT_SPEC_VERSION", "VARIANT_WIDTHS", "asset_content_type", "asset_key_problem",
    "coerce_filter_value", "coerce_meta_value", "content_digest", "content_type_problem", "encode_key_path", "etag",
    "filter_problem", "html_tags", "immutable_key", "metadata_problem", "sdk_asset_ref", "sri", "variant_key",
]

ASSET_KEY_MAX = 1024  # bytes of UTF-8
RESERVED_KEY_PREFIXES = ("_cas/", "_staging/")
METADATA_MAX_BYTES = 4096  # of the compact JSON serialization, in UTF-8
EXIF_POLICIES = ("keep", "strip")
SORT_KEYS = ("key:asc", "createdAt:asc", "createdAt:desc")
FILTER_KEYS = ("uploaded_by", "tag", "format", "is_image", "min_width", "max_width", "min_height", "max_height")
_INT_FILTERS = frozenset({"min_width", "max_width", "min_height", "max_height"})
LS_LIMIT_MAX = 1000
SIGN_TTL_MIN, SIGN_TTL_MAX, SIGN_TTL_DEFAULT = 60, 604800, 3600
CDN_VERSION = "blob-gateway-v2"
VARIANT_SPEC_VERSION = "v1"
VARIANT_WIDTHS = (("thumb", 320), ("medium", 800), ("large", 1920))  # WebP, never upscaled
VANTAGE = "gateway-us-east-1"

SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")  # use with fullmatch
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MIME_BASE = re.compile(r"[^\s/]+/[^\s/]+")
_META_NUMBER = re.compile(r"-?(?:\d+(?:\.\d+)?|\.\d+)")


# --- keys -------------------------------------------------------------------------------------

def asset_key_problem(key: Any) -> str | None:
    """Why `key` cannot name an asset, or None."""
    if not isinstance(key, str) or key == "":
        return "must be a non-empty string"
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if _CONTROL.search(key):
        return "contains NUL or control characters"
    if key.startswith("/"):
        return "must be relative (no leading '/')"
    if key.endswith("/"):
        return "must name an object (no trailing '/')"
    if any(seg in (".", "..") for seg in key.split("/")):
        return "must not contain a '.' or '..' segment"  # a URL client would resolve it away
    if key.startswith(RESERVED_KEY_PREFIXES):
        return "must not start with the reserved _cas/ or _staging/ prefix"
    if len(raw) > ASSET_KEY_MAX:
        return f"is longer than {ASSET_KEY_MAX} bytes"
    return None


def _split_extension(key: str) -> tuple[str, str | None]:
    """(key without its extension, extension or None); the extension is what follows the last
    '.' of the last segment, unless that segment starts with its only dot ('.env')."""
    name = key.rpartition("/")[2]
    dot = name.rfind(".")
    if dot <= 0:
        return key, None
    return key[: len(key) - len(name) + dot], name[dot + 1:]


def immutable_key(key: str, sha256: str) -> str:
    """The content-addressed key the immutable URL serves: `logo-1a2b3c4d.png`, `blob-1a2b3c4d`."""
    suffix = sha256[:8].lower()
    stem, ext = _split_extension(key)
    return f"{stem}-{suffix}" if ext is None else f"{stem}-{suffix}.{ext}"


def variant_key(key: str, sha256: str, name: str, variant_sha256: str) -> str:
    """An image variant's content-addressed key: `logo-1a2b3c4d-v1-thumb-9f8e7d.webp` (the
    asset's first 8 hex, the variant spec, its name, the variant's own first 6 hex)."""
    stem, _ext = _split_extension(key)
    return f"{stem}-{sha256[:8].lower()}-{VARIANT_SPEC_VERSION}-{name}-{variant_sha256[:6].lower()}.webp"


def encode_key_path(key: str) -> str:
    """`key` for a URL path: each segment percent-encoded like `encodeURIComponent`, '/' kept."""
    return "/".join(quote(seg, safe="!~*'()") for seg in key.split("/"))


# --- content types ----------------------------------------------------------------------------

def asset_content_type(key: str, explicit: str | None = None) -> str:
    """The content type an asset is stored with: `explicit`, else by the key's extension."""
    if explicit:
        return explicit
    return guess_asset(key) if key else DEFAULT_CONTENT_TYPE


def content_type_problem(value: Any) -> str | None:
    """Why `value` is not a `type/subtype` MIME value (parameters allowed), or None."""
    if not isinstance(value, str) or _CONTROL.search(value):
        return "must be a type/subtype MIME value without control characters"
    if not _MIME_BASE.fullmatch(value.split(";", 1)[0].strip()):
        return "must be a non-empty type/subtype MIME value"
    return None


# --- metadata ---------------------------------------------------------------------------------

def _leaf_ok(value: Any) -> bool:
    if isinstance(value, bool) or isinstance(value, str):
        return True
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def metadata_problem(meta: Any) -> str | None:
    """Why `meta` cannot be an asset's metadata (a flat object of string, number, boolean or
    string-list leaves, ≤ 4096 bytes as compact JSON), or None."""
    if not isinstance(meta, dict):
        return "must be an object with string, number, boolean or string[] values"
    for key, value in meta.items():
        if not isinstance(key, str) or key == "":
            return "keys must be non-empty strings"
        if not _leaf_ok(value):
            return f"value of {key!r} must be a string, number, boolean or string[]"
    try:
        size = len(json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError, UnicodeEncodeError):
        return "must serialize as JSON"
    if size > METADATA_MAX_BYTES:
        return f"is {size} bytes as JSON, over the {METADATA_MAX_BYTES}-byte limit"
    return None


def coerce_meta_value(text: str) -> Any:
    """The value of `--meta k=<text>`: a ',' makes a string list (split, not trimmed);
    `true`/`false` a boolean; a plain decimal (`-?(\\d+(\\.\\d+)?|\\.\\d+)`) a number; else the text."""
    if "," in text:
        return text.split(",")
    if text in ("true", "false"):
        return text == "true"
    if _META_NUMBER.fullmatch(text):
        if "." not in text:
            return int(text)
        number = float(text)
        return int(number) if number.is_integer() else number
    return text


# --- listing ----------------------------------------------------------------------------------

def filter_problem(key: str, text: str) -> tuple[str, str] | None:
    """(code, message) when `filter[<key>]=<text>` cannot filter a listing, else None."""
    if key not in FILTER_KEYS:
        return "INVALID_FILTER_KEY", f"filter key {key!r} is not one of: {', '.join(FILTER_KEYS)}"
    if key == "is_image" and text not in ("true", "false"):
        return "INVALID_FILTER_KEY", "filter is_image must be 'true' or 'false'"
    if key in _INT_FILTERS and not re.fullmatch(r"[0-9]{1,15}", text):
        return "INVALID_FILTER_KEY", f"filter {key} must be a non-negative integer"
    if text == "":
        return "INVALID_FILTER_KEY", f"filter {key} must be a non-empty string"
    return None


def coerce_filter_value(key: str, text: str) -> Any:
    """The typed value of a filter that `filter_problem` accepted."""
    if key == "is_image":
        return text == "true"
    if key in _INT_FILTERS:
        return int(text)
    return text


# --- integrity --------------------------------------------------------------------------------

def _b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")


def sri(sha256_hex: str) -> str:
    """The Subresource Integrity value: `sha256-<base64 of the raw digest>`."""
    return f"sha256-{_b64(sha256_hex)}"


def etag(sha256_hex: str) -> str:
    """The strong ETag, quotes included: `"sha256-<hex>"`."""
    return f'"sha256-{sha256_hex}"'


def content_digest(sha256_hex: str) -> str:
    """The RFC 9530 Content-Digest value: `sha-256=:<base64>:`."""
    return f"sha-256=:{_b64(sha256_hex)}:"


# --- output -----------------------------------------------------------------------------------

_IMAGE_FIELDS = ("width_px", "height_px", "blurhash", "variant_spec_version", "display_url",
                 "display_immutable_url", "variants", "source_sha256", "source_size_bytes")
_NULLABLE_FIELDS = ("metadata", "image_format", "image_info", "image_exif", "image_exif_policy")
_HINT_IMMUTABLE = "cdnUrl is content-addressed and cached for good: embed it with its sri (see tags)."
_HINT_MUTABLE = ("This URL is mutable and CDN copies refresh asynchronously; upload with --immutable for a "
                 "content-addressed cdnUrl, or run `run402 cdn wait-fresh <url> --sha <sha256>`.")


def sdk_asset_ref(wire_ref: dict[str, Any], content_type: str) -> dict[str, Any]:
    """The SDK AssetRef (the shape the CLI prints) from a wire `asset_ref`, in the SDK's field
    order; `content_type` is the type the client chose."""
    sha = wire_ref.get("sha256")
    immutable_url = wire_ref.get("immutable_url")
    immutable = bool(immutable_url)
    visibility = wire_ref.get("visibility")
    cache_kind = "private" if visibility == "private" else ("immutable" if immutable else "mutable")
    wire_cdn = wire_ref.get("cdn") if isinstance(wire_ref.get("cdn"), dict) else {}
    ref: dict[str, Any] = {
        "key": wire_ref.get("key"),
        "size_bytes": wire_ref.get("size_bytes"),
        "sha256": sha,
        "visibility": visibility,
        "url": wire_ref.get("url"),
        "immutable_url": immutable_url,
        "size": wire_ref.get("size_bytes"),
        "contentSha256": sha,
        "contentType": content_type,
        "immutableUrl": immutable_url,
        "cdnUrl": wire_ref.get("cdn_immutable_url"),
        "cdnMutableUrl": wire_ref.get("cdn_url"),
        "etag": etag(sha) if sha else None,
        "sri": sri(sha) if sha else None,
        "contentDigest": content_digest(sha) if sha else None,
        "cacheKind": cache_kind,
        "cdn": {
            "version": wire_cdn.get("version", CDN_VERSION),
            "invalidationId": wire_cdn.get("invalidationId"),
            "invalidationStatus": wire_cdn.get("invalidationStatus"),
            "ready": wire_cdn.get("ready", immutable),
            "hint": wire_cdn.get("hint") or (_HINT_IMMUTABLE if immutable else _HINT_MUTABLE),
        },
    }
    for field in _IMAGE_FIELDS:
        if field in wire_ref:
            ref[field] = wire_ref[field]
    if "variant_spec_version" in wire_ref or "width_px" in wire_ref:  # an image
        display = wire_ref.get("display_url") or wire_ref.get("cdn_url")
        variants = wire_ref.get("variants") if isinstance(wire_ref.get("variants"), dict) else {}
        thumb = variants.get("thumb") if isinstance(variants.get("thumb"), dict) else {}
        ref["thumbUrl"] = thumb.get("cdn_url") or display
        ref["displayUrl"] = display
    for field in _NULLABLE_FIELDS:
        ref[field] = wire_ref.get(field)
    return ref


def _attr(value: Any) -> str:
    return (str(value).replace("&", "&amp;").replace('"', "&quot;")
            .replace("<", "&lt;").replace(">", "&gt;"))


def html_tags(ref: dict[str, Any], *, alt: str = "", sizes: str = "100vw") -> dict[str, str | None]:
    """The HTML snippets for an SDK AssetRef: `script` (deferred) and `link` (stylesheet) need
    its content-addressed `cdnUrl` and `sri` and are None without them (a mutable upload);
    `img` (no integrity) needs `displayUrl` (an image) or `cdnUrl`; `picture` (responsive,
    `sizes`) is there only when the thumb, medium and large variants are."""
    url, integrity = ref.get("cdnUrl"), ref.get("sri")
    width, height = ref.get("width_px"), ref.get("height_px")
    size_attrs = f' width="{_attr(width)}" height="{_attr(height)}"' if width is not None and height is not None else ""
    tags: dict[str, str | None] = {"script": None, "link": None, "img": None}
    if url and integrity:
        tags["script"] = f'<script src="{_attr(url)}" defer integrity="{_attr(integrity)}" crossorigin></script>'
        tags["link"] = f'<link rel="stylesheet" href="{_attr(url)}" integrity="{_attr(integrity)}" crossorigin>'
    src = ref.get("displayUrl") or url
    if src:
        tags["img"] = f'<img src="{_attr(src)}" alt="{_attr(alt)}"{size_attrs} loading="lazy" decoding="async">'
    variants = ref.get("variants") if isinstance(ref.get("variants"), dict) else {}
    chosen = [variants.get(name) for name in ("thumb", "medium", "large")]
    if all(isinstance(v, dict) for v in chosen):
        srcset = ", ".join(f"{v.get('cdn_url')} {v.get('width_px')}w" for v in chosen)
        src = ref.get("displayUrl") or url or ""
        tags["picture"] = (f'<picture><source type="image/webp" srcset="{_attr(srcset)}" sizes="{_attr(sizes)}">'
                           f'<img src="{_attr(src)}" alt="{_attr(alt)}"{size_attrs} loading="lazy" decoding="async">'
                           "</picture>")
    return tags
