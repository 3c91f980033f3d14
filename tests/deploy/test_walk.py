"""The directory walk of `sites deploy-dir` (spec api-deploy §2.1): what is kept, skipped,
refused; keys; errors; the secret files left out and reported (deploy/secrets_filter.py).
Pure: temp dirs only."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from run402_cli.wire.content_types import extension, guess
from run402_cli.deploy.secrets_filter import SNIFF_BYTES, skipped_secrets_event
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


# Beyond the spec: credentials and keys of common tools, by name (case-insensitive).
@pytest.mark.parametrize("name", [
    ".aws", ".AWS", ".azure", "application_default_credentials.json", "legacy_credentials",
    "access_tokens.db", "credentials.db", ".boto", ".s3cfg", ".docker", ".kube", ".yarnrc.yml",
    ".vault-token", ".terraformrc", "terraform.rc", ".terraform.d", ".terraform", ".pgpass",
    ".my.cnf", ".git-credentials", ".htpasswd", ".HTPASSWD", ".htdigest", ".ssh", "id_ecdsa_sk",
    "id_ed25519_sk", ".gnupg", "me.ppk", "AuthKey_ABC123.p8", "release.jks", "app.keystore",
    "terraform.tfstate", "terraform.tfstate.backup", "prod.tfvars", "x.auto.tfvars.json",
])
def test_secret_names_beyond_the_spec_are_skipped(name: str) -> None:
    assert is_skipped(name)


# What a static site legitimately serves stays, including names that merely mention a tool.
@pytest.mark.parametrize("name", [".gitignore", ".well-known", "env", ".environment", "id_rsa.pub",
                                  "keys.json", ".DS_STORE", "node_module", "a.keys", ".htaccess",
                                  "aws", "docker", "kube", "ssh", "gcloud", "credentials.html",
                                  "aws-credentials.md", "config.json", "terraform.md", "tfstate.html",
                                  "server.crt", "ca.cer", "pubkey.asc", "data.json", "id_ed25519.pub"])
def test_kept_names(name: str) -> None:
    assert not is_skipped(name)


RSA_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIE\n-----END CERTIFICATE-----\n"


def secrets(root: Path) -> dict[str, str]:
    return {s.path: s.reason for s in walk_dir(root).secrets}


def test_each_kind_of_secret_file_is_left_out_and_reported(tmp_path: Path) -> None:
    write(tmp_path, "index.html", "<h1>hi</h1>")
    planted = {
        ".aws/credentials": ".aws", ".aws/config": ".aws",
        ".azure/msal_token_cache.json": ".azure",
        ".config/gcloud/application_default_credentials.json":
            ".config/gcloud/application_default_credentials.json",
        ".config/gcloud/legacy_credentials/me@x.com/adc.json": ".config/gcloud/legacy_credentials",
        ".docker/config.json": ".docker", ".kube/config": ".kube",
        ".npmrc": ".npmrc", ".pypirc": ".pypirc", ".netrc": ".netrc",
        ".git-credentials": ".git-credentials", ".htpasswd": ".htpasswd",
        ".ssh/known_hosts": ".ssh", "keys/id_rsa": "keys/id_rsa", "keys/id_ed25519": "keys/id_ed25519",
        "keys/id_ecdsa": "keys/id_ecdsa", "keys/id_dsa": "keys/id_dsa", "keys/me.ppk": "keys/me.ppk",
        "tls/server.pem": "tls/server.pem", "tls/server.key": "tls/server.key",
        "tls/bundle.p12": "tls/bundle.p12", "tls/bundle.pfx": "tls/bundle.pfx",
        "infra/terraform.tfstate": "infra/terraform.tfstate",
        "infra/terraform.tfstate.backup": "infra/terraform.tfstate.backup",
        ".env.local": ".env.local",
    }
    for rel in planted:
        write(tmp_path, rel, RSA_KEY)
    result = walk_dir(tmp_path)
    assert [f.key for f in result.files] == ["index.html"]
    reported = {s.path: s.reason for s in result.secrets}
    assert set(reported) == set(planted.values())
    assert all(reason for reason in reported.values())
    assert reported[".aws"] == "AWS credentials directory"
    assert [s.path for s in result.secrets] == sorted(reported), "sorted, like the files"


def test_git_dir_is_skipped_but_is_not_reported_as_a_secret(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    write(tmp_path, ".git/config", "[credential]\n\thelper = store\n")
    write(tmp_path, "node_modules/a.js")
    write(tmp_path, ".DS_Store")
    result = walk_dir(tmp_path)
    assert result.skipped == [".DS_Store", ".git", "node_modules"]
    assert result.secrets == []


def test_secret_rules_apply_at_every_depth(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    write(tmp_path, "a/b/c/.aws/credentials", "[default]\naws_secret_access_key=x\n")
    write(tmp_path, "a/b/.git-credentials", "https://u:tok@github.com\n")
    write(tmp_path, "a/.docker/config.json", '{"auths":{}}')
    write(tmp_path, "a/b/c/d/e/id_rsa", RSA_KEY)
    write(tmp_path, "a/b/c/ok.css", "p{}")
    result = walk_dir(tmp_path)
    assert [f.key for f in result.files] == ["a/b/c/ok.css", "index.html"]
    assert [s.path for s in result.secrets] == ["a/.docker", "a/b/.git-credentials", "a/b/c/.aws",
                                                "a/b/c/d/e/id_rsa"]


def test_a_secret_named_symlink_is_skipped_not_followed(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    (tmp_path / ".ssh").symlink_to(tmp_path / "nowhere")
    assert secrets(tmp_path) == {".ssh": "SSH directory (private keys)"}


def test_public_certificates_and_keys_are_kept_private_ones_are_not(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    write(tmp_path, "certs/ca.crt", CERT)
    write(tmp_path, "certs/ca.CER", CERT)
    write(tmp_path, "pgp/pub.asc", "-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQINBF\n")
    write(tmp_path, "certs/bundle.crt", CERT * 40 + RSA_KEY)  # key after a long chain
    write(tmp_path, "certs/ec.cert", "-----BEGIN EC PRIVATE KEY-----\nMHcC\n")
    write(tmp_path, "certs/openssh.cer", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n")
    write(tmp_path, "pgp/secret.asc", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQdGBF\n")
    result = walk_dir(tmp_path)
    assert [f.key for f in result.files] == ["certs/ca.CER", "certs/ca.crt", "index.html", "pgp/pub.asc"]
    assert {s.path for s in result.secrets} == {"certs/bundle.crt", "certs/ec.cert",
                                                 "certs/openssh.cer", "pgp/secret.asc"}


def test_a_service_account_key_json_is_left_out_other_json_is_kept(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    write(tmp_path, "data/items.json", '{"items": [1, 2, 3], "note": "PRIVATE KEY is just words"}')
    write(tmp_path, "serviceAccountKey.json",
          '{"type": "service_account", "project_id": "p", "private_key_id": "abc", '
          '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----\\n"}')
    write(tmp_path, "enc.json", '{"k": "-----BEGIN ENCRYPTED PRIVATE KEY-----\\nMIIF"}')
    result = walk_dir(tmp_path)
    assert [f.key for f in result.files] == ["data/items.json", "index.html"]
    assert secrets(tmp_path) == {"enc.json": "JSON holding a private key",
                                 "serviceAccountKey.json": "JSON holding a private key"}


def test_only_the_head_of_a_sniffed_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    write(tmp_path, "index.html")
    write(tmp_path, "big.json", b"[" + b"0," * SNIFF_BYTES + b"0]")
    write(tmp_path, "page.html", RSA_KEY)  # not a sniffed kind: never opened by the walk
    reads: list[int] = []
    real_open = builtins.open

    class Spy:
        def __init__(self, fh: Any) -> None:
            self.fh = fh

        def __enter__(self) -> "Spy":
            return self

        def __exit__(self, *exc: Any) -> None:
            self.fh.close()

        def read(self, n: int = -1) -> bytes:
            reads.append(n)
            return self.fh.read(n)

    opened: list[str] = []

    def spy_open(path: Any, *args: Any, **kw: Any) -> Any:
        opened.append(os.path.basename(str(path)))
        return Spy(real_open(path, *args, **kw))

    monkeypatch.setattr(builtins, "open", spy_open)
    assert keys(tmp_path) == ["big.json", "index.html", "page.html"]
    assert opened == ["big.json"] and reads == [SNIFF_BYTES]


def test_the_event_lists_every_secret_with_its_reason(tmp_path: Path) -> None:
    write(tmp_path, "index.html")
    write(tmp_path, ".htpasswd", "admin:$apr1$x")
    write(tmp_path, "deep/.aws/credentials", "[default]")
    event = skipped_secrets_event(walk_dir(tmp_path).secrets)
    assert event is not None
    assert event["type"] == "site.secret_files.skipped" and event["count"] == 2
    assert event["paths"] == [".htpasswd", "deep/.aws"]
    assert event["files"] == [{"path": ".htpasswd", "reason": "web server password file"},
                              {"path": "deep/.aws", "reason": "AWS credentials directory"}]
    assert event["hint"]
    assert skipped_secrets_event([]) is None


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
