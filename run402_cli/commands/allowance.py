"""`run402 allowance create|status|fund|balance|export`: the local agent wallet that pays.

The private key lives in allowance.json (mode 0600) and is never printed by any command.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer

from run402_cli import output
from run402_cli.commands._options import client, group, settings
from run402_cli.errors import Informational, LocalError, Run402Error

# How `fund` waits for the faucet's USDC to show on chain (tests shorten these).
POLL_INTERVAL_S = 1.0
POLL_TIMEOUT_S = 30.0

app = group(help="The agent allowance: a local wallet that pays for tiers (x402).")


@dataclass(frozen=True)
class CreateOptions:
    pass


@dataclass(frozen=True)
class StatusOptions:
    pass


@dataclass(frozen=True)
class FundOptions:
    poll_interval: float = POLL_INTERVAL_S
    poll_timeout: float = POLL_TIMEOUT_S


@dataclass(frozen=True)
class BalanceOptions:
    pass


@dataclass(frozen=True)
class ExportOptions:
    pass


def _usd(micros: int | None) -> str | None:
    if micros is None:
        return None
    return f"{micros / 1_000_000:.6f}".rstrip("0").rstrip(".")


@app.command("create")
def create(ctx: typer.Context) -> None:
    """Generate a new allowance (wallet) and store it locally (mode 0600).

    Example: run402 allowance create
    """
    run_create(CreateOptions(), ctx)


def run_create(opts: CreateOptions, ctx: typer.Context) -> None:
    from run402_cli import config, wallet

    s = settings(ctx)
    path = s.allowance_path
    # Any file there (even one that is not valid JSON) is kept: never overwrite a key.
    if s.allowance() is not None or path.exists():
        raise LocalError(
            "Agent allowance already exists.",
            code="ALLOWANCE_EXISTS",
            hint="Run: run402 allowance status",
            details={"path": str(path)},
        )
    private_key = wallet.generate_private_key()
    address = wallet.address_of(private_key).lower()  # the SDK's create writes lowercase
    config.write_allowance(
        path,
        {"address": address, "privateKey": private_key, "created": config.now_iso(), "funded": False},
    )
    output.emit(
        {
            "status": "ok",
            "address": address,
            "message": f"Agent allowance created. Stored locally at {path}",
        },
        compact=True,
    )


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the allowance address, rail and whether the faucet was used (local only).

    Example: run402 allowance status
    """
    run_status(StatusOptions(), ctx)


def run_status(opts: StatusOptions, ctx: typer.Context) -> None:
    s = settings(ctx)
    a = s.allowance()
    if a is None:
        raise Informational(
            {"status": "no_wallet", "message": "No agent allowance found. Run: run402 allowance create"}
        )
    out: dict[str, Any] = {"status": "ok", "address": a.address}
    if a.raw.get("created") is not None:
        out["created"] = a.raw["created"]
    out.update(
        configured=True, faucet_used=a.funded, rail=a.rail, path=str(s.allowance_path)
    )
    output.emit(out, compact=True)


@app.command("fund")
def fund(ctx: typer.Context) -> None:
    """Request test USDC from the faucet and wait (up to 30 s) for it on Base Sepolia.

    Example: run402 allowance fund
    """
    run_fund(FundOptions(poll_interval=POLL_INTERVAL_S, poll_timeout=POLL_TIMEOUT_S), ctx)


def run_fund(opts: FundOptions, ctx: typer.Context) -> None:
    from run402_cli import config
    from run402_cli.api import allowance as api_allowance
    from run402_cli.api import chain

    s = settings(ctx)
    c = client(ctx)
    a = config.require_allowance(s)
    if a.rail == "mpp":
        raise LocalError(
            "The Tempo (MPP) faucet is not available in this client.",
            code="FAUCET_FAILED",
            hint="Use the x402 rail (run402 init --switch-rail), or fund the address on "
            "Tempo Moderato yourself",
            details={"rail": "mpp"},
        )
    try:
        before = chain.usdc_balance_micros(s, "base-sepolia", a.address)
        data = api_allowance.faucet(c, a.address)
    finally:
        c.close()
    confirmed, now = chain.wait_for_balance(
        s, "base-sepolia", a.address, above=before or 0,
        interval=opts.poll_interval, timeout=opts.poll_timeout,
    )
    config.write_allowance(
        s.allowance_path, {**a.raw, "funded": True, "lastFaucet": config.now_iso()}
    )
    if confirmed:
        output.emit(
            {"address": a.address, "rail": a.rail, "onchain": {"base-sepolia_usd_micros": now}}
        )
        return
    body = data if isinstance(data, dict) else {}
    micros = body.get("amount_usd_micros")
    output.emit(
        {
            "status": "ok",
            "message": "Faucet request sent but balance not yet confirmed",
            "transactionHash": body.get("transaction_hash"),
            "amount": _usd(micros) if isinstance(micros, int) else None,
            "amountUsdMicros": micros,
            "token": body.get("token"),
            "network": body.get("network"),
        }
    )


@app.command("balance")
def balance(ctx: typer.Context) -> None:
    """Show on-chain USDC balances and the Run402 prepaid balance of the allowance.

    Example: run402 allowance balance
    """
    run_balance(BalanceOptions(), ctx)


def run_balance(opts: BalanceOptions, ctx: typer.Context) -> None:
    from run402_cli import config
    from run402_cli.api import allowance as api_allowance
    from run402_cli.api import chain

    s = settings(ctx)
    c = client(ctx)
    a = config.require_allowance(s)
    try:
        mainnet = chain.usdc_balance_micros(s, "base-mainnet", a.address)
        sepolia = chain.usdc_balance_micros(s, "base-sepolia", a.address)
        try:
            account = api_allowance.billing_account(c, a.address)
        except Run402Error:
            account = None
    finally:
        c.close()
    if isinstance(account, dict) and account.get("exists") is not False:
        run402: Any = {"balance_usd_micros": account.get("available_usd_micros")}
    else:
        run402 = "no billing account"
    output.emit(
        {
            "address": a.address,
            "rail": a.rail,
            "onchain": {
                "base-mainnet_usd_micros": mainnet,
                "base-sepolia_usd_micros": sepolia,
                # No Tempo RPC in this client: reported as unknown, never guessed.
                "tempo-moderato_pathusd_micros": None,
            },
            "run402": run402,
        }
    )


@app.command("export")
def export(ctx: typer.Context) -> None:
    """Print the allowance address (bare text; never the key).

    Example: run402 allowance export
    """
    run_export(ExportOptions(), ctx)


def run_export(opts: ExportOptions, ctx: typer.Context) -> None:
    from run402_cli import config

    a = config.require_allowance(settings(ctx))
    output.emit_text(a.address)
