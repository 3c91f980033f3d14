"""`run402 service status|health`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from run402_cli.commands import service as service_cmd
from tests.commands._helpers import closed_port, files, ok, record, usage_error


def test_health_against_the_gateway(cli, api):
    body = ok(cli("service", "health"))
    assert body["status"] == "healthy"
    assert body["checks"]["postgres"] == "ok"


def test_status_against_the_gateway(cli, api):
    body = ok(cli("service", "status"))
    assert isinstance(body, dict) and body  # printed as received


def test_service_needs_no_local_state(cli, api, isolated_config):
    ok(cli("service", "health"))
    assert files(isolated_config) == {}


@pytest.mark.parametrize("verb", ["status", "health"])
def test_unknown_flag(cli, verb):
    env = usage_error(cli("service", verb, "--jsn"), "UNKNOWN_FLAG")
    assert env["details"]["flag"] == "--jsn"
    assert "closest" in env["details"]


@pytest.mark.parametrize("verb", ["status", "health"])
def test_extra_argument(cli, verb):
    usage_error(cli("service", verb, "extra"), "BAD_USAGE")


@pytest.mark.parametrize("verb", ["status", "health"])
def test_bad_api_base(cli, monkeypatch, verb):
    monkeypatch.setenv("RUN402_API_BASE", "ftp://example.com")
    env = usage_error(cli("service", verb), "BAD_ENV")
    assert "RUN402_API_BASE" in env["message"]


def test_unreachable_api_is_a_network_error(cli, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    env = usage_error(cli("service", "health"), "NETWORK_ERROR")
    assert env["retryable"] is True


def test_degraded_health_is_an_error_with_http_503(cli, monkeypatch):
    # mock: hosted-only (a degraded service cannot be produced on the local gateway)
    degraded = {"status": "degraded", "checks": {"postgres": "ok", "postgrest": "down"}, "version": "x"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            assert self.path == "/health"
            raw = json.dumps(degraded).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{server.server_port}")
        env = usage_error(cli("service", "health"), "API_ERROR")
    finally:
        server.shutdown()
        server.server_close()
    assert env["http"] == 503
    assert env["status"] == "error"  # forced, even though the body said "degraded"
    assert env["checks"]["postgrest"] == "down"


@pytest.mark.parametrize("verb,fn", [("status", "run_status"), ("health", "run_health")])
def test_parse_only(cli, monkeypatch, verb, fn):
    calls = record(monkeypatch, service_cmd, fn)
    res = cli("service", verb)
    assert res.code == 0 and res.stdout == ""
    assert len(calls) == 1


def test_help_exits_zero_without_touching_anything(cli, isolated_config):
    for args in (["service", "--help"], ["service", "health", "-h"], ["service", "status", "--help"]):
        res = cli(*args)
        assert res.code == 0
        assert "\nExamples:\n  run402 service" in res.stdout
    assert not isolated_config.exists()


MY_MODULES = ["init", "status", "allowance", "tier", "projects", "service"]
MY_COMMANDS = [
    ["init"], ["status"],
    ["allowance", "create"], ["allowance", "status"], ["allowance", "fund"],
    ["allowance", "balance"], ["allowance", "export"],
    ["tier", "status"], ["tier", "set"],
    ["projects", "quote"], ["projects", "provision"], ["projects", "list"], ["projects", "use"],
    ["projects", "info"], ["projects", "keys"], ["projects", "sql"], ["projects", "schema"],
    ["projects", "usage"], ["projects", "delete"],
    ["service", "status"], ["service", "health"],
]


@pytest.mark.parametrize("command", MY_COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(cli, isolated_config, command):
    res = cli(*command, "--help")
    assert res.code == 0 and res.stderr == ""
    examples = res.stdout.split("\nExamples:\n", 1)[1].splitlines()
    assert examples and examples[0].startswith("  run402 " + command[0])
    assert cli(*command, "-h").stdout == res.stdout
    assert not isolated_config.exists()


def test_command_modules_import_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys\n"
        + "".join(f"import run402_cli.commands.{m}\n" for m in MY_MODULES)
        + "bad = [m for m in sys.modules if m.split('.')[0] in ('httpx', 'eth_account', 'pydantic')"
        " or m.startswith(('run402_cli.api', 'run402_cli.config', 'run402_cli.wallet'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
