"""Shared helpers for the command tests: snapshots of local state, the one-line error check,
seeding allowance/keystore through `config`, and the parse-only recorder (gh's runF)."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from run402_cli import config, wallet


def files(config_dir: Path) -> dict[str, bytes]:
    """Every file under the config dir, by relative path, with its bytes."""
    if not config_dir.exists():
        return {}
    return {
        str(p.relative_to(config_dir)): p.read_bytes()
        for p in sorted(config_dir.rglob("*"))
        if p.is_file()
    }


def usage_error(result: Any, code: str) -> dict[str, Any]:
    """Exit 1, nothing on stdout, exactly one JSON line on stderr with `code`."""
    assert result.code == 1, (result.code, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    env = json.loads(lines[0])
    assert env["status"] == "error"
    assert env["code"] == code, env
    return env


def ok(result: Any) -> Any:
    """Exit 0, empty stderr, JSON stdout."""
    assert result.code == 0, (result.stdout, result.stderr)
    assert result.stderr == "", result.stderr
    return json.loads(result.stdout)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings() -> config.Settings:
    return config.Settings()


def seed_allowance(*, rail: str | None = None, checksummed: bool = True, **extra: Any) -> dict[str, Any]:
    """Write an allowance.json the way a previous run would have; returns its content."""
    pk = wallet.generate_private_key()
    address = wallet.address_of(pk)
    data: dict[str, Any] = {
        "address": address if checksummed else address.lower(),
        "privateKey": pk,
        "created": config.now_iso(),
        "funded": False,
    }
    if rail is not None:
        data["rail"] = rail
    data.update(extra)
    config.write_allowance(settings().allowance_path, data)
    return data


def seed_projects(ids: list[str], *, active: str | None = None) -> config.Keystore:
    ks = settings().keystore()
    for pid in ids:
        ks.save_project(pid, {"anon_key": f"anon-{pid}", "service_key": f"svc-{pid}"})
    if active is not None:
        ks.set_active(active)
    return ks


def record(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[Any]:
    """Replace `module.<name>` (a run_<verb>) with a recorder of the options it receives."""
    calls: list[Any] = []
    monkeypatch.setattr(module, name, lambda opts, ctx: calls.append(opts))
    return calls


def ready(cli: Any) -> dict[str, Any]:
    """A funded allowance with the prototype tier, through the CLI (needs the `api` fixture)."""
    res = cli("init", "--json")  # its human lines go to stderr, so not ok()
    assert res.code == 0, res.stderr
    summary = json.loads(res.stdout)
    res = cli("tier", "set", "prototype")
    assert res.code == 0, res.stderr
    return summary
