"""The function lifecycle rules both sides share (wire/functions.py): names, deps specs (with
the package name read right, scoped or aliased), log request ids."""

from __future__ import annotations

import pytest

from run402_cli.wire.functions import (
    DEPS_MAX, RESERVED_DEPS, TIER_FUNCTION_LIMITS, dep_package_name, dep_problem, deps_problem,
    function_name_problem, request_id_problem,
)


@pytest.mark.parametrize("name", ["a", "0", "hello", "send-reminders", "a_b-c9", "a" * 128])
def test_good_names(name):
    assert function_name_problem(name) is None


@pytest.mark.parametrize("name", ["", "A", "Hello", "-a", "_a", "a.b", "a/b", "a b", "a" * 129, "a\n", "é", None, 5])
def test_bad_names(name):
    assert function_name_problem(name)


@pytest.mark.parametrize("spec, package", [
    ("lodash", "lodash"), ("lodash@4.17.21", "lodash"), ("date-fns@^3.6.0", "date-fns"),
    ("@scope/pkg", "@scope/pkg"), ("@scope/pkg@^1", "@scope/pkg"), ("@scope/pkg@npm:x@1", "@scope/pkg"),
    ("@scope", "@scope"), ("@run402/functions@1.48.0", "@run402/functions"), ("a@", "a"),
])
def test_dep_package_name(spec, package):
    assert dep_package_name(spec) == package


@pytest.mark.parametrize("spec", ["lodash", "@scope/pkg@^1", "dayjs@>=1.0.0", "x" * 200, "bcryptjs", "sharpen",
                                  "@sharp/x", "canvas-confetti@1", "run402-functions-extra"])
def test_good_deps(spec):
    assert dep_problem(spec) is None


@pytest.mark.parametrize("spec, words", [
    ("", "non-empty"), ("  ", "non-empty"), ("a b", "whitespace"), ("a\tb", "whitespace"),
    ("x" * 201, "at most 200"), ("sharp", "native"), ("sharp@0.33", "native"), ("canvas@^2", "native"),
    ("bcrypt", "native"), ("SHARP", "native"), ("@run402/functions", "bundles"),
    ("@run402/functions@1.48.0", "bundles"), ("run402-functions", "bundles"),
    ("img@npm:sharp@0.33", "native"), ("@x/y@npm:@run402/functions@1", "bundles"), (None, "non-empty"),
])
def test_bad_deps(spec, words):
    assert words in dep_problem(spec)


def test_deps_list():
    assert deps_problem(["a", "b@1"]) is None
    assert deps_problem([]) is None
    assert deps_problem([f"p{i}" for i in range(DEPS_MAX)]) is None
    assert deps_problem([f"p{i}" for i in range(DEPS_MAX + 1)])[0] is None
    assert deps_problem(["a", "sharp", "canvas"])[0] == 1
    assert deps_problem("a,b") == (None, "must be a list of npm package specs")
    assert RESERVED_DEPS == {"@run402/functions", "run402-functions", "sharp", "canvas", "bcrypt"}


@pytest.mark.parametrize("value, good", [
    ("req_abcd", True), ("req_" + "a" * 128, True), ("req_A-z_9", True),
    ("req_abc", False), ("req_" + "a" * 129, False), ("req_abc$", False), ("job_abcd", False),
    ("req_abcd\n", False), ("", False), (None, False),
])
def test_request_id(value, good):
    assert (request_id_problem(value) is None) is good


def test_tier_table_matches_the_spec():
    assert {t: (v["max_function_timeout_seconds"], v["max_function_memory_mb"], v["max_scheduled_functions"],
                v["min_cron_interval_minutes"], v["max_functions"]) for t, v in TIER_FUNCTION_LIMITS.items()} == {
        "prototype": (10, 128, 1, 15, 5), "hobby": (30, 256, 3, 5, 25), "team": (60, 512, 10, 1, 100)}
