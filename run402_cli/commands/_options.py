"""Pieces every command group shares: the strict command class, settings and client access,
the `--project` option and its resolver, and the input readers (a JSON flag, a file flag, the
one stdin rule). Imports only stdlib, typer, output and errors at the top."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Callable

import typer
from typer.core import TyperCommand, TyperGroup

from run402_cli import output
from run402_cli.errors import UsageError

if TYPE_CHECKING:
    from run402_cli.api.client import Client
    from run402_cli.config import Settings

__all__ = [
    "MAX_SAFE_INTEGER", "StrictCommand", "client", "emit_service_key_call", "group", "parse_json_flag",
    "positive_int", "project_opt", "read_file_flag", "read_stdin_source", "resolve_project", "settings",
]

# The largest integer every client (and a JSON number in JavaScript) holds exactly: 2^53 - 1.
MAX_SAFE_INTEGER = 2**53 - 1


class StrictCommand(TyperCommand):
    """Click happily takes `--name --tier x` as name="--tier". The official CLI calls a value
    flag followed by another flag (or by nothing) BAD_FLAG; so do we, before anything runs."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if not any(a in ("--help", "-h") for a in args):
            value_flags = {
                opt: max(param.opts, key=len)
                for param in self.params
                if getattr(param, "opts", None) and not getattr(param, "is_flag", False)
                and getattr(param, "param_type_name", "") == "option"
                for opt in param.opts
            }
            for i, arg in enumerate(args):
                if arg == "--":
                    break
                if arg in value_flags and i + 1 < len(args) and args[i + 1].startswith("--"):
                    flag = value_flags[arg]
                    raise UsageError(
                        f"Flag {flag} needs a value, got another flag: {args[i + 1]}",
                        code="BAD_FLAG",
                        details={"flag": flag},
                        hint=f"Run: {ctx.command_path} --help",
                    )
        return super().parse_args(ctx, args)


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

    return Client(settings(ctx))  # the environment was checked at start-up (app.run)


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


def positive_int(value: str | None, flag: str, *, maximum: int = MAX_SAFE_INTEGER) -> int | None:
    """A strict decimal integer in 1..maximum (at most 2^53-1), or None when the flag is absent
    (BAD_FLAG otherwise). Beyond 2^53-1 the official client refuses too: the API would get a
    value it cannot represent exactly."""
    if value is None:
        return None
    # the length check first: int() of thousands of digits is slow, and refused past 4300
    if (not value.isdigit() or not value.isascii() or len(value.lstrip("0")) > 16
            or not 1 <= int(value) <= MAX_SAFE_INTEGER):
        raise UsageError(f"{flag} must be a positive integer.", code="BAD_FLAG",
                         details={"flag": flag, "value": value})
    if int(value) > maximum:
        raise UsageError(f"{flag} must be at most {maximum}.", code="BAD_FLAG",
                         details={"flag": flag, "value": int(value), "max": maximum})
    return int(value)


def project_opt() -> Any:
    """The `--project prj_...` option of commands that default to the active project."""
    return typer.Option(None, "--project", help="prj_... (default: the active project).")


def resolve_project(ctx: typer.Context, project_id: str | None) -> tuple[str, dict[str, Any]]:
    """(project id, its keystore entry): `--project`, else the active project; a clear error
    when neither exists or the id is not in the keystore."""
    from run402_cli import config

    return config.resolve_project(settings(ctx), project_id)


def emit_service_key_call(ctx: typer.Context, project_id: str | None,
                          call: Callable[[Client, str, str], Any]) -> None:
    """The shape of every read-only project admin command: resolve the project (`project_id`,
    else the active one), call `call(client, project_id, service_key)`, print what it returns."""
    pid, entry = resolve_project(ctx, project_id)
    with client(ctx) as c:
        output.emit(call(c, pid, entry["service_key"]))


def read_file_flag(path: str, flag: str, *, failure: str | None = None,
                   verbatim: bool = False) -> tuple[str, str]:
    """(text, absolute path) of the UTF-8 file a flag names (`~` expanded). A missing file is
    FILE_NOT_FOUND, a directory or device NOT_A_FILE, anything else unreadable BAD_FLAG, each
    with `field` and `details.flag/path`. With `failure` (e.g. "Failed to read manifest", as
    the official `deploy apply` says), every one of them is BAD_USAGE "<failure>: <reason>".
    `verbatim` keeps line endings as they are (a secret value: "\r\n" stays "\r\n")."""
    import stat

    full = os.path.abspath(os.path.expanduser(path))
    details = {"flag": flag, "path": path}
    try:
        # stat first: opening a FIFO would wait for a writer that may never come
        if not stat.S_ISREG(os.stat(full).st_mode):
            raise IsADirectoryError(0, "not a regular file")
        with open(full, encoding="utf-8", newline="" if verbatim else None) as fh:
            return fh.read(), full
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        if failure is not None:
            raise UsageError(f"{failure}: {reason}", details=details) from None
        if isinstance(exc, FileNotFoundError):
            raise UsageError(f"File not found: {path}", code="FILE_NOT_FOUND", field=flag,
                             hint=f"Check that {flag} points to an existing file.",
                             details=details) from None
        if isinstance(exc, IsADirectoryError):
            kind = "directory" if os.path.isdir(full) else "non-regular file"
            raise UsageError(f"{flag} points to a {kind}: {path}", code="NOT_A_FILE", field=flag,
                             details=details) from None
        raise UsageError(f"Cannot read {flag} {path}: {reason}", code="BAD_FLAG", field=flag,
                         details=details) from None


def read_stdin_source(stream: Any = None, *, verbatim: bool = False) -> Callable[[], str] | None:
    """The one stdin rule of every command that can read its input from stdin: a reader when
    stdin is a pipe or a redirected file (what the official CLI checks with fstat), else None:
    a terminal or /dev/null is not input. Nothing is read until the reader is called, so a
    pipe nobody writes to never blocks a command that has another source. An in-memory stream
    (tests) is a source iff it has something in it. `verbatim` reads the bytes and decodes
    them as UTF-8 (no newline translation, no locale encoding; UnicodeDecodeError if not)."""
    import io
    import stat
    import sys

    stream = sys.stdin if stream is None else stream
    if stream is None:  # no stdin at all (a daemon, pythonw)
        return None
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        text = stream.read()
        return (lambda: text) if text else None
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return None
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        return None
    if verbatim and getattr(stream, "buffer", None) is not None:
        return lambda: stream.buffer.read().decode("utf-8")
    return stream.read
