"""SHA-256 of the files of a walk, with a persistent cache so unchanged files are not re-read.

Why: a re-deploy of an unchanged 10,000-file tree should cost one `lstat` per file and one
plan request, not 100 MB of reads. The wire needs SHA-256 (lowercase hex), so that is what we
compute and what we cache.

The cache
---------
- One JSON file per deployed root directory ("shard"), named after the SHA-256 of the root's
  absolute path: `<cache dir>/hash-cache/<32 hex>.json`, where the cache dir is
  `$RUN402_CACHE_DIR` or platformdirs' user cache dir for `run402`. A shard maps each relative
  key to `[size, mtime_ns, ctime_ns, inode, device, sha256]`; with the root's absolute path
  that is the absolute path + size + mtime_ns + inode key, plus ctime and device:
  ctime cannot be set from user space, so a rewrite that restores mtime (`cp -p`, `rsync -t`,
  `touch -d`) and keeps the size still misses; the device makes inodes unambiguous.
- A hit needs all five numbers to match the `lstat` of the walk; then the file is not opened.
- "Racily clean" files (git's term) are not stored: a file whose mtime is within the
  timestamp granularity of the moment we started reading it could be rewritten again in the
  same tick without its stat changing. Such a file is simply hashed again next time.
  Granularity: 50 ms for ordinary (sub-second) timestamps, 2 s when the file system reports
  whole seconds.
- Writes are atomic (temp file in the same directory + `os.replace`), not fsynced: a cache may
  be lost in a crash, never half-written. Unreadable, corrupt or foreign-version shards are
  treated as empty and rebuilt. Nothing is written when nothing changed. Shards untouched for
  60 days are removed when another shard is saved. `RUN402_HASH_CACHE=0` turns it off.
- A stale entry could only ever make us claim the old digest for new bytes. Two guards make
  that harmless: the bytes are hashed again when they are uploaded (flow.py refuses a
  mismatch), and the gateway verifies every upload.

blake3: not used. The digest the gateway needs is SHA-256, so every cache miss must compute
SHA-256 anyway, and a hit (stat match) needs no hashing at all. A blake3 pre-check would only
help for a file whose stat changed but whose bytes did not (e.g. after `touch`), and even there
it saves only the SHA-256 computation, not the read, which is most of the cost: with SHA-NI
hashlib's SHA-256 runs at ~1.5-2 GB/s per core, faster than the files come off the page cache
in Python. `bench/deploy_dir.py` prints both throughputs side by side.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from run402_cli.deploy.walk import WalkedFile, WalkResult
from run402_cli.errors import LocalError

__all__ = [
    "HashCache",
    "HashStats",
    "cache_root",
    "hash_walk",
    "sha256_file",
]

_VERSION = 1
_SMALL = 4 << 20  # files up to this size are read with one read()
_PARALLEL_MIN = 1 << 20  # files from this size are hashed on the thread pool
_CHUNK = 1 << 20
_FINE_SLACK_NS = 50_000_000
_COARSE_SLACK_NS = 2_000_000_000
_SHARD_MAX_AGE_S = 60 * 24 * 3600
_local = threading.local()


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """`$RUN402_CACHE_DIR`, else the platform's user cache dir for run402."""
    env = os.environ if env is None else env
    raw = env.get("RUN402_CACHE_DIR")
    if raw:
        return Path(raw).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("run402"))


def sha256_file(path: str, size_hint: int = 0) -> tuple[str, int]:
    """(lowercase hex SHA-256, number of bytes read) of the file at `path`. `size_hint` is
    the size the walk saw; the file is read to EOF whatever it is now."""
    if size_hint <= _SMALL:
        # os.open/os.read: ~30% less per-file overhead than open() for the many small files
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            data = os.read(fd, size_hint + 1)
            if len(data) != size_hint:  # changed since the walk (or a short read): to EOF
                chunks = [data]
                while chunk := os.read(fd, _CHUNK):
                    chunks.append(chunk)
                data = b"".join(chunks)
        finally:
            os.close(fd)
        return hashlib.sha256(data).hexdigest(), len(data)
    with open(path, "rb", buffering=0) as fh:
        buf = getattr(_local, "buf", None)
        if buf is None:
            buf = _local.buf = bytearray(_CHUNK)
        view = memoryview(buf)
        h = hashlib.sha256()
        n = 0
        while True:
            k = fh.readinto(buf)
            if not k:
                break
            h.update(view[:k])
            n += k
        return h.hexdigest(), n


@dataclass
class HashStats:
    files: int = 0
    hits: int = 0
    misses: int = 0
    bytes_hashed: int = 0
    bytes_total: int = 0
    seconds: float = 0.0


