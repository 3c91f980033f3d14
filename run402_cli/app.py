"""The root of the command tree, and the one place errors become output and exit codes.

Start-up time matters (agents run many short commands): `--version` is answered before Typer
is imported, and command modules import only stdlib, typer, `output` and `errors` at the top.
"""

from __future__ import annotations

import sys
from typing import Sequence

from run402_cli import __version__

__all__ = ["build_app", "main", "run"]

# name -> (module, help). Order here is the order of `run402 --help`.
GROUPS: list[tuple[str, str]] = [
    ("init", "run402_cli.commands.init"),
    ("status", "run402_cli.commands.status"),
    ("allowance", "run402_cli.commands.allowance"),
    ("tier", "run402_cli.commands.tier"),
    ("projects", "run402_cli.commands.projects"),
    ("auth", "run402_cli.commands.auth"),
    ("sites", "run402_cli.commands.sites"),
    ("deploy", "run402_cli.commands.deploy"),
    ("subdomains", "run402_cli.commands.subdomains"),
    ("service", "run402_cli.commands.service"),
    ("local", "run402_cli.commands.local"),
]


def build_app():  # -> typer.Typer
    import importlib

    import typer

    app = typer.Typer(
        name="run402",
        help="Run402 from the shell: Postgres + REST + auth + storage + sites + functions, "
        "paid with x402. Every command prints JSON on stdout (exit 0) or one JSON error line "
        "on stderr (exit 1).",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(False, "--version", "-v", help="Print the version and exit."),
    ) -> None:
        if version:
            from run402_cli import output

            output.emit_text(__version__)
            raise typer.Exit(0)

    for name, module in GROUPS:
        mod = importlib.import_module(module)
        if getattr(mod, "TOP_LEVEL", False):
            mod.register(app)  # `init`, `status`: commands, not groups
        else:
            app.add_typer(mod.app, name=name)
    return app


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on `argv` and return the exit code (tests call this in-process)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-v"]):
        sys.stdout.write(__version__ + "\n")
        return 0

    from run402_cli import output
    from run402_cli.config import Settings
    from run402_cli.errors import Informational, Run402Error, from_click_error

    try:
        settings = Settings()
        if not _asks_for_help(args):  # help stays readable whatever the environment says
            for warning in settings.check_env():
                output.progress({"level": "warning", "message": warning})
        import typer
        from typer._click import exceptions as cx

        from run402_cli.help import apply_layout

        command = apply_layout(typer.main.get_command(build_app()))
        try:
            result = command.main(args=args, prog_name="run402", standalone_mode=False, obj=settings)
        except typer.Abort:
            raise Run402Error("Aborted.", code="ABORTED") from None
        except cx.NoArgsIsHelpError as exc:
            output.emit_text(exc.ctx.get_help())
            return 0
        except cx.ClickException as exc:
            raise from_click_error(exc) from None
        return result if isinstance(result, int) else 0
    except Informational as info:
        output.emit(info.payload, compact=True)
        return 1
    except Run402Error as err:
        output.fail(err.to_envelope())
        return 1
    except KeyboardInterrupt:
        output.fail(Run402Error("Interrupted.", code="INTERRUPTED").to_envelope())
        return 130
    except Exception as exc:  # an uncaught bug: still one JSON line, never a traceback
        output.fail(
            Run402Error(f"{type(exc).__name__}: {exc}", code="INTERNAL_ERROR").to_envelope()
        )
        return 1


def _asks_for_help(args: list[str]) -> bool:
    """`run402` and anything with -h/--help before a `--` only print help."""
    if not args:
        return True
    head = args[: args.index("--")] if "--" in args else args
    return "--help" in head or "-h" in head


def main() -> None:
    sys.exit(run())
