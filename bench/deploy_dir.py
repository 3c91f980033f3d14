"""`sites deploy-dir` at scale: 10,000 files / 100 MB against a real local gateway.

Prints ONE JSON object (progress goes to stderr):
- wall time of the CLI (a fresh `run402 sites deploy-dir` process, as a user runs it) for the
  first deploy (cold hash cache), an unchanged re-deploy, and a one-file-changed re-deploy,
  with the bytes uploaded and objects PUT by each;
- local hashing throughput with the hash cache cold (MB/s; files are in the OS page cache,
  which we do not drop: that would disturb the whole machine), next to `sha256sum` on the same
  files in the same run, and blake3 for reference (why we do not use it: hashcache.py);
- the walk time with a warm hash cache (what an unchanged re-deploy pays locally);
- a breakdown of the unchanged re-deploy (interpreter + CLI import, eth-account import,
  walk + cache, spec build, plan request, commit request), measured in-process;
- the official Node CLI v2.10.0's first deploy of the same tree to a fresh project on the same
  gateway (it must upload everything too), and our first deploy's ratio to it.

    python bench/deploy_dir.py [--files 10000] [--mb 100] [--api-base URL] [--keep] [--no-official]

Without --api-base it starts its own gateway (`run402 local up --port 0` in a temp
RUN402_LOCAL_DIR) and removes it at the end. Config and hash cache live in temp dirs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

EXTS = (".html", ".css", ".js", ".json", ".png", ".woff2", ".svg", ".bin")


def log(msg: str) -> None:
    sys.stderr.write(f"[bench] {msg}\n")
    sys.stderr.flush()


def launcher() -> list[str]:
    script = Path(sys.executable).with_name("run402")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "run402_cli"]


def run402(args: list[str], env: dict[str, str], *, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([*launcher(), *args], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise SystemExit(f"run402 {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def build_tree(root: Path, n_files: int, total_bytes: int, seed: int = 402) -> int:
    """Deterministic pseudo-random files: ~90% small (0.2-6 KB), ~9.5% medium (20-120 KB),
    ~0.5% large (0.5-4 MB), scaled so the total is exactly `total_bytes`."""
    rng = random.Random(seed)
    sizes = []
    for _ in range(n_files):
        r = rng.random()
        if r < 0.90:
            sizes.append(rng.randint(200, 6_000))
        elif r < 0.995:
            sizes.append(rng.randint(20_000, 120_000))
        else:
            sizes.append(rng.randint(500_000, 4_000_000))
    scale = total_bytes / sum(sizes)
    sizes = [max(1, int(s * scale)) for s in sizes]
    sizes[-1] += total_bytes - sum(sizes)
    blob = rng.randbytes(max(sizes) + n_files)  # slice distinct windows: cheap and all distinct
    per_dir = 100
    for i, size in enumerate(sizes):
        d = root / f"d{i // per_dir:03d}" / f"s{(i // 10) % 10}"
        if i % 10 == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:05d}{EXTS[i % len(EXTS)]}").write_bytes(i.to_bytes(4, "big") + blob[i : i + size - 4]
                                                          if size > 4 else i.to_bytes(4, "big")[:size])
    (root / "index.html").write_bytes(b"<!doctype html><h1>bench</h1>")
    past = time.time() - 3600  # settled timestamps: nothing is "racily clean"
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (past, past))
    return sum(sizes) + len(b"<!doctype html><h1>bench</h1>")


def deploy(tree: Path, env: dict[str, str]) -> dict[str, Any]:
    start = time.perf_counter()
    proc = run402(["sites", "deploy-dir", str(tree)], env)
    wall = time.perf_counter() - start
    out = json.loads(proc.stdout)
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    return {
        "wall_s": round(wall, 3),
        "bytes_uploaded": out.get("bytes_uploaded"),
        "bytes_total": out.get("bytes_total"),
        "objects_put": sum(1 for e in events if e.get("type") == "content.upload.progress"),
        "objects_skipped": sum(1 for e in events if e.get("type") == "content.upload.skipped"),
        "deployment_id": out.get("deployment_id"),
    }


def official_first_deploy(tree: Path, env: dict[str, str]) -> dict[str, Any]:
    """The official CLI deploys the same tree to a new project (made active by provisioning)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.interop.reference import ReferenceUnavailable, run_reference

    run402(["projects", "provision", "--name", "bench-official"], env)
    start = time.perf_counter()
    try:
        done = run_reference(["sites", "deploy-dir", str(tree), "--quiet"], env=env, timeout=1800)
    except ReferenceUnavailable as exc:
        return {"unavailable": str(exc)}
    wall = time.perf_counter() - start
    if done.code != 0:
        return {"failed": done.stderr[-1000:]}
    out = json.loads(done.stdout)
    return {"wall_s": round(wall, 3), "bytes_uploaded": out.get("bytes_uploaded")}


