"""`run402 init [mpp] [--switch-rail] [--json]` (spec api-rest §14)."""

from __future__ import annotations

import json

import pytest

from run402_cli import config, wallet
from run402_cli.commands import init as init_cmd
from tests.commands._helpers import closed_port, files, mode, record, seed_allowance, usage_error


def _init_json(cli, *args):
    res = cli("init", *args, "--json")
    assert res.code == 0, res.stderr
    return json.loads(res.stdout), res.stderr


# --- success against the gateway -----------------------------------------------------------


def test_init_json_creates_funds_and_summarises(cli, api, isolated_config):
    summary, stderr = _init_json(cli)
    assert summary["config_dir"] == str(isolated_config)
    assert summary["rail"] == "x402"
    assert summary["network"] == "base-sepolia"
    assert summary["balance"] == {"symbol": "USDC", "usd_micros": 250000}
    assert summary["allowance"]["funded"] is True
    assert summary["tier"] is None
    assert summary["projects_saved"] == 0
    assert summary["next_step"] == "run402 tier set prototype"
    assert list(summary) == [
        "config_dir", "allowance", "rail", "network", "balance", "tier", "projects_saved", "next_step",
    ]
    # the human lines went to stderr
    assert "  Config     " in stderr and "0.25 USDC (funded)" in stderr
    assert "Next: run402 tier set prototype" in stderr

    path = isolated_config / "allowance.json"
    assert mode(path) == 0o600
    saved = json.loads(path.read_text())
    assert saved["rail"] == "x402" and saved["funded"] is True and "lastFaucet" in saved
    # init writes an EIP-55 address (viem), derived from the saved key
    assert saved["address"] == wallet.address_of(saved["privateKey"])
    assert saved["address"] != saved["address"].lower()
    assert summary["allowance"]["address"] == saved["address"]


def test_init_human_mode_prints_lines_on_stdout(cli, api):
    res = cli("init")
    assert res.code == 0, res.stderr
    assert res.stderr == ""
    lines = res.stdout.splitlines()
    assert lines[0] == ""
    labels = [ln.split()[0] for ln in lines if ln.startswith("  ") and ln.strip()]
    assert labels[:5] == ["Config", "Allowance", "Network", "Rail", "Balance"]
    assert any(ln.startswith("  Tier       (none)") for ln in lines)
    assert any(ln == "  Projects   0 saved" for ln in lines)
    assert "  Next: run402 tier set prototype" in lines
    with pytest.raises(ValueError):
        json.loads(res.stdout)


def test_init_is_idempotent_and_does_not_refaucet(cli, api, isolated_config):
    first, _ = _init_json(cli)
    before = (isolated_config / "allowance.json").read_bytes()
    second, stderr = _init_json(cli)
    assert second["allowance"]["address"] == first["allowance"]["address"]
    assert second["balance"]["usd_micros"] == 250000  # not 500000: no second faucet
    assert "0.25 USDC" in stderr and "requesting faucet" not in stderr
    assert (isolated_config / "allowance.json").read_bytes() == before


def test_init_after_tier_set_points_at_deploy(cli, api):
    _init_json(cli)
    assert cli("tier", "set", "prototype").code == 0
    summary, stderr = _init_json(cli)
    assert summary["tier"]["name"] == "prototype"
    assert summary["tier"]["expires"]
    assert summary["next_step"] == "run402 deploy apply --manifest app.json"
    assert "Ready to deploy. Run: run402 deploy apply --manifest app.json" in stderr
    assert "prototype (expires " in stderr


def test_init_counts_saved_projects(cli, api):
    _init_json(cli)
    assert cli("tier", "set", "prototype").code == 0
    assert cli("projects", "provision").code == 0
    summary, stderr = _init_json(cli)
    assert summary["projects_saved"] == 1
    assert "  Projects   1 saved" in stderr


def test_init_mpp_does_not_fake_a_balance(cli, api, isolated_config):
    summary, stderr = _init_json(cli, "mpp")
    assert summary["rail"] == "mpp"
    assert summary["network"] == "tempo-moderato"
    assert summary["balance"] == {"symbol": "pathUSD", "usd_micros": None}
    assert summary["note"]
    assert summary["allowance"]["funded"] is False  # no faucet on a chain we cannot reach
    assert json.loads((isolated_config / "allowance.json").read_text())["rail"] == "mpp"
    assert "Tempo Moderato (testnet)" in stderr
    # and the x402 faucet was not used either
    bal = json.loads(cli("allowance", "balance").stdout)
    assert bal["onchain"]["base-sepolia_usd_micros"] == 0


def test_init_switch_rail_updates_the_rail_and_says_so(cli, api, isolated_config):
    _init_json(cli)
    summary, stderr = _init_json(cli, "mpp", "--switch-rail")
    assert summary["rail"] == "mpp"
    assert "Switched from x402" in stderr
    assert json.loads((isolated_config / "allowance.json").read_text())["rail"] == "mpp"


