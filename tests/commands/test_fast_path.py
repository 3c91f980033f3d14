"""The Typer-free fast path of app.py (FAST_PATHS): argument-less commands run without Typer
when argv is exactly their path.

Why: it saves every such call ~40 ms, and it must not be a second CLI. So: each command on it
declares no parameters in the Typer tree (nothing there for Typer to parse); the fast path and
the tree print byte-identical output and errors with the same exit codes (the gateway, a
network error, a bad environment, a missing allowance); any other argv still goes to Typer;
and the fast path really imports no Typer.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from run402_cli import app
from tests.commands._helpers import closed_port, ready, seed_allowance, usage_error

FAST = sorted(app.FAST_PATHS)
IDS = [" ".join(p) for p in FAST]


def _invoke(fn, args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = fn(list(args))
    return code, out.getvalue(), err.getvalue()


def both(args: list[str]) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """(the fast path via app.run, the Typer tree via app.render) on the same argv."""
    return _invoke(app.run, args), _invoke(app.render, args)


@pytest.mark.parametrize("path", FAST, ids=IDS)
def test_each_fast_command_declares_no_parameters(path):
    command = app.click_command(list(path))
    for name in path:
        command = command.commands[name]
    params = [p.name for p in command.params if p.name != "help"]
    assert params == [], f"run402 {' '.join(path)} takes {params}: it cannot be on the fast path"


def _same(args: list[str]) -> tuple[int, str, str]:
    fast, tree = both(args)
    assert fast == tree
    return fast


@pytest.mark.parametrize("path", FAST, ids=IDS)
def test_network_error_is_the_same(path, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", f"http://127.0.0.1:{closed_port()}")
    seed_allowance()
    code, out, err = _same(list(path))
    assert code == 1 and out == "" and json.loads(err)["code"] == "NETWORK_ERROR"


@pytest.mark.parametrize("path", FAST, ids=IDS)
def test_bad_environment_is_the_same(path, monkeypatch):
    monkeypatch.setenv("RUN402_API_BASE", "ftp://example.com")
    code, _, err = _same(list(path))
    assert code == 1 and json.loads(err)["code"] == "BAD_ENV"


def test_environment_warnings_are_the_same(monkeypatch, api):
    monkeypatch.setenv("RUN402_DEPLOY_API_BASE", "")  # set but empty: a warning, then the default
    fast, tree = both(["service", "health"])
    assert fast[0] == tree[0] == 0 and fast[2] == tree[2]
    assert json.loads(fast[2])["level"] == "warning"


def test_no_allowance_is_the_same(api):
    code, out, err = _same(["tier", "status"])
    assert code == 1 and out == "" and json.loads(err)["code"] == "NO_ALLOWANCE"


def test_against_the_gateway_the_output_is_the_same(cli, api):
    ready(cli)
    for path in FAST:
        if path == ("service", "status"):  # carries the gateway's clock: compare the shape
            fast, tree = both(list(path))
            assert fast[0] == tree[0] == 0 and fast[2] == tree[2] == ""
            assert json.loads(fast[1]).keys() == json.loads(tree[1]).keys()
            continue
        code, out, err = _same(list(path))
        assert code == 0 and err == "" and json.loads(out)


@pytest.mark.parametrize("argv", [["service", "status", "--jsn"], ["tier", "status", "x"], ["service", "status", "--"],
                                  ["tier", "status", "-h", "x"]])
def test_any_other_argv_goes_to_typer(cli, argv, monkeypatch):
    import run402_cli.commands.service as service_cmd
    import run402_cli.commands.tier as tier_cmd

    called = []
    for mod in (service_cmd, tier_cmd):
        monkeypatch.setattr(mod, "run_status", lambda opts, settings: called.append(opts))
    res = cli(*argv)
    assert res == type(res)(*_invoke(app.render, argv))
    if "-h" not in argv and argv[-1] != "--":
        usage_error(res, "UNKNOWN_FLAG" if argv[-1].startswith("-") else "BAD_USAGE")
    assert called == [] or argv[-1] == "--"


def test_the_fast_path_imports_no_typer(tmp_path: Path):
    probe = ("import contextlib, io, json, sys\n"
             "from run402_cli import app\n"
             "with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):\n"
             "    sys.argv = ['run402', 'tier', 'status']  # no allowance: NO_ALLOWANCE\n"
             "    app.main()\n"
             "print(json.dumps(sorted(m for m, mod in sys.modules.items() if mod is not None)))\n")
    env = {**os.environ, "RUN402_CONFIG_DIR": str(tmp_path / "config"), "RUN402_API_BASE": "http://127.0.0.1:9"}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    modules = json.loads(proc.stdout)
    assert "run402_cli.commands.tier" in modules
    assert not [m for m in modules if m.split(".")[0] in ("typer", "click", "rich")]


@pytest.mark.parametrize("path", FAST, ids=IDS)
def test_a_subprocess_gives_the_same_as_the_tree(path, tmp_path: Path):
    """Through the console entry point, as users run it (the bench's fresh processes)."""
    env = {**os.environ, "RUN402_CONFIG_DIR": str(tmp_path / "config"),
           "RUN402_API_BASE": f"http://127.0.0.1:{closed_port()}"}
    fast = subprocess.run([sys.executable, "-m", "run402_cli", *path], capture_output=True, text=True, env=env)
    tree = subprocess.run([sys.executable, "-c", "import sys; from run402_cli import app; "
                           f"sys.exit(app.render({list(path)!r}))"], capture_output=True, text=True, env=env)
    assert (fast.returncode, fast.stdout, fast.stderr) == (tree.returncode, tree.stdout, tree.stderr)
    assert fast.returncode == 1
