"""`run402 deploy apply|resume|list|events|release|diagnose|resolve`: the unified deploy
primitive (spec api-deploy §1, §8).

`apply` validates and normalizes the manifest completely (JSON, secret values, empty
manifest, unknown fields, hostile paths, file entries hashed) before anything touches the
network; then plan -> upload what is missing -> commit -> poll (`deploy/flow.py`). Events go
to stderr as JSON lines (a progress bar on a terminal), `--quiet` silences them, and the
result goes to stdout.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, List, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, group, project_opt, resolve_project, settings
from run402_cli.errors import UsageError

if TYPE_CHECKING:
    from run402_cli.deploy.spec import Release

app = group(help="Unified deploy: apply a release spec, resume, inspect operations, releases and URLs.")
release_app = group(help="Inspect release inventories and diffs.")
app.add_typer(release_app, name="release")

__all__ = ["app", "event_sink", "positive_int", "read_stdin_source"]


# --- shared with `sites` --------------------------------------------------------------------


def positive_int(value: Optional[str], flag: str) -> Optional[int]:
    """A strict decimal integer >= 1, or None when the flag is absent (BAD_FLAG otherwise)."""
    if value is None:
        return None
    if not value.isdigit() or not value.isascii() or int(value) < 1:
        raise UsageError(f"{flag} must be a positive integer.", code="BAD_FLAG",
                         details={"flag": flag, "value": value})
    return int(value)


def read_stdin_source() -> Optional[Callable[[], str]]:
    """A reader for stdin when it is a manifest source (a pipe or a redirected file), else None."""
    from run402_cli.deploy.spec import stdin_source

    return stdin_source(sys.stdin)


class _Events:
    """The DeployEvent sink: JSON lines on stderr, or a rich progress bar when stderr is a
    terminal, or nothing with --quiet. Use as a context manager around the deploy."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._progress: Any = None
        self._task: Any = None
        self._skipped = 0

    def __enter__(self) -> Optional[Callable[[dict[str, Any]], None]]:
        if self.quiet:
            return None
        if not sys.stderr.isatty():
            return output.progress
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), console=Console(stderr=True), transient=True)
        self._progress.start()
        self._task = self._progress.add_task("planning", total=None)
        return self._bar

    def _bar(self, event: dict[str, Any]) -> None:
        p, task, kind = self._progress, self._task, event.get("type")
        if kind == "plan.diff":
            summary = event.get("diff", {}).get("summary")
            p.update(task, description=f"planned{': ' + summary if summary else ''}")
        elif kind == "site.secret_files.skipped":
            for f in event.get("files", []):
                p.console.print(f"not deployed (secret): {f.get('path')} ({f.get('reason')})")
        elif kind == "plan.warnings":
            for w in event.get("warnings", []):
                p.console.print(f"warning {w.get('code')}: {w.get('message')}")
        elif kind == "content.upload.skipped":
            self._skipped += 1
            p.update(task, description=f"{self._skipped} unchanged")
        elif kind == "content.upload.progress":
            p.update(task, description=f"uploading {event.get('label')}", total=event.get("total"),
                     completed=event.get("done"))
        elif kind == "commit.phase":
            p.update(task, description=f"{event.get('phase')} {event.get('status')}")
        elif kind == "deploy.retry":
            p.console.print(f"retrying after {event.get('code')} (attempt {event.get('nextAttempt')})")
        elif kind == "ready":
            p.update(task, description="ready")

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()


def event_sink(quiet: bool) -> _Events:
    return _Events(quiet)


def _operation_id(value: Optional[str], usage: str) -> str:
    if not value:
        raise UsageError("Missing <operation_id>.", hint=usage)
    if not value.startswith("op_"):
        raise UsageError(f"Operation {value} not found: operation ids start with 'op_'.",
                         code="OPERATION_NOT_FOUND", hint="Run: run402 deploy list",
                         details={"operation_id": value})
    return value


# --- apply ----------------------------------------------------------------------------------


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
        raw, full = specs.read_manifest(manifest_path, file_codes=False)
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
    from run402_cli.deploy import flow
    from run402_cli.deploy.guidance import enhance_warning_error

    c = client(ctx)
    try:
        with event_sink(opts.quiet) as emit:
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

    op = _operation_id(operation_id, "run402 deploy resume <operation_id>")
    config.require_allowance(settings(ctx))
    run_resume(ResumeOptions(operation_id=op, quiet=quiet), ctx)


