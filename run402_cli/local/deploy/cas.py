"""The content-addressed store on disk: `<cas dir>/sha256/<ab>/<rest of the hex digest>`.

Why it is built this way:
- An object's name is its SHA-256, so an object is only ever *added*, never changed. Bytes
  reach the store through `put_verified` alone, which hashes the staged file, compares digest
  and size with what was declared, fsyncs, and links it into place. A mismatch never reaches
  the store; a crash leaves at most a file under `staging/`, never a wrong or partial object.
- `os.link` (not `os.replace`) publishes the object: it is atomic and fails if the name already
  exists, so an existing object is never rewritten, even by two uploads racing.
- Staging lives inside the CAS directory, on the same filesystem, so publishing is a link.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import sys
import time
from pathlib import Path

__all__ = ["Cas", "DigestMismatch", "SHA256_RE"]

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1024 * 1024


class DigestMismatch(Exception):
    """The staged bytes are not what was declared (`actual_sha256`, `actual_size` tell what they are)."""

    def __init__(self, sha256: str, size: int, actual_sha256: str, actual_size: int) -> None:
        super().__init__(f"content is {actual_size} bytes with sha256 {actual_sha256}, "
                         f"declared {size} bytes with sha256 {sha256}")
        self.sha256, self.size = sha256, size
        self.actual_sha256, self.actual_size = actual_sha256, actual_size


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the filesystem holding `path` (Linux; Python has no wrapper for it)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return libc.syncfs(fd) == 0
    except AttributeError:  # a libc without syncfs
        return False
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Cas:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._objects = os.path.join(self.root, "sha256")

    # -- reading ---------------------------------------------------------------------------
    def file(self, sha256: str) -> str:
        """`path` as a string: for the upload path, where pathlib's arithmetic showed in profiles."""
        if not SHA256_RE.match(sha256):
            raise ValueError("not a lowercase hex sha256")
        return f"{self._objects}/{sha256[:2]}/{sha256[2:]}"

    def path(self, sha256: str) -> Path:
        return Path(self.file(sha256))

    def has(self, sha256: str) -> bool:
        try:
            return os.path.isfile(self.file(sha256))
        except ValueError:
            return False

    def size(self, sha256: str) -> int | None:
        try:
            return os.stat(self.file(sha256)).st_size
        except (OSError, ValueError):
            return None

    # -- staging ---------------------------------------------------------------------------
    @functools.cached_property
    def staging_root(self) -> Path:
        return self.root / "staging"

    def staging_path(self, upload_id: str) -> Path:
        """Where one upload's parts wait for verification (the writer creates it, 0700)."""
        if not re.match(r"^[A-Za-z0-9_-]{1,80}$", upload_id):
            raise ValueError("bad upload id")
        return self.staging_root / upload_id

    def discard_staging(self, upload_id: str) -> None:
        path = self.staging_root / upload_id
        try:
            path.rmdir()  # the usual case: put_verified took the only file (one syscall)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)

    def sweep_staging(self, max_age_seconds: float) -> None:
        """Drop uploads abandoned longer ago than any upload URL lives (a crash, a client gone)."""
        try:
            entries = list(self.staging_root.iterdir())
        except OSError:
            return
        cutoff = time.time() - max_age_seconds
        for entry in entries:
            try:
                if entry.stat().st_mtime < cutoff:
                    if entry.is_dir():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink()
            except OSError:
                pass

    # -- writing ---------------------------------------------------------------------------
    def put_verified(self, tmp_file: str | os.PathLike[str], sha256: str, size: int, *,
                     batch: set[Path] | None = None) -> bool:
        """Move `tmp_file` (inside staging) into the store if its bytes hash to `sha256` and are
        `size` long; raise DigestMismatch otherwise (the temp file is removed either way).
        Returns True if this call stored the object, False if it was already there.
        Durable on return (file and directory fsynced), unless `batch` is given: then the new
        object's directory is added to it and the caller makes the whole batch durable with
        one `sync(batch)` before it records any of them (thousands of fsyncs become one)."""
        tmp = Path(tmp_file)
        try:
            digest = hashlib.sha256()
            actual = 0
            with open(tmp, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
                    actual += len(chunk)
                if batch is None:
                    os.fsync(fh.fileno())
            if actual != size or digest.hexdigest() != sha256:
                raise DigestMismatch(sha256, size, digest.hexdigest(), actual)
            dest = self.path(sha256)
            if dest.is_file():
                return False
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o644)
            try:
                os.link(tmp, dest)
            except FileExistsError:
                return False
            if batch is None:
                _fsync_dir(dest.parent)
            else:
                batch.add(dest.parent)
            return True
        finally:
            tmp.unlink(missing_ok=True)

    def publish(self, verified_file: str | os.PathLike[str], sha256: str, *, chmod: bool = True) -> None:
        """Link a file whose bytes the caller has just hashed to `sha256` into the store. Not
        durable: the commit adds the object's directory to a batch and `sync`s it before
        recording the object. The file keeps its own name too.
        `chmod=False`: the caller made the file 0644 already."""
        dest = self.file(sha256)
        if chmod:
            os.chmod(verified_file, 0o644)
        try:
            os.link(verified_file, dest)
        except FileNotFoundError:  # the first object under this two-hex prefix
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            try:
                os.link(verified_file, dest)
            except FileExistsError:
                pass
        except FileExistsError:  # already stored, by this or another upload: the same bytes
            pass

    def sync(self, batch: set[Path]) -> None:
        """Make a batch of put_verified objects durable: with syncfs(2) one flush of the store's
        filesystem (data and directory entries); elsewhere os.sync() and each directory."""
        if not batch:
            return
        if _syncfs(self.root):
            return
        os.sync()
        for path in sorted(batch):
            _fsync_dir(path)
