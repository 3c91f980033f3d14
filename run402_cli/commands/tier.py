"""`run402 tier status|set`: the wallet's subscription tier (SIWX; `set` pays with x402).

`tier status` takes no arguments, so `app.py` runs it on its fast path, without Typer; this
module therefore imports no Typer at the top, and builds its Typer group in `build()` (see
commands/service.py).
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from run402_cli import output
from run402_cli.errors import Run402Error, UsageError

if TYPE_CHECKING:
    import typer

    from run402_cli.config import Settings

TIERS = ("prototype", "hobby", "team")

HELP = "Your wallet's tier subscription: status, and set (pays with x402)."


@dataclass(frozen=True)
class StatusOptions:
    pass


@dataclass(frozen=True)
class SetOptions:
    tier: str


def build() -> "typer.Typer":
    """The Typer group of `run402 tier`."""
    import typer

    from run402_cli.commands._options import group, settings

    app = group(help=HELP)

    @app.command("status")
    def status(ctx: typer.Context) -> None:
        """Show the wallet's tier, lease dates and pool usage.

        Example: run402 tier status
        """
        run_status(StatusOptions(), settings(ctx))

    @app.command("set")
    def set_(
        ctx: typer.Context,
        tier: str = typer.Argument(..., metavar="TIER", help="prototype, hobby or team."),
    ) -> None:
        """Subscribe to, renew or change the tier (paid automatically with x402).

        Example: run402 tier set prototype
        """
        if tier not in TIERS:
            raise UsageError(
                f"Unknown tier {tier!r}. Allowed: {', '.join(TIERS)}",
                code="BAD_USAGE",
                hint="Run: run402 tier set prototype   (prices: run402 projects quote)",
                details={"value": tier, "allowed": list(TIERS)},
            )
        run_set(SetOptions(tier=tier), settings(ctx))

    return app


def run_status(opts: StatusOptions, settings: "Settings") -> None:
    from run402_cli import config
    from run402_cli.api import tiers
    from run402_cli.api.client import Client

    c = Client(settings)
    config.require_allowance(settings)
    try:
        data = tiers.status(c)
    finally:
        c.close()
    output.emit(data)


def run_set(opts: SetOptions, settings: "Settings") -> None:
    from run402_cli import config
    from run402_cli.api import tiers
    from run402_cli.api.client import Client

    c = Client(settings)
    config.require_allowance(settings)
    try:
        result = tiers.set_tier(c, opts.tier)
        try:
            after: Any = tiers.status(c)
        except Run402Error:
            after = None  # the refetch is best-effort: the purchase already succeeded
    finally:
        c.close()
    out = dict(result) if isinstance(result, dict) else {"result": result}
    out["status_after"] = after
    output.emit(out)
