"""How fast the local gateway turns hostile requests away, and whether others notice.

Prints ONE JSON object (progress on stderr). Each figure is the median of --runs attempts, in
milliseconds, next to the baseline of the same run: GET /health on an idle gateway.
- unauthenticated: a 200 KB body of nested `[`, a declared 200 MB body, a chunked body past the
  cap, a 40 KB `copy copy …` SQL string (status and time to the answer);
- /health while a 200 MB upload is being refused, and while project A runs 45 slow queries;
- project B's REST p50 while project A runs 45 concurrent `pg_sleep` statements;
- a million-row SELECT through `projects sql`: time, rows returned, gateway RSS growth.

    python bench/hostile.py [--runs 5] [--api-base URL]

Without --api-base it starts its own gateway (`run402 local up --port 0` in a temp
RUN402_LOCAL_DIR) and removes it at the end. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx


def log(msg: str) -> None:
    sys.stderr.write(f"[bench] {msg}\n")
    sys.stderr.flush()


def run402(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "run402_cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise SystemExit(f"run402 {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def raw(api_base: str, payload: bytes) -> tuple[int, float]:
    """Send raw bytes; (status, ms until the status line arrived)."""
    u = urlsplit(api_base)
    started = time.perf_counter()
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        try:
            s.sendall(payload)
        except OSError:
            pass  # the gateway may close before we finish: it answered already
        data = s.recv(4096)
    ms = (time.perf_counter() - started) * 1000
    return (int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0), ms


def timed(fn: Any, runs: int) -> dict[str, Any]:
    out, statuses = [], set()
    for _ in range(runs):
        started = time.perf_counter()
        status = fn()
        out.append((time.perf_counter() - started) * 1000)
        statuses.add(status)
    return {"median_ms": round(statistics.median(out), 2), "max_ms": round(max(out), 2), "status": sorted(statuses)}


def provision(api_base: str, env: dict[str, str], name: str) -> dict[str, Any]:
    from run402_cli.api.client import Client
    from run402_cli.config import Settings, write_allowance
    from run402_cli.wallet import address_of, generate_private_key

    key = generate_private_key()
    settings = Settings()
    write_allowance(settings.allowance_path, {"address": address_of(key), "privateKey": key})
    client = Client(settings)
    client.request("POST", "/faucet/v1", json={"address": address_of(key)}, wallet_auth=False)
    return client.request("POST", "/projects/v1", json={"tier": "prototype", "name": name})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--api-base")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="run402-bench-hostile-"))
    env = {**os.environ, "RUN402_CONFIG_DIR": str(tmp / "config"), "RUN402_LOCAL_DIR": str(tmp / "local")}
    os.environ.update(RUN402_CONFIG_DIR=env["RUN402_CONFIG_DIR"])
    own = args.api_base is None
    try:
        if own:
            log("starting a gateway")
            api_base = json.loads(run402(["local", "up", "--port", "0"], env))["api_base"]
        else:
            api_base = args.api_base
        os.environ["RUN402_API_BASE"] = api_base
        env["RUN402_API_BASE"] = api_base
        http = httpx.Client(base_url=api_base, timeout=30)
        health = lambda: http.get("/health").status_code  # noqa: E731
        timed(health, 3)  # warm-up
        result: dict[str, Any] = {"baseline_health_idle": timed(health, args.runs)}

        nested = b"[" * 200_000
        result["nested_json_200kb"] = timed(lambda: httpx.post(
            f"{api_base}/faucet/v1", content=nested, headers={"Content-Type": "application/json"}).status_code,
            args.runs)
        head = (f"POST /faucet/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {200 * 1024 * 1024}\r\n\r\n").encode()
        codes, times = zip(*(raw(api_base, head + b"[" * 65536) for _ in range(args.runs)))
        result["declared_200mb"] = {"median_ms": round(statistics.median(times), 2), "max_ms": round(max(times), 2),
                                    "status": sorted(set(codes))}
        chunk = b"a" * 32768
        chunked = (b"POST /faucet/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk)
                                                                 for _ in range(8)))
        codes, times = zip(*(raw(api_base, chunked) for _ in range(args.runs)))
        result["chunked_past_cap"] = {"median_ms": round(statistics.median(times), 2),
                                      "max_ms": round(max(times), 2), "status": sorted(set(codes))}

        log("provisioning two projects")
        a = provision(api_base, env, "attacker")
        b = provision(api_base, env, "bystander")
        sql_a = f"/projects/v1/admin/{a['project_id']}/sql"
        patho = ("copy " * 8000).encode()
        result["pathological_sql_40kb_unauthenticated"] = timed(lambda: http.post(
            sql_a, content=patho, headers={"Content-Type": "text/plain"}).status_code, args.runs)
        svc_a = {"Authorization": f"Bearer {a['service_key']}", "Content-Type": "text/plain"}
        result["pathological_sql_40kb_authenticated"] = timed(lambda: http.post(
            sql_a, content=patho, headers=svc_a).status_code, args.runs)

        # /health while big uploads are refused, in a loop on another thread.
        stop = threading.Event()

        def flood() -> None:
            while not stop.is_set():
                raw(api_base, head + b"[" * 65536)

        t = threading.Thread(target=flood)
        t.start()
        result["health_during_200mb_refusals"] = timed(health, args.runs * 4)
        stop.set()
        t.join()

        # Fair sharing: B's REST while A runs 45 slow statements.
        sql_b = f"/projects/v1/admin/{b['project_id']}/sql"
        svc_b = {"Authorization": f"Bearer {b['service_key']}", "Content-Type": "text/plain"}
        http.post(sql_b, headers=svc_b, content=b"create table items (id int primary key); insert into items values (1)")
        http.post(f"/projects/v1/admin/{b['project_id']}/expose", headers={**svc_b, "Content-Type": "application/json"},
                  json={"version": "1", "tables": [{"name": "items", "expose": True,
                                                    "policy": "public_read_write_UNRESTRICTED",
                                                    "i_understand_this_is_unrestricted": True}]})
        anon_b = {"apikey": b["anon_key"]}
        deadline = time.monotonic() + 5
        while http.get("/rest/v1/items", headers=anon_b).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        result["bystander_rest_idle"] = timed(lambda: http.get("/rest/v1/items", headers=anon_b).status_code,
                                              args.runs * 4)
        slow = [threading.Thread(target=lambda: httpx.post(f"{api_base}{sql_a}", headers=svc_a, timeout=60,
                                                           content=b"select pg_sleep(3)")) for _ in range(45)]
        for th in slow:
            th.start()
        time.sleep(0.3)
        result["bystander_rest_during_45_slow_queries"] = timed(
            lambda: http.get("/rest/v1/items", headers=anon_b).status_code, args.runs * 4)
        result["health_during_45_slow_queries"] = timed(health, args.runs)
        for th in slow:
            th.join()

        state = Path(env["RUN402_LOCAL_DIR"]) / "state.json"
        pid = json.loads(state.read_text())["pid"] if own else None

        def rss_mb() -> float | None:
            if pid is None:
                return None
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
            return None

        before = rss_mb()
        started = time.perf_counter()
        out = http.post(sql_a, headers=svc_a, content=b"select g, repeat('x', 100) as pad "
                                                      b"from generate_series(1, 1000000) g").json()
        result["million_row_select"] = {
            "ms": round((time.perf_counter() - started) * 1000, 1), "rows_returned": len(out.get("rows", [])),
            "truncated": out.get("truncated"),
            "gateway_rss_growth_mb": None if before is None else round(rss_mb() - before, 1)}
        print(json.dumps(result, indent=2))
    finally:
        if own:
            subprocess.run([sys.executable, "-m", "run402_cli", "local", "down"], env=env, capture_output=True,
                           timeout=120)
            try:
                from run402_cli.local.runtime.pgcluster import PgCluster

                PgCluster(Path(env["RUN402_LOCAL_DIR"])).destroy()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
