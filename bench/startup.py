"""Start-up time of the CLI, as an agent pays it: one fresh process per command, ours beside
the official Node CLI v2.10.0 in the same run.

Why: agents run many short commands, so start-up is most of their wall time. This prints one
JSON object: for each command the median and min wall time (ms) over --runs runs of ours and
of the official CLI, and their ratio; bare `python -c pass` and `node -e 0` as floors; and
whether `--help` imported eth_account (it must not).

- offline commands: `--version`, `--help`, `projects list` (an empty keystore);
- against a local gateway this script starts (`run402 local up --port 0` in a temp dir, with a
  funded prototype-tier wallet): `service status` (one unauthenticated GET) and `tier status`
  (one wallet-signed GET). The official CLI reads chain balances from public RPCs before a
  signed call; it runs with the interop tests' offline chain mock (tests/interop/
  offline_chain.mjs) preloaded, which answers from the gateway's ledger at once.

Runs are interleaved (ours, theirs, ours, ...) so a drifting machine moves both alike.

    python bench/startup.py [--runs 15] [--no-gateway]
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

ROOT = Path(__file__).resolve().parent.parent

PROBE = (
    "import contextlib, io, sys\n"
    "from run402_cli.app import run\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    run(['--help'])\n"
    "print(sorted(m for m in sys.modules if m == 'eth_account' or m.startswith('eth_account.')))\n"
)


def log(msg: str) -> None:
    print(f"[startup] {msg}", file=sys.stderr, flush=True)


def launcher() -> tuple[list[str], str]:
    """The `run402` console script next to this interpreter (what users run), else `-m`."""
    script = Path(sys.executable).with_name("run402")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], f"console script {script}"
    return [sys.executable, "-m", "run402_cli"], f"{sys.executable} -m run402_cli"


def official() -> tuple[list[str] | None, str, str | None]:
    """(argv prefix of the official CLI, how, its offline-chain preload) or (None, why, None)."""
    sys.path.insert(0, str(ROOT))
    try:
        from tests.interop.reference import ReferenceUnavailable, reference_cli
    except ImportError as exc:
        return None, f"unavailable: {exc}", None
    try:
        cli = reference_cli()
    except ReferenceUnavailable as exc:
        return None, f"unavailable: {exc}", None
    preload = f"--import={(ROOT / 'tests' / 'interop' / 'offline_chain.mjs').as_uri()}"
    return ["node", str(cli)], f"node {cli}", preload


def run_once(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{argv} exited {proc.returncode}: {proc.stderr.decode()[:500]}")
    return elapsed


def summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1)}


def measure(cases: dict[str, list[tuple[list[str], dict[str, str]]]], runs: int) -> dict[str, Any]:
    """cases: name -> [(argv, env) of ours, (argv, env) of theirs?]; interleaved runs."""
    samples: dict[str, list[list[float]]] = {name: [[] for _ in sides] for name, sides in cases.items()}
    for name, sides in cases.items():  # one warm-up each: page cache, bytecode
        for argv, env in sides:
            run_once(argv, env)
    for _ in range(runs):
        for name, sides in cases.items():
            for i, (argv, env) in enumerate(sides):
                samples[name][i].append(run_once(argv, env))
    out: dict[str, Any] = {}
    for name, sides in samples.items():
        if len(sides) == 1:  # a floor: one command, nobody's CLI
            out[name] = summary(sides[0])
            continue
        row: dict[str, Any] = {"ours": summary(sides[0])}
        if len(sides) > 1:
            row["official"] = summary(sides[1])
            row["ratio_ours_over_official"] = round(row["ours"]["median_ms"] / row["official"]["median_ms"], 2)
        out[name] = row
    return out


def start_gateway(cli: list[str], env: dict[str, str]) -> str:
    def step(*args: str) -> str:
        proc = subprocess.run(cli + list(args), env=env, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"run402 {' '.join(args)} failed: {proc.stderr[-1000:]}")
        return proc.stdout

    api = json.loads(step("local", "up", "--port", "0"))["api_base"]
    env["RUN402_API_BASE"] = api
    for args in (("allowance", "create"), ("allowance", "fund"), ("tier", "set", "prototype")):
        step(*args)
    return api


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-gateway", action="store_true", help="only the offline commands")
    args = parser.parse_args()

    cli, how = launcher()
    theirs, their_how, preload = official()
    tmp = tempfile.mkdtemp(prefix="run402-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUN402_", "NODE_OPTIONS"))}
    env.update(RUN402_CONFIG_DIR=os.path.join(tmp, "config"), RUN402_LOCAL_DIR=os.path.join(tmp, "local"))
    # Bytecode as an installed package has it (pip compiles on install): with
    # PYTHONDONTWRITEBYTECODE set, every run would time compiling the sources instead.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    up = False
    try:
        def pair(*words: str, chain: bool = False) -> list[tuple[list[str], dict[str, str]]]:
            sides = [(cli + list(words), env)]
            if theirs is not None:
                their_env = dict(env, NODE_OPTIONS=preload) if chain and preload else env
                sides.append((theirs + list(words), their_env))
            return sides

        floors = {"python -c pass": [([sys.executable, "-c", "pass"], env)],
                  "node -e 0": [(["node", "-e", "0"], env)]}
        log(f"offline commands, {args.runs} interleaved runs each")
        results = measure({**floors, "--version": pair("--version"), "--help": pair("--help"),
                           "projects list": pair("projects", "list")}, args.runs)
        if not args.no_gateway:
            log("starting a local gateway with a funded prototype-tier wallet")
            start_gateway(cli, env)
            up = True
            log(f"gateway commands, {args.runs} interleaved runs each")
            results.update(measure({"service status": pair("service", "status"),
                                    "tier status": pair("tier", "status", chain=True)}, args.runs))
        probe = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    finally:
        if up:
            subprocess.run(cli + ["local", "down"], env=env, capture_output=True, timeout=120)
            try:
                sys.path.insert(0, str(ROOT))
                from run402_cli.local.runtime.pgcluster import PgCluster

                PgCluster(Path(env["RUN402_LOCAL_DIR"])).destroy()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({
        "runs": args.runs,
        "ours": how,
        "official": their_how,
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "results": results,
        "help_imports_eth_account": None if probe.returncode else probe.stdout.strip() != "[]",
        "help_probe_error": probe.stderr.strip()[-300:] or None,
    }, indent=2))


if __name__ == "__main__":
    main()
