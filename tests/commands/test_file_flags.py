"""The one file-flag reader, as every command that takes a file sees it (commands/_options.py):
a missing file, a directory, a FIFO, bytes that are not UTF-8, and `~` in the path."""

from __future__ import annotations

import os
import time

import pytest

from tests.commands._helpers import seed_allowance, seed_projects, usage_error

PID = "prj_1700000000_0001"


@pytest.fixture(autouse=True)
def keystore() -> None:
    seed_allowance()
    seed_projects([PID], active=PID)


# (argv before the path, flag) of every command that reads a file named by a flag
FILE_FLAGS = [
    (("projects", "sql", "--file"), "--file"),
    (("projects", "apply-expose", "--file"), "--file"),
    (("projects", "validate-expose", "--file"), "--file"),
    (("sites", "deploy", "--manifest"), "--manifest"),
    (("secrets", "set", PID, "API_KEY", "--file"), "--file"),
    (("jobs", "submit", "--file"), "--file"),
]


@pytest.mark.parametrize("head, flag", FILE_FLAGS)
def test_missing_file_and_directory(cli, tmp_path, head, flag) -> None:
    env = usage_error(cli(*head, str(tmp_path / "nope")), "FILE_NOT_FOUND")
    assert env["field"] == flag and env["details"] == {"flag": flag, "path": str(tmp_path / "nope")}
    env = usage_error(cli(*head, str(tmp_path)), "NOT_A_FILE")
    assert env["field"] == flag and "directory" in env["message"]


@pytest.mark.parametrize("head, flag", FILE_FLAGS)
def test_a_fifo_is_refused_without_waiting_for_a_writer(cli, tmp_path, head, flag) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    start = time.monotonic()
    env = usage_error(cli(*head, str(fifo)), "NOT_A_FILE")
    assert time.monotonic() - start < 5 and "non-regular file" in env["message"]


@pytest.mark.parametrize("head, flag", FILE_FLAGS)
def test_bytes_that_are_not_utf8(cli, tmp_path, head, flag) -> None:
    bad = tmp_path / "latin1"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    env = usage_error(cli(*head, str(bad)), "BAD_FLAG")
    assert env["field"] == flag and env["details"]["path"] == str(bad)


def test_a_tilde_is_the_home_directory(cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "release.json").write_text("{}")
    # read from ~ (it got as far as judging the content), not "no such file ~/release.json"
    usage_error(cli("deploy", "apply", "--manifest", "~/release.json"), "MANIFEST_EMPTY")


def test_deploy_apply_says_what_the_official_cli_says(cli, tmp_path) -> None:
    """`deploy apply --manifest` reports every unreadable file as BAD_USAGE "Failed to read
    manifest", as the official CLI does (the differential table checks the code on both)."""
    for path in (tmp_path / "nope.json", tmp_path):
        env = usage_error(cli("deploy", "apply", "--manifest", str(path)), "BAD_USAGE")
        assert env["message"].startswith("Failed to read manifest: ")
        assert env["details"] == {"flag": "--manifest", "path": str(path)}
