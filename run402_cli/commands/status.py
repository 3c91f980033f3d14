"""`run402 status`: a read-only snapshot of the account. Every network
read is best-effort: a failure shows as null (or the local keystore), never as an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import typer

from run402_cli import output
from run402_cli.commands._options import StrictCommand, client, settings
from run402_cli.errors import Informational, Run402Error

TOP_LEVEL = True


@dataclass(frozen=True)
class StatusOptions:
    pass


def register(app: typer.Typer) -> None:
    app.command("status", cls=StrictCommand)(status)


def status(ctx: typer.Context) -> None:
    """Show allowance, tier, balances and projects in one JSON document.

    Example: run402 status
    """
    run_status(StatusOptions(), ctx)


def _tolerant(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Run402Error:
        return None


def run_status(opts: StatusOptions, ctx: typer.Context) -> None:
    from run402_cli.api import allowance as api_allowance
    from run402_cli.api import chain, projects, tiers

    s = settings(ctx)
    c = client(ctx)
    a = s.allowance()
    if a is None:
        c.close()
        raise Informational(
            {"status": "no_allowance", "message": "No agent allowance found. Run: run402 init"}
        )
    try:
        tier_info = _tolerant(lambda: tiers.status(c))
        account = _tolerant(lambda: api_allowance.billing_account(c, a.address))
        remote = _tolerant(lambda: projects.list_for_wallet(c, a.address))
    finally:
        c.close()

    tier = None
    if isinstance(tier_info, dict) and tier_info.get("tier"):
        tier = {"name": tier_info["tier"]}
        if "status" in tier_info:  # not in the SDK type; omitted when absent, as in Node
            tier["status"] = tier_info["status"]
        tier["expires"] = tier_info.get("lease_expires_at")

    billing = None
    if isinstance(account, dict) and account.get("exists") is not False:
        billing = {
            "available_usd_micros": account.get("available_usd_micros"),
            "held_usd_micros": account.get("held_usd_micros", 0),
        }

    if a.rail == "mpp":
        wallet_balance = None  # Tempo pathUSD is not readable from this client
    else:
        reads = [chain.usdc_balance_micros(s, net, a.address) for net in ("base-mainnet", "base-sepolia")]
        known = [r for r in reads if r is not None]
        wallet_balance = sum(known) if known else None

    store = s.keystore().load()
    if isinstance(remote, dict) and isinstance(remote.get("projects"), list):
        project_list = []
        for p in remote["projects"]:
            if not isinstance(p, dict):
                continue
            row = {"project_id": p.get("id")}
            row.update({k: v for k, v in p.items() if k != "id"})
            project_list.append(row)
    else:
        project_list = [{"project_id": pid} for pid in store["projects"]]

    output.emit(
        {
            "allowance": {"address": a.address, "funded": a.funded},
            "rail": a.rail,
            "tier": tier,
            "billing": billing,
            "wallet_balance_usd_micros": wallet_balance,
            "projects": project_list,
            "active_project": store.get("active_project_id"),
        }
    )
