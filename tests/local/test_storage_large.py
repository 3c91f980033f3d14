"""A 1 GiB asset through our CLI and the real gateway, with memory flat in the file size on
both sides, and a signed URL left to run out its real TTL meanwhile.

- The CLI runs as its own process, so its peak RSS is the kernel's figure (`wait4` rusage).
- The gateway's peak is its kernel high-water mark (VmHWM), reset just before the transfer
  (`clear_refs` 5); where the kernel refuses the reset, VmRSS is sampled every 20 ms instead.
  The session's gateway has served the whole suite by then, so what must stay small is its
  growth over its RSS when the transfer starts, not the RSS itself.
- 1 GiB is over the hobby tier's 1 GiB with the database counted, so the wallet gets test
  money on the local ledger and pays for the team tier (10 GB) for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from run402_cli.local.control import ledger
from run402_cli.local.runtime.pgcluster import PgCluster
from tests.commands._helpers import ready

pytestmark = pytest.mark.usefixtures("api")

GIB = 1 << 30
RSS_LIMIT = 150 * 1024 * 1024  # the CLI, a fresh process
GROWTH_LIMIT = 64 * 1024 * 1024  # the gateway, over its RSS before the transfer
CHUNK = 4 << 20


# A child's ru_maxrss starts from its parent's: posix_spawn (and fork, vfork) run the child on
# the parent's pages until exec, and exec folds that high-water mark into the child's. Spawned
# straight from pytest (hundreds of MB late in a full run), the CLI would be charged for
# pytest's memory. So a small helper spawns it: the figure is then the CLI's own, plus the
# helper's ~10 MB at most. The helper writes "<exit code> <ru_maxrss KiB>" to argv[1].
_MEASURE = ("import os, sys\n"
            "pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)\n"
            "_, status, usage = os.wait4(pid, 0)\n"
            "with open(sys.argv[1], 'w') as f:\n"
            "    f.write(f'{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}')\n")


def _measured(argv: list[str], env: dict[str, str], scratch: Path) -> tuple[int, bytes, bytes, int]:
    """(exit code, stdout, stderr, peak RSS bytes) of `argv`, run under wait4 by the helper."""
    out_r, out_w = os.pipe()
    tag = time.monotonic_ns()
    err_path, usage_path = scratch / f"stderr-{tag}", scratch / f"usage-{tag}"
    with open(err_path, "wb") as err_file:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", _MEASURE, str(usage_path), *argv], env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, out_w, 1),
                                           (os.POSIX_SPAWN_DUP2, err_file.fileno(), 2),
                                           (os.POSIX_SPAWN_CLOSE, out_r)])
    os.close(out_w)
    with os.fdopen(out_r, "rb") as reader:
        stdout = reader.read()
    _, status, _ = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, err_path.read_bytes().decode()[-2000:]
    code, maxrss_kib = map(int, usage_path.read_text().split())
    return code, stdout, err_path.read_bytes(), maxrss_kib * 1024


def _run_measured(api: Any, config: Path, *args: str) -> tuple[int, bytes, bytes, int]:
    """(exit code, stdout, stderr, peak RSS bytes) of our CLI."""
    env = {**api.env, "RUN402_API_BASE": api.api_base, "RUN402_CONFIG_DIR": str(config)}
    return _measured([sys.executable, "-m", "run402_cli", *args], env, config.parent)


class GatewayPeak:
    """The gateway process's peak RSS over a `with` block."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._sampled = pid, 0, 0
        self._stop = threading.Event()

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"{field} missing for pid {self.pid}")

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._sampled = max(self._sampled, self._status("VmRSS"))

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def __enter__(self) -> "GatewayPeak":
        self.start = self._status("VmRSS")
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self._hwm = True
        except OSError:
            self._hwm = False
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self._sampled, self._status("VmHWM") if self._hwm else 0)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _team_tier(cli: Any, api: Any) -> None:
    address = json.loads(cli("allowance", "status").stdout)["address"].lower()
    with psycopg.connect(PgCluster(api.local_dir).conninfo(), autocommit=True) as conn:
        ledger.credit(conn, address, 20_000_000, kind="test_grant")
    paid = cli("tier", "set", "team")
    assert paid.code == 0, paid.stderr


