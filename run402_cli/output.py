"""The output contract agents depend on.

Success: one JSON document on stdout, exit 0. Failure: exactly one JSON line on stderr,
nothing on stdout, exit 1. Progress: JSON lines on stderr (never stdout).
Only this module writes to the process streams.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable, Optional

__all__ = ["EventSink", "emit", "emit_text", "event_sink", "fail", "human", "progress"]


def _dump(data: Any, compact: bool) -> str:
    if compact:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit(data: Any, *, compact: bool = False) -> None:
    """Print a command's result. Most results are pretty-printed; a few are compact, as in the official CLI."""
    sys.stdout.write(_dump(data, compact) + "\n")
    sys.stdout.flush()


def emit_text(text: str) -> None:
    """Bare text on stdout: `allowance export`'s address, a function's non-JSON answer
    (`functions invoke`), the `[<timestamp>] <message>` lines of `functions logs --follow`."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def fail(envelope: dict[str, Any]) -> None:
    """One JSON line on stderr. The caller exits 1."""
    sys.stderr.write(_dump(envelope, compact=True) + "\n")
    sys.stderr.flush()


def progress(event: dict[str, Any]) -> None:
    """A progress event: one compact JSON line on stderr."""
    sys.stderr.write(_dump(event, compact=True) + "\n")
    sys.stderr.flush()


def human(line: str) -> None:
    """A human-readable line on stderr (init --json keeps its human lines off stdout)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class EventSink:
    """The DeployEvent sink: JSON lines on stderr, or a rich progress bar when stderr is a
    terminal, or nothing with --quiet. Use as a context manager around the deploy."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._progress: Any = None
        self._task: Any = None
        self._skipped = 0

    def __enter__(self) -> Optional[Callable[[dict[str, Any]], None]]:
        if self.quiet:
            return None
        if not sys.stderr.isatty():
            return progress
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), console=Console(stderr=True), transient=True)
        self._progress.start()
        self._task = self._progress.add_task("planning", total=None)
        return self._bar

    def _bar(self, event: dict[str, Any]) -> None:
        p, task, kind = self._progress, self._task, event.get("type")
        if kind == "plan.diff":
            summary = event.get("diff", {}).get("summary")
            p.update(task, description=f"planned{': ' + summary if summary else ''}")
        elif kind == "site.secret_files.skipped":
            for f in event.get("files", []):
                p.console.print(f"not deployed (secret): {f.get('path')} ({f.get('reason')})")
        elif kind == "plan.warnings":
            for w in event.get("warnings", []):
                p.console.print(f"warning {w.get('code')}: {w.get('message')}")
        elif kind == "content.upload.skipped":
            self._skipped += 1
            p.update(task, description=f"{self._skipped} unchanged")
        elif kind == "content.upload.progress":
            p.update(task, description=f"uploading {event.get('label')}", total=event.get("total"),
                     completed=event.get("done"))
        elif kind == "commit.phase":
            p.update(task, description=f"{event.get('phase')} {event.get('status')}")
        elif kind == "deploy.retry":
            p.console.print(f"retrying after {event.get('code')} (attempt {event.get('nextAttempt')})")
        elif kind == "ready":
            p.update(task, description="ready")

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()


def event_sink(quiet: bool) -> EventSink:
    """`with output.event_sink(quiet) as emit:` — emit is None with --quiet."""
    return EventSink(quiet)
