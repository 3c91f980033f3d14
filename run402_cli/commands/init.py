"""`run402 init [mpp] [--switch-rail] [--json]`: one command from nothing to ready:
config dir, allowance, test funds, tier check, next step."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import StrictCommand, client, settings
from run402_cli.errors import Run402Error, UsageError

TOP_LEVEL = True

# How init waits for the faucet's USDC to show on chain (tests shorten these).
POLL_INTERVAL_S = 1.0
POLL_TIMEOUT_S = 30.0

_RAILS = ("x402", "mpp")


class _RawEnvelope(Run402Error):
    """An error the official CLI prints as a bare {status, code, message, details} line."""

    def to_envelope(self) -> dict[str, Any]:
        return {"status": "error", "code": self.code, "message": self.message, "details": self.details}


@dataclass(frozen=True)
class InitOptions:
    rail: str = "x402"
    switch_rail: bool = False
    json: bool = False
    poll_interval: float = POLL_INTERVAL_S
    poll_timeout: float = POLL_TIMEOUT_S


def register(app: typer.Typer) -> None:
    app.command("init", cls=StrictCommand)(init)


def init(
    ctx: typer.Context,
    rail: Optional[str] = typer.Argument(
        None, metavar="[mpp]", help="Payment rail: x402 (default) or mpp."
    ),
    switch_rail: bool = typer.Option(
        False, "--switch-rail", help="Confirm switching an existing allowance to another rail."
    ),
    json_: bool = typer.Option(
        False, "--json", help="JSON summary on stdout; the human lines go to stderr."
    ),
) -> None:
    """Set up: config dir, allowance, test funds, tier status and the next step.

    Example: run402 init --json
    """
    chosen = rail or "x402"
    if chosen not in _RAILS:
        raise UsageError(
            f"Unknown rail {rail!r}. Use 'run402 init' (x402) or 'run402 init mpp'.",
            code="BAD_USAGE",
            hint="Run: run402 init --help",
            details={"value": rail, "allowed": list(_RAILS)},
        )
    run_init(
        InitOptions(
            rail=chosen, switch_rail=switch_rail, json=json_,
            poll_interval=POLL_INTERVAL_S, poll_timeout=POLL_TIMEOUT_S,
        ),
        ctx,
    )


def _short(address: str) -> str:
    return f"{address[:6]}...{address[-4:]}"


def _usdc(micros: int) -> str:
    return f"{micros / 1_000_000:.2f}"


def run_init(opts: InitOptions, ctx: typer.Context) -> None:
    from run402_cli import config, wallet
    from run402_cli.api import allowance as api_allowance
    from run402_cli.api import chain, tiers

    s = settings(ctx)
    c = client(ctx)  # a bad RUN402_API_BASE fails here, before anything is written
    existing = s.allowance()
    current_rail = existing.raw.get("rail") if existing is not None else None
    if current_rail and current_rail != opts.rail and not opts.switch_rail:
        raise _RawEnvelope(
            f"Already on rail '{current_rail}'. Pass --switch-rail to switch to '{opts.rail}'.",
            code="RAIL_SWITCH_REQUIRES_CONFIRM",
            details={"current_rail": current_rail, "requested_rail": opts.rail},
        )

    say = output.human if opts.json else output.emit_text

    def line(label: str, value: str) -> None:
        say(f"  {label:<10} {value}")

    try:
        say("")
        s.config_dir.mkdir(parents=True, exist_ok=True)
        line("Config", str(s.config_dir))

        if existing is None:
            private_key = wallet.generate_private_key()
            raw: dict[str, Any] = {
                "address": wallet.address_of(private_key),  # EIP-55, as viem writes it
                "privateKey": private_key,
                "created": config.now_iso(),
                "funded": False,
                "rail": opts.rail,
            }
            config.write_allowance(s.allowance_path, raw)
            line("Allowance", f"{_short(raw['address'])} (created)")
        else:
            raw = dict(existing.raw)
            if raw.get("rail") != opts.rail:
                raw["rail"] = opts.rail
                config.write_allowance(s.allowance_path, raw)
            line("Allowance", _short(raw["address"]))
        address = raw["address"]

        mpp = opts.rail == "mpp"
        network = "tempo-moderato" if mpp else "base-sepolia"
        line("Network", "Tempo Moderato (testnet)" if mpp else "Base Sepolia (testnet)")
        line("Rail", opts.rail)

        note: str | None = None
        balance: int | None
        if mpp:
            # No Tempo chain is reachable from this client: say so instead of guessing.
            balance = None
            note = ("pathUSD balance on Tempo Moderato is not readable from this client; "
                    "fund the address on Tempo yourself")
            line("Balance", "unknown (Tempo Moderato is not reachable from this client)")
        else:
            balance = chain.usdc_balance_micros(s, "base-sepolia", address)
            if not balance:
                line("Balance", "0 USDC — requesting faucet...")
                try:
                    api_allowance.faucet(c, address)
                except Run402Error as err:
                    line("Balance", f"faucet failed: {err.message}")
                else:
                    confirmed, polled = chain.wait_for_balance(
                        s, "base-sepolia", address, above=0,
                        interval=opts.poll_interval, timeout=opts.poll_timeout,
                    )
                    raw = {**raw, "funded": True, "lastFaucet": config.now_iso()}
                    config.write_allowance(s.allowance_path, raw)
                    if polled is not None:
                        balance = polled
                    if confirmed and polled is not None:
                        line("Balance", f"{_usdc(polled)} USDC (funded)")
                    else:
                        line("Balance", "faucet sent — not yet confirmed on-chain")
            else:
                line("Balance", f"{_usdc(balance)} USDC")

        if current_rail and current_rail != opts.rail:
            other = "Tempo pathUSD" if current_rail == "mpp" else "Base Sepolia USDC"
            line("Note", f"Switched from {current_rail} — {other} balance still available "
                         "if you switch back")
        if note:
            line("Note", note)

        try:
            tier_info: Any = tiers.status(c)
        except Run402Error:
            tier_info = None
        tier = None
        if isinstance(tier_info, dict) and tier_info.get("tier") and tier_info.get("active"):
            expires = tier_info.get("lease_expires_at")
            day = expires.split("T")[0] if isinstance(expires, str) else "unknown"
            line("Tier", f"{tier_info['tier']} (expires {day})")
            tier = {"name": tier_info["tier"], "expires": expires}
        else:
            line("Tier", "(none)")

        projects_saved = len(s.keystore().load()["projects"])
        line("Projects", f"{projects_saved} saved")

        say("")
        if tier is None:
            next_step = "run402 tier set prototype"
            say(f"  Next: {next_step}")
        else:
            next_step = "run402 deploy apply --manifest app.json"
            say(f"  Ready to deploy. Run: {next_step}")
        say("")
    finally:
        c.close()

    if opts.json:
        summary: dict[str, Any] = {
            "config_dir": str(s.config_dir),
            "allowance": {"address": address, "funded": bool(raw.get("funded"))},
            "rail": opts.rail,
            "network": network,
            "balance": {"symbol": "pathUSD" if mpp else "USDC", "usd_micros": balance},
            "tier": tier,
            "projects_saved": projects_saved,
            "next_step": next_step,
        }
        if note:
            summary["note"] = note
        output.emit(summary)