def test_one_gib_round_trip_keeps_memory_flat_and_a_signed_url_expires(cli, api, tmp_path, isolated_config):
    ready(cli)
    _team_tier(cli, api)
    provisioned = cli("projects", "provision")
    assert provisioned.code == 0, provisioned.stderr

    # A signed URL with the shortest TTL; it runs out while the gigabyte goes up and down.
    note = tmp_path / "note.txt"
    note.write_bytes(b"readable for one minute\n")
    assert cli("assets", "put", str(note), "--private").code == 0
    signed = cli("assets", "sign", "note.txt", "--ttl", "60")
    assert signed.code == 0, signed.stderr
    url, expires_at = signed.json["signed_url"], time.time() + signed.json["expires_in"]
    parts = urlsplit(url)

    def fetch_signed() -> httpx.Response:
        return httpx.get(f"{api.api_base}{parts.path}?{parts.query}", headers={"Host": parts.netloc})

    assert fetch_signed().content == note.read_bytes()

    big = tmp_path / "big.bin"
    with big.open("wb") as f:  # incompressible, and not all the same block
        block = os.urandom(CHUNK)
        for i in range(GIB // CHUNK):
            f.write(block[:CHUNK - 8] + i.to_bytes(8, "big"))
    expected = _sha256_file(big)
    gateway_pid = json.loads((api.local_dir / "state.json").read_text())["pid"]

    with GatewayPeak(gateway_pid) as up:
        code, out, err, client_peak = _run_measured(api, isolated_config, "assets", "put", str(big), "--immutable")
    assert code == 0, err.decode()[-2000:]
    [ref] = json.loads(out)
    assert ref["sha256"] == expected and ref["size_bytes"] == GIB
    assert client_peak < RSS_LIMIT, f"client put peaked at {client_peak >> 20} MiB"
    assert up.growth < GROWTH_LIMIT, \
        f"gateway put grew {up.growth >> 20} MiB (from {up.start >> 20} to {up.peak >> 20} MiB)"

    back = tmp_path / "back.bin"
    with GatewayPeak(gateway_pid) as down:
        code, _, err, client_peak = _run_measured(api, isolated_config, "assets", "get", "big.bin",
                                                  "--output", str(back))
    assert code == 0, err.decode()[-2000:]
    assert back.stat().st_size == GIB and _sha256_file(back) == expected
    assert client_peak < RSS_LIMIT, f"client get peaked at {client_peak >> 20} MiB"
    assert down.growth < GROWTH_LIMIT, \
        f"gateway get grew {down.growth >> 20} MiB (from {down.start >> 20} to {down.peak >> 20} MiB)"
    back.unlink()

    # Unchanged bytes: nothing goes up again.
    code, _, err, _ = _run_measured(api, isolated_config, "assets", "put", str(big), "--immutable")
    assert code == 0, err.decode()[-2000:]
    events = [json.loads(ln) for ln in err.decode().splitlines() if ln.startswith("{")]
    assert [e["type"] for e in events if e["type"].startswith("content.upload")] == ["content.upload.skipped"]
    assert next(e for e in events if e["type"] == "content.upload.skipped")["sha256"] == expected
    big.unlink()

    # Past the TTL the same URL is refused like a missing key.
    time.sleep(max(0.0, expires_at - time.time()) + 1.5)
    assert fetch_signed().status_code == 404


def test_the_meters_see_a_process_that_holds_200_mib():
    """The two peak figures above are real: both catch a process that touches 200 MiB."""
    hog = ("import time; time.sleep(0.3); b = bytearray(200 << 20); "
           "b[::4096] = b'x' * len(b[::4096]); time.sleep(1.5)")
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", hog], dict(os.environ))
    with GatewayPeak(pid) as peak:
        time.sleep(1.2)
    _, status, usage = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert usage.ru_maxrss * 1024 > 200 << 20
    assert peak.peak > 200 << 20


def test_the_client_meter_counts_the_cli_alone(tmp_path):
    """The client figure is the measured process's own: a process holding 200 MiB reads above
    it, and one holding nothing reads far below 150 MiB even while pytest itself holds more."""
    ballast = bytearray(300 << 20)  # pytest grows past the limit, as late in a full run
    ballast[::4096] = b"x" * len(ballast[::4096])
    hog = "b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096])"
    code, _, _, hog_peak = _measured([sys.executable, "-c", hog], dict(os.environ), tmp_path)
    assert code == 0 and hog_peak > 200 << 20
    code, _, _, idle_peak = _measured([sys.executable, "-c", "pass"], dict(os.environ), tmp_path)
    assert code == 0 and idle_peak < 60 << 20, f"an idle process read {idle_peak >> 20} MiB"
    del ballast
