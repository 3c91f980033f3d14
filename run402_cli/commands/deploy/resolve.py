"""`deploy diagnose|resolve`: how a URL would be served, and why (deploy/resolve.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, project_opt, resolve_project
from run402_cli.commands.deploy._app import app
from run402_cli.errors import UsageError



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
