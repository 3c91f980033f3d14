"""`run402 local up|down|status|logs` through the CLI, against real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from run402_cli.api.client import Client
from run402_cli.config import Settings, write_allowance
from run402_cli.wallet import address_of, generate_private_key
from tests.conftest import destroy_local


@pytest.mark.parametrize("argv, code", [
    (["local", "up", "--port", "70000"], "BAD_FLAG"),
    (["local", "up", "--port", "abc"], "BAD_FLAG"),
    (["local", "up", "--prot", "1"], "UNKNOWN_FLAG"),
    (["local", "logs", "--service", "nginx"], "BAD_FLAG"),
    (["local", "logs", "--lines", "-1"], "BAD_FLAG"),
    (["local", "logs", "--service"], "BAD_FLAG"),
    (["local", "explode"], "BAD_USAGE"),
])
def test_bad_input_is_one_json_line_and_starts_nothing(cli, tmp_path, monkeypatch, argv, code):
    monkeypatch.setenv("RUN402_LOCAL_DIR", str(tmp_path / "local"))
    result = cli(*argv)
    assert result.code == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.error["code"] == code
    assert not (tmp_path / "local").exists()


def test_unknown_flag_suggests_the_closest(cli):
    err = cli("local", "up", "--prot", "1").error
    assert err["details"]["closest"][0] == "--port"


def test_missing_local_extra_is_a_clear_error(cli, tmp_path, monkeypatch):
    from run402_cli.local.runtime import supervisor

    monkeypatch.setenv("RUN402_LOCAL_DIR", str(tmp_path / "local"))
    monkeypatch.setattr(supervisor, "_REQUIRED_MODULES", ("run402_no_such_module",))
    result = cli("local", "up", "--port", "0")
    assert result.code == 1
    assert result.error["code"] == "LOCAL_EXTRA_MISSING"
    assert "run402[local]" in result.error["hint"]


def test_status_and_logs_of_the_running_gateway(cli, gateway, monkeypatch):
    monkeypatch.setenv("RUN402_LOCAL_DIR", str(gateway.local_dir))
    status = cli("local", "status")
    assert status.code == 0, status.stderr
    assert status.json["status"] == "running"
    assert status.json["api_base"] == gateway.api_base
    assert status.json["health"]["checks"]["postgres"] == "ok"
    logs = cli("local", "logs", "-n", "5")
    assert set(logs.json["logs"]) == {"gateway", "postgres", "postgrest"}
    assert all(len(lines) <= 5 for lines in logs.json["logs"].values())
    only = cli("local", "logs", "--service", "gateway")
    assert set(only.json["logs"]) == {"gateway"}
    again = cli("local", "up")
    assert again.code == 0 and again.json["reused"] is True and again.json["api_base"] == gateway.api_base


def test_status_when_stopped(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("RUN402_LOCAL_DIR", str(tmp_path / "never-started"))
    result = cli("local", "status")
    assert result.code == 0
    assert result.json["status"] == "stopped"
    down = cli("local", "down")
    assert down.code == 0 and down.json["stopped"] is False


def _run402(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "run402_cli", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_data_survives_down_and_up(tmp_path, monkeypatch):
    """A second, private gateway: down then up keeps the project, its keys and its rows,
    and comes back on the same api_base."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUN402_")}
    env["RUN402_LOCAL_DIR"] = str(tmp_path / "local")
    first = _run402(["local", "up", "--port", "0"], env)
    assert first.returncode == 0, first.stderr
    api_base = json.loads(first.stdout)["api_base"]
    try:
        monkeypatch.setenv("RUN402_API_BASE", api_base)
        settings = Settings()
        key = generate_private_key()
        write_allowance(settings.allowance_path, {"address": address_of(key), "privateKey": key})
        client = Client(settings)
        client.request("POST", "/faucet/v1", json={"address": address_of(key)}, wallet_auth=False)
        project = client.request("POST", "/projects/v1", json={"tier": "prototype"})
        sql_path = f"/projects/v1/admin/{project['project_id']}/sql"
        client.request("POST", sql_path, content="create table kept (v text); insert into kept values ('still here')",
                       content_type="text/plain", bearer=project["service_key"])
        client.close()

        down = _run402(["local", "down"], env)
        assert down.returncode == 0, down.stderr
        assert json.loads(down.stdout)["stopped"] is True
        assert json.loads(_run402(["local", "status"], env).stdout)["status"] == "stopped"

        second = _run402(["local", "up"], env)
        assert second.returncode == 0, second.stderr
        assert json.loads(second.stdout)["api_base"] == api_base
        client = Client(Settings())
        rows = client.request("POST", sql_path, content="select v from kept", content_type="text/plain",
                              bearer=project["service_key"])["rows"]
        assert rows == [{"v": "still here"}]
        assert client.request("GET", "/tiers/v1/status")["tier"] == "prototype"
        client.close()
    finally:
        _run402(["local", "down"], env)
    assert not Path(env["RUN402_LOCAL_DIR"], "state.json").exists()
    destroy_local(Path(env["RUN402_LOCAL_DIR"]))
