"""The tier preflight's limit lookup (deploy/preflight.py, spec §1.10): containers in order,
key aliases, the static table filling gaps, and when there is nothing to check. The checks
themselves run through the CLI in tests/commands/test_functions.py."""

from __future__ import annotations

import pytest

from run402_cli.deploy.preflight import LIMIT_KEYS, Limit, limits_from_status, lookup

TIMEOUT = LIMIT_KEYS["max_function_timeout_seconds"]


def test_containers_are_read_in_order():
    status = {"tier": "hobby", "max_timeout_seconds": 5, "pool_usage": {"timeout_seconds_max": 4},
              "limits": {"function_limits": {"function_timeout_seconds_max": 3}, "functions": {"max_timeout_seconds": 2}},
              "function_limits": {"max_function_timeout_seconds": 1}}
    assert lookup(status, TIMEOUT) == 1
    del status["function_limits"]
    assert lookup(status, TIMEOUT) == 2
    del status["limits"]["functions"]
    assert lookup(status, TIMEOUT) == 3
    del status["limits"]
    assert lookup(status, TIMEOUT) == 4
    del status["pool_usage"]
    assert lookup(status, TIMEOUT) == 5


@pytest.mark.parametrize("value", [-1, "10", True, None, float("nan"), float("inf"), [10]])
def test_only_non_negative_numbers_count(value):
    assert lookup({"function_limits": {"max_function_timeout_seconds": value}}, TIMEOUT) is None


@pytest.mark.parametrize("limit, keys", list(LIMIT_KEYS.items()))
def test_every_alias_is_read(limit, keys):
    for key in keys:
        got = limits_from_status({"tier": "team", "limits": {"functions": {key: 7}}})
        assert got.get(limit) == Limit(7, "tier_status")


def test_static_table_fills_the_gaps():
    got = limits_from_status({"tier": "Hobby", "function_limits": {"max_function_memory_mb": 1024}})
    assert got.tier == "Hobby"
    assert dict(got.values) == {
        "max_function_timeout_seconds": Limit(30, "local_static_fallback"),
        "max_function_memory_mb": Limit(1024, "tier_status"),
        "max_scheduled_functions": Limit(3, "local_static_fallback"),
        "min_cron_interval_minutes": Limit(5, "local_static_fallback"),
    }


@pytest.mark.parametrize("status", [None, "text", [], {}, {"tier": None}, {"tier": ""}, {"tier": 3},
                                    {"tier": "enterprise"}])
def test_nothing_to_check(status):
    assert limits_from_status(status) is None


def test_an_unknown_tier_with_caps_in_its_status():
    got = limits_from_status({"tier": "enterprise", "function_limits": {"max_scheduled_functions": 50}})
    assert dict(got.values) == {"max_scheduled_functions": Limit(50, "tier_status")}
