"""`deploy apply` and `deploy resume`: a release spec to a live release (deploy/flow.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, List, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, project_opt, settings
from run402_cli.commands.deploy._app import app
from run402_cli.commands._options import read_file_flag
from run402_cli.commands.deploy._shared import check_operation_id, read_stdin_source
from run402_cli.errors import UsageError

if TYPE_CHECKING:
    from run402_cli.deploy.spec import Release



@dataclass(frozen=True)
class ApplyOptions:
    release: Release
    anon_key: Optional[str]
    source: str  # manifest | spec | stdin
    quiet: bool = False
    allow_warnings: bool = False
    allow_warning: tuple[str, ...] = field(default_factory=tuple)


@app.command("apply")
def apply_(
    ctx: typer.Context,
    manifest: Optional[List[str]] = typer.Option(None, "--manifest", help="Read the release spec from this JSON file."),
    spec: Optional[List[str]] = typer.Option(None, "--spec", help="The release spec as inline JSON."),
    project: Optional[str] = project_opt(),
    quiet: bool = typer.Option(False, "--quiet", help="No progress events on stderr (the result still goes to stdout)."),
    final_only: bool = typer.Option(False, "--final-only", help="Same as --quiet."),
    allow_warning: Optional[List[str]] = typer.Option(
        None, "--allow-warning", help="Accept a plan warning with this code (repeatable)."),
    allow_warnings: bool = typer.Option(False, "--allow-warnings", help="Accept every plan warning that requires confirmation."),
) -> None:
    """Deploy a release spec (site, database migrations + expose, subdomains, routes) in one step.

    The spec comes from --manifest <file>, --spec '<json>', or stdin (exactly one). Relative
    {"path": ...} entries resolve against the manifest's directory (--manifest) or the current
    directory. Only bytes the gateway does not already have are uploaded.

    Example: run402 deploy apply --manifest release.json
    """
    import json
    import os

    from run402_cli import config
    from run402_cli.deploy import spec as specs

    for flag, values in (("--manifest", manifest), ("--spec", spec)):
        if values and len(values) > 1:
            raise UsageError(f"{flag} may only be provided once", details={"flag": flag})
    manifest_path = manifest[0] if manifest else None
    spec_text = spec[0] if spec else None
    stdin_reader = read_stdin_source()
    sources = [s for s, v in (("--manifest", manifest_path), ("--spec", spec_text), ("stdin", stdin_reader))
               if v is not None]
    if len(sources) > 1:
        raise UsageError("Only one deploy manifest source may be provided: --spec, --manifest, or stdin.",
                         details={"sources": sources})
    if not sources:
        raise UsageError("Missing release spec: pass --manifest <file>, --spec '<json>', or pipe it on stdin.",
                         hint="run402 deploy apply --manifest release.json")
    source = "manifest" if manifest_path is not None else ("spec" if spec_text is not None else "stdin")
    details: dict[str, Any] = {"source": source}
    if manifest_path is not None:
        raw, full = read_file_flag(manifest_path, "--manifest", failure="Failed to read manifest")
        details["path"] = full
        base_dir = os.path.dirname(full)
    else:
        raw = spec_text if spec_text is not None else stdin_reader()  # type: ignore[misc]
        base_dir = os.getcwd()
    try:
        doc = json.loads(raw or "")
    except ValueError as exc:
        raise UsageError(f"Manifest is not valid JSON: {exc}",
                         details={"source": source, "parse_error": str(exc)}) from None
    specs.reject_unsafe_secrets(doc, details)
    specs.check_manifest_not_empty(doc, {"field": source, **({"path": details["path"]} if "path" in details else {})})
    s = settings(ctx)
    release = specs.normalize_manifest(
        doc, base_dir=base_dir, project=project,
        default_project=lambda: config.resolve_project(s, None)[0])
    _, entry = config.resolve_project(s, release.project)
    config.require_allowance(s)
    codes = tuple(allow_warning or ())
    for code in codes:
        if not code.strip():
            raise UsageError("--allow-warning needs a warning code", code="BAD_FLAG",
                             details={"flag": "--allow-warning"})
    run_apply(ApplyOptions(release=release, anon_key=entry.get("anon_key"), source=source,
                           quiet=quiet or final_only, allow_warnings=allow_warnings,
                           allow_warning=codes), ctx)


def run_apply(opts: ApplyOptions, ctx: typer.Context) -> None:
    from run402_cli.deploy import flow, preflight
    from run402_cli.deploy.guidance import enhance_warning_error

    c = client(ctx)
    try:
        # the tier's function caps, before anything is planned or uploaded (§1.10)
        preflight.check_release(c, opts.release.spec, anon_key=opts.anon_key)
        with output.event_sink(opts.quiet) as emit:
            outcome = flow.apply(c, opts.release, anon_key=opts.anon_key, on_event=emit,
                                 allow_warnings=opts.allow_warnings,
                                 allowed_warning_codes=opts.allow_warning)
    except flow.DeployError as err:
        if err.body.get("resource") == "warnings":
            enhance_warning_error(err)
        raise
    finally:
        c.close()
    output.emit({"status": "ok", **outcome.result})


# --- resume ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResumeOptions:
    operation_id: str
    quiet: bool = False


@app.command("resume")
def resume(
    ctx: typer.Context,
    operation_id: Optional[str] = typer.Argument(None, metavar="OPERATION_ID", help="op_..."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress events on stderr."),
) -> None:
    """Resume a deploy stuck in activation_pending / schema_settling (SQL is never replayed).

    Example: run402 deploy resume op_0123abcd
    """
    from run402_cli import config

    op = check_operation_id(operation_id, "run402 deploy resume <operation_id>")
    config.require_allowance(settings(ctx))
    run_resume(ResumeOptions(operation_id=op, quiet=quiet), ctx)


def run_resume(opts: ResumeOptions, ctx: typer.Context) -> None:
    from run402_cli.deploy import flow

    ks = settings(ctx).keystore()

    def anon_key_for(project_id: Optional[str]) -> Optional[str]:
        entry = ks.get(project_id) if project_id else None
        return entry.get("anon_key") if entry else None

    with client(ctx) as c:
        with output.event_sink(opts.quiet) as emit:
            result = flow.resume(c, opts.operation_id, anon_key_for=anon_key_for, on_event=emit)
    output.emit({"status": "ok", **result})
