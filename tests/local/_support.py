"""Set-up helpers for gateway tests: done through the library (`api.client`), so the tests
themselves can act over plain HTTP as a browser or a third-party client would."""

from __future__ import annotations

from typing import Any

import httpx

from run402_cli.api.client import Client
from run402_cli.config import Settings, write_allowance
from run402_cli.wallet import address_of, generate_private_key


def provision(name: str = "test") -> dict[str, Any]:
    """A funded wallet in the current RUN402_CONFIG_DIR and a new project; the dict has
    project_id, anon_key, service_key, schema_slot, and `client` (a Client for that wallet)."""
    settings = Settings()
    key = generate_private_key()
    address = address_of(key)
    write_allowance(settings.allowance_path, {"address": address, "privateKey": key})
    client = Client(settings)
    client.request("POST", "/faucet/v1", json={"address": address}, wallet_auth=False)
    project = client.request("POST", "/projects/v1", json={"tier": "prototype", "name": name})
    project["client"] = client
    return project


def sql(project: dict[str, Any], query: str, *, key: str | None = None, project_id: str | None = None) -> Any:
    return project["client"].request(
        "POST", f"/projects/v1/admin/{project_id or project['project_id']}/sql",
        content=query, content_type="text/plain", bearer=key or project["service_key"])


def expose(project: dict[str, Any], manifest: dict[str, Any]) -> Any:
    return project["client"].request("POST", f"/projects/v1/admin/{project['project_id']}/expose",
                                     json=manifest, bearer=project["service_key"])


def signup_and_login(api_base: str, project: dict[str, Any], email: str,
                     password: str = "correct horse battery") -> dict[str, Any]:
    headers = {"apikey": project["anon_key"]}
    resp = httpx.post(f"{api_base}/auth/v1/signup", headers=headers, json={"email": email, "password": password})
    assert resp.status_code == 201, resp.text
    resp = httpx.post(f"{api_base}/auth/v1/token?grant_type=password", headers=headers,
                      json={"email": email, "password": password})
    assert resp.status_code == 200, resp.text
    return resp.json()


def user_headers(project: dict[str, Any], session: dict[str, Any]) -> dict[str, str]:
    return {"apikey": project["anon_key"], "Authorization": f"Bearer {session['access_token']}",
            "Prefer": "return=representation"}


def anon_headers(project: dict[str, Any]) -> dict[str, str]:
    return {"apikey": project["anon_key"], "Authorization": f"Bearer {project['anon_key']}",
            "Prefer": "return=representation"}
