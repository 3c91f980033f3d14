"""`run402 sites deploy-dir|deploy`: static sites through the unified deploy.

Both are `deploy apply` with `{project, site: {replace: <every file>}}`: a full replace of the
static site (files absent from the directory leave the new release; other sections carry
forward). Only bytes the gateway does not have are uploaded; a re-deploy of an unchanged tree
uploads nothing, and thanks to the local hash cache (`deploy/hashcache.py`) reads nothing
either. Both save the deployment id as the project's `last_deployment_id` (what
`subdomains claim` defaults to).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, group, project_opt, settings
from run402_cli.errors import UsageError

if TYPE_CHECKING:
    from run402_cli.deploy.spec import Release
    from run402_cli.deploy.walk import WalkResult

app = group(help="Static sites: deploy a directory or a legacy files manifest.")

SMALL_DIR_THRESHOLD = 5


def _unsupported_target() -> UsageError:
    return UsageError("--target is unsupported by unified deploy v2 and would otherwise be ignored.",
                      code="UNSUPPORTED_OPTION", field="target", details={"flag": "--target"})


def _result(outcome: Any) -> dict[str, Any]:
    """`{deployment_id, url, bytes_uploaded?, bytes_total?}` from a deploy outcome (the official CLI's result shape)."""
    result = outcome.result
    urls = result.get("urls") or {}
    out: dict[str, Any] = {
        "deployment_id": urls.get("deployment_id") or result.get("release_id"),
        "url": urls.get("project") or urls.get("site") or "",
    }
    sa = (result.get("diff") or {}).get("static_assets")
    if isinstance(sa, dict):
        new = sa.get("newly_uploaded_cas_bytes")
        reused = sa.get("reused_cas_bytes")
        if isinstance(new, int):
            out["bytes_uploaded"] = new
            if isinstance(reused, int):
                out["bytes_total"] = new + reused
    return out


def _deploy(ctx: typer.Context, release: Release, anon_key: Optional[str], quiet: bool,
            skipped_secrets: Any = ()) -> Any:
    from run402_cli.deploy import flow
    from run402_cli.deploy.guidance import enhance_warning_error

    c = client(ctx)
    try:
        with output.event_sink(quiet) as emit:
            outcome = flow.apply(c, release, anon_key=anon_key, on_event=emit,
                                 skipped_secrets=skipped_secrets)
    except flow.DeployError as err:
        if err.body.get("resource") == "warnings":
            enhance_warning_error(err, command="run402 sites deploy-dir", allow_flags=False)
        raise
    finally:
        c.close()
    return outcome


def _save_deployment(ctx: typer.Context, project_id: str, deployment_id: Optional[str]) -> None:
    if deployment_id:
        settings(ctx).keystore().update_project(project_id, {"last_deployment_id": deployment_id})


# --- deploy-dir -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployDirOptions:
    path: str
    project_id: str
    anon_key: Optional[str]
    walk: WalkResult
    quiet: bool = False
    dry_run: bool = False


@app.command("deploy-dir")
def deploy_dir(
    ctx: typer.Context,
    path: Optional[str] = typer.Argument(None, metavar="PATH", help="The directory to deploy."),
    project: Optional[str] = project_opt(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress events on stderr."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Plan only: print the diff, upload and commit nothing."),
    confirm_prune: bool = typer.Option(
        False, "--confirm-prune",
        help=f"Required when PATH has fewer than {SMALL_DIR_THRESHOLD} files: the deploy replaces the whole site."),
    target: Optional[str] = typer.Option(None, "--target", hidden=True),
    inherit: bool = typer.Option(False, "--inherit", hidden=True),
) -> None:
    """Deploy a local directory as the project's static site (a full replace; unchanged files are not uploaded).

    Skips .git, node_modules, .DS_Store, .env*, private keys; refuses symlinks. Progress events
    go to stderr as JSON lines; the result goes to stdout.

    Example: run402 sites deploy-dir ./dist
    """
    from run402_cli import config
    from run402_cli.deploy.spec import check_release_path
    from run402_cli.deploy.walk import walk_dir

    if inherit:
        raise UsageError("--inherit is removed; the SDK now uploads only changed files automatically.")
    if not path:
        raise UsageError("Missing <path>.", hint="run402 sites deploy-dir <path> --project <id>")
    s = settings(ctx)
    project_id, entry = config.resolve_project(s, project)
    if target is not None:
        raise _unsupported_target()
    config.require_allowance(s)
    walk = walk_dir(path)
    for f in walk.files:  # hostile names fail here, before any hashing or network
        check_release_path(f.key, f"site.replace[{f.key!r}]", what="file name")
    count = len(walk.files)
    if count < SMALL_DIR_THRESHOLD and not confirm_prune and not dry_run:
        raise UsageError(
            f"sites deploy-dir would replace the entire site with {count} file(s) from {path}. Any "
            "files in the current release that are absent from this directory will be removed. Pass "
            "--confirm-prune to proceed, or --dry-run to preview the diff.",
            code="PRUNE_CONFIRMATION_REQUIRED",
            hint=f"run402 sites deploy-dir {path} --confirm-prune",
            details={"local_file_count": count, "threshold": SMALL_DIR_THRESHOLD, "dir": path},
        )
    run_deploy_dir(DeployDirOptions(path=path, project_id=project_id, anon_key=entry.get("anon_key"),
                                    walk=walk, quiet=quiet, dry_run=dry_run), ctx)


def run_deploy_dir(opts: DeployDirOptions, ctx: typer.Context) -> None:
    from run402_cli.deploy import flow
    from run402_cli.deploy.hashcache import HashCache, hash_walk
    from run402_cli.deploy.spec import site_release_from_walk

    hashes, _ = hash_walk(opts.walk, HashCache.for_root(opts.walk.root, settings(ctx).env))
    release = site_release_from_walk(opts.project_id, opts.walk, hashes, validate=False)
    if opts.dry_run:
        with client(ctx) as c:
            plan = flow.dry_run(c, release)
        output.emit({
            "status": "ok",
            "dry_run": True,
            "local_file_count": len(opts.walk.files),
            "plan_id": plan.get("plan_id"),
            "operation_id": plan.get("operation_id"),
            "manifest_digest": plan.get("manifest_digest"),
            "diff": plan["diff"],
            "warnings": plan["warnings"],
            "expected_events": plan.get("expected_events") or [],
            "missing_content_count": sum(1 for r in plan["missing_content"]
                                         if isinstance(r, dict) and not r.get("present")),
        })
        return
    outcome = _deploy(ctx, release, opts.anon_key, opts.quiet, opts.walk.secrets)
    out = _result(outcome)
    _save_deployment(ctx, opts.project_id, out["deployment_id"])
    output.emit({"status": "ok", **out})


# --- deploy (legacy manifest) ---------------------------------------------------------------


@dataclass(frozen=True)
class DeployOptions:
    project_id: str
    anon_key: Optional[str]
    files: dict[str, bytes]
    quiet: bool = False


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    manifest: Optional[str] = typer.Option(None, "--manifest", help="The manifest JSON file (else read from stdin)."),
    project: Optional[str] = project_opt(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress events on stderr."),
    target: Optional[str] = typer.Option(None, "--target", hidden=True),
    inherit: bool = typer.Option(False, "--inherit", hidden=True),
) -> None:
    """Deploy a static site from a files manifest: {"files": [{"file": "index.html", "data": "..."}]}.

    Entries take inline "data" (with "encoding": "base64" for binary) or a "path" relative to
    the manifest's directory (--manifest only). The same skip rules as deploy-dir apply.

    Example: run402 sites deploy --manifest site.json
    """
    import json
    import os

    from run402_cli import config
    from run402_cli.commands._options import read_file_flag, read_stdin_source
    from run402_cli.deploy.spec import legacy_site_files

    if inherit:
        raise UsageError("--inherit is removed; the SDK now uploads only changed files automatically.",
                         code="BAD_FLAG", details={"flag": "--inherit"})
    if target is not None:
        raise _unsupported_target()
    s = settings(ctx)
    project_id, entry = config.resolve_project(s, project)
    if manifest is not None:
        raw, full = read_file_flag(manifest, "--manifest")
        manifest_dir: Optional[str] = os.path.dirname(full)
    else:
        reader = read_stdin_source()
        if reader is None:
            raise UsageError("Missing manifest: pass --manifest <file> or pipe it on stdin.",
                             hint="run402 sites deploy --manifest site.json")
        raw = reader()
        manifest_dir = None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"Manifest is not valid JSON: {exc}",
                         details={"source": "manifest" if manifest else "stdin", "parse_error": str(exc)}) from None
    files = legacy_site_files(doc, manifest_dir)
    config.require_allowance(s)
    run_deploy(DeployOptions(project_id=project_id, anon_key=entry.get("anon_key"), files=files,
                             quiet=quiet), ctx)


def run_deploy(opts: DeployOptions, ctx: typer.Context) -> None:
    from run402_cli.deploy.spec import site_release_from_bytes

    release = site_release_from_bytes(opts.project_id, opts.files)
    outcome = _deploy(ctx, release, opts.anon_key, opts.quiet)
    out = _result(outcome)
    _save_deployment(ctx, opts.project_id, out["deployment_id"])
    output.emit(out)  # no "status": the official `sites deploy` prints the bare result