def test_faucet_sent_but_not_confirmed(cli, api, monkeypatch, isolated_config):
    # The API answers (faucet works) but the chain RPC is unreachable: never confirmed.
    monkeypatch.setenv("RUN402_BASE_SEPOLIA_RPC_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setattr(init_cmd, "POLL_TIMEOUT_S", 0.0)
    monkeypatch.setattr(init_cmd, "POLL_INTERVAL_S", 0.0)
    summary, stderr = _init_json(cli)
    assert "faucet sent — not yet confirmed on-chain" in stderr
    assert summary["balance"]["usd_micros"] is None
    assert summary["allowance"]["funded"] is True  # saved even though unconfirmed (spec §4.4)


# --- failures that are tolerated -----------------------------------------------------------


def test_unreachable_api_still_exits_zero(cli, monkeypatch, isolated_config):
    port = closed_port()
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{port}")
    summary, stderr = _init_json(cli)
    assert "faucet failed: " in stderr
    assert summary["balance"]["usd_micros"] is None
    assert summary["allowance"]["funded"] is False
    assert summary["tier"] is None
    assert (isolated_config / "allowance.json").exists()


# --- bad input: exit 1, one line, nothing changed ------------------------------------------


def test_rail_switch_requires_confirm(cli, isolated_config):
    seed_allowance(rail="x402")
    before = files(isolated_config)
    res = cli("init", "mpp", "--json")
    env = usage_error(res, "RAIL_SWITCH_REQUIRES_CONFIRM")
    assert set(env) == {"status", "code", "message", "details"}  # a raw envelope, as in Node
    assert env["details"] == {"current_rail": "x402", "requested_rail": "mpp"}
    assert files(isolated_config) == before


def test_rail_switch_back_to_x402_also_requires_confirm(cli, isolated_config):
    seed_allowance(rail="mpp")
    before = files(isolated_config)
    env = usage_error(cli("init"), "RAIL_SWITCH_REQUIRES_CONFIRM")
    assert env["details"] == {"current_rail": "mpp", "requested_rail": "x402"}
    assert files(isolated_config) == before


@pytest.mark.parametrize(
    "args,code",
    [
        (["init", "bogus"], "BAD_USAGE"),
        (["init", "mpp", "extra"], "BAD_USAGE"),
        (["init", "--jsn"], "UNKNOWN_FLAG"),
        (["init", "--switch"], "UNKNOWN_FLAG"),
        (["init", "--json=yes"], "BAD_FLAG"),
    ],
)
def test_bad_input(cli, isolated_config, args, code):
    seed_allowance(rail="x402")
    before = files(isolated_config)
    usage_error(cli(*args), code)
    assert files(isolated_config) == before


def test_unknown_flag_suggests_the_closest(cli):
    env = usage_error(cli("init", "--jsn"), "UNKNOWN_FLAG")
    assert env["details"]["closest"][0] == "--json"


def test_bad_api_base_changes_nothing(cli, monkeypatch, isolated_config):
    monkeypatch.setenv("RUN402_API_BASE", "not a url")
    usage_error(cli("init", "--json"), "BAD_ENV")
    assert files(isolated_config) == {}
    assert not isolated_config.exists()


def test_bad_allowance_file(cli, isolated_config):
    isolated_config.mkdir(parents=True)
    (isolated_config / "allowance.json").write_text('{"address": "nope"}')
    before = files(isolated_config)
    env = usage_error(cli("init"), "BAD_ALLOWANCE_FILE")
    assert env["details"]["path"].endswith("allowance.json")
    assert files(isolated_config) == before


# --- parse only ------------------------------------------------------------------------------


def test_parse_defaults(cli, monkeypatch):
    calls = record(monkeypatch, init_cmd, "run_init")
    assert cli("init").code == 0
    assert calls == [init_cmd.InitOptions(rail="x402", switch_rail=False, json=False,
                                          poll_interval=1.0, poll_timeout=30.0)]


def test_parse_all_flags(cli, monkeypatch):
    calls = record(monkeypatch, init_cmd, "run_init")
    monkeypatch.setattr(init_cmd, "POLL_TIMEOUT_S", 5.0)
    assert cli("init", "mpp", "--switch-rail", "--json").code == 0
    opts = calls[0]
    assert (opts.rail, opts.switch_rail, opts.json, opts.poll_timeout) == ("mpp", True, True, 5.0)


def test_parse_explicit_x402(cli, monkeypatch):
    calls = record(monkeypatch, init_cmd, "run_init")
    assert cli("init", "x402").code == 0
    assert calls[0].rail == "x402"


def test_help_touches_nothing(cli, isolated_config):
    res = cli("init", "--help")
    assert res.code == 0 and "\nExamples:\n  run402 init" in res.stdout
    assert not isolated_config.exists()


def test_allowance_written_by_init_is_readable_by_config(cli, api):
    summary, _ = _init_json(cli)
    a = config.Settings().allowance()
    assert a is not None and a.address == summary["allowance"]["address"] and a.rail == "x402"