def hashing(tree: Path, total_bytes: int) -> dict[str, Any]:
    from run402_cli.deploy.hashcache import HashCache, hash_walk
    from run402_cli.deploy.walk import walk_dir

    walk = walk_dir(tree)
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        hash_walk(walk, HashCache(walk.root, None))  # no cache: every file read and hashed
        runs.append(time.perf_counter() - start)
    ours = total_bytes / 1e6 / statistics.median(runs)

    listing = "\0".join(f.path for f in walk.files).encode()
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(["xargs", "-0", "-n", "2000", "sha256sum"], input=listing, stdout=subprocess.DEVNULL,
                       check=True)
        runs.append(time.perf_counter() - start)
    sha256sum = total_bytes / 1e6 / statistics.median(runs)

    blake = None
    try:
        import blake3

        start = time.perf_counter()
        for f in walk.files:
            with open(f.path, "rb") as fh:
                blake3.blake3(fh.read()).digest()
        blake = total_bytes / 1e6 / (time.perf_counter() - start)
    except ImportError:
        pass
    start = time.perf_counter()
    for f in walk.files:
        with open(f.path, "rb") as fh:
            hashlib.sha256(fh.read()).digest()
    seq = total_bytes / 1e6 / (time.perf_counter() - start)
    return {"hash_mb_s_cold_cache": round(ours, 1), "sha256sum_mb_s": round(sha256sum, 1),
            "sha256_single_thread_mb_s": round(seq, 1),
            "blake3_single_thread_mb_s": round(blake, 1) if blake else None}


def warm_walk(tree: Path, env: dict[str, str]) -> dict[str, Any]:
    from run402_cli.deploy.hashcache import HashCache, hash_walk
    from run402_cli.deploy.walk import walk_dir

    runs, hits = [], 0
    for _ in range(5):
        start = time.perf_counter()
        walk = walk_dir(tree)
        _, stats = hash_walk(walk, HashCache.for_root(walk.root, env))
        runs.append(time.perf_counter() - start)
        hits = stats.hits
    return {"warm_walk_and_hash_s": round(statistics.median(runs), 4), "warm_cache_hits": hits}


