"""Wallet keys, the SIWX header (spec api-core §2.1), and the gateway's SIWX verifier."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address

from run402_cli import wallet
from run402_cli.local.control.siwx import SiwxClaims, SiwxError, verify_siwx

KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
NOW = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
NONCE = "0123456789abcdef0123456789abcdef"
BASE = "http://127.0.0.1:4020"
PATH = "/tiers/v1/status?limit=5"

EXPECTED_MESSAGE = (
    "127.0.0.1 wants you to sign in with your Ethereum account:\n"
    "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23\n"
    "\n"
    "Sign in to Run402\n"
    "\n"
    "URI: http://127.0.0.1:4020/tiers/v1/status?limit=5\n"
    "Version: 1\n"
    "Chain ID: 84532\n"
    "Nonce: 0123456789abcdef0123456789abcdef\n"
    "Issued At: 2025-01-02T03:04:05.678Z\n"
    "Expiration Time: 2025-01-02T03:09:05.678Z"
)


def _header(**overrides) -> str:
    args = dict(private_key=KEY, api_base=BASE, path=PATH, now=NOW, nonce=NONCE)
    args.update(overrides)
    return wallet.siwx_header(**args)


def _decode(header: str) -> dict:
    return json.loads(base64.b64decode(header, validate=True))


def _encode(payload: dict) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def _verify(header: str, now: datetime = NOW, host: str = "127.0.0.1:4020", path: str = PATH.split("?")[0]) -> SiwxClaims:
    return verify_siwx(header, host=host, origin=BASE, path=path, now=now)


# --- keys ------------------------------------------------------------------------------


def test_generate_private_key_shape_and_uniqueness():
    keys = {wallet.generate_private_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert key.startswith("0x") and len(key) == 66
        assert key[2:] == key[2:].lower()
        int(key, 16)


def test_address_of_is_checksummed_and_matches_eth_account():
    assert wallet.address_of(KEY) == ADDRESS
    key = wallet.generate_private_key()
    address = wallet.address_of(key)
    assert address == Account.from_key(key).address
    assert is_checksum_address(address)
    signed = Account.sign_message(encode_defunct(text="hi"), key)
    assert Account.recover_message(encode_defunct(text="hi"), signature=signed.signature) == address


def test_wallet_and_payments_do_not_import_eth_account_at_module_load():
    code = (
        "import sys, run402_cli.wallet, run402_cli.payments;"
        "bad = [m for m in ('eth_account', 'eth_utils', 'x402') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- building the header ---------------------------------------------------------------


def test_message_text_matches_spec_byte_for_byte():
    message = wallet.build_siwx_message(
        domain="127.0.0.1", address=ADDRESS, statement="Sign in to Run402",
        uri=BASE + PATH, version="1", chain_id_numeric=84532, nonce=NONCE,
        issued_at="2025-01-02T03:04:05.678Z", expiration_time="2025-01-02T03:09:05.678Z",
    )
    assert message == EXPECTED_MESSAGE
    assert not message.endswith("\n")


def test_message_resources_block_only_when_non_empty():
    common = dict(
        domain="api.run402.com", address=ADDRESS, statement="s", uri="https://api.run402.com/ci/v1/bindings",
        version="1", chain_id_numeric=84532, nonce=NONCE, issued_at="a", expiration_time="b",
    )
    assert "Resources" not in wallet.build_siwx_message(**common, resources=[])
    message = wallet.build_siwx_message(**common, resources=["run402-ci-delegation:v1?project_id=p", "x"])
    assert message.endswith("Expiration Time: b\nResources:\n- run402-ci-delegation:v1?project_id=p\n- x")


def test_header_has_exactly_the_spec_keys_and_values():
    payload = _decode(_header())
    assert list(payload) == [
        "domain", "address", "statement", "uri", "version", "chainId", "type", "nonce",
        "issuedAt", "expirationTime", "signature",
    ]
    assert payload["domain"] == "127.0.0.1"  # hostname, no port
    assert payload["address"] == ADDRESS
    assert payload["statement"] == "Sign in to Run402"
    assert payload["uri"] == "http://127.0.0.1:4020/tiers/v1/status?limit=5"
    assert payload["version"] == "1"
    assert payload["chainId"] == "eip155:84532"
    assert payload["type"] == "eip191"
    assert payload["nonce"] == NONCE
    assert payload["issuedAt"] == "2025-01-02T03:04:05.678Z"
    assert payload["expirationTime"] == "2025-01-02T03:09:05.678Z"
    sig = payload["signature"]
    assert sig.startswith("0x") and len(sig) == 132 and int(sig[-2:], 16) in (27, 28)


def test_header_signature_recovers_address_over_expected_message():
    payload = _decode(_header())
    signer = Account.recover_message(encode_defunct(text=EXPECTED_MESSAGE), signature=payload["signature"])
    assert signer == ADDRESS


def test_header_defaults_fresh_nonce_and_resources():
    a, b = _decode(_header(nonce=None)), _decode(_header(nonce=None))
    assert a["nonce"] != b["nonce"] and len(a["nonce"]) == 32 and int(a["nonce"], 16) >= 0
    with_res = _decode(_header(resources=["r1"]))
    assert with_res["resources"] == ["r1"] and list(with_res)[-1] == "resources"
    assert _verify(_header(resources=["r1"])).nonce == NONCE


def test_header_domain_for_hosted_base():
    payload = _decode(_header(api_base="https://API.run402.com", path="/tiers/v1/status"))
    assert payload["domain"] == "api.run402.com"
    assert payload["uri"] == "https://API.run402.com/tiers/v1/status"


def test_iso_millis_formatting():
    assert wallet.format_iso_millis(datetime(2025, 1, 1, tzinfo=timezone.utc)) == "2025-01-01T00:00:00.000Z"
    plus2 = timezone(timedelta(hours=2))
    assert wallet.format_iso_millis(datetime(2025, 1, 1, 2, 0, 0, 999999, tzinfo=plus2)) == "2025-01-01T00:00:00.999Z"


# --- verifying the header (gateway) ----------------------------------------------------


def test_verify_accepts_fresh_header():
    claims = _verify(_header())
    assert claims.address == ADDRESS.lower()
    assert claims.nonce == NONCE
    assert claims.issued_at == NOW
    assert claims.expiration_time == NOW + timedelta(minutes=5)
    # host without port and a few minutes later are both fine
    assert _verify(_header(), host="127.0.0.1", now=NOW + timedelta(minutes=4)).address == ADDRESS.lower()


def test_verify_binds_the_header_to_its_path_not_its_query():
    # the gateway compares decoded paths, as Starlette decodes the request's
    assert _verify(_header(path="/projects/v1/admin/prj_1/sql%20x?a=1"), path="/projects/v1/admin/prj_1/sql x")
    assert _verify(_header(path="/tiers/v1/status?limit=9"), path="/tiers/v1/status")
    assert _verify(_header(api_base=BASE, path=""), path="/")


def _tampered(mutate) -> str:
    payload = _decode(_header())
    mutate(payload)
    return _encode(payload)


def _flip_signature(p: dict) -> None:
    sig = p["signature"]
    p["signature"] = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]


@pytest.mark.parametrize(
    ("header_factory", "now", "reason"),
    [
        (lambda: _tampered(_flip_signature), NOW, "bad_signature"),
        (lambda: _tampered(lambda p: p.update(nonce="fedcba9876543210")), NOW, "bad_signature"),
        (lambda: _tampered(lambda p: p.update(address="0x" + "11" * 20)), NOW, "bad_signature"),
        (lambda: _header(), NOW + timedelta(minutes=6), "expired"),
        (lambda: _header(), NOW - timedelta(minutes=1), "issued_in_future"),
        (lambda: _tampered(lambda p: p.update(chainId=84532)), NOW, "bad_chain_id"),
        (lambda: _tampered(lambda p: p.update(chainId="84532")), NOW, "bad_chain_id"),
        (lambda: _tampered(lambda p: p.pop("statement")), NOW, "missing_field"),
        (lambda: _tampered(lambda p: p.update(type="eip1271")), NOW, "bad_type"),
        (lambda: _header(api_base="http://localhost:4020"), NOW, "domain_mismatch"),
        (lambda: _header(api_base="http://127.0.0.1:40201"), NOW, "uri_mismatch"),
        (lambda: _header(path="/projects/v1"), NOW, "uri_mismatch"),
        (lambda: _header(path="/tiers/v1/status/extra?limit=5"), NOW, "uri_mismatch"),
        (lambda: "!!! not base64 !!!", NOW, "malformed"),
        (lambda: base64.b64encode(b"[1,2]").decode(), NOW, "malformed"),
        (lambda: base64.b64encode(b"{}").decode(), NOW, "missing_field"),
    ],
    ids=[
        "tampered-signature", "tampered-nonce", "other-address", "expired", "future",
        "numeric-chainId", "non-caip-chainId", "missing-statement", "wrong-type",
        "domain-mismatch", "uri-mismatch", "other-path", "longer-path", "garbage-base64", "json-array", "empty-object",
    ],
)
def test_verify_refuses(header_factory, now, reason):
    with pytest.raises(SiwxError) as info:
        _verify(header_factory(), now=now)
    assert info.value.reason == reason


def test_verify_refuses_stale_issued_at_and_long_lifetime():
    old = _header(now=NOW - timedelta(minutes=6))

    def stretch(p: dict) -> None:  # resign a payload whose expiration is 1 h out
        p["expirationTime"] = "2025-01-02T04:04:05.678Z"
        msg = wallet.build_siwx_message(
            domain=p["domain"], address=p["address"], statement=p["statement"], uri=p["uri"],
            version="1", chain_id_numeric=84532, nonce=p["nonce"], issued_at=p["issuedAt"],
            expiration_time=p["expirationTime"],
        )
        p["signature"] = "0x" + bytes(Account.sign_message(encode_defunct(text=msg), KEY).signature).hex()

    with pytest.raises(SiwxError) as info:
        _verify(_tampered(stretch))
    assert info.value.reason == "lifetime_too_long"
    with pytest.raises(SiwxError):
        _verify(old)
    # a 6-minute-old header that somehow has not expired is still refused as too old
    with pytest.raises(SiwxError) as info:
        _verify(_tampered(stretch), now=NOW + timedelta(minutes=6))
    assert info.value.reason == "too_old"


def test_libsecp256k1_signer_matches_eth_account_byte_for_byte():
    """run402_cli.wire.eth (coincurve) signs everything; eth-account is the oracle it must match
    exactly: addresses, EIP-191 signatures and recovery, the EIP-712 TransferWithAuthorization
    digest and its signature."""
    import random
    import secrets as _secrets

    from eth_account import Account
    from eth_account.messages import encode_defunct

    from run402_cli.payments import transfer_typed_data
    from run402_cli.wire import eth

    rng = random.Random(402)
    for i in range(60):
        key = "0x" + _secrets.token_bytes(32).hex()
        text = f"message {i} \u00e9\u4e2d " + _secrets.token_hex(i)
        account = Account.from_key(key)
        assert eth.address_of(key) == account.address
        expected = "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()
        assert eth.personal_sign(text, key) == expected
        assert eth.recover_personal(text, expected) == account.address
        auth = {"from": account.address, "to": "0x" + _secrets.token_hex(20), "value": str(rng.randrange(10**15)),
                "validAfter": str(rng.randrange(2**40)), "validBefore": str(rng.randrange(2**40)),
                "nonce": "0x" + _secrets.token_hex(32)}
        typed = transfer_typed_data(auth, {"extra": {"name": "USDC", "version": "2"}, "network": "eip155:84532",
                                           "asset": "0x" + _secrets.token_hex(20)})
        oracle = Account.sign_typed_data(key, full_message=typed)
        digest = eth.transfer_digest(typed["domain"], typed["message"])
        assert digest == bytes(oracle.message_hash)
        assert eth.sign_digest(digest, key) == "0x" + bytes(oracle.signature).hex()


def test_recovery_refuses_malformed_and_high_s_signatures():
    from run402_cli.wire import eth

    key = "0x" + "42" * 32
    good = eth.personal_sign("hi", key)
    r, s, v = good[2:66], int(good[66:130], 16), good[130:]
    high_s = "0x" + r + format(eth._N - s, "064x") + ("1c" if v == "1b" else "1b")
    for bad in (good[:-2], good + "00", "0x" + "00" * 65, high_s, good[:-2] + "05", "zz" + good[2:]):
        with pytest.raises(ValueError):
            eth.recover_personal("hi", bad)
    assert eth.recover_personal("hi", good) == eth.address_of(key)
    assert eth.recover_personal("ho", good) != eth.address_of(key)


def test_signing_a_siwx_header_does_not_import_eth_account():
    import subprocess
    import sys

    code = ("import sys; from run402_cli.wallet import siwx_header, address_of; "
            "address_of('0x' + '11' * 32); siwx_header(private_key='0x' + '11' * 32, "
            "api_base='http://127.0.0.1:4020', path='/tiers/v1/status'); "
            "print('eth_account' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_keccak_loads_without_pycparser_and_leaves_cffi_importable():
    """pycryptodome through ctypes: no C declarations parsed at run time (~25 ms a process),
    and hiding cffi from that one import leaves it importable for everything else."""
    import subprocess
    import sys

    code = ("import sys; from run402_cli.wire.eth import keccak256; d = keccak256(b'abc').hex(); "
            "parsed = 'pycparser' in sys.modules; import cffi; "
            "print(d, parsed, sys.modules['Crypto.Util._raw_api'].backend)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45", "False", "ctypes"]


def test_the_gateway_verifies_without_eth_account():
    """The gateway's verifiers run on wire.eth too: eth-account (and py_ecc, which raises the
    recursion limit to 100,000) never enter the server process."""
    import subprocess
    import sys

    code = ("import sys; from run402_cli.wallet import siwx_header; import run402_cli.local.app; "
            "from run402_cli.local.control.siwx import verify_siwx; from urllib.parse import urlsplit; "
            "h = siwx_header(private_key='0x' + '11' * 32, api_base='http://127.0.0.1:4020', path='/x'); "
            "verify_siwx(h, host='127.0.0.1:4020', origin='http://127.0.0.1:4020', path='/x'); "
            "print('eth_account' in sys.modules, 'py_ecc' in sys.modules, sys.getrecursionlimit())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "1000"]
