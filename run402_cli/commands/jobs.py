"""`run402 jobs submit|get|logs|cancel`: fixed platform-managed job runs, with the service key
of `--project` (default: the active project). Every verb prints the raw response.

`submit` reads one JSON object (`{job_type, input, max_cost_usd_micros}`) from `--file` or
`--stdin` and sends it with a fresh `Idempotency-Key: job-<uuid4>` header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

import typer

from run402_cli import output
from run402_cli.commands._options import (
    client, group, project_opt, read_file_flag, read_stdin_source, resolve_project,
)
from run402_cli.errors import UsageError

app = group(help="Managed jobs: submit a platform-managed job run, read it, its logs, cancel it.")

MAX_TAIL = 1000
MAX_SAFE_INTEGER = 2**53 - 1


def _job_id(value: Optional[str], verb: str) -> str:
    if not value:
        raise UsageError("Missing job_id.", hint=f"Use `run402 jobs {verb} <job_id>`.")
    return value


def _int_flag(value: Optional[str], flag: str, *, lo: int, hi: int = MAX_SAFE_INTEGER) -> Optional[int]:
    """A strict decimal integer in lo..hi (BAD_FLAG otherwise), None when the flag is absent."""
    if value is None:
        return None
    digits = value[1:] if value.startswith("-") else value
    if not digits.isdigit() or not digits.isascii() or len(digits.lstrip("0")) > 16:
        raise UsageError(f"{flag} must be an integer, got: {value[:32]}", code="BAD_FLAG",
                         details={"flag": flag, "value": value[:32]})
    n = int(value)
    if n < lo or n > hi:
        bound = {"min": lo} if n < lo else {"max": hi}
        rel = f">= {lo}" if n < lo else f"<= {hi}"
        raise UsageError(f"{flag} must be {rel}, got: {n}", code="BAD_FLAG",
                         details={"flag": flag, "value": n, **bound})
    return n


def _parse_request(raw: str, source: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON", code="BAD_JSON",
                         details={"source": source, "parse_error": str(exc)}) from None
    if not isinstance(doc, dict):
        raise UsageError(f"{source} must contain a JSON object", code="BAD_JSON", details={"source": source},
                         hint='e.g. {"job_type": "kysigned.fflonk_prove.v0_17_0", "input": {"input.json": {}}, '
                              '"max_cost_usd_micros": 50000}')
    return doc


def _missing_stdin() -> UsageError:
    return UsageError("Missing JSON request on stdin.",
                      hint="Pipe a job request JSON object, or use --file <path>.")


# --- submit ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitOptions:
    request: dict[str, Any]
    project_id: Optional[str] = None


@app.command("submit")
def submit(
    ctx: typer.Context,
    file: Optional[str] = typer.Option(None, "--file", help="Read the JSON submit request from this file."),
    stdin: bool = typer.Option(False, "--stdin", help="Read the JSON submit request from stdin."),
    project: Optional[str] = project_opt(),
) -> None:
    """Submit a managed job: {job_type, input, max_cost_usd_micros} from --file or --stdin.

    Example: run402 jobs submit --file job.json
    """
    if file is not None and stdin:
        raise UsageError("Provide exactly one request source.", hint="Use either --file <path> or --stdin.")
    if file is None and not stdin:
        raise UsageError("Missing job request source.", hint="Use --file <path> or --stdin.")
    if file is not None:
        request = _parse_request(read_file_flag(file, "--file")[0], file)
    else:
        reader = read_stdin_source()
        text = reader() if reader is not None else ""
        if not text:
            raise _missing_stdin()
        request = _parse_request(text, "stdin")
    project_id, _ = resolve_project(ctx, project)
    run_submit(SubmitOptions(request=request, project_id=project_id), ctx)


def run_submit(opts: SubmitOptions, ctx: typer.Context) -> None:
    from run402_cli.api import jobs

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        output.emit(jobs.submit(c, entry["service_key"], opts.request))


# --- get / cancel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GetOptions:
    job_id: str
    project_id: Optional[str] = None


def _job_arg() -> Any:
    return typer.Argument(None, metavar="JOB_ID", help="The job run id (job_...).")


@app.command("get")
def get(ctx: typer.Context, job_id: Optional[str] = _job_arg(), project: Optional[str] = project_opt()) -> None:
    """Get a managed job run: status, timings, artifacts, cost metadata.

    Example: run402 jobs get job_abc123
    """
    opts = GetOptions(job_id=_job_id(job_id, "get"), project_id=project)
    resolve_project(ctx, opts.project_id)
    run_get(opts, ctx)


def run_get(opts: GetOptions, ctx: typer.Context) -> None:
    from run402_cli.api import jobs

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        output.emit(jobs.get(c, entry["service_key"], opts.job_id))


@dataclass(frozen=True)
class CancelOptions:
    job_id: str
    project_id: Optional[str] = None


@app.command("cancel")
def cancel(ctx: typer.Context, job_id: Optional[str] = _job_arg(), project: Optional[str] = project_opt()) -> None:
    """Cancel a queued or running managed job.

    Example: run402 jobs cancel job_abc123
    """
    opts = CancelOptions(job_id=_job_id(job_id, "cancel"), project_id=project)
    resolve_project(ctx, opts.project_id)
    run_cancel(opts, ctx)


def run_cancel(opts: CancelOptions, ctx: typer.Context) -> None:
    from run402_cli.api import jobs

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        output.emit(jobs.cancel(c, entry["service_key"], opts.job_id))


# --- logs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogsOptions:
    job_id: str
    project_id: Optional[str] = None
    tail: Optional[int] = None
    since: Optional[int] = None


@app.command("logs")
def logs(
    ctx: typer.Context,
    job_id: Optional[str] = _job_arg(),
    project: Optional[str] = project_opt(),
    tail: Optional[str] = typer.Option(None, "--tail", help=f"At most this many entries (1..{MAX_TAIL})."),
    since: Optional[str] = typer.Option(None, "--since", help="Only entries at or after this epoch millisecond."),
) -> None:
    """Read a managed job's logs.

    Example: run402 jobs logs job_abc123 --tail 100
    """
    opts = LogsOptions(job_id=_job_id(job_id, "logs"), project_id=project,
                       tail=_int_flag(tail, "--tail", lo=1, hi=MAX_TAIL), since=_int_flag(since, "--since", lo=0))
    resolve_project(ctx, opts.project_id)
    run_logs(opts, ctx)


def run_logs(opts: LogsOptions, ctx: typer.Context) -> None:
    from run402_cli.api import jobs

    _, entry = resolve_project(ctx, opts.project_id)
    with client(ctx) as c:
        output.emit(jobs.logs(c, entry["service_key"], opts.job_id, tail=opts.tail, since=opts.since))
