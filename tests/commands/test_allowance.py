"""`run402 allowance create|status|fund|balance|export`."""

from __future__ import annotations

import json

import pytest

from run402_cli.commands import allowance as allowance_cmd
from tests.commands._helpers import (
    closed_port, files, mode, ok, ready, record, seed_allowance, usage_error,
)

# --- create --------------------------------------------------------------------------------


def test_create(cli, isolated_config):
    res = cli("allowance", "create")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout.count("\n") == 1  # compact
    body = json.loads(res.stdout)
    path = isolated_config / "allowance.json"
    assert body == {
        "status": "ok",
        "address": body["address"],
        "message": f"Agent allowance created. Stored locally at {path}",
    }
    saved = json.loads(path.read_text())
    assert set(saved) == {"address", "privateKey", "created", "funded"}  # no rail
    assert saved["address"] == body["address"] == body["address"].lower()  # SDK create: lowercase
    assert saved["funded"] is False
    assert mode(path) == 0o600
    assert saved["privateKey"] not in res.stdout
    assert path.read_text().startswith('{\n  "address"')  # 2-space pretty, like Node


def test_create_refuses_to_overwrite(cli, isolated_config):
    seed_allowance()
    before = files(isolated_config)
    env = usage_error(cli("allowance", "create"), "ALLOWANCE_EXISTS")
    assert env["hint"]
    assert files(isolated_config) == before


def test_create_never_overwrites_an_unreadable_file(cli, isolated_config):
    isolated_config.mkdir(parents=True)
    (isolated_config / "allowance.json").write_text("not json {")
    before = files(isolated_config)
    usage_error(cli("allowance", "create"), "ALLOWANCE_EXISTS")
    assert files(isolated_config) == before


def test_create_with_wrong_shape_file(cli, isolated_config):
    isolated_config.mkdir(parents=True)
    (isolated_config / "allowance.json").write_text('{"address": "0x1", "privateKey": "0x2"}')
    before = files(isolated_config)
    usage_error(cli("allowance", "create"), "BAD_ALLOWANCE_FILE")
    assert files(isolated_config) == before


def test_create_migrates_legacy_wallet_json_instead_of_replacing_it(cli, isolated_config):
    data = seed_allowance()
    (isolated_config / "allowance.json").rename(isolated_config / "wallet.json")
    usage_error(cli("allowance", "create"), "ALLOWANCE_EXISTS")
    assert json.loads((isolated_config / "allowance.json").read_text()) == data


def test_create_honours_allowance_path(cli, monkeypatch, tmp_path):
    target = tmp_path / "elsewhere" / "a.json"
    monkeypatch.setenv("RUN402_ALLOWANCE_PATH", str(target))
    body = json.loads(cli("allowance", "create").stdout)
    assert json.loads(target.read_text())["address"] == body["address"]
    assert mode(target) == 0o600


# --- status / export -------------------------------------------------------------------------


def test_status_without_allowance_is_informational(cli, isolated_config):
    res = cli("allowance", "status")
    assert res.code == 1 and res.stderr == ""
    body = json.loads(res.stdout)
    assert body["status"] == "no_wallet" and body["message"]
    assert res.stdout.count("\n") == 1
    assert files(isolated_config) == {}


def test_status(cli, isolated_config):
    data = seed_allowance(rail="mpp", funded=True)
    res = cli("allowance", "status")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout.count("\n") == 1  # compact
    assert json.loads(res.stdout) == {
        "status": "ok",
        "address": data["address"],
        "created": data["created"],
        "configured": True,
        "faucet_used": True,
        "rail": "mpp",
        "path": str(isolated_config / "allowance.json"),
    }


def test_status_defaults_rail_to_x402(cli):
    seed_allowance()
    assert json.loads(cli("allowance", "status").stdout)["rail"] == "x402"


def test_export_prints_the_bare_address(cli):
    data = seed_allowance()
    res = cli("allowance", "export")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == data["address"] + "\n"


@pytest.mark.parametrize("verb", ["export", "fund", "balance"])
def test_no_allowance(cli, isolated_config, verb):
    env = usage_error(cli("allowance", verb), "NO_ALLOWANCE")
    assert env["hint"] == "Run: run402 allowance create"
    assert files(isolated_config) == {}


# --- fund / balance against the gateway ----------------------------------------------------


def test_fund(cli, api, isolated_config):
    data = seed_allowance()
    body = ok(cli("allowance", "fund"))
    assert body == {
        "address": data["address"],
        "rail": "x402",
        "onchain": {"base-sepolia_usd_micros": 250000},
    }
    saved = json.loads((isolated_config / "allowance.json").read_text())
    assert saved["funded"] is True and saved["lastFaucet"]
    assert saved["privateKey"] == data["privateKey"]
    assert mode(isolated_config / "allowance.json") == 0o600


def test_fund_twice_waits_for_a_higher_balance(cli, api):
    seed_allowance()
    ok(cli("allowance", "fund"))
    body = ok(cli("allowance", "fund"))
    assert body["onchain"]["base-sepolia_usd_micros"] == 500000


