"""Functions through the local gateway, beside a bare Node HTTP server doing the same work, in one run.

The function is the same handler both ways (`export default async (req) => Response.json(...)`,
reading the URL and one header). The gateway figure is what an agent's app sees:
`POST /functions/v1/<name>` with the service key (key check, the project's rate limit, the
function's release entry, its warm worker, the Response back) and the same on a site route
(`GET /api/*` on the project's host). The baseline is the handler behind `node:http` on its
own port, with nothing in between. Prints, as one JSON object:

- `cold_start_ms`: the first invocation of a just-deployed function (a worker spawned as the
  project's own user, Node started, the bundle loaded, the call made), p50 and max of --cold;
- `warm`: p50/p99 over --requests sequential calls on one kept-alive connection, for the
  direct invoke, the routed invoke and bare Node, and the p50 overheads;
- `requests_per_s`: --concurrency clients for --seconds each, gateway (direct) and bare Node.

    python bench/functions.py [--requests 500] [--concurrency 4] [--seconds 5] [--cold 5]

The gateway runs with RUN402_LOCAL_PROJECT_RATE lifted (the contract's 100 requests/s per
project would be the only figure otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sql_roundtrip import ROOT, Tree  # noqa: E402  (a sibling bench script)

HANDLER = ("export default async (req) => { const url = new URL(req.url); "
           "return Response.json({ ok: true, path: url.pathname, agent: req.headers.get('user-agent') }); };")

BARE = """
import http from "node:http";
const handler = (await import("data:text/javascript;base64," + Buffer.from(process.argv[process.argv.length - 1]).toString("base64"))).default;
const server = http.createServer(async (req, res) => {
  const chunks = []; for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  const request = new Request("http://" + req.headers.host + req.url, { method: req.method,
    headers: req.headers, body: req.method === "GET" || req.method === "HEAD" ? undefined : body });
  const response = await handler(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
"""


def log(msg: str) -> None:
    print(f"[functions] {msg}", file=sys.stderr, flush=True)


def figures(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"p50_ms": round(statistics.median(samples), 2), "p99_ms": round(samples[int(len(samples) * 0.99)], 2)}


def latency(client: httpx.Client, method: str, url: str, headers: dict[str, str], requests: int) -> list[float]:
    out = []
    for i in range(requests + 30):
        start = time.perf_counter()
        resp = client.request(method, url, headers=headers)
        elapsed = (time.perf_counter() - start) * 1000
        if resp.status_code != 200 or resp.json().get("ok") is not True:
            raise SystemExit(f"unexpected answer from {url}: {resp.status_code} {resp.text[:200]}")
        if i >= 30:
            out.append(elapsed)
    return out


def throughput(method: str, url: str, headers: dict[str, str], concurrency: int, seconds: float) -> float:
    done = [0] * concurrency
    stop = time.monotonic() + seconds

    def worker(slot: int) -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop:
                client.request(method, url, headers=headers).raise_for_status()
                done[slot] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(sum(done) / (time.monotonic() - start), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--cold", type=int, default=5)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="run402-bench-functions-"))
    tree = Tree("current", ROOT, work)
    tree.env["RUN402_LOCAL_PROJECT_RATE"] = "1000000"
    result: dict[str, Any] = {"machine": {"cpu_count": os.cpu_count(), "python": sys.version.split()[0],
                                          "node": subprocess.run(["node", "--version"], capture_output=True,
                                                                 text=True).stdout.strip()}}
    bare = None
    try:
        project = tree.start()
        api = tree.env["RUN402_API_BASE"]
        pid, key = project["project_id"], project["service_key"]
        source = work / "handler.mjs"
        source.write_text(HANDLER)

        log(f"cold starts: {args.cold} functions deployed and called once each")
        colds = []
        with httpx.Client(timeout=60) as client:
            for i in range(args.cold):
                tree.run402("functions", "deploy", pid, f"cold{i}", "--file", str(source))
                start = time.perf_counter()
                client.post(f"{api}/functions/v1/cold{i}", headers={"apikey": key}).raise_for_status()
                colds.append((time.perf_counter() - start) * 1000)
                tree.run402("functions", "delete", pid, f"cold{i}")  # the tier allows 5 functions
        result["cold_start_ms"] = {"p50": round(statistics.median(colds), 1), "max": round(max(colds), 1)}

        tree.run402("functions", "deploy", pid, "api", "--file", str(source))
        spec = {"project_id": pid, "routes": {"replace": [
            {"pattern": "/api/*", "target": {"type": "function", "name": "api"}}]}}
        tree.run402("deploy", "apply", "--spec", json.dumps(spec), "--quiet")
        port = api.rsplit(":", 1)[1]
        host = f"{pid.replace('_', '-')}.localhost:{port}"

        log("bare Node server with the same handler")
        bare = subprocess.Popen(["node", "--input-type=module", "--eval", BARE, HANDLER], stdout=subprocess.PIPE,
                                text=True)
        bare_port = bare.stdout.readline().strip()  # type: ignore[union-attr]
        bare_url = f"http://127.0.0.1:{bare_port}/api/hello"

        log(f"warm: {args.requests} sequential calls each way")
        direct = ("POST", f"{api}/functions/v1/api", {"apikey": key})
        routed = ("GET", f"http://127.0.0.1:{port}/api/hello", {"Host": host})
        node = ("POST", bare_url, {})
        with httpx.Client(timeout=30) as client:
            d = latency(client, *direct, args.requests)
            r = latency(client, *routed, args.requests)
            n = latency(client, *node, args.requests)
        warm: dict[str, Any] = {"gateway_direct": figures(d), "gateway_routed": figures(r), "bare_node": figures(n)}
        warm["direct_p50_overhead_ms"] = round(warm["gateway_direct"]["p50_ms"] - warm["bare_node"]["p50_ms"], 2)
        warm["routed_p50_overhead_ms"] = round(warm["gateway_routed"]["p50_ms"] - warm["bare_node"]["p50_ms"], 2)
        result["warm"] = warm

        log(f"throughput: {args.concurrency} clients for {args.seconds:g} s each way")
        gw = throughput(*direct, args.concurrency, args.seconds)
        bn = throughput(*node, args.concurrency, args.seconds)
        result["requests_per_s"] = {"gateway_direct": gw, "bare_node": bn, "ratio": round(gw / bn, 2)}
    finally:
        if bare is not None:
            bare.kill()
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
