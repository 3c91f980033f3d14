"""The root of the command tree, and the one place errors become output and exit codes.

Start-up time matters (agents run many short commands): `--version` is answered before Typer
is imported, and so is `--help` on any command path (from `help_text.py`, rendered ahead of time
from this very tree by scripts/gen_docs.py; a test fails when it is stale), and so are the
argument-less commands of FAST_PATHS. Command modules import only stdlib, typer, `output` and
`errors` at the top (those with fast-path commands not even typer).
"""

from __future__ import annotations

import sys
from typing import Sequence

from run402_cli import __version__

__all__ = ["FAST_PATHS", "build_app", "click_command", "main", "run", "skip_unused_extras"]

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
    ("functions", "run402_cli.commands.functions"),
    ("subdomains", "run402_cli.commands.subdomains"),
    ("secrets", "run402_cli.commands.secrets"),
    ("assets", "run402_cli.commands.assets"),
    ("cdn", "run402_cli.commands.cdn"),
    ("blob", "run402_cli.commands.blob"),
    ("jobs", "run402_cli.commands.jobs"),
    ("service", "run402_cli.commands.service"),
    ("local", "run402_cli.commands.local"),
]


def build_app(only: str | None = None):  # -> typer.Typer
    """The Typer app: every group, or with `only` (a name in GROUPS) that group alone, so a
    command imports its own group's module and no other (`projects list` needs no deploy)."""
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
        if only is not None and name != only:
            continue
        mod = importlib.import_module(module)
        if getattr(mod, "TOP_LEVEL", False):
            mod.register(app)  # `init`, `status`: commands, not groups
        else:  # a group with fast-path commands builds its Typer group on demand
            app.add_typer(mod.build() if hasattr(mod, "build") else mod.app, name=name)
    return app


def click_command(args: Sequence[str] = ()):  # -> click.Command
    """The tree as the click command Typer builds, with our help layout: only the group
    `args` starts with when it names one; else (no args, a root flag, a typo that wants
    suggestions from every name) the whole tree."""
    import typer

    from run402_cli.help import apply_layout

    first = args[0] if args else None
    only = first if first in {name for name, _ in GROUPS} else None
    return apply_layout(typer.main.get_command(build_app(only)))


# Click wraps help to the terminal, at most 78 columns (80 less a margin): at 80 columns and
# wider (and on a pipe, which counts as 80) the text is the same, so it can be rendered ahead.
HELP_COLUMNS = 80


def pregenerated_help(args: Sequence[str]) -> str | None:
    """The help `args` asks for, when it is `<command path> --help|-h` (or nothing at all, the
    root help) on a terminal of HELP_COLUMNS or more; else None (Typer renders it)."""
    if args and args[-1] in ("--help", "-h"):
        path = " ".join(args[:-1])
    elif not args:
        path = ""
    else:
        return None
    from run402_cli.help_text import TEXTS

    text = TEXTS.get(path)
    if text is None:
        return None
    import shutil

    return text if shutil.get_terminal_size().columns >= HELP_COLUMNS else None


# Commands that take no arguments, flags or stdin, run without Typer (~40 ms of imports and
# tree building) when argv is exactly their path: (group, verb) -> (options class, run
# function), both looked up in the group's module (GROUPS), which therefore imports no Typer at
# the top and builds its group in `build()`. Typer would parse such an argv into nothing but
# `run_<verb>(Options(), settings)`, and that is all this path does; any other argv (a flag,
# an extra argument, -h) goes to Typer, whose rules and errors stay the only ones. A test
# checks that each of these commands really declares no parameters.
FAST_PATHS: dict[tuple[str, str], tuple[str, str]] = {
    ("service", "status"): ("StatusOptions", "run_status"),
    ("service", "health"): ("HealthOptions", "run_health"),
    ("tier", "status"): ("StatusOptions", "run_status"),
}


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on `argv` and return the exit code (tests call this in-process)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-v"]):
        sys.stdout.write(__version__ + "\n")
        return 0
    text = pregenerated_help(args)
    if text is not None:
        sys.stdout.write(text)
        return 0
    fast = FAST_PATHS.get(tuple(args)) if len(args) == 2 else None
    if fast is not None:
        return _guarded(args, lambda settings: _run_fast(args[0], *fast, settings))
    return render(args)


def _run_fast(group: str, options: str, function: str, settings) -> int:  # settings: Settings
    import importlib

    mod = importlib.import_module(dict(GROUPS)[group])
    getattr(mod, function)(getattr(mod, options)(), settings)
    return 0


def render(args: list[str]) -> int:
    """Run the command tree on `args` (help included): what `run` does past its fast paths."""
    return _guarded(args, lambda settings: _run_tree(args, settings))


def _run_tree(args: list[str], settings) -> int:  # settings: Settings
    import typer
    from typer._click import exceptions as cx

    from run402_cli import output
    from run402_cli.errors import Run402Error, from_click_error

    command = click_command(args)
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


def _guarded(args: list[str], body) -> int:  # body: Callable[[Settings], int]
    """Settings and their warnings, then `body(settings)`; and the one place an error becomes
    one JSON line on stderr and an exit code, whichever path ran the command."""
    from run402_cli import output
    from run402_cli.config import Settings
    from run402_cli.errors import Informational, Run402Error

    try:
        settings = Settings()
        if not _asks_for_help(args):  # help stays readable whatever the environment says
            for warning in settings.check_env():
                output.progress({"level": "warning", "message": warning})
        return body(settings)
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


# Optional parts of the HTTP stack the CLI never uses, which their packages import eagerly when
# the libraries behind them happen to be installed: httpx's own command-line client (rich,
# pygments, click: ~100 ms; Typer installs them) and httpcore's HTTP/2 (h2: ~40 ms; a test
# dependency installs it). A None entry in sys.modules makes that one import raise
# ImportError, which both packages expect: they define a stub that says the extra is missing.
# Set by the CLI's entry point only, never on `import run402_cli` (a library user may want them).
UNUSED_EXTRAS = ("httpx._main", "httpcore._sync.http2", "httpcore._async.http2")


def skip_unused_extras() -> None:
    for name in UNUSED_EXTRAS:
        if name.split(".")[0] not in sys.modules:  # too late once the package is imported
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def main() -> None:
    skip_unused_extras()
    sys.exit(run())