def breakdown(tree: Path, env: dict[str, str]) -> dict[str, Any]:
    """Where an unchanged re-deploy spends its time, measured piece by piece in-process."""
    out: dict[str, Any] = {}
    start = time.perf_counter()
    subprocess.run([*launcher(), "sites", "--help"], env=env, stdout=subprocess.DEVNULL, check=True)
    out["cli_start_s"] = round(time.perf_counter() - start, 3)
    # SIWX signing (two requests per deploy) uses the lean signer, not eth-account: report both.
    code = "import time; t=time.perf_counter(); import eth_account; print(time.perf_counter()-t)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out["eth_account_import_s_not_on_this_path"] = round(float(proc.stdout), 3)
    code = ("import time; t=time.perf_counter(); from run402_cli.wallet import siwx_header; "
            "siwx_header(private_key='0x' + '11' * 32, api_base='http://127.0.0.1:1', path='/x'); "
            "print(time.perf_counter()-t)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    out["siwx_import_and_sign_s"] = round(float(proc.stdout), 3)

    old = dict(os.environ)
    os.environ.update(env)
    try:
        from run402_cli import config
        from run402_cli.api import deploy as api
        from run402_cli.api.client import Client
        from run402_cli.deploy.hashcache import HashCache, hash_walk
        from run402_cli.deploy.spec import site_release_from_walk
        from run402_cli.deploy.walk import walk_dir

        settings = config.Settings()
        project_id, entry = config.resolve_project(settings, None)
        t0 = time.perf_counter()
        walk = walk_dir(tree)
        t1 = time.perf_counter()
        hashes, _ = hash_walk(walk, HashCache.for_root(walk.root, env))
        t2 = time.perf_counter()
        release = site_release_from_walk(project_id, walk, hashes)
        t3 = time.perf_counter()
        client = Client(settings)

        body = json.dumps({"spec": release.spec}).encode()
        t4 = time.perf_counter()
        plan = api.plan(client, {"spec": release.spec})
        t5 = time.perf_counter()
        api.commit(client, plan["plan_id"])
        t6 = time.perf_counter()
        client.close()
    finally:
        os.environ.clear()
        os.environ.update(old)
    out.update({
        "walk_s": round(t1 - t0, 4), "hash_cache_s": round(t2 - t1, 4), "spec_build_s": round(t3 - t2, 4),
        "plan_request_s": round(t5 - t4, 3), "plan_body_bytes": len(body),
        "plan_response_missing_refs": len(plan.get("missing_content") or []),
        "commit_request_s": round(t6 - t5, 3),
    })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--api-base", help="reuse a running gateway instead of starting one")
    ap.add_argument("--keep", action="store_true", help="keep the temp dirs (and the gateway)")
    ap.add_argument("--no-official", action="store_true", help="skip the official CLI's deploy")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="run402-bench-deploy-"))
    local_dir = work / "local"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUN402_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # time running the code, not compiling it
    env.update(RUN402_CONFIG_DIR=str(work / "config"), RUN402_CACHE_DIR=str(work / "cache"),
               RUN402_LOCAL_DIR=str(local_dir))
    started_gateway = False
    result: dict[str, Any] = {"files": args.files + 1, "cpu_count": os.cpu_count()}
    try:
        tree = work / "site"
        log(f"building {args.files} files / {args.mb} MB in {tree}")
        start = time.perf_counter()
        total = build_tree(tree, args.files, int(args.mb * 1_000_000))
        result["tree_bytes"] = total
        result["tree_build_s"] = round(time.perf_counter() - start, 2)
        # The tree's own 100 MB on disk before anything is timed: else the gateway's syncfs at
        # its first content commit (same filesystem) writes them out inside our first deploy,
        # and the official CLI, deploying later, finds them written.
        os.sync()

        if args.api_base:
            api_base = args.api_base
        else:
            log("starting a local gateway")
            up = json.loads(run402(["local", "up", "--port", "0"], env).stdout)
            api_base, started_gateway = up["api_base"], True
        env["RUN402_API_BASE"] = api_base
        result["api_base"] = api_base
        log("funding a wallet and provisioning a project")
        run402(["init", "--json"], env)
        run402(["tier", "set", "prototype"], env)
        project = json.loads(run402(["projects", "provision", "--name", "bench"], env).stdout)
        result["project_id"] = project["project_id"]

        log("hashing throughput")
        result.update(hashing(tree, total))

        log("first deploy (cold hash cache)")
        result["first_deploy"] = deploy(tree, env)
        log("unchanged re-deploy")
        result["unchanged_redeploy"] = deploy(tree, env)
        runs = [deploy(tree, env)["wall_s"] for _ in range(3)]
        result["unchanged_redeploy_median_of_3_s"] = round(statistics.median(runs), 3)
        quiet = []
        for _ in range(3):
            start = time.perf_counter()
            run402(["sites", "deploy-dir", str(tree), "--quiet"], env)
            quiet.append(time.perf_counter() - start)
        result["unchanged_redeploy_quiet_median_s"] = round(statistics.median(quiet), 3)

        log("one file changed")
        victim = next(p for p in sorted((tree / "d042").rglob("*.css")))
        victim.write_bytes(victim.read_bytes() + b"/* changed */")
        past = time.time() - 60
        os.utime(victim, (past, past))
        result["one_file_changed_redeploy"] = deploy(tree, env)
        result["one_file_changed_bytes"] = victim.stat().st_size

        log("warm-cache walk and breakdown")
        result.update(warm_walk(tree, env))
        result["unchanged_breakdown"] = breakdown(tree, env)

        if not args.no_official:
            log("the official CLI's first deploy of the same tree, to a fresh project")
            theirs = official_first_deploy(tree, env)
            result["official_first_deploy"] = theirs
            if "wall_s" in theirs:
                result["first_deploy_ratio_ours_over_official"] = round(
                    result["first_deploy"]["wall_s"] / theirs["wall_s"], 2)
    finally:
        if started_gateway and not args.keep:
            log("stopping the gateway")
            run402(["local", "down"], env, check=False, timeout=120)
            try:
                from run402_cli.local.runtime.pgcluster import PgCluster

                PgCluster(local_dir).destroy()
            except Exception:
                pass
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
