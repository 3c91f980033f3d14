"""`run402 service status|health`: the platform's own status and health (no auth, no local state).

Both verbs take no arguments, so `app.py` runs them on its fast path, without Typer; this
module therefore imports no Typer at the top, and builds its Typer group in `build()`, when
the command tree is wanted (any other argv, help, docs). Annotations are evaluated as
written here (no `from __future__ import annotations`): Typer reads them off the callbacks.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from run402_cli import output

if TYPE_CHECKING:
    import typer

    from run402_cli.config import Settings

HELP = "Service status and health of the Run402 API (no auth needed)."


@dataclass(frozen=True)
class StatusOptions:
    pass


@dataclass(frozen=True)
class HealthOptions:
    pass


def build() -> "typer.Typer":
    """The Typer group of `run402 service`."""
    import typer

    from run402_cli.commands._options import group, settings

    app = group(help=HELP)

    @app.command("status")
    def status(ctx: typer.Context) -> None:
        """Show the service status document (availability, capabilities, operator).

        Example: run402 service status
        """
        run_status(StatusOptions(), settings(ctx))

    @app.command("health")
    def health(ctx: typer.Context) -> None:
        """Check service health; a degraded service (HTTP 503) is an error with exit 1.

        Example: run402 service health
        """
        run_health(HealthOptions(), settings(ctx))

    return app


def run_status(opts: StatusOptions, settings: "Settings") -> None:
    from run402_cli.api import service
    from run402_cli.api.client import Client

    with Client(settings) as c:
        data = service.status(c)
    output.emit(data)


def run_health(opts: HealthOptions, settings: "Settings") -> None:
    from run402_cli.api import service
    from run402_cli.api.client import Client

    with Client(settings) as c:
        data = service.health(c)
    output.emit(data)
