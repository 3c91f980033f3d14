"""The API client's request shape, checked with httpx's MockTransport (no server needed: the
assertion is about which headers leave the machine)."""

from __future__ import annotations

import httpx

from run402_cli.api.client import Client
from run402_cli.config import Settings, write_allowance
from run402_cli.wallet import address_of, generate_private_key


def _client(seen: list[httpx.Request]) -> Client:
    settings = Settings()
    key = generate_private_key()
    write_allowance(settings.allowance_path, {"address": address_of(key), "privateKey": key})

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    return Client(settings, transport=httpx.MockTransport(handler))


def test_project_key_calls_skip_wallet_sign_in_and_wallet_calls_carry_it():
    seen: list[httpx.Request] = []
    with _client(seen) as c:
        c.request("POST", "/projects/v1/admin/prj_1/sql", content=b"select 1", bearer="svc-key")
        c.request("GET", "/tiers/v1/status")
        c.request("POST", "/faucet/v1", json={}, wallet_auth=False)
    keyed, wallet, anonymous = seen
    assert keyed.headers["authorization"] == "Bearer svc-key"
    assert "sign-in-with-x" not in keyed.headers
    assert "sign-in-with-x" in wallet.headers
    assert "sign-in-with-x" not in anonymous.headers


def test_tls_is_set_up_only_for_https_and_then_verified(monkeypatch):
    """The default transport builds no TLS context for plain-HTTP calls (the local gateway);
    the first https:// call gets httpx's default, certificate-verifying transport."""
    import run402_cli.api.client as client_module

    built: list[dict] = []

    class Recording(httpx.BaseTransport):
        def __init__(self, **kwargs):
            built.append(kwargs)

        def handle_request(self, request):
            return httpx.Response(200, json={"scheme": request.url.scheme})

    monkeypatch.setattr(client_module.httpx, "HTTPTransport", Recording)
    monkeypatch.setenv("RUN402_API_BASE", "http://127.0.0.1:4020")
    with Client(Settings()) as c:
        assert c.request("GET", "/status", wallet_auth=False) == {"scheme": "http"}
        assert c.request("GET", "/health", wallet_auth=False) == {"scheme": "http"}
        assert built == [{"verify": False}]  # one plain pool, reused; no TLS context loaded
        with Client(Settings(), base="https://api.run402.com") as hosted:
            assert hosted.request("GET", "/status", wallet_auth=False) == {"scheme": "https"}
    assert built == [{"verify": False}, {}]  # https: the defaults, verify=True
