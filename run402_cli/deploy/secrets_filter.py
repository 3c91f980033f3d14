"""Files `sites deploy-dir` never publishes because they hold credentials or private keys.

A site directory is served to the whole internet, and it is often a project root or a build
output that picked up a developer's dotfiles. Every name here is one a static site has no
reason to serve; anything a site plausibly serves (a public certificate `.crt`, an armored
public PGP key `.asc`, ordinary `.json`) is kept unless its first bytes hold a private key.

Two kinds of rule, both in the tables below and nowhere else:
- by name (case-insensitive, at every depth, files and directories alike; a matching
  directory is left out whole, never opened): `secret_name_reason(name)`;
- by content, for a few extensions that are usually public but sometimes hold a private
  key: the first `SNIFF_BYTES` are searched for a PEM private-key block.
  `secret_content_reason(name, path)`.

The official client's list of sensitive names is the first block, matched by name alone,
so `*.pem` and `*.key` are never deployed whatever they hold (the official client behaves
the same, and a bundled cert+key PEM must not slip through a content check). Everything
after it goes beyond the official client.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

__all__ = ["SNIFF_BYTES", "secret_content_reason", "secret_name_reason", "skipped_secrets_event"]

# (exact lower-case name, reason shown to the user). Why each is here, beside it.
_NAMES: tuple[tuple[str, str], ...] = (
    # --- the official client's sensitive names ---
    (".env", "environment file (secrets)"),  # dotenv: API keys, DB URLs
    (".envrc", "direnv environment file (secrets)"),  # direnv exports the same as .env
    (".npmrc", "npm config (registry auth token)"),  # `_authToken=` lines
    (".pnpmrc", "pnpm config (registry auth token)"),  # same format as .npmrc
    (".yarnrc", "yarn config (registry auth token)"),  # yarn v1 auth settings
    (".netrc", "netrc (machine passwords)"),  # login/password per host, used by curl, git, pip
    (".pypirc", "PyPI config (upload password/token)"),  # twine credentials
    ("id_dsa", "SSH private key"),  # default OpenSSH key file names
    ("id_ecdsa", "SSH private key"),
    ("id_ed25519", "SSH private key"),
    ("id_rsa", "SSH private key"),
    # --- beyond the official client: cloud, registry and tool credentials ---
    (".aws", "AWS credentials directory"),  # ~/.aws/credentials holds access keys
    (".azure", "Azure CLI credentials directory"),  # msal token cache, service principals
    ("application_default_credentials.json", "Google Cloud credentials"),  # gcloud ADC file
    ("legacy_credentials", "Google Cloud credentials directory"),  # gcloud per-account keys
    ("access_tokens.db", "credential token cache (gcloud)"),  # gcloud's sqlite token store
    ("credentials.db", "credential store (gcloud)"),  # gcloud's sqlite store; no site serves one
    (".boto", "Google Cloud Storage / boto credentials"),  # gsutil and boto keys
    (".s3cfg", "s3cmd credentials"),  # access_key / secret_key
    (".docker", "Docker config directory (registry auth)"),  # .docker/config.json "auths"
    (".kube", "Kubernetes config directory (cluster credentials)"),  # .kube/config tokens, certs
    (".yarnrc.yml", "yarn config (registry auth token)"),  # yarn v2+ `npmAuthToken`
    (".vault-token", "HashiCorp Vault token"),  # written by `vault login`
    (".terraformrc", "Terraform CLI config (API tokens)"),  # `credentials` blocks
    ("terraform.rc", "Terraform CLI config (API tokens)"),  # its Windows name
    (".terraform.d", "Terraform credentials directory"),  # credentials.tfrc.json from `terraform login`
    (".terraform", "Terraform working directory (backend config, state)"),  # may embed backend creds
    (".pgpass", "PostgreSQL password file"),  # host:port:db:user:password
    (".my.cnf", "MySQL client config (password)"),  # [client] password=
    # --- git and web-server credentials ---
    (".git-credentials", "git credentials (tokens in URLs)"),  # `git credential-store` file
    (".htpasswd", "web server password file"),  # Apache/nginx basic-auth hashes (crackable)
    (".htdigest", "web server password file"),  # Apache digest-auth hashes
    # --- SSH and GPG ---
    (".ssh", "SSH directory (private keys)"),  # keys, known_hosts, config
    ("id_ecdsa_sk", "SSH private key"),  # FIDO/security-key variants of the default names
    ("id_ed25519_sk", "SSH private key"),
    (".gnupg", "GnuPG directory (private keyring)"),  # private-keys-v1.d/
)

# (lower-case name suffix, reason). A suffix also matches a whole name that is only the suffix.
_SUFFIXES: tuple[tuple[str, str], ...] = (
    # --- the official client's sensitive suffixes ---
    (".key", "private key file"),  # server.key; also Keynote files, which the official client skips too
    (".pem", "PEM file (may hold a private key)"),  # cert+key bundles are common; by name, like the official client
    (".p12", "PKCS#12 keystore (private key)"),  # certificate *with* its private key
    (".pfx", "PKCS#12 keystore (private key)"),  # Windows name for .p12
    # --- beyond the official client ---
    (".ppk", "PuTTY private key"),  # PuTTYgen's key format
    (".p8", "PKCS#8 private key"),  # e.g. Apple AuthKey_XXXX.p8 signing keys
    (".jks", "Java keystore (private keys)"),  # Android/Java signing keystores
    (".keystore", "Java keystore (private keys)"),  # release.keystore and the like
    (".tfstate", "Terraform state (resource secrets in clear)"),  # passwords, keys of resources
    (".tfstate.backup", "Terraform state backup"),  # same content as .tfstate
    (".tfvars", "Terraform variables (often secrets)"),  # db passwords, tokens
    (".tfvars.json", "Terraform variables (often secrets)"),
)

# (lower-case name prefix, reason).
_PREFIXES: tuple[tuple[str, str], ...] = (
    (".env.", "environment file (secrets)"),  # the official client's rule: .env.local, .env.production, ...
)

# Extensions usually public (served on purpose) but sometimes holding a private key: read the
# head of the file and skip it only when a private-key block is there.
_SNIFFED: tuple[tuple[str, str], ...] = (
    (".crt", "certificate file holding a private key"),  # cert+key bundles named .crt
    (".cer", "certificate file holding a private key"),
    (".cert", "certificate file holding a private key"),
    (".asc", "armored PGP private key"),  # public keys (.asc) are served on purpose; private exports are not
    (".json", "JSON holding a private key"),  # Google service-account keys (serviceAccountKey.json)
)

# How much of a sniffed file is read. Not just 4 KiB: a bundle often puts the key after a
# certificate chain of several KiB; 64 KiB covers long chains and is still one read.
SNIFF_BYTES = 64 * 1024

# PEM private-key armor: PRIVATE KEY, RSA/EC/DSA/OPENSSH/ENCRYPTED PRIVATE KEY, and
# PGP PRIVATE KEY BLOCK. Matches inside JSON strings too (the armor line has no newline).
_PRIVATE_KEY_BLOCK = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")

_BY_NAME = dict(_NAMES)


def secret_name_reason(name: str) -> str | None:
    """Why a directory entry called `name` is a secret never deployed, or None."""
    lower = name.lower()
    reason = _BY_NAME.get(lower)
    if reason is not None:
        return reason
    for prefix, why in _PREFIXES:
        if lower.startswith(prefix):
            return why
    for suffix, why in _SUFFIXES:
        if lower.endswith(suffix):
            return why
    return None


def secret_content_reason(name: str, path: str) -> str | None:
    """For a regular file whose name is in _SNIFFED: why its content makes it a secret, or
    None. Reads at most SNIFF_BYTES; raises OSError when the file cannot be read."""
    lower = name.lower()
    reason = next((why for suffix, why in _SNIFFED if lower.endswith(suffix)), None)
    if reason is None:
        return None
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    return reason if _PRIVATE_KEY_BLOCK.search(head) else None


def skipped_secrets_event(skipped: Iterable[Any]) -> dict[str, Any] | None:
    """The progress event naming the walk's SkippedSecret items (`.path`, `.reason`), or None
    when there are none. Emitted by the deploy flow before planning, on stderr only."""
    items = [{"path": s.path, "reason": s.reason} for s in skipped]
    if not items:
        return None
    return {
        "type": "site.secret_files.skipped",  # dotted like content.upload.skipped
        "count": len(items),
        "paths": [i["path"] for i in items],
        "files": items,
        "hint": "These look like credentials or private keys and were not deployed. Keep them "
                "out of the site directory (deploy a build output such as dist/).",
    }
