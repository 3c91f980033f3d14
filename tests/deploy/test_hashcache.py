"""The persistent hash cache: hits skip reading, any stat change misses, racy files are not
trusted, corrupt shards are rebuilt, writes are atomic. Pure: temp dirs only."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from run402_cli.deploy import hashcache
from run402_cli.deploy.hashcache import HashCache, cache_root, hash_walk, sha256_file
from run402_cli.deploy.walk import walk_dir

OLD = 1_600_000_000  # a settled mtime, far from "now": not racy


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("RUN402_CACHE_DIR", str(d))
    monkeypatch.delenv("RUN402_HASH_CACHE", raising=False)
    return d


def site(root: Path, files: dict[str, bytes], *, settle: bool = True) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        if settle:
            os.utime(p, ns=(OLD * 10**9, OLD * 10**9))
    return root


def run(root: Path) -> tuple[dict[str, tuple[str, int]], hashcache.HashStats]:
    walk = walk_dir(root)
    return hash_walk(walk, HashCache.for_root(walk.root))


def count_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    real = hashcache.sha256_file

    def spy(path: str, size_hint: int = 0):
        reads.append(path)
        return real(path, size_hint)

    monkeypatch.setattr(hashcache, "sha256_file", spy)
    return reads


def test_digests_are_sha256_of_the_bytes(tmp_path: Path, cache_dir: Path) -> None:
    big = os.urandom(5 << 20)  # beyond the one-read() size: chunked path
    root = site(tmp_path / "s", {"a.txt": b"hello", "big.bin": big, "empty": b""})
    hashes, stats = run(root)
    assert hashes == {
        "a.txt": (hashlib.sha256(b"hello").hexdigest(), 5),
        "big.bin": (hashlib.sha256(big).hexdigest(), len(big)),
        "empty": (hashlib.sha256(b"").hexdigest(), 0),
    }
    assert (stats.hits, stats.misses, stats.bytes_hashed) == (0, 3, 5 + len(big))


def test_second_run_reads_nothing(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = site(tmp_path / "s", {f"f{i}.html": f"<p>{i}</p>".encode() for i in range(50)})
    first, _ = run(root)
    reads = count_reads(monkeypatch)
    second, stats = run(root)
    assert second == first
    assert reads == [] and (stats.hits, stats.misses) == (50, 0)


def test_shard_location_and_format(tmp_path: Path, cache_dir: Path) -> None:
    root = site(tmp_path / "s", {"a.txt": b"a"})
    run(root)
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:32]
    shard = cache_dir / "hash-cache" / f"{digest}.json"
    data = json.loads(shard.read_text())
    st = os.lstat(root / "a.txt")
    assert data["version"] == 1 and data["root"] == str(root)
    assert data["entries"] == {"a.txt": [1, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev,
                                         hashlib.sha256(b"a").hexdigest()]}
    assert not [p for p in shard.parent.iterdir() if p.name.endswith(".tmp")]


def test_default_cache_root_is_platform_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    import platformdirs

    monkeypatch.delenv("RUN402_CACHE_DIR", raising=False)
    assert cache_root({}) == Path(platformdirs.user_cache_dir("run402"))
    assert cache_root({"RUN402_CACHE_DIR": "/x/y"}) == Path("/x/y")


def test_unchanged_run_writes_nothing(tmp_path: Path, cache_dir: Path) -> None:
    root = site(tmp_path / "s", {"a": b"1", "b": b"2"})
    run(root)
    shard = next((cache_dir / "hash-cache").iterdir())
    before = shard.stat().st_mtime_ns
    os.utime(shard, ns=(1, 1))
    run(root)
    assert shard.stat().st_mtime_ns == 1, "an all-hits run must not rewrite the shard"
    del before


@pytest.mark.parametrize("change", ["content_same_size", "size", "mtime_only", "replaced_inode"])
def test_any_stat_change_misses(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                change: str) -> None:
    root = site(tmp_path / "s", {"a.txt": b"aaaa", "b.txt": b"bbbb"})
    run(root)
    p = root / "a.txt"
    if change == "content_same_size":
        p.write_bytes(b"AAAA")
        os.utime(p, ns=(OLD * 10**9, OLD * 10**9))  # even with mtime restored: ctime moved
    elif change == "size":
        p.write_bytes(b"aaaaa")
    elif change == "mtime_only":
        os.utime(p, ns=(OLD * 10**9 + 7, OLD * 10**9 + 7))
    else:
        tmp = root / "a.new"
        tmp.write_bytes(b"zzzz")
        os.replace(tmp, p)
    reads = count_reads(monkeypatch)
    hashes, stats = run(root)
    assert reads == [str(p)] and (stats.hits, stats.misses) == (1, 1)
    assert hashes["a.txt"][0] == hashlib.sha256(p.read_bytes()).hexdigest()


def test_racy_files_are_hashed_but_not_trusted(tmp_path: Path, cache_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = site(tmp_path / "s", {"settled.txt": b"s"})
    site(root, {"fresh.txt": b"f"}, settle=False)  # written just now
    run(root)
    reads = count_reads(monkeypatch)
    _, stats = run(root)
    assert reads == [str(root / "fresh.txt")], "a file modified within the timestamp tick is re-read"
    assert stats.hits == 1


def test_coarse_timestamps_need_two_seconds(tmp_path: Path) -> None:
    f = walk_dir(site(tmp_path / "s", {"a": b"a"})).files[0]
    now = time.time_ns()
    cache = HashCache(str(tmp_path), tmp_path / "c")
    whole = (now // 10**9 - 1) * 10**9  # whole seconds, one second ago
    coarse = type(f)(f.key, f.path, f.size, whole, whole, f.ino, f.dev)
    cache.store(coarse, "0" * 64, f.size, now)
    assert coarse.key not in cache._new
    fine = type(f)(f.key, f.path, f.size, now - 10**9 + 1, now - 10**9 + 1, f.ino, f.dev)
    cache.store(fine, "0" * 64, f.size, now)
    assert fine.key in cache._new


def test_size_change_during_read_is_not_cached(tmp_path: Path) -> None:
    f = walk_dir(site(tmp_path / "s", {"a": b"abc"})).files[0]
    cache = HashCache(str(tmp_path), tmp_path / "c")
    cache.store(f, "0" * 64, f.size + 1, time.time_ns())
    assert f.key not in cache._new


@pytest.mark.parametrize("garbage", [b"", b"{not json", b"[]", b'{"version": 99, "entries": {}}',
                                     b'{"version": 1, "root": "/elsewhere", "entries": {}}',
                                     b'{"version": 1, "root": "ROOT", "entries": {"a.txt": [1, 2]}}',
                                     b'{"version": 1, "root": "ROOT", "entries": {"a.txt": "nope"}}'])
def test_corrupt_or_foreign_shard_is_rebuilt(tmp_path: Path, cache_dir: Path, garbage: bytes) -> None:
    root = site(tmp_path / "s", {"a.txt": b"a"})
    run(root)
    shard = next((cache_dir / "hash-cache").iterdir())
    shard.write_bytes(garbage.replace(b"ROOT", str(root).encode()))
    hashes, stats = run(root)
    assert hashes["a.txt"][0] == hashlib.sha256(b"a").hexdigest()
    assert stats.misses == 1
    assert json.loads(shard.read_text())["entries"]["a.txt"][5] == hashlib.sha256(b"a").hexdigest()
    _, stats = run(root)
    assert stats.hits == 1


def test_a_poisoned_entry_with_a_wrong_digest_only_matters_if_stat_matches(tmp_path: Path, cache_dir: Path) -> None:
    # The cache trusts stat; flow.py re-hashes bytes on upload. Here: a stale stat -> miss.
    root = site(tmp_path / "s", {"a.txt": b"a"})
    run(root)
    shard = next((cache_dir / "hash-cache").iterdir())
    data = json.loads(shard.read_text())
    data["entries"]["a.txt"][1] += 1  # mtime no longer matches
    data["entries"]["a.txt"][5] = "f" * 64
    shard.write_text(json.dumps(data))
    hashes, _ = run(root)
    assert hashes["a.txt"][0] == hashlib.sha256(b"a").hexdigest()


def test_vanished_files_are_dropped_from_the_shard(tmp_path: Path, cache_dir: Path) -> None:
    root = site(tmp_path / "s", {"a": b"a", "b": b"b"})
    run(root)
    (root / "b").unlink()
    run(root)
    shard = next((cache_dir / "hash-cache").iterdir())
    assert list(json.loads(shard.read_text())["entries"]) == ["a"]


def test_cache_can_be_turned_off(tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN402_HASH_CACHE", "0")
    root = site(tmp_path / "s", {"a": b"a"})
    run(root)
    _, stats = run(root)
    assert stats.misses == 1 and not cache_dir.exists()


def test_unwritable_cache_dir_is_not_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache dir should be")
    monkeypatch.setenv("RUN402_CACHE_DIR", str(blocker))
    hashes, _ = run(site(tmp_path / "s", {"a": b"a"}))
    assert hashes["a"][1] == 1


def test_many_misses_hash_in_parallel_and_agree(tmp_path: Path, cache_dir: Path) -> None:
    files = {f"d{i % 7}/f{i}.bin": os.urandom(i * 37 % 5000) for i in range(300)}
    hashes, stats = run(site(tmp_path / "s", files))
    assert stats.misses == 300
    assert all(hashes[k] == (hashlib.sha256(v).hexdigest(), len(v)) for k, v in files.items())


def test_unreadable_file_is_a_local_error(tmp_path: Path, cache_dir: Path) -> None:
    from run402_cli.errors import LocalError

    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    root = site(tmp_path / "s", {"a": b"a"})
    (root / "a").chmod(0)
    with pytest.raises(LocalError) as info:
        run(root)
    assert info.value.details["reason"] == "unreadable"


def test_sha256_file_reports_bytes_read(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"12345")
    assert sha256_file(str(p), 2) == (hashlib.sha256(b"12345").hexdigest(), 5)  # grew since stat
