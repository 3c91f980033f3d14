"""The directory walk of `sites deploy-dir` (spec api-deploy §2.1): what is kept, skipped,
refused; keys; errors. Pure: temp dirs only."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from run402_cli.deploy.content_types import extension, guess
from run402_cli.deploy.walk import is_skipped, walk_dir
from run402_cli.errors import LocalError


def write(root: Path, rel: str, data: bytes | str = b"x") -> Path:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def keys(root: Path) -> list[str]:
    return [f.key for f in walk_dir(root).files]


def test_keys_are_sorted_posix_relative_paths(tmp_path: Path) -> None:
    for rel in ("index.html", "b/c/d.css", "a.js", ".well-known/security.txt", "b/x.png"):
        write(tmp_path, rel)
    assert keys(tmp_path) == sorted(["index.html", "b/c/d.css", "a.js", ".well-known/security.txt", "b/x.png"])


def test_stat_fields_are_recorded(tmp_path: Path) -> None:
    p = write(tmp_path, "a.txt", b"hello")
    (f,) = walk_dir(tmp_path).files
    st = os.lstat(p)
    assert (f.size, f.mtime_ns, f.ctime_ns, f.ino, f.dev) == (5, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    assert f.path == str(p) and os.path.isabs(f.path)


@pytest.mark.parametrize("name", [
    ".git", "node_modules", ".DS_Store", ".env", ".ENV", ".env.local", ".Env.production", ".envrc",
    ".npmrc", ".pnpmrc", ".yarnrc", ".netrc", ".pypirc", "id_rsa", "ID_RSA", "id_dsa", "id_ecdsa",
    "id_ed25519", "server.key", "cert.PEM", "x.p12", "y.pfx",
])
def test_skipped_names(name: str) -> None:
    assert is_skipped(name)


@pytest.mark.parametrize("name", [".gitignore", ".well-known", "env", ".environment", "id_rsa.pub",
                                  "keys.json", ".DS_STORE", "node_module", "a.keys"])
def test_kept_names(name: str) -> None:
    assert not is_skipped(name)


def test_skip_rules_apply_at_every_depth_to_files_and_dirs(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    write(tmp_path, "a/.env", "SECRET=1")
    write(tmp_path, "a/b/.env.production", "SECRET=2")
    write(tmp_path, "a/node_modules/pkg/index.js")
    write(tmp_path, ".git/config")
    write(tmp_path, "deep/tls/server.pem")
    write(tmp_path, "deep/ok.css")
    result = walk_dir(tmp_path)
    assert [f.key for f in result.files] == ["deep/ok.css", "index.html"]
    assert result.skipped == sorted([".git", "a/.env", "a/b/.env.production", "a/node_modules",
                                     "deep/tls/server.pem"])


def test_a_skipped_symlink_is_not_an_error(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    (tmp_path / "node_modules").symlink_to(tmp_path)
    assert keys(tmp_path) == ["index.html"]


@pytest.mark.parametrize("kind", ["file", "dir", "dangling"])
def test_a_symlink_anywhere_fails_the_walk(tmp_path: Path, kind: str) -> None:
    write(tmp_path, "index.html")
    target = {"file": tmp_path / "index.html", "dir": tmp_path, "dangling": tmp_path / "nope"}[kind]
    (tmp_path / "deep" / "er").mkdir(parents=True)
    link = tmp_path / "deep" / "er" / "link"
    link.symlink_to(target)
    with pytest.raises(LocalError) as info:
        walk_dir(tmp_path)
    assert info.value.code == "LOCAL_ERROR"
    assert info.value.details["reason"] == "symlink"
    assert "following symlinks is not supported" in info.value.message
    assert str(link) in info.value.message


def test_root_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write(real, "index.html")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(LocalError) as info:
        walk_dir(tmp_path / "link")
    assert info.value.details["reason"] == "symlink"


def test_root_must_exist_and_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(LocalError) as info:
        walk_dir(tmp_path / "missing")
    assert info.value.details["reason"] == "not_found"
    assert info.value.message.startswith("cannot read directory")
    f = write(tmp_path, "file.html")
    with pytest.raises(LocalError) as info:
        walk_dir(f)
    assert info.value.details["reason"] == "not_a_directory"
    assert info.value.message == f"path {f} is not a directory"


def test_no_deployable_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty" / "dirs").mkdir(parents=True)
    write(tmp_path, ".env", "X=1")
    write(tmp_path, "node_modules/a.js")
    with pytest.raises(LocalError) as info:
        walk_dir(tmp_path)
    assert info.value.details["reason"] == "no_deployable_files"
    assert "contains no deployable files" in info.value.message


def test_special_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    os.mkfifo(tmp_path / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    path = tmp_path / "s.sock"
    if len(str(path)) < 100:
        sock.bind(str(path))
    try:
        assert keys(tmp_path) == ["index.html"]
    finally:
        sock.close()


def test_unreadable_subdirectory_is_an_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    write(tmp_path, "index.html")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        with pytest.raises(LocalError) as info:
            walk_dir(tmp_path)
        assert info.value.details["reason"] == "unreadable"
    finally:
        locked.chmod(0o755)


def test_odd_but_legal_names_are_walked_verbatim(tmp_path: Path) -> None:
    # The walk reports them; spec validation (check_release_path) decides what to refuse.
    write(tmp_path, "a\\b.html")
    write(tmp_path, "sp ace/ü.html")
    write(tmp_path, "..dots")
    assert keys(tmp_path) == ["..dots", "a\\b.html", "sp ace/ü.html"]


@pytest.mark.parametrize("path,ext,ctype", [
    ("index.html", "html", "text/html; charset=utf-8"),
    ("A/B.HTM", "htm", "text/html; charset=utf-8"),
    ("s.css", "css", "text/css; charset=utf-8"),
    ("app.mjs", "mjs", "text/javascript; charset=utf-8"),
    ("x.cjs", "cjs", "text/javascript; charset=utf-8"),
    ("x.js", "js", "text/javascript; charset=utf-8"),
    ("d.json", "json", "application/json"),
    ("i.svg", "svg", "image/svg+xml"),
    ("i.png", "png", "image/png"),
    ("i.JPG", "jpg", "image/jpeg"),
    ("i.jpeg", "jpeg", "image/jpeg"),
    ("i.gif", "gif", "image/gif"),
    ("i.webp", "webp", "image/webp"),
    ("favicon.ico", "ico", "image/x-icon"),
    ("f.woff", "woff", "font/woff"),
    ("f.woff2", "woff2", "font/woff2"),
    ("f.ttf", "ttf", "font/ttf"),
    ("f.otf", "otf", "font/otf"),
    ("r.txt", "txt", "text/plain; charset=utf-8"),
    ("r.md", "md", "text/markdown; charset=utf-8"),
    ("f.xml", "xml", "application/xml"),
    ("d.pdf", "pdf", "application/pdf"),
    ("m.wasm", "wasm", "application/wasm"),
    ("q.sql", "sql", "application/sql"),
    ("a.tar.gz", "gz", "application/octet-stream"),
    (".htaccess", "", "application/octet-stream"),
    ("dir.d/README", "", "application/octet-stream"),
    ("noext", "", "application/octet-stream"),
    ("x.webmanifest", "webmanifest", "application/octet-stream"),
])
def test_content_types(path: str, ext: str, ctype: str) -> None:
    assert extension(path) == ext
    assert guess(path) == ctype
