"""Content types of release files, guessed from the extension.

The table is the official client's, byte for byte; anything else is
`application/octet-stream`. The extension is taken like Node's `path.extname` on the last
path segment: `.htaccess` has none, `a.tar.gz` has `gz`, and it is compared lower-cased.
"""

from __future__ import annotations

__all__ = ["DEFAULT_CONTENT_TYPE", "EXTENSION_TYPES", "extension", "guess"]

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
