"""Start-up time of the CLI, as an agent pays it: one fresh process per command.

Why: agents run many short commands, so start-up is most of their wall time (STYLE §5.4). This
prints one JSON object: median and min wall time (ms) of each command over --runs runs, the
delta over a bare `python -c pass`, and whether `--help` imported eth_account (it must not).

    python bench/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROBE = (
    "import contextlib, io, sys\n"
    "from run402_cli.app import run\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    run(['--help'])\n"
    "print(sorted(m for m in sys.modules if m == 'eth_account' or m.startswith('eth_account.')))\n"
)


def launcher() -> tuple[list[str], str]:
    """The `run402` console script next to this interpreter (what users run), else `-m`."""
    script = Path(sys.executable).with_name("run402")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], f"console script {script}"
    return [sys.executable, "-m", "run402_cli"], f"{sys.executable} -m run402_cli"


def timed(argv: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        samples.append((time.perf_counter() - start) * 1000)
        if proc.returncode != 0:
            raise SystemExit(f"{argv} exited {proc.returncode}: {proc.stderr.decode()[:500]}")
    return {"median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    cli, how = launcher()
    with tempfile.TemporaryDirectory(prefix="run402-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUN402_")}
        env.update(RUN402_CONFIG_DIR=os.path.join(tmp, "config"), RUN402_LOCAL_DIR=os.path.join(tmp, "local"))
        # Bytecode as an installed package has it (pip compiles on install): with
        # PYTHONDONTWRITEBYTECODE set, every run would time compiling the sources instead.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "run402 --version": cli + ["--version"],
            "run402 --help": cli + ["--help"],
            "run402 projects list": cli + ["projects", "list"],
        }
        results = {name: timed(argv, env, args.runs) for name, argv in cases.items()}
        probe = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    base = results["python -c pass"]["median_ms"]
    for name, r in results.items():
        if name != "python -c pass":
            r["delta_vs_python_ms"] = round(r["median_ms"] - base, 1)
    print(json.dumps({
        "runs": args.runs,
        "launcher": how,
        "python": sys.version.split()[0],
        "results": results,
        "help_imports_eth_account": None if probe.returncode else probe.stdout.strip() != "[]",
        "help_probe_error": probe.stderr.strip()[-300:] or None,
    }, indent=2))


if __name__ == "__main__":
    main()
