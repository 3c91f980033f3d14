"""Content types of release files and of assets, guessed from the extension.

The release table is the official client's, byte for byte; anything else is
`application/octet-stream`. Assets (blob storage) use a smaller table of their own in the
official client: a subset of these extensions without the `charset` parameter, plus archives
and video; `ASSET_EXTENSION_TYPES` is derived from the release table so that a type is written
once. The extension is taken like Node's `path.extname` on the last
path segment: `.htaccess` has none, `a.tar.gz` has `gz`, and it is compared lower-cased.
"""

from __future__ import annotations

__all__ = ["ASSET_EXTENSION_TYPES", "DEFAULT_CONTENT_TYPE", "EXTENSION_TYPES", "extension", "guess", "guess_asset"]

DEFAULT_CONTENT_TYPE = "application/octet-stream"

EXTENSION_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "htm": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "mjs": "text/javascript; charset=utf-8",
    "cjs": "text/javascript; charset=utf-8",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "ico": "image/x-icon",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "txt": "text/plain; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
    "xml": "application/xml",
    "pdf": "application/pdf",
    "wasm": "application/wasm",
    "sql": "application/sql",
}

# The asset table: these release extensions with the parameters dropped (`text/html`, not
# `text/html; charset=utf-8`), plus the types only assets know.
_ASSET_FROM_RELEASE = ("png", "jpg", "jpeg", "gif", "svg", "webp", "html", "css", "js", "json", "txt", "md", "pdf")
ASSET_EXTENSION_TYPES: dict[str, str] = {
    **{ext: EXTENSION_TYPES[ext].split(";", 1)[0] for ext in _ASSET_FROM_RELEASE},
    "zip": "application/zip",
    "tgz": "application/gzip",
    "gz": "application/gzip",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "mov": "video/quicktime",
}


def extension(path: str) -> str:
    """The lower-cased extension without the dot, with Node `extname` rules ("" if none)."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    dot = name.rfind(".")
    if dot <= 0:  # no dot, or a leading dot only (".env", ".htaccess")
        return ""
    return name[dot + 1 :].lower()


def guess(path: str) -> str:
    """The content type of a release file at `path` (POSIX, relative)."""
    return EXTENSION_TYPES.get(extension(path), DEFAULT_CONTENT_TYPE)


def guess_asset(key: str) -> str:
    """The content type of an asset at `key`, from the asset table."""
    return ASSET_EXTENSION_TYPES.get(extension(key), DEFAULT_CONTENT_TYPE)
