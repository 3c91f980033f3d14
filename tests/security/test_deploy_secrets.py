"""`sites deploy-dir` never publishes common secret files, and says which it left out.

Against the session gateway: a site tree salted with cloud/registry/git credentials, SSH and
PEM private keys, keystores and terraform state is deployed; none of them is served (404:
the tree has a 404.html, so there is no SPA fallback to hide a hit), the public files next to
them (a certificate, a public PGP key, ordinary JSON) are, and the stderr progress stream
names every secret once, before planning, with a reason. stdout keeps its shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from run402_cli.deploy import flow
from run402_cli.deploy.hashcache import HashCache, hash_walk
from run402_cli.deploy.spec import site_release_from_walk
from run402_cli.deploy.walk import walk_dir
from tests.commands._helpers import ok, ready
from tests.local._support import provision

EVENT = "site.secret_files.skipped"
RSA_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecret\n-----END RSA PRIVATE KEY-----\n"
CERT = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEpublic\n-----END CERTIFICATE-----\n"

# What is planted (path -> bytes) and the path the walk reports for it (a directory whole).
SECRETS: dict[str, tuple[str, str]] = {
    ".aws/credentials": ("[default]\naws_secret_access_key = wJalrXUtnFEMI\n", ".aws"),
    ".azure/msal_token_cache.json": ('{"AccessToken": {}}', ".azure"),
    ".config/gcloud/application_default_credentials.json":
        ('{"type": "authorized_user", "refresh_token": "1//0g"}',
         ".config/gcloud/application_default_credentials.json"),
    ".docker/config.json": ('{"auths": {"ghcr.io": {"auth": "dXNlcjp0b2tlbg=="}}}', ".docker"),
    ".kube/config": ("users:\n- name: admin\n  user: {token: abc}\n", ".kube"),
    ".npmrc": ("//registry.npmjs.org/:_authToken=npm_secret\n", ".npmrc"),
    ".pypirc": ("[pypi]\npassword = pypi-secret\n", ".pypirc"),
    ".netrc": ("machine api.example.com login u password p\n", ".netrc"),
    ".git-credentials": ("https://u:ghp_secret@github.com\n", ".git-credentials"),
    ".htpasswd": ("admin:$apr1$abc$def\n", ".htpasswd"),
    ".ssh/id_ed25519": ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n", ".ssh"),
    "keys/id_rsa": (RSA_KEY, "keys/id_rsa"),
    "keys/deploy.ppk": ("PuTTY-User-Key-File-3: ssh-ed25519\n", "keys/deploy.ppk"),
    "tls/server.pem": (RSA_KEY, "tls/server.pem"),
    "tls/server.key": (RSA_KEY, "tls/server.key"),
    "tls/store.p12": ("\x30\x82binary", "tls/store.p12"),
    "certs/bundle.crt": (CERT * 30 + RSA_KEY, "certs/bundle.crt"),
    "serviceAccountKey.json": ('{"type": "service_account", "private_key": '
                               '"-----BEGIN PRIVATE KEY-----\\nMIIE\\n-----END PRIVATE KEY-----\\n"}',
                               "serviceAccountKey.json"),
    "infra/terraform.tfstate": ('{"resources": [{"password": "hunter2"}]}', "infra/terraform.tfstate"),
    ".env": ("SECRET=1\n", ".env"),
}
PUBLIC: dict[str, str] = {
    "index.html": "<h1>home</h1>",
    "404.html": "<h1>not found</h1>",
    "css/site.css": "body{}",
    ".well-known/security.txt": "Contact: mailto:sec@example.com\n",
    "certs/ca.crt": CERT,
    "pgp/pub.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQINBF\n",
    "data/items.json": '{"items": [1, 2]}',
    "keys/id_rsa.pub": "ssh-rsa AAAAB3 me@host\n",
}


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN402_CACHE_DIR", str(tmp_path / "hash-cache"))


def plant(root: Path) -> None:
    for rel, data in {**PUBLIC, **{k: v[0] for k, v in SECRETS.items()}}.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode("latin-1"))
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[remote \"origin\"]\n\turl = https://u:tok@github.com/x\n")


def fetch(url: str, path: str) -> httpx.Response:
    parts = urlsplit(url)
    return httpx.get(f"http://127.0.0.1:{parts.port}{path}", headers={"Host": parts.netloc})


def stderr_events(res: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in res.stderr.splitlines() if line.strip()]


def deploy(cli: Any, root: Path) -> Any:
    ready(cli)
    ok(cli("projects", "provision"))
    return cli("sites", "deploy-dir", str(root))


def test_secret_files_are_not_served_and_public_ones_are(cli, api, tmp_path):
    root = tmp_path / "site"
    plant(root)
    res = deploy(cli, root)
    assert res.code == 0, res.stderr
    body = json.loads(res.stdout)
    assert set(body) == {"status", "deployment_id", "url", "bytes_uploaded", "bytes_total"}
    assert body["bytes_total"] == sum(len(v.encode("latin-1")) for v in PUBLIC.values())
    for rel, data in PUBLIC.items():
        resp = fetch(body["url"], "/" + rel)
        assert resp.status_code == 200 and resp.text == data, rel
    for rel in [*SECRETS, ".git/config"]:
        resp = fetch(body["url"], "/" + rel)
        assert resp.status_code == 404, (rel, resp.status_code, resp.text[:80])


def test_stderr_names_every_skipped_secret_once_before_planning(cli, api, tmp_path):
    root = tmp_path / "site"
    plant(root)
    res = deploy(cli, root)
    assert res.code == 0, res.stderr
    evs = stderr_events(res)
    assert [e["type"] for e in evs][:3] == [EVENT, "plan.started", "plan.diff"]
    assert [e["type"] for e in evs].count(EVENT) == 1
    (event,) = [e for e in evs if e["type"] == EVENT]
    expected = sorted({reported for _, reported in SECRETS.values()})
    assert event["paths"] == expected and event["count"] == len(expected)
    assert [f["path"] for f in event["files"]] == expected
    assert all(isinstance(f["reason"], str) and f["reason"] for f in event["files"])
    assert ".git" not in event["paths"], "not a secret: skipped silently, as before"
    assert EVENT not in res.stdout, "progress never goes to stdout"


def test_flow_announces_the_walks_secrets_once_before_the_plan(api, tmp_path):
    project = provision("secrets")
    root = tmp_path / "site"
    plant(root)
    walk = walk_dir(root)
    hashes, _ = hash_walk(walk, HashCache(walk.root, None))
    release = site_release_from_walk(project["project_id"], walk, hashes)
    seen: list[dict[str, Any]] = []
    flow.apply(project["client"], release, anon_key=project["anon_key"], on_event=seen.append,
               skipped_secrets=walk.secrets)
    assert seen[0]["type"] == EVENT and seen[1]["type"] == "plan.started"
    assert seen[0]["paths"] == [s.path for s in walk.secrets] and seen[0]["count"] == len(SECRETS)
    assert [e["type"] for e in seen].count(EVENT) == 1
    assert set(release.spec["site"]["replace"]) == set(PUBLIC)


def test_legacy_manifest_drops_secret_entries(cli, api, tmp_path):
    manifest = tmp_path / "site.json"
    manifest.write_text(json.dumps({"files": [
        {"file": "index.html", "data": "<h1>legacy</h1>"},
        {"file": "404.html", "data": "<h1>nf</h1>"},
        {"file": ".aws/credentials", "data": "[default]\naws_secret_access_key=x\n"},
        {"file": ".git-credentials", "data": "https://u:tok@github.com\n"},
        {"file": "conf/.htpasswd", "data": "admin:$apr1$x\n"},
        {"file": "infra/prod.tfstate", "data": "{}"},
    ]}))
    ready(cli)
    ok(cli("projects", "provision"))
    body = ok(cli("sites", "deploy", "--manifest", str(manifest), "--quiet"))
    assert fetch(body["url"], "/index.html").status_code == 200
    for rel in (".aws/credentials", ".git-credentials", "conf/.htpasswd", "infra/prod.tfstate"):
        assert fetch(body["url"], "/" + rel).status_code == 404, rel