class HashCache:
    """The shard of one root directory. `load()` once, `lookup()`/`store()` per file,
    `save()` once (writes only if something changed)."""

    def __init__(self, root: str, directory: Path | None) -> None:
        self.root = root
        self.directory = directory
        digest = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        self.path = directory / f"{digest}.json" if directory is not None else None
        self._old: dict[str, list] = {}
        self._new: dict[str, list] = {}
        self._dirty = False

    @classmethod
    def for_root(cls, root: str, env: Mapping[str, str] | None = None) -> HashCache:
        env = os.environ if env is None else env
        if env.get("RUN402_HASH_CACHE", "1").strip().lower() in ("0", "off", "false", "no"):
            return cls(root, None)
        return cls(root, cache_root(env) / "hash-cache")

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def load(self) -> None:
        self._old = {}
        if self.path is None:
            return
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return  # missing or corrupt: start empty, rebuilt on save
        if (
            isinstance(data, dict)
            and data.get("version") == _VERSION
            and data.get("root") == self.root
            and isinstance(data.get("entries"), dict)
        ):
            self._old = data["entries"]

    def lookup(self, f: WalkedFile) -> str | None:
        entry = self._old.get(f.key)
        if (
            isinstance(entry, list)
            and len(entry) == 6
            and entry[0] == f.size
            and entry[1] == f.mtime_ns
            and entry[2] == f.ctime_ns
            and entry[3] == f.ino
            and entry[4] == f.dev
            and isinstance(entry[5], str)
            and len(entry[5]) == 64
        ):
            self._new[f.key] = entry
            return entry[5]
        return None

    def store(self, f: WalkedFile, sha: str, size_read: int, read_started_ns: int) -> None:
        """Remember `sha` for `f`, unless the file changed while we read it (size) or is racy."""
        self._dirty = True
        if size_read != f.size:
            return
        # A later write sets mtime (and ctime) to its own "now": it can only reproduce the
        # cached stat if the cached mtime is itself within the current timestamp tick.
        coarse = f.mtime_ns % 1_000_000_000 == 0
        if f.mtime_ns >= read_started_ns - (_COARSE_SLACK_NS if coarse else _FINE_SLACK_NS):
            return
        self._new[f.key] = [f.size, f.mtime_ns, f.ctime_ns, f.ino, f.dev, sha]

    def forget(self, key: str) -> None:
        if self._new.pop(key, None) is not None or key in self._old:
            self._dirty = True

    def save(self) -> None:
        """Write the entries seen in this walk (entries of vanished files are dropped)."""
        if self.path is None or not (self._dirty or len(self._new) != len(self._old)):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.parent / f".{self.path.stem}.{secrets.token_hex(4)}.tmp"
            body = json.dumps(
                {"version": _VERSION, "root": self.root, "entries": self._new},
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode("utf-8", "surrogateescape")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(body)
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._dirty = False
            self._prune_old_shards()
        except OSError:
            return  # a cache that cannot be written is only a slower next deploy

    def _prune_old_shards(self) -> None:
        assert self.path is not None
        cutoff = time.time() - _SHARD_MAX_AGE_S
        try:
            with os.scandir(self.path.parent) as it:
                for entry in it:
                    if entry.name.endswith(".json") and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
        except OSError:
            pass


def _hash_one(f: WalkedFile) -> tuple[str, int]:
    try:
        return sha256_file(f.path, f.size)
    except OSError as exc:
        raise LocalError(
            f"cannot read file {f.path}: {exc.strerror or exc}", code="LOCAL_ERROR",
            details={"reason": "unreadable", "path": f.path, "context": "hashing files"},
        ) from None


def _big_file_workers(count: int) -> int:
    return max(1, min(4, os.cpu_count() or 1, count))


def hash_walk(
    walk: WalkResult | Iterable[WalkedFile],
    cache: HashCache | None = None,
) -> tuple[dict[str, tuple[str, int]], HashStats]:
    """`{key: (sha256 hex, size)}` for every file of the walk, from the cache where the stat
    matches and by reading the file otherwise. Saves the cache."""
    started = time.perf_counter()
    files = walk.files if isinstance(walk, WalkResult) else list(walk)
    stats = HashStats(files=len(files))
    out: dict[str, tuple[str, int]] = {}
    misses: list[WalkedFile] = []
    if cache is not None:
        cache.load()
    for f in files:
        sha = cache.lookup(f) if cache is not None else None
        if sha is None:
            misses.append(f)
        else:
            out[f.key] = (sha, f.size)
            stats.hits += 1
            stats.bytes_total += f.size
    if misses:
        read_started_ns = time.time_ns()
        # Big files on a few threads (hashlib releases the GIL on big buffers: ~2x on 2 cores);
        # small files in this thread: for them threads only add GIL hand-offs (measured 2.5x
        # slower on 10,000 files of a few KB).
        big = [f for f in misses if f.size >= _PARALLEL_MIN]
        small = [f for f in misses if f.size < _PARALLEL_MIN]
        workers = _big_file_workers(len(big))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="run402-hash") as pool:
                done = dict(zip((f.key for f in big), pool.map(_hash_one, big)))
        else:
            done = {f.key: _hash_one(f) for f in big}
        done.update((f.key, _hash_one(f)) for f in small)
        results = [done[f.key] for f in misses]
        for f, (sha, n) in zip(misses, results):
            out[f.key] = (sha, n)
            stats.misses += 1
            stats.bytes_hashed += n
            stats.bytes_total += n
            if cache is not None:
                cache.store(f, sha, n, read_started_ns)
    if cache is not None:
        cache.save()
    stats.seconds = time.perf_counter() - started
    return out, stats
