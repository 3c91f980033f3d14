"""`run402 tier status|set`."""

from __future__ import annotations

import json

import pytest

from run402_cli.commands import tier as tier_cmd
from tests.commands._helpers import files, ok, record, seed_allowance, usage_error


def _init(cli):
    res = cli("init", "--json")
    assert res.code == 0, res.stderr
    return json.loads(res.stdout)


def test_status_of_a_new_wallet(cli, api):
    summary = _init(cli)
    body = ok(cli("tier", "status"))
    assert body["wallet"] == summary["allowance"]["address"].lower()
    assert body["tier"] is None and body["active"] is False
    assert "status" not in body


def test_set_prototype_pays_and_refetches(cli, api, isolated_config):
    _init(cli)
    before = files(isolated_config)
    body = ok(cli("tier", "set", "prototype"))
    assert body["tier"] == "prototype"
    assert body["action"] == "subscribe"
    assert body["allowance_remaining_usd_micros"] == 150000  # 0.25 - 0.10
    assert body["status_after"]["tier"] == "prototype"
    assert body["status_after"]["active"] is True
    assert list(body)[-1] == "status_after"
    assert files(isolated_config) == before  # tier state lives on the server
    assert ok(cli("tier", "status"))["active"] is True


def test_set_same_tier_renews(cli, api):
    _init(cli)
    first = ok(cli("tier", "set", "prototype"))
    second = ok(cli("tier", "set", "prototype"))
    assert second["action"] == "renew"
    assert second["lease_expires_at"] > first["lease_expires_at"]


def test_set_without_funds_is_a_payment_error(cli, api, isolated_config):
    seed_allowance()  # never funded
    before = files(isolated_config)
    res = cli("tier", "set", "hobby")
    assert res.code == 1 and res.stdout == ""
    env = json.loads(res.stderr.strip().splitlines()[-1])
    assert len(res.stderr.strip().splitlines()) == 1
    assert env["http"] == 402
    assert env["code"] == "INSUFFICIENT_FUNDS"
    assert files(isolated_config) == before
    assert ok(cli("tier", "status"))["tier"] is None


@pytest.mark.parametrize("verb", [["status"], ["set", "prototype"]])
def test_no_allowance(cli, isolated_config, verb):
    env = usage_error(cli("tier", *verb), "NO_ALLOWANCE")
    assert env["hint"]
    assert files(isolated_config) == {}


@pytest.mark.parametrize("name", ["gold", "Prototype", "pro", ""])
def test_set_unknown_tier(cli, isolated_config, name):
    seed_allowance()
    before = files(isolated_config)
    env = usage_error(cli("tier", "set", name), "BAD_USAGE")
    assert env["details"]["allowed"] == ["prototype", "hobby", "team"]
    assert files(isolated_config) == before


@pytest.mark.parametrize(
    "args,code",
    [
        (["tier", "set"], "BAD_USAGE"),
        (["tier", "set", "prototype", "hobby"], "BAD_USAGE"),
        (["tier", "set", "prototype", "--yes"], "UNKNOWN_FLAG"),
        (["tier", "status", "--jsn"], "UNKNOWN_FLAG"),
        (["tier", "status", "x"], "BAD_USAGE"),
        (["tier", "upgrade"], "BAD_USAGE"),
    ],
)
def test_bad_input(cli, isolated_config, args, code):
    seed_allowance()
    before = files(isolated_config)
    usage_error(cli(*args), code)
    assert files(isolated_config) == before


@pytest.mark.parametrize("verb", [["status"], ["set", "team"]])
def test_bad_api_base(cli, monkeypatch, isolated_config, verb):
    seed_allowance()
    before = files(isolated_config)
    monkeypatch.setenv("RUN402_API_BASE", "127.0.0.1:4020")  # no scheme
    usage_error(cli("tier", *verb), "BAD_ENV")
    assert files(isolated_config) == before


def test_parse_set(cli, monkeypatch):
    calls = record(monkeypatch, tier_cmd, "run_set")
    assert cli("tier", "set", "hobby").code == 0
    assert calls == [tier_cmd.SetOptions(tier="hobby")]


def test_parse_status(cli, monkeypatch):
    calls = record(monkeypatch, tier_cmd, "run_status")
    assert cli("tier", "status").code == 0
    assert calls == [tier_cmd.StatusOptions()]
