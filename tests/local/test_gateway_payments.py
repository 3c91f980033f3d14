"""x402 and SIGN-IN-WITH-X against the real local gateway: money moves exactly once, or not at all."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from run402_cli.api.client import Client
from run402_cli.config import Settings, write_allowance
from run402_cli.errors import ApiError, PaymentRequired
from run402_cli.payments import decode_header, encode_header, sign_payment
from run402_cli.wallet import address_of, generate_private_key, siwx_header


@pytest.fixture
def wallet(api):
    """A fresh allowance in this test's config dir; returns (client, address, key)."""
    settings = Settings()
    key = generate_private_key()
    address = address_of(key)
    write_allowance(settings.allowance_path, {"address": address, "privateKey": key})
    client = Client(settings)
    yield client, address, key
    client.close()


def _balance(client: Client, address: str) -> int | None:
    """The wallet's test USDC; None only when the gateway says it has no account (404)."""
    try:
        return client.request("GET", f"/billing/v1/accounts/{address.lower()}", wallet_auth=False)[
            "available_usd_micros"
        ]
    except ApiError as exc:
        if exc.http == 404 and isinstance(exc.body, dict) and exc.body.get("code") == "ACCOUNT_NOT_FOUND":
            return None
        raise


def _history(client: Client, address: str) -> list[dict]:
    return client.request("GET", f"/billing/v1/accounts/{address.lower()}/history", wallet_auth=False)["entries"]


def test_paying_without_funds_fails_with_payment_envelope_and_changes_nothing(wallet):
    client, address, _ = wallet
    with pytest.raises(PaymentRequired) as info:
        client.request("POST", "/tiers/v1/prototype", json={})
    env = info.value.to_envelope()
    assert env["http"] == 402
    assert env["code"] == "INSUFFICIENT_FUNDS"
    assert env["details"] == {"available_usd_micros": 0, "required_usd_micros": 100_000}
    status = client.request("GET", "/tiers/v1/status")
    assert status["tier"] is None and status["active"] is False
    # A refused payment moves nothing: no account was even opened, or it holds 0 and no debit.
    balance = _balance(client, address)
    assert balance in (None, 0)
    if balance is not None:
        assert all(e["direction"] != "debit" for e in _history(client, address))


def test_faucet_then_prototype_costs_exactly_ten_cents(wallet):
    client, address, _ = wallet
    client.request("POST", "/faucet/v1", json={"address": address}, wallet_auth=False)
    assert _balance(client, address) == 250_000
    result = client.request("POST", "/tiers/v1/prototype", json={})
    assert result["tier"] == "prototype" and result["action"] == "subscribe"
    assert _balance(client, address) == 150_000
    debits = [e for e in _history(client, address) if e["direction"] == "debit"]
    assert [d["amount_usd_micros"] for d in debits] == [100_000]
    assert client.request("GET", "/tiers/v1/status")["active"] is True


def test_the_same_payment_signature_is_refused_the_second_time(wallet, api):
    client, address, key = wallet
    client.request("POST", "/faucet/v1", json={"address": address}, wallet_auth=False)
    url = api.api_base + "/tiers/v1/prototype"

    def siwx() -> str:
        return siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/prototype")

    first = httpx.post(url, json={}, headers={"SIGN-IN-WITH-X": siwx()})
    assert first.status_code == 402
    required = decode_header(first.headers["PAYMENT-REQUIRED"])
    payment = encode_header(sign_payment(key, required["accepts"][0], required["resource"]))

    paid = httpx.post(url, json={}, headers={"SIGN-IN-WITH-X": siwx(), "PAYMENT-SIGNATURE": payment})
    assert paid.status_code == 200, paid.text
    replay = httpx.post(url, json={}, headers={"SIGN-IN-WITH-X": siwx(), "PAYMENT-SIGNATURE": payment})
    assert replay.status_code == 402
    assert replay.json()["code"] == "PAYMENT_ALREADY_USED"
    assert "PAYMENT-REQUIRED" in replay.headers
    assert _balance(client, address) == 150_000  # debited once


