"""Project secrets, adversarially, against the session gateway: a value never comes back (no
response, no list, no error, no log file), is not stored in the clear, cannot be read or
changed with another project's key, does not decrypt when its row is copied elsewhere, and a
tier's count limit holds (nothing written past it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from run402_cli.local.runtime.pgcluster import PgCluster
from run402_cli.local.secrets import store
from tests.local._support import provision

VALUE = "hunter2-Secret-VALUE-7f3a"


def secrets_key(gateway: Any) -> bytes:
    data = json.loads((Path(gateway.local_dir) / "gateway.secret.json").read_text())
    return bytes.fromhex(data["secrets_key"])


class _Ctx:
    """What store.secret_values needs of a GatewayContext: the key."""

    def __init__(self, key: bytes) -> None:
        self.secrets_key = key


def meta(gateway: Any) -> psycopg.Connection:
    """A superuser connection to the gateway's own database (to look at the stored rows)."""
    return psycopg.connect(PgCluster(Path(gateway.local_dir)).conninfo(), autocommit=True)


def stored_values(gateway: Any, project_id: str) -> dict[str, str]:
    """The project's secrets as the functions runtime reads them (store.secret_values)."""
    with meta(gateway) as conn:
        return store.secret_values(_Ctx(secrets_key(gateway)), conn, project_id)  # type: ignore[arg-type]


def admin(api_base: str, project_id: str) -> str:
    return f"{api_base}/projects/v1/admin/{project_id}/secrets"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def project(api) -> dict[str, Any]:
    return provision("secrets")


def test_a_value_never_comes_back(api, project, cli):
    pid, key = project["project_id"], project["service_key"]
    url = admin(api.api_base, pid)
    seen = []
    resp = httpx.post(url, headers=bearer(key), json={"key": "API_TOKEN", "value": VALUE})
    assert resp.status_code == 200 and set(resp.json()) == {"status", "key", "created_at", "updated_at"}
    seen.append(resp.text)
    seen.append(httpx.get(url, headers=bearer(key)).text)
    # errors around it: a bad key, an oversized value, a duplicate-ish body, another method
    for body in ({"key": "bad key", "value": VALUE}, {"key": "A", "value": VALUE * 200},
                 {"key": "A", "value": VALUE, "extra": VALUE}, {"value": VALUE}):
        bad = httpx.post(url, headers=bearer(key), json=body)
        assert bad.status_code == 400, body
        seen.append(bad.text)
    seen.append(httpx.delete(f"{url}/{VALUE}", headers=bearer(key)).text)  # a value typed as the key
    seen.append(httpx.post(url, headers=bearer(project["anon_key"]), json={"key": "A", "value": VALUE}).text)
    # the CLI around it too
    from run402_cli import config

    config.Settings().keystore().save_project(pid, {"anon_key": project["anon_key"], "service_key": key})
    for args in (("set", pid, "CLI_TOKEN", VALUE), ("list", pid), ("delete", pid, "CLI_TOKEN")):
        res = cli("secrets", *args)
        assert res.code == 0, res.stderr
        seen += [res.stdout, res.stderr]
    res = cli("secrets", "set", pid, "lower", VALUE)
    seen += [res.stdout, res.stderr]
    assert not [s for s in seen if VALUE in s], "a secret value came back"
    listed = httpx.get(url, headers=bearer(key)).json()
    assert listed == {"secrets": [{"key": "API_TOKEN", "created_at": listed["secrets"][0]["created_at"],
                                   "updated_at": listed["secrets"][0]["updated_at"]}]}
    # ... and is in no log the gateway writes
    for log in (Path(api.local_dir) / "logs").glob("*.log"):
        assert VALUE.encode() not in log.read_bytes(), log.name
    assert stored_values(api, pid) == {"API_TOKEN": VALUE}


def test_the_stored_column_is_ciphertext(api, project):
    pid, key = project["project_id"], project["service_key"]
    httpx.post(admin(api.api_base, pid), headers=bearer(key), json={"key": "DB_URL", "value": VALUE}).raise_for_status()
    with meta(api) as conn:
        (stored,) = conn.execute("SELECT value FROM run402_meta.secrets WHERE project_id = %s AND key = 'DB_URL'",
                                 (pid,)).fetchone()
        (anywhere,) = conn.execute("SELECT count(*) FROM run402_meta.secrets WHERE value LIKE %s",
                                   (f"%{VALUE}%",)).fetchone()
    assert stored.startswith("v1:") and VALUE not in stored and anywhere == 0
    assert store.decrypt(secrets_key(api), pid, "DB_URL", stored) == VALUE
    # a fresh nonce per write: the same value twice is two different ciphertexts
    httpx.post(admin(api.api_base, pid), headers=bearer(key), json={"key": "DB_URL", "value": VALUE}).raise_for_status()
    with meta(api) as conn:
        (again,) = conn.execute("SELECT value FROM run402_meta.secrets WHERE project_id = %s AND key = 'DB_URL'",
                                (pid,)).fetchone()
    assert again != stored


