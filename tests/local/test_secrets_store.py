"""local/secrets/store.py without a server: AES-256-GCM with the row's (project, key) as
associated data, the `v1:` format, and the installation key in gateway.secret.json."""

from __future__ import annotations

import base64
import json

import pytest

from run402_cli.local.runtime.layout import LocalLayout
from run402_cli.local.secrets import store

KEY = bytes(range(32))


def test_round_trip_and_format():
    sealed = store.encrypt(KEY, "prj_1_1", "API_KEY", "sk-é\r\n")
    assert sealed.startswith("v1:")
    raw = base64.b64decode(sealed[3:])
    assert len(raw) == 12 + len("sk-é\r\n".encode()) + 16  # nonce || ciphertext || tag
    assert store.decrypt(KEY, "prj_1_1", "API_KEY", sealed) == "sk-é\r\n"
    assert store.encrypt(KEY, "prj_1_1", "API_KEY", "same") != store.encrypt(KEY, "prj_1_1", "API_KEY", "same")
    assert store.decrypt(KEY, "prj_1_1", "EMPTY", store.encrypt(KEY, "prj_1_1", "EMPTY", "")) == ""


@pytest.mark.parametrize("project_id, name, key", [
    ("prj_1_2", "API_KEY", KEY),  # another project
    ("prj_1_1", "OTHER", KEY),  # another key
    ("prj_1_1API", "_KEY", KEY),  # the same bytes split differently: the separator tells them apart
    ("prj_1_1", "API_KEY", bytes(32)),  # another installation
])
def test_a_ciphertext_only_opens_for_its_own_row_and_installation(project_id, name, key):
    sealed = store.encrypt(KEY, "prj_1_1", "API_KEY", "s3cr3t-plain")
    with pytest.raises(store.SecretUnreadable) as info:
        store.decrypt(key, project_id, name, sealed)
    assert "s3cr3t" not in str(info.value)


@pytest.mark.parametrize("stored", [None, "", "plaintext", "v1:", "v1:!!!", "v2:" + "A" * 40,
                                    "v1:" + base64.b64encode(b"x" * 40).decode()])
def test_anything_else_is_unreadable(stored):
    with pytest.raises(store.SecretUnreadable):
        store.decrypt(KEY, "prj_1_1", "K", stored)


def test_a_flipped_bit_is_caught():
    raw = bytearray(base64.b64decode(store.encrypt(KEY, "prj_1_1", "K", "value")[3:]))
    raw[14] ^= 1
    with pytest.raises(store.SecretUnreadable):
        store.decrypt(KEY, "prj_1_1", "K", "v1:" + base64.b64encode(bytes(raw)).decode())


def test_the_key_must_be_32_bytes():
    for bad in (b"", b"short", bytes(31), "0" * 64):
        with pytest.raises(RuntimeError):
            store.encrypt(bad, "prj_1_1", "K", "v")  # type: ignore[arg-type]


def test_installation_key_new_and_derived(tmp_path):
    fresh = LocalLayout(tmp_path / "new").secrets()
    assert len(bytes.fromhex(fresh["secrets_key"])) == 32
    assert fresh["secrets_key"] != fresh["upload_url_secret"]
    assert json.loads((tmp_path / "new" / "gateway.secret.json").read_text())["secrets_key"] == fresh["secrets_key"]
    # a file from before the key existed: derived, stable, its own label, the file not rewritten
    old_layout = LocalLayout(tmp_path / "old")
    old_layout.root.mkdir()
    old = {"postgrest_jwt_secret": "j" * 48, "authenticator_password": "p", "treasury_key": "0x" + "1" * 64,
           "upload_url_secret": "u" * 64}
    old_layout.secrets_file.write_text(json.dumps(old))
    first, second = old_layout.secrets(), old_layout.secrets()
    assert first["secrets_key"] == second["secrets_key"] and len(bytes.fromhex(first["secrets_key"])) == 32
    assert first["upload_url_secret"] == "u" * 64
    assert json.loads(old_layout.secrets_file.read_text()) == old
    older = LocalLayout(tmp_path / "older")
    older.root.mkdir()
    older.secrets_file.write_text(json.dumps({k: v for k, v in old.items() if k != "upload_url_secret"}))
    both = older.secrets()
    assert both["secrets_key"] == first["secrets_key"] != both["upload_url_secret"]


def test_tier_limits_live_with_the_other_tier_limits():
    from run402_cli.local.control.tiers import TIERS

    assert {t: TIERS[t]["max_secrets"] for t in TIERS} == {"prototype": 10, "hobby": 50, "team": 200}
    assert store.max_secrets("team") == 200