def run_resume(opts: ResumeOptions, ctx: typer.Context) -> None:
    from run402_cli.deploy import flow

    ks = settings(ctx).keystore()

    def anon_key_for(project_id: Optional[str]) -> Optional[str]:
        entry = ks.get(project_id) if project_id else None
        return entry.get("anon_key") if entry else None

    with client(ctx) as c:
        with event_sink(opts.quiet) as emit:
            result = flow.resume(c, opts.operation_id, anon_key_for=anon_key_for, on_event=emit)
    output.emit({"status": "ok", **result})


# --- list / events --------------------------------------------------------------------------


@dataclass(frozen=True)
class ListOptions:
    project_id: Optional[str] = None
    limit: Optional[int] = None


@app.command("list")
def list_(
    ctx: typer.Context,
    project: Optional[str] = project_opt(),
    limit: Optional[str] = typer.Option(None, "--limit", help="At most this many operations (positive integer)."),
) -> None:
    """List a project's recent deploy operations, newest first.

    Example: run402 deploy list --limit 5
    """
    from run402_cli import config

    opts = ListOptions(project_id=project, limit=positive_int(limit, "--limit"))
    resolve_project(ctx, opts.project_id)
    config.require_allowance(settings(ctx))
    run_list(opts, ctx)


def run_list(opts: ListOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = api.list_operations(c, entry.get("anon_key"), limit=opts.limit)
    data = data if isinstance(data, dict) else {}
    output.emit({"status": "ok", "operations": data.get("operations", []), "cursor": data.get("cursor")})


@dataclass(frozen=True)
class EventsOptions:
    operation_id: str
    project_id: Optional[str] = None


@app.command("events")
def events(
    ctx: typer.Context,
    operation_id: Optional[str] = typer.Argument(None, metavar="OPERATION_ID", help="op_..."),
    project: Optional[str] = project_opt(),
) -> None:
    """Fetch the recorded event stream of a deploy operation.

    Example: run402 deploy events op_0123abcd
    """
    from run402_cli import config

    opts = EventsOptions(operation_id=_operation_id(operation_id, "run402 deploy events <operation_id>"),
                         project_id=project)
    resolve_project(ctx, opts.project_id)
    config.require_allowance(settings(ctx))
    run_events(opts, ctx)


def run_events(opts: EventsOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = api.operation_events(c, entry.get("anon_key"), opts.operation_id)
    output.emit({"status": "ok", **(data if isinstance(data, dict) else {"events": data})})


# --- release get / active / diff ------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseGetOptions:
    release_id: str
    project_id: Optional[str] = None
    site_limit: Optional[int] = None


@release_app.command("get")
def release_get(
    ctx: typer.Context,
    release_id: Optional[str] = typer.Argument(None, metavar="RELEASE_ID", help="rel_..."),
    project: Optional[str] = project_opt(),
    site_limit: Optional[str] = typer.Option(None, "--site-limit", help="At most this many site paths (gateway default 5000)."),
) -> None:
    """Show the inventory of one release: site paths, routes, migrations, subdomains.

    Example: run402 deploy release get rel_0123abcd
    """
    if not release_id:
        raise UsageError("Missing <release_id>.", hint="run402 deploy release get <release_id>")
    opts = ReleaseGetOptions(release_id=release_id, project_id=project,
                             site_limit=positive_int(site_limit, "--site-limit"))
    resolve_project(ctx, opts.project_id)
    run_release_get(opts, ctx)


def run_release_get(opts: ReleaseGetOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        release = api.get_release(c, entry.get("anon_key"), opts.release_id, site_limit=opts.site_limit)
    output.emit({"status": "ok", "release": release})


@dataclass(frozen=True)
class ReleaseActiveOptions:
    project_id: Optional[str] = None
    site_limit: Optional[int] = None


@release_app.command("active")
def release_active(
    ctx: typer.Context,
    project: Optional[str] = project_opt(),
    site_limit: Optional[str] = typer.Option(None, "--site-limit", help="At most this many site paths (gateway default 5000)."),
) -> None:
    """Show the live release inventory of the project (release_id null if none was activated).

    Example: run402 deploy release active
    """
    opts = ReleaseActiveOptions(project_id=project, site_limit=positive_int(site_limit, "--site-limit"))
    resolve_project(ctx, opts.project_id)
    run_release_active(opts, ctx)


def run_release_active(opts: ReleaseActiveOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        release = api.active_release(c, entry.get("anon_key"), site_limit=opts.site_limit)
    output.emit({"status": "ok", "release": release})


@dataclass(frozen=True)
class ReleaseDiffOptions:
    from_: str
    to: str
    project_id: Optional[str] = None
    limit: Optional[int] = None


@release_app.command("diff")
def release_diff(
    ctx: typer.Context,
    from_: Optional[str] = typer.Option(None, "--from", help="empty, active or rel_..."),
    to: Optional[str] = typer.Option(None, "--to", help="active or rel_..."),
    project: Optional[str] = project_opt(),
    limit: Optional[str] = typer.Option(None, "--limit", help="At most this many entries per site bucket (gateway default 1000)."),
) -> None:
    """Diff two releases: site paths, routes, functions, secrets, subdomains, migrations.

    Example: run402 deploy release diff --from empty --to active
    """
    if not from_ or not to:
        raise UsageError("Missing --from or --to release target.",
                         hint="run402 deploy release diff --from empty --to active")
    if to == "empty":
        raise UsageError("--to cannot be empty. Use active or a release id.",
                         details={"flag": "--to", "value": to})
    opts = ReleaseDiffOptions(from_=from_, to=to, project_id=project, limit=positive_int(limit, "--limit"))
    resolve_project(ctx, opts.project_id)
    run_release_diff(opts, ctx)


def run_release_diff(opts: ReleaseDiffOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        diff = api.diff_releases(c, entry.get("anon_key"), opts.from_, opts.to, limit=opts.limit)
    output.emit({"status": "ok", "diff": diff})


# --- diagnose / resolve ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResolveOptions:
    request: dict[str, Any]  # the normalized request (deploy/resolve.py)
    project_id: str
    send_path: bool = True  # host mode sends `path` only when --path was given


@app.command("diagnose")
def diagnose(
    ctx: typer.Context,
    url: Optional[List[str]] = typer.Argument(None, metavar="URL", help="The public URL, e.g. https://my-app.run402.com/about"),
    project: Optional[str] = project_opt(),
    method: str = typer.Option("GET", "--method", help="The HTTP method to diagnose."),
) -> None:
    """Explain how a public URL resolves against the live release (exit 0 even if it would not serve).

    Example: run402 deploy diagnose https://my-app.run402.com/about
    """
    from run402_cli.deploy.resolve import normalize_request

    usage = "run402 deploy diagnose --project prj_... https://example.com/path --method GET"
    if not url:
        raise UsageError("Missing <url>.", hint=usage)
    if len(url) > 1:
        raise UsageError("deploy diagnose accepts exactly one URL argument.", hint=usage)
    project_id, _ = resolve_project(ctx, project)
    run_resolve(ResolveOptions(request=normalize_request(project=project_id, url=url[0], method=method),
                               project_id=project_id), ctx)


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    project: Optional[str] = project_opt(),
    url: Optional[str] = typer.Option(None, "--url", help="An absolute http(s) public URL."),
    host: Optional[str] = typer.Option(None, "--host", help="A clean hostname (no scheme, path, query)."),
    path: Optional[str] = typer.Option(None, "--path", help="The URL path in host mode (starts with /)."),
    method: str = typer.Option("GET", "--method", help="The HTTP method to diagnose."),
) -> None:
    """Low-level URL diagnostics: --url, or --host [--path]; same output as diagnose.

    Example: run402 deploy resolve --host my-app.run402.com --path /about --method GET
    """
    from run402_cli.deploy.resolve import normalize_request

    if url is not None and (host is not None or path is not None):
        raise UsageError("Do not combine --url with --host or --path.",
                         details={"url": True, "host": host is not None, "path": path is not None})
    if url is None and host is None:
        raise UsageError("Missing resolve input. Pass --url <url> or --host <host> [--path /x].",
                         hint="run402 deploy resolve --project prj_... --url https://example.com/")
    project_id, _ = resolve_project(ctx, project)
    request = normalize_request(project=project_id, url=url, host=host, path=path, method=method)
    run_resolve(ResolveOptions(request=request, project_id=project_id,
                               send_path=url is not None or path is not None), ctx)


def run_resolve(opts: ResolveOptions, ctx: typer.Context) -> None:
    from run402_cli.api import deploy as api
    from run402_cli.deploy.resolve import build_summary

    _, entry = resolve_project(ctx, opts.project_id)
    req = opts.request
    with client(ctx) as c:
        resolution = api.resolve(c, entry.get("anon_key"), req["host"],
                                 path=req["path"] if opts.send_path else None, method=req.get("method"))
    summary = build_summary(resolution if isinstance(resolution, dict) else {}, req)
    output.emit({
        "status": "ok",
        "would_serve": summary["would_serve"],
        "diagnostic_status": summary["diagnostic_status"],
        "match": summary["match"],
        "summary": summary["summary"],
        "request": req,
        "warnings": summary["warnings"],
        "resolution": resolution,
        "next_steps": summary["next_steps"],
    })
