"""`run402 status` (spec api-rest §11): a read-only account snapshot, tolerant of failures."""

from __future__ import annotations

import json

import pytest

from run402_cli.commands import status as status_cmd
from tests.commands._helpers import (
    closed_port, files, ok, ready, record, seed_allowance, seed_projects, usage_error,
)


def test_no_allowance_is_informational(cli, isolated_config):
    res = cli("status")
    assert res.code == 1
    assert res.stderr == ""
    assert res.stdout == '{"status":"no_allowance","message":"No agent allowance found. Run: run402 init"}\n'
    assert files(isolated_config) == {}


def test_snapshot_against_the_gateway(cli, api):
    summary = ready(cli)
    prov = json.loads(cli("projects", "provision", "--name", "snap").stdout)
    body = ok(cli("status"))
    assert list(body) == [
        "allowance", "rail", "tier", "billing", "wallet_balance_usd_micros", "projects",
        "active_project",
    ]
    assert body["allowance"] == {"address": summary["allowance"]["address"], "funded": True}
    assert body["rail"] == "x402"
    assert body["tier"]["name"] == "prototype" and body["tier"]["expires"]
    assert body["billing"]["available_usd_micros"] == 150000  # 0.25 faucet - 0.10 prototype
    assert body["wallet_balance_usd_micros"] == 150000  # Base Sepolia + Base mainnet
    assert [p["project_id"] for p in body["projects"]] == [prov["project_id"]]
    assert body["projects"][0]["name"] == "snap"
    assert "id" not in body["projects"][0]
    assert body["active_project"] == prov["project_id"]


def test_fresh_wallet_on_the_gateway(cli, api):
    data = seed_allowance()
    body = ok(cli("status"))
    assert body["allowance"] == {"address": data["address"], "funded": False}
    assert body["tier"] is None
    assert body["projects"] == []
    assert body["active_project"] is None


def test_every_network_failure_is_tolerated(cli, monkeypatch, isolated_config):
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_allowance(rail="x402")
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_2")
    before = files(isolated_config)
    body = ok(cli("status"))
    assert body["tier"] is None
    assert body["billing"] is None
    assert body["wallet_balance_usd_micros"] is None
    assert body["projects"] == [{"project_id": "prj_1_1"}, {"project_id": "prj_1_2"}]
    assert body["active_project"] == "prj_1_2"
    assert files(isolated_config) == before  # read-only


def test_mpp_rail_has_no_wallet_balance(cli, api):
    seed_allowance(rail="mpp")
    body = ok(cli("status"))
    assert body["rail"] == "mpp"
    assert body["wallet_balance_usd_micros"] is None


@pytest.mark.parametrize(
    "args,code",
    [(["status", "--jsn"], "UNKNOWN_FLAG"), (["status", "extra"], "BAD_USAGE")],
)
def test_bad_input(cli, isolated_config, args, code):
    seed_allowance()
    before = files(isolated_config)
    usage_error(cli(*args), code)
    assert files(isolated_config) == before


def test_bad_api_base(cli, monkeypatch, isolated_config):
    seed_allowance()
    before = files(isolated_config)
    monkeypatch.setenv("RUN402_API_BASE", "ftp://x")
    usage_error(cli("status"), "BAD_ENV")
    assert files(isolated_config) == before


def test_parse_only(cli, monkeypatch):
    calls = record(monkeypatch, status_cmd, "run_status")
    assert cli("status").code == 0
    assert calls == [status_cmd.StatusOptions()]
