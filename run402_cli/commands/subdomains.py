"""`run402 subdomains claim|list|delete`, with the project's service key.

A claimed subdomain follows the project's latest activated release. `claim` defaults to the
deployment `sites deploy*` saved last (`last_deployment_id`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import typer

from run402_cli import output
from run402_cli.commands._options import client, group, project_opt, resolve_project
from run402_cli.errors import LocalError, UsageError

app = group(help="Subdomains: claim <name>.<domain> for a project's site, list and release them.")

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")


def _name(value: Optional[str], usage: str) -> str:
    if not value:
        raise UsageError("Missing <name>.", hint=usage)
    if not 3 <= len(value) <= 63 or not _NAME.match(value):
        raise UsageError(
            f"Invalid subdomain name {value[:80]!r}: 3-63 characters, lowercase letters, digits and "
            "hyphens, starting and ending with a letter or digit.",
            code="BAD_USAGE", hint="e.g. run402 subdomains claim my-app",
            details={"name": value[:80], "pattern": _NAME.pattern, "min_length": 3, "max_length": 63},
        )
    return value


@dataclass(frozen=True)
class ClaimOptions:
    name: str
    deployment_id: str
    project_id: str


@app.command("claim")
def claim(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, metavar="NAME", help="The subdomain, e.g. my-app."),
    project: Optional[str] = project_opt(),
    deployment: Optional[str] = typer.Option(
        None, "--deployment", help="dpl_... (default: the last deployment of sites deploy*)."),
) -> None:
    """Claim a subdomain for the project's site; it follows every later deploy.

    Example: run402 subdomains claim my-app
    """
    usage = "run402 subdomains claim <name> [--deployment dpl_...]"
    sub = _name(name, usage)
    project_id, entry = resolve_project(ctx, project)
    deployment_id = deployment or entry.get("last_deployment_id")
    if not deployment_id:
        raise LocalError(
            "no deployment_id specified and no recent deployment found.",
            code="NO_DEPLOYMENT",
            hint="Deploy a site first (run402 sites deploy-dir <dir>) or pass --deployment <id>.",
            details={"project_id": project_id},
            next_actions=[{"action": "deploy_site_first"}],
        )
    run_claim(ClaimOptions(name=sub, deployment_id=deployment_id, project_id=project_id), ctx)


def run_claim(opts: ClaimOptions, ctx: typer.Context) -> None:
    from run402_cli.api import subdomains

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = subdomains.claim(c, entry["service_key"], opts.name, opts.deployment_id)
    output.emit(data)


@dataclass(frozen=True)
class ListOptions:
    project_id: Optional[str] = None


@app.command("list")
def list_(ctx: typer.Context, project: Optional[str] = project_opt()) -> None:
    """List the project's subdomains.

    Example: run402 subdomains list
    """
    opts = ListOptions(project_id=project)
    resolve_project(ctx, opts.project_id)
    run_list(opts, ctx)


def run_list(opts: ListOptions, ctx: typer.Context) -> None:
    from run402_cli.api import subdomains

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        data = subdomains.list_(c, entry["service_key"])
    output.emit(data)


@dataclass(frozen=True)
class DeleteOptions:
    name: str
    project_id: str


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, metavar="NAME", help="The subdomain to release."),
    confirm: bool = typer.Option(False, "--confirm", help="Required: releasing takes the name offline."),
    project: Optional[str] = project_opt(),
) -> None:
    """Release a subdomain (it stops serving at once). Requires --confirm.

    Example: run402 subdomains delete my-app --confirm
    """
    sub = _name(name, "run402 subdomains delete <name> --confirm")
    if not confirm:
        raise UsageError(
            f"Destructive: releasing subdomain '{sub}' makes it available for any other project to "
            "claim. This is irreversible. Re-run with --confirm to proceed.",
            code="CONFIRMATION_REQUIRED", hint=f"run402 subdomains delete {sub} --confirm",
            details={"name": sub},
        )
    project_id, _ = resolve_project(ctx, project)
    run_delete(DeleteOptions(name=sub, project_id=project_id), ctx)


def run_delete(opts: DeleteOptions, ctx: typer.Context) -> None:
    from run402_cli.api import subdomains

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        subdomains.delete(c, entry["service_key"], opts.name)
    output.emit({"status": "ok", "message": f"Subdomain '{opts.name}' released."}, compact=True)
