"""The layout of `--help`, the one place it is decided.

Agents read help the way they read the official CLI's: the first line names the command and
says what it does (`run402 projects sql — Run SQL ...`), then `Usage:`, the rest of the
description, `Arguments:` / `Options:` (or `Subcommands:` for a group, each with its whole
first sentence, never cut to "..."), and last `Examples:`. Examples are the docstrings'
`Example:` lines; a group shows the first example of each subcommand.

`apply_layout(command)` installs it on a click command tree (the one Typer builds), so the
docstrings and option help stay the single source of the text.
"""

from __future__ import annotations

import inspect
from types import MethodType
from typing import Any

__all__ = ["apply_layout", "split_doc"]

_EXAMPLE = "Example:"


def split_doc(doc: str | None) -> tuple[str, list[str], list[str]]:
    """(first sentence or line, the remaining paragraphs, the examples) of a docstring."""
    text = inspect.cleandoc((doc or "").split("\f", 1)[0]).replace("\b\n", "")
    examples = [ln.strip()[len(_EXAMPLE):].strip() for ln in text.splitlines()
                if ln.strip().startswith(_EXAMPLE)]
    prose = [ln for ln in text.splitlines() if not ln.strip().startswith(_EXAMPLE)]
    paragraphs = [" ".join(p.split()) for p in "\n".join(prose).split("\n\n") if p.strip()]
    if not paragraphs:
        return "", [], examples
    return paragraphs[0], paragraphs[1:], examples


def _path(ctx: Any) -> str:
    return ctx.command_path or "run402"


def _usage_line(command: Any, ctx: Any) -> str:
    if _is_group(command):
        return f"{_path(ctx)} <{'command' if ctx.parent is None else 'subcommand'}> [args...]"
    pieces = command.collect_usage_pieces(ctx)
    return " ".join([_path(ctx), *pieces])


def _is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def _children(command: Any, ctx: Any) -> list[tuple[str, Any]]:
    out = []
    for name in command.list_commands(ctx):
        child = command.get_command(ctx, name)
        if child is not None and not child.hidden:
            out.append((name, child))
    return out


def _examples(command: Any, ctx: Any) -> list[str]:
    """A command's own examples; for a group without any, the first of each subcommand's."""
    own = split_doc(command.help)[2]
    if own or not _is_group(command):
        return own
    return [e for _, child in _children(command, ctx) for e in _examples(child, ctx)[:1]]


def _format_help(self: Any, ctx: Any, formatter: Any) -> None:
    title, rest, _ = split_doc(self.help)
    # the first line is never wrapped: it is how a reader (or grep) finds the command
    formatter.write(f"{_path(ctx)} — {title}\n" if title else f"{_path(ctx)}\n")
    with formatter.section("Usage"):
        formatter.write_text(_usage_line(self, ctx))
    for paragraph in rest:
        formatter.write_paragraph()
        formatter.write_text(paragraph)

    if _is_group(self):
        children = _children(self, ctx)
        if children:
            with formatter.section("Subcommands" if ctx.parent is not None else "Commands"):
                formatter.write_dl([(name, split_doc(child.help)[0]) for name, child in children])
    for kind, heading in (("argument", "Arguments"), ("option", "Options")):
        rows = [p.get_help_record(ctx) for p in self.get_params(ctx) if p.param_type_name == kind]
        rows = [r for r in rows if r]
        if rows:
            with formatter.section(heading):
                formatter.write_dl(rows)
    examples = _examples(self, ctx)
    if examples:
        with formatter.section("Examples"):
            for example in examples:  # never wrapped: an agent copies the line as it is
                formatter.write(" " * formatter.current_indent + example + "\n")


def apply_layout(command: Any) -> Any:
    """Give `command` and every command under it this module's help layout; returns it."""
    command.format_help = MethodType(_format_help, command)
    if _is_group(command):
        for child in getattr(command, "commands", {}).values():
            apply_layout(child)
    return command
