"""The directory walk of `sites deploy-dir` (the rules of the SDK's `fileSetFromDir`).

Rules, in the order they apply to each directory entry:
1. skipped by name, at every depth (files and directories alike): `.git`, `node_modules`,
   `.DS_Store` (exact), and the secret names of `secrets_filter.py`, case-insensitively: the
   official client's list (`.env`, `.env.*`, `.envrc`, `.npmrc`, ..., `id_rsa`, `*.key`, `*.pem`,
   `*.p12`, `*.pfx`) and more (`.aws/`, `.ssh/`, `.docker/`, `.git-credentials`, `.htpasswd`,
   `*.tfstate`, ...). A skipped name is never even looked at, so a skipped symlink
   (`node_modules -> ...`) is not an error;
2. a symlink anywhere fails the whole walk ("following symlinks is not supported");
3. directories are walked; regular files are kept, except a usually-public kind (`.crt`,
   `.asc`, `.json`, ...) whose first 64 KiB hold a private-key block; anything else (fifo,
   socket, device) is silently ignored.
Other dotfiles are kept (`.well-known/...` is deployed). The root itself must exist, be a
directory and not be a symlink. No file left -> error.

Every secret left out (rule 1's secret names and rule 3's private keys, not `.git`,
`node_modules`, `.DS_Store`) is listed with its reason in `WalkResult.secrets`, so the deploy
can tell the user what it did not publish.

Keys are POSIX relative paths (`a/b.html`), sorted (the official client does not sort; the
gateway does not care, and a fixed order makes plans and tests deterministic).

Each file carries what `lstat` said about it (size, mtime_ns, ctime_ns, inode, device), so the
hash cache can decide without opening it. One `lstat` per file is the whole cost of the walk,
plus one bounded read for the few sniffed extensions.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from run402_cli.deploy.secrets_filter import secret_content_reason, secret_name_reason
from run402_cli.errors import LocalError

__all__ = ["SkippedSecret", "WalkResult", "WalkedFile", "is_skipped", "walk_dir"]

# Not secrets, just never part of a site (exact names, per spec): skipped without a report.
_SKIP_EXACT = frozenset({".git", "node_modules", ".DS_Store"})


def is_skipped(name: str) -> bool:
    """True when a directory entry called `name` is left out of a deploy by name (rule 1)."""
    return name in _SKIP_EXACT or secret_name_reason(name) is not None


@dataclass(frozen=True, slots=True)
class WalkedFile:
    key: str  # POSIX path relative to the root
    path: str  # absolute path on disk
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int


@dataclass(frozen=True, slots=True)
class SkippedSecret:
    path: str  # POSIX path relative to the root (a directory is left out whole)
    reason: str  # what it looks like, for the user ("AWS credentials directory")


@dataclass
class WalkResult:
    root: str  # absolute (os.path.abspath; not resolved: the root is not a symlink)
    files: list[WalkedFile]
    skipped: list[str] = field(default_factory=list)  # relative paths left out (name or content)
    secrets: list[SkippedSecret] = field(default_factory=list)  # the secrets among them, sorted


def _error(message: str, reason: str, path: str, hint: str | None = None) -> LocalError:
    # code LOCAL_ERROR: what the official CLI reports for these (SDK LocalError); the stable
    # machine-readable distinction is details.reason.
    return LocalError(
        message, code="LOCAL_ERROR", hint=hint,
        details={"reason": reason, "path": path, "context": "walking directory"},
    )


def walk_dir(root: str | os.PathLike[str]) -> WalkResult:
    """Walk `root` by the rules above. Raises LocalError (LOCAL_ERROR, details.reason one of
    not_found / not_a_directory / symlink / unreadable / no_deployable_files)."""
    shown = os.fspath(root)
    try:
        st = os.lstat(shown)
    except OSError as exc:
        reason = "not_found" if isinstance(exc, FileNotFoundError) else "unreadable"
        raise _error(f"cannot read directory {shown}: {exc.strerror or exc}", reason, shown,
                     hint="Check the path: it must be an existing directory.") from None
    if stat.S_ISLNK(st.st_mode):
        raise _error(f"symlink found at {shown} (following symlinks is not supported)",
                     "symlink", shown, hint="Pass the real directory, not a link to it.")
    if not stat.S_ISDIR(st.st_mode):
        raise _error(f"path {shown} is not a directory", "not_a_directory", shown,
                     hint="sites deploy-dir takes a directory; to deploy one file, put it in one.")

    base = os.path.abspath(shown)
    files: list[WalkedFile] = []
    skipped: list[str] = []
    secrets: list[SkippedSecret] = []
    stack: list[tuple[str, str]] = [(base, "")]  # (absolute dir, key prefix)
    while stack:
        current, prefix = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError as exc:
            raise _error(f"cannot read directory {current}: {exc.strerror or exc}",
                         "unreadable", current) from None
        for entry in entries:
            name = entry.name
            key = prefix + name
            if name in _SKIP_EXACT:
                skipped.append(key)
                continue
            reason = secret_name_reason(name)
            if reason is not None:
                skipped.append(key)
                secrets.append(SkippedSecret(key, reason))
                continue
            if entry.is_symlink():
                raise _error(
                    f"symlink found at {entry.path} (following symlinks is not supported)",
                    "symlink", entry.path,
                    hint="Replace the link with a copy of its target, or move it out of the directory.",
                )
            if entry.is_dir(follow_symlinks=False):
                stack.append((entry.path, key + "/"))
            elif entry.is_file(follow_symlinks=False):
                try:
                    s = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    raise _error(f"cannot read file {entry.path}: {exc.strerror or exc}",
                                 "unreadable", entry.path) from None
                try:
                    reason = secret_content_reason(name, entry.path)
                except OSError as exc:
                    raise _error(f"cannot read file {entry.path}: {exc.strerror or exc}",
                                 "unreadable", entry.path) from None
                if reason is not None:
                    skipped.append(key)
                    secrets.append(SkippedSecret(key, reason))
                    continue
                files.append(WalkedFile(key, entry.path, s.st_size, s.st_mtime_ns, s.st_ctime_ns,
                                        s.st_ino, s.st_dev))
            # anything else (fifo, socket, device): ignored, like the official walk
    if not files:
        raise _error(f"directory {shown} contains no deployable files", "no_deployable_files",
                     shown, hint="Skipped names (.git, node_modules, .env*, keys, credentials) are never deployed.")
    files.sort(key=lambda f: f.key)
    skipped.sort()
    secrets.sort(key=lambda s: s.path)
    return WalkResult(root=base, files=files, skipped=skipped, secrets=secrets)
