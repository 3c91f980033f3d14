"""x402 v2 client (`X402Auth`, spec api-core §3.2) against the gateway's own verifier."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import httpx
import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import keccak

from run402_cli import payments, wallet
from run402_cli.errors import PaymentError
from run402_cli.local.control import x402
from run402_cli.local.control.siwx import verify_siwx

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
PAYER = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
PAY_TO = "0x00000000000000000000000000000000000a4020"
NOW = 1_736_000_000.0
BASE = "http://127.0.0.1:4020"
REQ = x402.requirement(amount_micros=100_000, pay_to=PAY_TO)


def _required(accepts=None, **kw) -> dict:
    return x402.payment_required(
        accepts=accepts if accepts is not None else [REQ],
        resource_url=BASE + "/tiers/v1/prototype", description="Prototype tier", **kw,
    )


def _client(responses, auth) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose transport answers with `responses` in order and records each request."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    # mock: hosted-only (stands in for the hosted API; the local gateway has real tests)
    return httpx.Client(transport=httpx.MockTransport(handler), auth=auth, base_url=BASE), seen


def _402(pr: dict | None = None, raw: str | None = None) -> httpx.Response:
    headers = {}
    if pr is not None:
        headers["PAYMENT-REQUIRED"] = x402.payment_required_header(pr)
    if raw is not None:
        headers["PAYMENT-REQUIRED"] = raw
    return httpx.Response(402, headers=headers, json={"message": "Payment required"})


class SiwxAuth(httpx.Auth):
    """What the API client's SIWX auth does: a fresh header per request, never overwriting."""

    def auth_flow(self, request):
        if "sign-in-with-x" not in request.headers:
            request.headers["SIGN-IN-WITH-X"] = wallet.siwx_header(
                private_key=KEY, api_base=BASE, path=request.url.raw_path.decode()
            )
        yield request


# --- the retry flow --------------------------------------------------------------------


def test_402_is_paid_and_resent_once_with_a_verifiable_signature():
    client, seen = _client(
        [_402(_required()), httpx.Response(200, json={"ok": True})], payments.X402Auth(KEY, now=lambda: NOW)
    )
    response = client.post("/tiers/v1/prototype", json={"a": 1})
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert len(seen) == 2
    first, second = seen
    assert "payment-signature" not in first.headers
    assert second.content == first.content == b'{"a":1}'
    assert second.method == "POST" and second.url == first.url
    assert second.headers["access-control-expose-headers"] == "PAYMENT-RESPONSE,X-PAYMENT-RESPONSE"
    verified = x402.verify_payment(second.headers["payment-signature"], requirement=REQ, now=NOW)
    assert verified.payer == PAYER.lower()
    assert verified.pay_to == PAY_TO.lower()
    assert verified.amount_micros == 100_000
    assert verified.network == "eip155:84532"
    assert verified.valid_before == int(NOW) + 300
    assert verified.nonce.startswith("0x") and len(verified.nonce) == 66


def test_payment_payload_wire_shape():
    pr = _required()
    pr["extensions"] = {"sign-in-with-x": {"info": {}}}
    client, seen = _client([_402(pr), httpx.Response(200)], payments.X402Auth(KEY, now=lambda: NOW))
    client.get("/x")
    sent = json.loads(base64.b64decode(seen[1].headers["payment-signature"], validate=True))
    assert list(sent) == ["x402Version", "payload", "extensions", "resource", "accepted"]
    assert sent["x402Version"] == 2
    assert sent["accepted"] == REQ
    assert sent["resource"] == pr["resource"]
    assert sent["extensions"] == pr["extensions"]
    auth = sent["payload"]["authorization"]
    assert list(auth) == ["from", "to", "value", "validAfter", "validBefore", "nonce"]
    assert auth == {
        "from": PAYER, "to": "0x00000000000000000000000000000000000A4020", "value": "100000",
        "validAfter": str(int(NOW) - 600), "validBefore": str(int(NOW) + 300), "nonce": auth["nonce"],
    }
    assert len(sent["payload"]["signature"]) == 132


def test_retry_carries_a_fresh_siwx_header():
    client, seen = _client(
        [_402(_required()), httpx.Response(200)],
        payments.X402Auth(KEY, inner=SiwxAuth(), now=lambda: NOW),
    )
    client.get("/tiers/v1/status")
    first, second = (r.headers["sign-in-with-x"] for r in seen)
    host, origin = "127.0.0.1:4020", BASE
    now = datetime.now(timezone.utc)
    a = verify_siwx(first, host=host, origin=origin, path="/tiers/v1/status", now=now)
    b = verify_siwx(second, host=host, origin=origin, path="/tiers/v1/status", now=now)
    assert a.nonce != b.nonce and a.address == b.address == PAYER.lower()


