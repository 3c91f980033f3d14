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
    the first https:// call builds what httpx's default would: certificate and hostname
    verified, against certifi's bundle (or SSL_CERT_FILE / SSL_CERT_DIR)."""
    import ssl

    from run402_cli.api import transport

    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    connected: list[tuple[str, str, int]] = []

    class Answer:
        def __init__(self, scheme):
            self.scheme, self.data = scheme, b""

        def settimeout(self, t):
            pass

        def sendall(self, data):  # one answer per request
            self.data = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n"
                         + ('{"scheme":"%-5s"}' % self.scheme).encode())

        def recv(self, n):
            out, self.data = self.data, b""
            return out

        def close(self):
            pass

    def connect(self, scheme, host, port):
        connected.append((scheme, host, port))
        if scheme == "https":
            self._tls_context()
        return Answer(scheme)

    monkeypatch.setattr(transport.SocketTransport, "_connect", connect)
    monkeypatch.setenv("RUN402_API_BASE", "http://127.0.0.1:4020")
    with Client(Settings()) as c:
        assert c.request("GET", "/status", wallet_auth=False) == {"scheme": "http "}
        assert c.request("GET", "/health", wallet_auth=False) == {"scheme": "http "}
        assert connected == [("http", "127.0.0.1", 4020)]  # one connection, kept alive and reused
        assert c._wire._tls is None  # no TLS context loaded
    with Client(Settings(), base="https://api.run402.com") as hosted:
        assert hosted.request("GET", "/status", wallet_auth=False) == {"scheme": "https"}
        ctx = hosted._wire._tls
    assert connected[-1] == ("https", "api.run402.com", 443)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] > 0  # certifi's bundle


def test_a_proxy_in_the_environment_hands_the_calls_to_httpx(monkeypatch):
    from run402_cli.api import transport

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert isinstance(transport.default_transport(), transport.HttpxTransport)
    monkeypatch.delenv("HTTPS_PROXY")
    assert isinstance(transport.default_transport(), transport.SocketTransport)
