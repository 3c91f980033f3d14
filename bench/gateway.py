"""The local gateway's own costs, beside PostgREST direct, in one run.

Why: every REST call an agent's app makes goes through the gateway's proxy (key check, tenant
role token, schema profile, limits), and every `projects sql` through its tenant session. This
prints, as one JSON object:

- `local_up`: `local up` the first time in a fresh data dir (PostgREST already in the user
  cache, as after any first run) and again after `local down` (a stopped stack);
- `rest`: `GET /rest/v1/items?id=eq.1` with the anon key through the gateway, and the same
  query sent to the gateway's PostgREST directly (a token for the same database role, the
  same schema profile): p50/p90 over one kept-alive connection, the p50 overhead, and
  requests/s with --concurrency clients for --seconds each, with the ratio;
- `sql`: `POST /projects/v1/admin/<id>/sql` "select 1" with the service key, p50/p90.

The gateway runs with RUN402_LOCAL_PROJECT_RATE lifted (the contract's 100 requests/s per
project would be the only figure otherwise); its per-project concurrency gate (4 PostgREST
connections per project) stays, as it would for any one project's traffic.

    python bench/gateway.py [--requests 500] [--concurrency 8] [--seconds 5]

PostgREST's address and its JWT secret are read from the bench's own throw-away data dir
(what the gateway wrote for itself); nothing is printed but timings.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sql_roundtrip import ROOT, Tree, server_side  # noqa: E402  (a sibling bench script)


def log(msg: str) -> None:
    print(f"[gateway] {msg}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return round(time.perf_counter() - start, 2)


def latency(client: httpx.Client, url: str, headers: dict[str, str], requests: int) -> list[float]:
    samples = []
    for i in range(requests + 30):
        start = time.perf_counter()
        resp = client.get(url, headers=headers)
        elapsed = (time.perf_counter() - start) * 1000
        if resp.status_code != 200 or resp.json() != [{"id": 1, "title": "item 1"}]:
            raise SystemExit(f"unexpected answer from {url}: {resp.status_code} {resp.text[:200]}")
        if i >= 30:  # warm-up: connections, caches
            samples.append(elapsed)
    return sorted(samples)


def throughput(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> float:
    """Requests/s of `concurrency` threads, each with its own kept-alive connection."""
    done = [0] * concurrency
    stop = time.monotonic() + seconds

    def worker(slot: int) -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop:
                client.get(url, headers=headers).raise_for_status()
                done[slot] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(sum(done) / (time.monotonic() - start), 1)


def figures(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(samples), 2), "p90_ms": round(samples[int(len(samples) * 0.9)], 2)}


def postgrest_direct(local_dir: Path, slot: str) -> tuple[str, dict[str, str]]:
    """The gateway's PostgREST URL and the headers the gateway would send it for an anon call."""
    import jwt

    conf = (local_dir / "postgrest" / "postgrest.conf").read_text()
    port = re.search(r'^server-port = "?(\d+)"?$', conf, re.M).group(1)  # type: ignore[union-attr]
    secret = re.search(r'^jwt-secret = "(.*)"$', conf, re.M).group(1)  # type: ignore[union-attr]
    now = int(time.time())
    token = jwt.encode({"role": f"{slot}_anon", "iat": now, "exp": now + 3600}, secret, algorithm="HS256")
    return f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}", "Accept-Profile": slot}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="run402-bench-gateway-"))
    tree = Tree("current", ROOT, work)
    # The contract's 100 requests/s per project would cap the gateway's figures at 100: lifted
    # here, so the proxy itself is measured (its per-project concurrency gate stays).
    tree.env["RUN402_LOCAL_PROJECT_RATE"] = "1000000"
    result: dict[str, Any] = {"machine": {"cpu_count": __import__("os").cpu_count(),
                                          "python": sys.version.split()[0]}}
    try:
        log("local up in a fresh data dir, down, up again")
        first = timed(lambda: tree.run402("local", "up", "--port", "0"))
        tree.up = True
        tree.run402("local", "down")
        again_out: dict[str, Any] = {}
        again = timed(lambda: again_out.update(json.loads(tree.run402("local", "up").stdout)))
        tree.env["RUN402_API_BASE"] = api = again_out["api_base"]
        result["local_up"] = {"first_s": first, "stopped_stack_s": again}

        log("a project with 100 rows, readable by the anon key")
        for step in (("allowance", "create"), ("allowance", "fund"), ("tier", "set", "prototype")):
            tree.run402(*step)
        project = json.loads(tree.run402("projects", "provision", "--name", "bench").stdout)
        tree.run402("projects", "sql", "create table items (id int primary key, title text not null); "
                    "insert into items select i, 'item ' || i from generate_series(1, 100) i")
        manifest = {"version": "1", "tables": [{"name": "items", "expose": True,
                                                "policy": "public_read_authenticated_write"}]}
        tree.run402("projects", "apply-expose", json.dumps(manifest))

        query = "/items?select=id,title&id=eq.1"
        through = (f"{api}/rest/v1{query}", {"apikey": project["anon_key"]})
        base, direct_headers = postgrest_direct(work / "local", project["schema_slot"])
        direct = (f"{base}{query}", direct_headers)
        log(f"REST: {args.requests} sequential GETs each way, then {args.concurrency} clients for "
            f"{args.seconds:g} s each way")
        with httpx.Client(timeout=30) as client:
            gw, pg = latency(client, *through, args.requests), latency(client, *direct, args.requests)
        rest: dict[str, Any] = {"gateway": figures(gw), "postgrest_direct": figures(pg)}
        rest["p50_overhead_ms"] = round(rest["gateway"]["p50_ms"] - rest["postgrest_direct"]["p50_ms"], 2)
        rest["gateway"]["requests_per_s"] = throughput(*through, args.concurrency, args.seconds)
        rest["postgrest_direct"]["requests_per_s"] = throughput(*direct, args.concurrency, args.seconds)
        rest["throughput_ratio"] = round(rest["gateway"]["requests_per_s"]
                                         / rest["postgrest_direct"]["requests_per_s"], 2)
        result["rest"] = rest

        log(f"SQL: {args.requests} x select 1")
        sql = server_side(api, project, args.requests)
        result["sql"] = {"p50_ms": sql["server_p50_ms"], "p90_ms": sql["server_p90_ms"]}
    finally:
        tree.stop()
        try:
            from run402_cli.local.runtime.pgcluster import PgCluster

            PgCluster(work / "local").destroy()
        except Exception:
            pass
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
