"""RUN402_API_BASE and RUN402_DEPLOY_API_BASE are checked at start-up, before any command runs:
a bad value is BAD_ENV naming the variable and the value (even for commands that never touch
the network), an empty one a warning on stderr and the default. Help stays readable."""

from __future__ import annotations

import json

import pytest

from tests.commands._helpers import files, ok, seed_allowance, seed_projects, usage_error

BAD_VALUES = [
    "javascript:alert(1)",
    "ftp://x",
    "mailto:me@example.com",
    "http://",
    "http://[::1",
    "http://h:99999",
    "http://exa mple.com",
    "127.0.0.1:4020",
]


@pytest.mark.parametrize("variable", ["RUN402_API_BASE", "RUN402_DEPLOY_API_BASE"])
@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize("argv", [("projects", "list"), ("allowance", "status")])
def test_a_bad_base_fails_at_start_up_naming_variable_and_value(cli, monkeypatch, isolated_config,
                                                                 variable, value, argv):
    seed_allowance()
    seed_projects(["prj_1_1"], active="prj_1_1")
    before = files(isolated_config)
    monkeypatch.setenv(variable, value)
    env = usage_error(cli(*argv), "BAD_ENV")
    assert variable in env["message"] and repr(value) in env["message"]
    assert env["details"] == {"variable": variable, "value": value}
    assert files(isolated_config) == before


def test_a_password_in_a_bad_base_is_not_echoed(cli, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", "ftp://user:hunter2@example.com")
    env = usage_error(cli("projects", "list"), "BAD_ENV")
    assert "hunter2" not in json.dumps(env)
    assert env["details"]["value"] == "ftp://user:***@example.com"


@pytest.mark.parametrize("variable", ["RUN402_API_BASE", "RUN402_DEPLOY_API_BASE"])
def test_an_empty_base_warns_on_stderr_and_uses_the_default(cli, monkeypatch, variable):
    seed_projects(["prj_1_1"], active="prj_1_1")
    monkeypatch.setenv(variable, "")
    result = cli("projects", "list")
    assert result.code == 0
    assert [p["project_id"] for p in json.loads(result.stdout)] == ["prj_1_1"]
    (warning,) = [json.loads(line) for line in result.stderr.splitlines()]
    assert warning["level"] == "warning"
    assert variable in warning["message"] and "empty" in warning["message"]
    assert "https://api.run402.com" in warning["message"]


@pytest.mark.parametrize("argv", [("--help",), ("projects", "--help"), ("deploy", "apply", "-h"), ()])
def test_help_is_readable_whatever_the_environment_says(cli, monkeypatch, argv):
    monkeypatch.setenv("RUN402_API_BASE", "javascript:alert(1)")
    result = cli(*argv)
    assert result.code == 0 and result.stderr == ""
    assert "Usage:" in result.stdout


def test_version_is_readable_whatever_the_environment_says(cli, monkeypatch):
    monkeypatch.setenv("RUN402_DEPLOY_API_BASE", "ftp://x")
    assert cli("--version").code == 0


def test_a_good_base_is_used_as_given(cli, monkeypatch):
    seed_projects(["prj_1_1"], active="prj_1_1")
    monkeypatch.setenv("RUN402_API_BASE", "http://127.0.0.1:4020")
    monkeypatch.setenv("RUN402_DEPLOY_API_BASE", "https://deploy.example.com")
    assert [p["project_id"] for p in ok(cli("projects", "list"))] == ["prj_1_1"]
