"""`projects sql "select 1"`, now and at an earlier commit, side by side in one run.

Why: the hot path of an agent's database work is one short statement per command. This times
it for the working tree and for a baseline commit (default: the tree before the gateway was
split into rooms and given its connection pool), each with its own gateway started from its
own source, on the same machine in the same run:

- `server_p50_ms` / `server_p90_ms`: one POST /projects/v1/admin/<id>/sql with the service key
  over a kept-alive HTTP connection (what the gateway costs);
- `cli_median_ms`: the whole `run402 projects sql "select 1"` command, a fresh process each time
  (what an agent waits for);
- `official_cli`: the same command by the official Node CLI v2.10.0 on the current tree's
  gateway and config dir (the reference client, located as the interop tests locate it).

    python bench/sql_roundtrip.py [--baseline 1470964] [--requests 300] [--runs 15]

The baseline is exported with `git archive` into a temp dir and run from there with PYTHONPATH
(and a working directory outside the repository, so this checkout cannot shadow it); it uses
this interpreter's installed dependencies.
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
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE = "1470964"  # "Gateway hardening": the last tree before the rooms and the pool


def log(msg: str) -> None:
    print(f"[sql_roundtrip] {msg}", file=sys.stderr, flush=True)


class Tree:
    """One source tree of run402 with its own gateway, config dir and data dir."""

    def __init__(self, label: str, source: Path, work: Path) -> None:
        self.label, self.source = label, source
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RUN402_")}
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)  # time running the code, not compiling it
        self.env.update(PYTHONPATH=str(source), RUN402_CONFIG_DIR=str(work / "config"),
                        RUN402_LOCAL_DIR=str(work / "local"))
        self.cwd = work  # not the repository: `python -m` puts the cwd first on sys.path
        work.mkdir(parents=True, exist_ok=True)
        self.up = False

    def run402(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", "run402_cli", *args], env=self.env, cwd=self.cwd,
                              capture_output=True, text=True, timeout=600)
        if check and proc.returncode != 0:
            raise SystemExit(f"{self.label}: run402 {' '.join(args)} failed: {proc.stderr[-2000:]}")
        return proc

    def start(self) -> dict[str, Any]:
        probe = subprocess.run([sys.executable, "-c", "import run402_cli; print(run402_cli.__file__)"],
                               env=self.env, cwd=self.cwd, capture_output=True, text=True, check=True)
        imported = Path(probe.stdout.strip()).resolve()
        if self.source.resolve() not in imported.parents:
            raise SystemExit(f"{self.label}: imported {imported}, not the tree at {self.source}")
        up = json.loads(self.run402("local", "up", "--port", "0").stdout)
        self.up = True
        self.env["RUN402_API_BASE"] = up["api_base"]
        self.run402("allowance", "create")
        self.run402("allowance", "fund")
        self.run402("tier", "set", "prototype")
        project = json.loads(self.run402("projects", "provision", "--name", "bench").stdout)
        return project

    def stop(self) -> None:
        if self.up:
            self.run402("local", "down", check=False)
            self.up = False


def server_side(api_base: str, project: dict[str, Any], requests: int) -> dict[str, float]:
    url = f"{api_base}/projects/v1/admin/{project['project_id']}/sql"
    headers = {"Authorization": f"Bearer {project['service_key']}", "Content-Type": "text/plain"}
    samples = []
    with httpx.Client(timeout=30) as client:
        for i in range(requests + 20):
            start = time.perf_counter()
            resp = client.post(url, content="select 1", headers=headers)
            elapsed = time.perf_counter() - start
            resp.raise_for_status()
            if i >= 20:  # warm-up: connection, caches, the first statements
                samples.append(elapsed * 1000)
    samples.sort()
    return {"server_p50_ms": round(statistics.median(samples), 2),
            "server_p90_ms": round(samples[int(len(samples) * 0.9)], 2),
            "server_requests": len(samples)}


def whole_command(tree: Tree, runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs + 2):
        start = time.perf_counter()
        tree.run402("projects", "sql", "select 1")
        samples.append((time.perf_counter() - start) * 1000)
    samples = samples[2:]
    return {"cli_median_ms": round(statistics.median(samples), 1), "cli_min_ms": round(min(samples), 1),
            "cli_runs": len(samples)}


def official_command(tree: Tree, runs: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.interop.reference import ReferenceUnavailable, run_reference

    samples = []
    try:
        for _ in range(runs + 2):
            start = time.perf_counter()
            done = run_reference(["projects", "sql", "select 1"], env=tree.env, cwd=tree.cwd)
            samples.append((time.perf_counter() - start) * 1000)
            if done.code != 0:
                return {"unavailable": f"official CLI failed: {done.stderr[-500:]}"}
    except ReferenceUnavailable as exc:
        return {"unavailable": str(exc)}
    samples = samples[2:]
    return {"cli_median_ms": round(statistics.median(samples), 1), "cli_min_ms": round(min(samples), 1),
            "cli_runs": len(samples)}


def export(ref: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref to compare with")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="run402-bench-sql-"))
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
                            capture_output=True, text=True, check=True).stdout.strip()
    trees = [Tree("current", ROOT, work / "current"),
             Tree(f"baseline {commit}", export(args.baseline, work / "baseline-src"), work / "baseline")]
    result: dict[str, Any] = {"machine": {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}}
    try:
        for tree in trees:
            log(f"{tree.label}: starting its gateway and provisioning a project")
            project = tree.start()
            log(f"{tree.label}: {args.requests} server-side requests, {args.runs} whole commands")
            figures = server_side(tree.env["RUN402_API_BASE"], project, args.requests)
            figures.update(whole_command(tree, args.runs))
            result[tree.label] = figures
            if tree is trees[0]:
                log("official CLI: the same command on the current gateway")
                result["official_cli"] = official_command(tree, args.runs)
            tree.stop()
    finally:
        for tree in trees:
            tree.stop()
            try:
                sys.path.insert(0, str(ROOT))
                from run402_cli.local.runtime.pgcluster import PgCluster

                PgCluster(Path(tree.env["RUN402_LOCAL_DIR"])).destroy()
            except Exception:
                pass
        shutil.rmtree(work, ignore_errors=True)
    now, before = result["current"], result[trees[1].label]
    result["ratio_current_over_baseline"] = {
        "server_p50": round(now["server_p50_ms"] / before["server_p50_ms"], 2),
        "cli_median": round(now["cli_median_ms"] / before["cli_median_ms"], 2),
    }
    if "cli_median_ms" in result["official_cli"]:
        result["ratio_current_over_official_cli"] = round(
            now["cli_median_ms"] / result["official_cli"]["cli_median_ms"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
