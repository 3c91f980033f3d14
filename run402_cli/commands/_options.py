"""Pieces every command group shares: the strict command class, settings and client access,
and JSON-flag parsing. Imports only stdlib, typer, output and errors at the top."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

from run402_cli import output
from run402_cli.errors import UsageError

if TYPE_CHECKING:
    from run402_cli.api.client import Client
    from run402_cli.config import Settings

__all__ = ["StrictCommand", "client", "group", "parse_json_flag", "settings"]


class StrictCommand(TyperCommand):
    """Click happily takes `--name --tier x` as name="--tier". The official CLI calls a value
    flag followed by another flag BAD_FLAG; so do we, before anything runs."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        rest = super().parse_args(ctx, args)
        for param in self.params:
            if getattr(param, "is_flag", False) or not getattr(param, "opts", None):
                continue
            if not any(o.startswith("-") for o in param.opts):
                continue
            value = ctx.params.get(param.name)
            if isinstance(value, str) and value.startswith("--"):
                flag = max(param.opts, key=len)
                raise UsageError(
                    f"Flag {flag} needs a value, got another flag: {value}",
                    code="BAD_FLAG",
                    details={"flag": flag},
                    hint=f"Run: {ctx.command_path} --help",
                )
        return rest


def group(help: str) -> typer.Typer:
    """A command group whose commands default to StrictCommand."""
    app = typer.Typer(
        help=help,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        cls=TyperGroup,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    original = app.command

    def command(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        kwargs.setdefault("cls", StrictCommand)
        return original(*args, **kwargs)

    app.command = command  # type: ignore[method-assign]
    return app


def settings(ctx: typer.Context | None = None) -> Settings:
    """The invocation's Settings, built on first use (so --help never reads the environment)."""
    from run402_cli.config import Settings

    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, Settings):
        return root.obj
    s = Settings()
    if root is not None:
        root.obj = s
    return s


def client(ctx: typer.Context | None = None) -> Client:
    from run402_cli.api.client import Client

    s = settings(ctx)
    c = Client(s)
    base = s.api_base  # validates RUN402_API_BASE now, before any request
    for w in s.warnings:
        output.progress({"level": "warning", "message": w})
    del base
    return c


def parse_json_flag(flag: str, value: str, *, expect: type | None = None) -> Any:
    """A flag whose value is JSON: BAD_JSON_FLAG on a parse error, BAD_USAGE on the wrong type."""
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise UsageError(
            f"{flag} must be valid JSON: {exc}",
            code="BAD_JSON_FLAG",
            details={"flag": flag, "value_preview": value[:32], "parse_error": str(exc)},
        ) from None
    if expect is not None and not isinstance(data, expect):
        raise UsageError(
            f"{flag} must be a JSON {expect.__name__ if expect is not list else 'array'}",
            code="BAD_USAGE",
            details={"flag": flag},
        )
    return data