def test_caller_set_siwx_is_kept_on_retry():
    client, seen = _client(
        [_402(_required()), httpx.Response(200)], payments.X402Auth(KEY, inner=SiwxAuth(), now=lambda: NOW)
    )
    client.get("/x", headers={"SIGN-IN-WITH-X": "explicit"})
    assert [r.headers["sign-in-with-x"] for r in seen] == ["explicit", "explicit"]


def test_non_402_is_returned_after_one_request():
    client, seen = _client([httpx.Response(201, json={})], payments.X402Auth(KEY))
    assert client.get("/x").status_code == 201 and len(seen) == 1


def test_402_without_header_is_returned_unchanged():
    client, seen = _client([_402()], payments.X402Auth(KEY))
    response = client.get("/x")
    assert response.status_code == 402 and response.json() == {"message": "Payment required"}
    assert len(seen) == 1


def test_402_when_payment_already_attached_is_not_paid_again():
    client, seen = _client([_402(_required())], payments.X402Auth(KEY))
    assert client.get("/x", headers={"X-PAYMENT": "abc"}).status_code == 402
    assert len(seen) == 1


def test_second_402_is_returned_to_the_caller():
    client, seen = _client([_402(_required()), _402(_required(error="insufficient_funds"))],
                           payments.X402Auth(KEY, now=lambda: NOW))
    assert client.get("/x").status_code == 402 and len(seen) == 2


@pytest.mark.parametrize(
    "raw",
    ["%%% not base64 %%%", base64.b64encode(b"not json").decode(), base64.b64encode(b"[1]").decode(),
     payments.encode_header({"x402Version": 1, "accepts": []})],
    ids=["not-base64", "not-json", "not-object", "v1"],
)
def test_unparseable_requirements_raise_payment_error(raw):
    client, seen = _client([_402(raw=raw)], payments.X402Auth(KEY))
    with pytest.raises(PaymentError) as info:
        client.get("/x")
    assert info.value.message.startswith("Failed to parse payment requirements")
    assert info.value.code == "PAYMENT_ERROR" and len(seen) == 1


def test_no_payable_option_raises_payment_error():
    solana = {**REQ, "network": "solana:devnet"}
    permit2 = {**REQ, "extra": {"name": "USDC", "version": "2", "assetTransferMethod": "permit2"}}
    client, _ = _client([_402(_required(accepts=[solana, permit2]))], payments.X402Auth(KEY))
    with pytest.raises(PaymentError) as info:
        client.get("/x")
    assert info.value.message == "No payment option this client can pay"
    assert info.value.details["accepts"] == [
        {"scheme": "exact", "network": "solana:devnet"}, {"scheme": "exact", "network": "eip155:84532"},
    ]


def test_first_payable_option_is_chosen():
    mainnet = x402.requirement(amount_micros=5, pay_to=PAY_TO, network="eip155:8453")
    other = {**REQ, "scheme": "upto"}
    client, seen = _client([_402(_required(accepts=[other, mainnet, REQ])), httpx.Response(200)],
                           payments.X402Auth(KEY, now=lambda: NOW))
    client.get("/x")
    verified = x402.verify_payment(seen[1].headers["payment-signature"], requirement=mainnet, now=NOW)
    assert verified.network == "eip155:8453" and verified.amount_micros == 5


def test_async_client_works_too():
    import asyncio

    queue = [_402(_required()), httpx.Response(200)]

    async def run() -> int:
        # mock: hosted-only
        transport = httpx.MockTransport(lambda request: queue.pop(0))
        async with httpx.AsyncClient(transport=transport, auth=payments.X402Auth(KEY, now=lambda: NOW)) as c:
            return (await c.post(BASE + "/x", content=b"body")).status_code

    assert asyncio.run(run()) == 200


# --- EIP-712 digest, independently computed ---------------------------------------------