def test_a_payment_to_someone_else_is_refused(wallet, api):
    client, address, key = wallet
    client.request("POST", "/faucet/v1", json={"address": address}, wallet_auth=False)
    url = api.api_base + "/tiers/v1/prototype"
    first = httpx.post(url, json={}, headers={
        "SIGN-IN-WITH-X": siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/prototype")})
    required = decode_header(first.headers["PAYMENT-REQUIRED"])
    option = dict(required["accepts"][0], payTo=address_of(generate_private_key()))
    payment = encode_header(sign_payment(key, option, required["resource"]))
    resp = httpx.post(url, json={}, headers={
        "SIGN-IN-WITH-X": siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/prototype"),
        "PAYMENT-SIGNATURE": payment})
    assert resp.status_code == 402
    assert resp.json()["code"] == "PAYMENT_WRONG_PAYEE"
    assert _balance(client, address) == 250_000


def _status(api, header: str | None) -> httpx.Response:
    headers = {"SIGN-IN-WITH-X": header} if header is not None else {}
    return httpx.get(api.api_base + "/tiers/v1/status", headers=headers)


def test_siwx_valid_header_is_accepted(wallet, api):
    _, address, key = wallet
    resp = _status(api, siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/status"))
    assert resp.status_code == 200
    assert resp.json()["wallet"] == address.lower()


def test_siwx_missing_header_is_402_with_payment_required(api):
    resp = _status(api, None)
    assert resp.status_code == 402
    assert resp.json()["code"] == "AUTHENTICATION_REQUIRED"
    assert decode_header(resp.headers["PAYMENT-REQUIRED"])["accepts"] == []


def test_siwx_tampered_signature_is_refused(wallet, api):
    _, _, key = wallet
    payload = decode_header(siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/status"))
    sig = payload["signature"]
    payload["signature"] = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
    assert _status(api, encode_header(payload)).status_code == 402


def test_siwx_claiming_another_address_is_refused(wallet, api):
    _, _, key = wallet
    payload = decode_header(siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/status"))
    payload["address"] = address_of(generate_private_key())
    assert _status(api, encode_header(payload)).status_code == 402


def test_siwx_expired_header_is_refused(wallet, api):
    _, _, key = wallet
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    resp = _status(api, siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/status", now=old))
    assert resp.status_code == 402
    assert "expired" in resp.json()["message"] or "too_old" in resp.json()["message"]


def test_siwx_replayed_header_is_refused(wallet, api):
    _, _, key = wallet
    header = siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/status")
    assert _status(api, header).status_code == 200
    again = _status(api, header)
    assert again.status_code == 402
    assert "replayed" in again.json()["message"]


def test_siwx_header_signed_for_another_path_is_refused(wallet, api):
    _, _, key = wallet
    for path in ("/tiers/v1", "/tiers/v1/status/x", "/projects/v1"):
        resp = _status(api, siwx_header(private_key=key, api_base=api.api_base, path=path))
        assert resp.status_code == 402
        assert "uri_mismatch" in resp.json()["message"]
    # the query is not part of the binding: clients and proxies may write it differently
    assert _status(api, siwx_header(private_key=key, api_base=api.api_base,
                                    path="/tiers/v1/status?x=1")).status_code == 200


def _pay(key: str, refused: httpx.Response) -> str:
    required = decode_header(refused.headers["PAYMENT-REQUIRED"])
    return encode_header(sign_payment(key, required["accepts"][0], required["resource"]))


def test_siwx_header_may_come_back_once_with_the_payment_it_was_asked_for(wallet, api):
    """The official client answers a 402 by re-sending the same request, SIGN-IN-WITH-X header
    included, with a PAYMENT-SIGNATURE: that second presentation is admitted, no third."""
    client, address, key = wallet
    client.request("POST", "/faucet/v1", json={"address": address}, wallet_auth=False)
    url = api.api_base + "/tiers/v1/prototype"
    header = siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/prototype")
    first = httpx.post(url, json={}, headers={"SIGN-IN-WITH-X": header})
    assert first.status_code == 402 and first.json()["code"] == "PAYMENT_REQUIRED"
    paid = httpx.post(url, json={}, headers={"SIGN-IN-WITH-X": header, "PAYMENT-SIGNATURE": _pay(key, first)})
    assert paid.status_code == 200, paid.text
    assert paid.json()["tier"] == "prototype"
    third = httpx.post(url, json={}, headers={"SIGN-IN-WITH-X": header, "PAYMENT-SIGNATURE": _pay(key, first)})
    assert third.status_code == 402 and "replayed" in third.json()["message"]
    assert _balance(client, address) == 150_000  # one payment settled


def test_siwx_repeat_without_a_payment_or_elsewhere_is_refused(wallet, api):
    client, address, key = wallet
    client.request("POST", "/faucet/v1", json={"address": address}, wallet_auth=False)
    url = api.api_base + "/tiers/v1/prototype"
    header = siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/prototype")
    first = httpx.post(url, json={}, headers={"SIGN-IN-WITH-X": header})
    assert first.status_code == 402 and first.json()["code"] == "PAYMENT_REQUIRED"
    bare = httpx.post(url, json={}, headers={"SIGN-IN-WITH-X": header})  # no payment: a replay
    assert bare.status_code == 402 and "replayed" in bare.json()["message"]
    # a header first presented on GET /tiers/v1/status cannot come back on another method
    status_header = siwx_header(private_key=key, api_base=api.api_base, path="/tiers/v1/status")
    assert _status(api, status_header).status_code == 200
    other_method = httpx.request("HEAD", api.api_base + "/tiers/v1/status",
                                 headers={"SIGN-IN-WITH-X": status_header, "PAYMENT-SIGNATURE": _pay(key, first)})
    assert other_method.status_code == 402
    assert "replayed" in decode_header(other_method.headers["PAYMENT-REQUIRED"])["error"]  # HEAD: no body
    assert _balance(client, address) == 250_000  # nothing paid


def test_siwx_for_another_host_is_refused(wallet, api):
    _, _, key = wallet
    header = siwx_header(private_key=key, api_base="https://api.run402.com", path="/tiers/v1/status")
    assert _status(api, header).status_code == 402


def test_downgrade_is_refused_before_any_payment(wallet):
    client, address, _ = wallet
    client.request("POST", "/faucet/v1", json={"address": address}, wallet_auth=False)
    for _ in range(20):  # 5 test USDC for hobby
        client.request("POST", "/faucet/v1", json={"address": address}, wallet_auth=False)
    assert client.request("POST", "/tiers/v1/hobby", json={})["tier"] == "hobby"
    before = _balance(client, address)
    with pytest.raises(Exception) as info:
        client.request("POST", "/tiers/v1/prototype", json={})
    assert info.value.to_envelope()["code"] == "TIER_DOWNGRADE_NOT_ALLOWED"
    assert _balance(client, address) == before
