"""`run402 service status|health`: the platform's own status and health (no auth, no local state)."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from run402_cli import output
from run402_cli.commands._options import client, group

app = group(help="Service status and health of the Run402 API (no auth needed).")


@dataclass(frozen=True)
class StatusOptions:
    pass


@dataclass(frozen=True)
class HealthOptions:
    pass


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the service status document (availability, capabilities, operator).

    Example: run402 service status
    """
    run_status(StatusOptions(), ctx)


def run_status(opts: StatusOptions, ctx: typer.Context) -> None:
    from run402_cli.api import service

    with client(ctx) as c:
        data = service.status(c)
    output.emit(data)


@app.command("health")
def health(ctx: typer.Context) -> None:
    """Check service health; a degraded service (HTTP 503) is an error with exit 1.

    Example: run402 service health
    """
    run_health(HealthOptions(), ctx)


def run_health(opts: HealthOptions, ctx: typer.Context) -> None:
    from run402_cli.api import service

    with client(ctx) as c:
        data = service.health(c)
    output.emit(data)