def test_another_projects_key_gets_403_and_no_key_401(api, project):
    other = provision("other")
    pid, url = project["project_id"], admin(api.api_base, project["project_id"])
    httpx.post(url, headers=bearer(project["service_key"]), json={"key": "MINE", "value": VALUE}).raise_for_status()
    attempts = [("POST", url, {"key": "MINE", "value": "overwritten"}), ("GET", url, None),
                ("DELETE", f"{url}/MINE", None)]
    for method, target, body in attempts:
        for headers, status in ((bearer(other["service_key"]), 403), (bearer(project["anon_key"]), 403), ({}, 401),
                                (bearer("not-a-jwt"), 401)):
            resp = httpx.request(method, target, headers=headers, json=body)
            assert resp.status_code == status, (method, target, headers, resp.text)
            assert VALUE not in resp.text
    assert stored_values(api, pid) == {"MINE": VALUE}, "nothing was changed by the refused calls"
    # an unknown project in the path is 404, whatever the key
    resp = httpx.get(admin(api.api_base, "prj_0_0"), headers=bearer(project["service_key"]))
    assert resp.status_code == 404


def test_a_ciphertext_moved_to_another_row_does_not_decrypt(api, project):
    other = provision("other")
    pid, oid = project["project_id"], other["project_id"]
    httpx.post(admin(api.api_base, pid), headers=bearer(project["service_key"]),
               json={"key": "TOKEN", "value": VALUE}).raise_for_status()
    httpx.post(admin(api.api_base, oid), headers=bearer(other["service_key"]),
               json={"key": "TOKEN", "value": "theirs"}).raise_for_status()
    with meta(api) as conn:
        (stolen,) = conn.execute("SELECT value FROM run402_meta.secrets WHERE project_id = %s AND key = 'TOKEN'",
                                 (pid,)).fetchone()
        # into the other project under the same key, and into this project under another key
        conn.execute("UPDATE run402_meta.secrets SET value = %s WHERE project_id = %s AND key = 'TOKEN'", (stolen, oid))
        conn.execute("INSERT INTO run402_meta.secrets (project_id, key, value) VALUES (%s, 'COPY', %s)", (pid, stolen))
    key = secrets_key(api)
    for target_pid, name in ((oid, "TOKEN"), (pid, "COPY")):
        with pytest.raises(store.SecretUnreadable):
            store.decrypt(key, target_pid, name, stolen)
    assert stored_values(api, oid) == {}, "the moved row is left out of the other project's environment"
    assert stored_values(api, pid) == {"TOKEN": VALUE}
    assert VALUE.encode() not in b"".join(p.read_bytes() for p in (Path(api.local_dir) / "logs").glob("*.log"))


def test_the_tier_count_limit(api, project):
    url = admin(api.api_base, project["project_id"])
    headers = bearer(project["service_key"])
    for i in range(10):  # prototype: 10 secrets per project
        httpx.post(url, headers=headers, json={"key": f"K{i:02d}", "value": "v"}).raise_for_status()
    resp = httpx.post(url, headers=headers, json={"key": "ONE_TOO_MANY", "value": VALUE})
    assert resp.status_code == 403
    body = resp.json()
    assert body["code"] == "TIER_LIMIT_EXCEEDED" and body["details"]["limit"] == 10
    assert body["details"]["tier"] == "prototype" and body["mutation_state"] == "none"
    listed = [s["key"] for s in httpx.get(url, headers=headers).json()["secrets"]]
    assert listed == [f"K{i:02d}" for i in range(10)], "nothing written past the limit"
    # at the limit, overwriting an existing key is not a new secret; after a delete there is room
    httpx.post(url, headers=headers, json={"key": "K00", "value": "new"}).raise_for_status()
    httpx.delete(f"{url}/K09", headers=headers).raise_for_status()
    httpx.post(url, headers=headers, json={"key": "ONE_TOO_MANY", "value": "v"}).raise_for_status()
    assert store.max_secrets("hobby") == 50 and store.max_secrets("team") == 200
