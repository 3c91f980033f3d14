"""`run402 subdomains claim|list|delete`: bad input, parsing, and the real claim -> serve ->
follow the next deploy -> release cycle against the session gateway."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from run402_cli import config
from run402_cli.commands import subdomains as sub_cmd
from tests.commands._helpers import (
    closed_port, files, ok, ready, record, seed_allowance, seed_projects, usage_error,
)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUN402_CACHE_DIR", str(tmp_path / "hash-cache-root"))


def site(root: Path, text: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(text)
    return root


def fetch(url: str, path: str = "/") -> httpx.Response:
    parts = urlsplit(url)
    return httpx.get(f"http://127.0.0.1:{parts.port}{path}", headers={"Host": parts.netloc})


def test_claim_list_follow_delete(cli, api, tmp_path):
    ready(cli)
    project_id = ok(cli("projects", "provision"))["project_id"]
    name = f"app-{project_id.split('_')[1][-6:]}-{project_id.split('_')[2]}"
    first = ok(cli("sites", "deploy-dir", str(site(tmp_path / "v1", "<h1>v1</h1>")), "--confirm-prune", "--quiet"))

    claimed = ok(cli("subdomains", "claim", name))
    assert claimed["name"] == name and claimed["deployment_id"] == first["deployment_id"]
    assert claimed["project_id"] == project_id
    port = urlsplit(api.api_base).port
    assert claimed["url"] == f"http://{name}.localhost:{port}/"
    assert {"deployment_url", "created_at", "updated_at"} <= set(claimed)
    assert fetch(claimed["url"]).content == b"<h1>v1</h1>"

    listed = ok(cli("subdomains", "list"))
    assert isinstance(listed, list) and [s["name"] for s in listed] == [name]

    # the subdomain follows the next deploy of the project
    second = ok(cli("sites", "deploy-dir", str(site(tmp_path / "v2", "<h1>v2</h1>")), "--confirm-prune", "--quiet"))
    assert second["deployment_id"] != first["deployment_id"]
    assert fetch(claimed["url"]).content == b"<h1>v2</h1>"
    assert ok(cli("subdomains", "list"))[0]["deployment_id"] == second["deployment_id"]

    # an explicit --deployment; then a name another project cannot take
    ok(cli("subdomains", "claim", name, "--deployment", first["deployment_id"]))

    res = cli("subdomains", "delete", name, "--confirm")
    assert res.code == 0 and res.stderr == ""
    assert res.stdout == json.dumps({"status": "ok", "message": f"Subdomain '{name}' released."},
                                    separators=(",", ":")) + "\n"
    assert ok(cli("subdomains", "list")) == []
    assert fetch(claimed["url"]).status_code == 404


def test_reserved_and_taken_names_are_refused_by_the_gateway(cli, api, tmp_path):
    ready(cli)
    ok(cli("projects", "provision"))
    ok(cli("sites", "deploy-dir", str(site(tmp_path / "a", "a")), "--confirm-prune", "--quiet"))
    res = cli("subdomains", "claim", "www")
    assert res.code == 1 and res.stdout == ""
    env = json.loads(res.stderr)
    assert env["http"] == 409 and env["status"] == "error"
    taken = "taken-" + tmp_path.name[-12:].lower().replace("_", "-").strip("-")
    ok(cli("subdomains", "claim", taken))
    ok(cli("projects", "provision"))  # a second project of the same wallet, now active
    ok(cli("sites", "deploy-dir", str(site(tmp_path / "b", "b")), "--confirm-prune", "--quiet"))
    res = cli("subdomains", "claim", taken)
    assert res.code == 1 and json.loads(res.stderr)["http"] == 409


# --- bad input ------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, isolated_config: Path) -> Path:
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_allowance()
    seed_projects(["prj_1_1", "prj_1_2"], active="prj_1_1")
    config.Settings().keystore().update_project("prj_1_2", {"last_deployment_id": "dpl_2"})
    return isolated_config


@pytest.mark.parametrize("args,code", [
    (["claim"], "BAD_USAGE"),
    (["claim", "ab"], "BAD_USAGE"),
    (["claim", "Upper"], "BAD_USAGE"),
    (["claim", "-lead"], "UNKNOWN_FLAG"),
    (["claim", "trail-"], "BAD_USAGE"),
    (["claim", "x" * 64], "BAD_USAGE"),
    (["claim", "my_app"], "BAD_USAGE"),
    (["claim", "my-app"], "NO_DEPLOYMENT"),
    (["claim", "my-app", "--project", "abc"], "BAD_PROJECT_ID"),
    (["claim", "my-app", "--project", "prj_9_9"], "PROJECT_NOT_FOUND"),
    (["claim", "my-app", "extra"], "BAD_USAGE"),
    (["claim", "my-app", "--deployment"], "BAD_FLAG"),
    (["list", "--all"], "UNKNOWN_FLAG"),
    (["list", "--project", "abc"], "BAD_PROJECT_ID"),
    (["delete", "my-app"], "CONFIRMATION_REQUIRED"),
    (["delete"], "BAD_USAGE"),
    (["delete", "my-app", "--confirm", "--project", "prj_9_9"], "PROJECT_NOT_FOUND"),
    (["delete", "my-app", "--yes"], "UNKNOWN_FLAG"),
])
def test_bad_input(cli, offline, args, code):
    before = files(offline)
    env = usage_error(cli("subdomains", *args), code)
    assert files(offline) == before
    if code == "NO_DEPLOYMENT":
        assert env["next_actions"] == [{"action": "deploy_site_first"}]
    if code == "CONFIRMATION_REQUIRED":
        assert env["details"] == {"name": "my-app"} and "--confirm" in env["message"]


def test_no_active_project(cli, isolated_config):
    usage_error(cli("subdomains", "list"), "NO_ACTIVE_PROJECT")


# --- parse only -----------------------------------------------------------------------------


def test_parse(cli, offline, monkeypatch):
    claims = record(monkeypatch, sub_cmd, "run_claim")
    lists = record(monkeypatch, sub_cmd, "run_list")
    deletes = record(monkeypatch, sub_cmd, "run_delete")
    assert cli("subdomains", "claim", "my-app", "--project", "prj_1_2").code == 0
    assert cli("subdomains", "claim", "my-app", "--deployment", "dpl_x").code == 0
    assert cli("subdomains", "list", "--project=prj_1_2").code == 0
    assert cli("subdomains", "delete", "my-app", "--confirm").code == 0
    assert claims == [sub_cmd.ClaimOptions("my-app", "dpl_2", "prj_1_2"),
                      sub_cmd.ClaimOptions("my-app", "dpl_x", "prj_1_1")]
    assert lists == [sub_cmd.ListOptions("prj_1_2")]
    assert deletes == [sub_cmd.DeleteOptions("my-app", "prj_1_1")]