def test_fund_unconfirmed(cli, api, monkeypatch, isolated_config):
    monkeypatch.setenv("RUN402_BASE_SEPOLIA_RPC_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(allowance_cmd, "POLL_TIMEOUT_S", 0.0)
    monkeypatch.setattr(allowance_cmd, "POLL_INTERVAL_S", 0.0)
    seed_allowance()
    body = ok(cli("allowance", "fund"))
    assert body["status"] == "ok"
    assert body["message"] == "Faucet request sent but balance not yet confirmed"
    assert body["amount"] == "0.25"
    assert body["amountUsdMicros"] == 250000
    assert body["token"] == "USDC"
    assert "transactionHash" in body and "network" in body
    assert json.loads((isolated_config / "allowance.json").read_text())["funded"] is True


def test_fund_mpp_is_refused_without_changes(cli, isolated_config):
    seed_allowance(rail="mpp")
    before = files(isolated_config)
    env = usage_error(cli("allowance", "fund"), "FAUCET_FAILED")
    assert env["details"] == {"rail": "mpp"}
    assert files(isolated_config) == before


def test_fund_faucet_failure_changes_nothing(cli, monkeypatch, isolated_config):
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_allowance()
    before = files(isolated_config)
    usage_error(cli("allowance", "fund"), "NETWORK_ERROR")
    assert files(isolated_config) == before


def test_balance_after_init(cli, api):
    summary = json.loads(cli("init", "--json").stdout)
    body = ok(cli("allowance", "balance"))
    assert body == {
        "address": summary["allowance"]["address"],
        "rail": "x402",
        "onchain": {
            "base-mainnet_usd_micros": 0,
            "base-sepolia_usd_micros": 250000,
            "tempo-moderato_pathusd_micros": None,
        },
        "run402": {"balance_usd_micros": 250000},
    }


def test_balance_of_an_unknown_wallet(cli, api):
    seed_allowance()
    body = ok(cli("allowance", "balance"))
    assert body["run402"] == "no billing account"
    assert body["onchain"]["base-sepolia_usd_micros"] == 0


def test_balance_tolerates_unreachable_chain_and_api(cli, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_allowance()
    body = ok(cli("allowance", "balance"))
    assert body["onchain"] == {
        "base-mainnet_usd_micros": None,
        "base-sepolia_usd_micros": None,
        "tempo-moderato_pathusd_micros": None,
    }
    assert body["run402"] == "no billing account"


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["create", "status", "fund", "balance", "export"])
def test_unknown_flag(cli, isolated_config, verb):
    seed_allowance()
    before = files(isolated_config)
    env = usage_error(cli("allowance", verb, "--forse"), "UNKNOWN_FLAG")
    assert env["details"]["flag"] == "--forse"
    assert files(isolated_config) == before


@pytest.mark.parametrize("verb", ["create", "status", "fund", "balance", "export"])
def test_extra_argument(cli, isolated_config, verb):
    seed_allowance()
    before = files(isolated_config)
    usage_error(cli("allowance", verb, "extra"), "BAD_USAGE")
    assert files(isolated_config) == before


@pytest.mark.parametrize("verb", ["fund", "balance"])
def test_bad_api_base(cli, monkeypatch, isolated_config, verb):
    seed_allowance()
    before = files(isolated_config)
    monkeypatch.setenv("RUN402_API_BASE", "ftp://x")
    usage_error(cli("allowance", verb), "BAD_ENV")
    assert files(isolated_config) == before


def test_unknown_subcommand(cli):
    usage_error(cli("allowance", "fnud"), "BAD_USAGE")


# --- parse only ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "verb,fn,cls",
    [
        ("create", "run_create", "CreateOptions"),
        ("status", "run_status", "StatusOptions"),
        ("balance", "run_balance", "BalanceOptions"),
        ("export", "run_export", "ExportOptions"),
    ],
)
def test_parse_only(cli, monkeypatch, verb, fn, cls):
    calls = record(monkeypatch, allowance_cmd, fn)
    assert cli("allowance", verb).code == 0
    assert calls == [getattr(allowance_cmd, cls)()]


def test_parse_fund_takes_the_poll_settings(cli, monkeypatch):
    calls = record(monkeypatch, allowance_cmd, "run_fund")
    monkeypatch.setattr(allowance_cmd, "POLL_INTERVAL_S", 0.25)
    assert cli("allowance", "fund").code == 0
    assert calls == [allowance_cmd.FundOptions(poll_interval=0.25, poll_timeout=30.0)]


# --- the private key never leaves allowance.json ---------------------------------------------


def test_no_command_ever_prints_the_private_key(cli, api, isolated_config):
    runs = [cli("init", "--json"), cli("init")]
    key = json.loads((isolated_config / "allowance.json").read_text())["privateKey"]
    runs += [
        cli("tier", "set", "prototype"),
        cli("tier", "status"),
        cli("projects", "provision", "--name", "k"),
        cli("projects", "info"),
        cli("projects", "keys"),
        cli("projects", "list"),
        cli("projects", "sql", "select 1 as one"),
        cli("projects", "schema"),
        cli("projects", "usage"),
        cli("allowance", "status"),
        cli("allowance", "export"),
        cli("allowance", "balance"),
        cli("allowance", "fund"),
        cli("allowance", "create"),  # ALLOWANCE_EXISTS
        cli("status"),
        cli("init", "mpp"),  # RAIL_SWITCH_REQUIRES_CONFIRM
        cli("projects", "delete"),  # CONFIRMATION_REQUIRED
        cli("projects", "delete", "--confirm"),
    ]
    bare = key[2:].lower()
    for res in runs:
        for stream in (res.stdout, res.stderr):
            assert bare not in stream.lower()
    # Each run either succeeded or failed with the contract's one JSON error line.
    for res in runs:
        if res.code == 0:
            assert res.stdout.strip(), res  # `allowance export` prints the bare address, the rest JSON
        else:
            assert res.code == 1 and res.stdout == "" and res.error["status"] == "error"
    assert sum(r.code == 0 for r in runs) >= 17