def test_typed_data_digest_matches_a_hand_rolled_eip712_hash():
    payload = payments.sign_payment(KEY, REQ, None, now=NOW)
    auth, sig = payload["payload"]["authorization"], payload["payload"]["signature"]
    domain_type = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
    transfer_type = (b"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,"
                     b"uint256 validBefore,bytes32 nonce)")
    domain_sep = keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "uint256", "address"],
        [keccak(domain_type), keccak(b"USDC"), keccak(b"2"), 84532, x402.USDC_BASE_SEPOLIA],
    ))
    struct = keccak(abi_encode(
        ["bytes32", "address", "address", "uint256", "uint256", "uint256", "bytes32"],
        [keccak(transfer_type), auth["from"], auth["to"], int(auth["value"]), int(auth["validAfter"]),
         int(auth["validBefore"]), bytes.fromhex(auth["nonce"][2:])],
    ))
    digest = keccak(b"\x19\x01" + domain_sep + struct)
    assert Account._recover_hash(digest, signature=sig) == PAYER
    assert "extensions" not in payload and "resource" not in payload


# --- verify_payment refusals -----------------------------------------------------------


def _signed(requirement=REQ, now=NOW) -> dict:
    return payments.sign_payment(KEY, requirement, {"url": BASE}, now=now)


def _check(payment: dict, now: float = NOW):
    return x402.verify_payment(payments.encode_header(payment), requirement=REQ, now=now)


def _refused(payment: dict, now: float = NOW) -> str:
    with pytest.raises(x402.PaymentInvalid) as info:
        _check(payment, now)
    return info.value.code


def test_verify_accepts_value_above_amount_and_x_payment_style_values():
    cheap = x402.requirement(amount_micros=1, pay_to=PAY_TO)
    verified = x402.verify_payment(payments.encode_header(_signed()), requirement=cheap, now=NOW)
    assert verified.amount_micros == 100_000


def test_verify_refuses_wrong_payee():
    other = x402.requirement(amount_micros=100_000, pay_to="0x" + "22" * 20)
    assert _refused(_signed(requirement=other)) == "PAYMENT_WRONG_PAYEE"


def test_verify_refuses_too_little_value():
    cheap = x402.requirement(amount_micros=99_999, pay_to=PAY_TO)
    assert _refused(_signed(requirement=cheap)) == "PAYMENT_AMOUNT_TOO_LOW"


def test_verify_refuses_outside_the_time_window():
    assert _refused(_signed(), now=NOW + 300) == "PAYMENT_EXPIRED"
    assert _refused(_signed(), now=NOW - 601) == "PAYMENT_NOT_YET_VALID"
    assert _check(_signed(), now=NOW + 299).amount_micros == 100_000


def test_verify_refuses_tampered_signature_and_tampered_fields():
    payment = _signed()
    sig = payment["payload"]["signature"]
    payment["payload"]["signature"] = sig[:20] + ("a" if sig[20] != "a" else "b") + sig[21:]
    assert _refused(payment) == "PAYMENT_INVALID_SIGNATURE"

    raised = _signed()
    raised["payload"]["authorization"]["value"] = "100000000"  # signed for 0.10, claims 100
    assert _refused(raised) == "PAYMENT_INVALID_SIGNATURE"

    impostor = _signed()
    impostor["payload"]["authorization"]["from"] = "0x" + "33" * 20
    assert _refused(impostor) == "PAYMENT_INVALID_SIGNATURE"


def test_verify_refuses_wrong_network_and_malformed():
    mainnet = x402.requirement(amount_micros=100_000, pay_to=PAY_TO, network="eip155:8453")
    assert _refused(_signed(requirement=mainnet)) == "PAYMENT_WRONG_NETWORK"

    v1 = _signed()
    v1["x402Version"] = 1
    assert _refused(v1) == "PAYMENT_MALFORMED"

    short_nonce = _signed()
    short_nonce["payload"]["authorization"]["nonce"] = "0x1234"
    assert _refused(short_nonce) == "PAYMENT_MALFORMED"

    with pytest.raises(x402.PaymentInvalid) as info:
        x402.verify_payment("garbage!!", requirement=REQ, now=NOW)
    assert info.value.code == "PAYMENT_MALFORMED"


# --- gateway-side builders ---------------------------------------------------------------


def test_requirement_and_payment_required_shapes():
    assert REQ == {
        "scheme": "exact", "network": "eip155:84532", "asset": x402.USDC_BASE_SEPOLIA, "amount": "100000",
        "payTo": PAY_TO, "maxTimeoutSeconds": 300, "extra": {"name": "USDC", "version": "2"},
    }
    assert x402.requirement(amount_micros=1, pay_to=PAY_TO, network="eip155:8453")["asset"] == x402.USDC_BASE
    pr = _required(error="payment_required")
    assert list(pr) == ["x402Version", "error", "resource", "accepts"]
    assert payments.decode_header(x402.payment_required_header(pr)) == pr
    header = x402.payment_required_header(pr)
    assert base64.b64encode(base64.b64decode(header, validate=True)).decode() == header  # standard, padded
